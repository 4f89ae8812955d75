"""MNIST and Fashion-MNIST from their IDX files, held in memory (the fast path: batched by slicing).

Train and val are the first `train_size` and the next `val_size` images of the official training
split, in file order; test is the first `test_size` images of the official test split. The raw read of
a split is cached for the process, so the jobs of a multirun read the disk once.
"""

from __future__ import annotations

import errno
import functools
import gzip
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import ClassVar, Optional

import torch

from sweep.data import DATA_DIR_ENV, data_root, int_at_least
from sweep.errors import ConfigError, DataError
from sweep.tasks import TASKS as ALL_TASKS

log = logging.getLogger(__name__)

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
TORCHVISION_CLASS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
TASKS = tuple(name for name, task in ALL_TASKS.items() if task.classifies)  # digits are classes
DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)  # a write failed for want of room, not a bad file


def _flat_files(root: Path, train: bool) -> Optional[tuple[Path, Path]]:
    """The (images, labels) IDX files of a flat folder, plain or gzipped, if both are there."""
    prefix = "train" if train else "t10k"
    found = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        hit = next((p for p in (root / f"{prefix}-{kind}", root / f"{prefix}-{kind}.gz") if p.is_file()), None)
        if hit is None:
            return None
        found.append(hit)
    return found[0], found[1]


def _split_files(root: Path, name: str, train: bool) -> Optional[tuple[Path, Path]]:
    """A split's IDX pair in a flat folder, or in torchvision's layout (ROOT/MNIST/raw/)."""
    return _flat_files(root, train) or _flat_files(root / TORCHVISION_CLASS[name] / "raw", train)


def _holds_idx_files(folder: Path) -> bool:
    """Whether a folder holds IDX files itself, flat or in a torchvision layout."""
    if not folder.is_dir():
        return False
    places = [folder, *(folder / cls / "raw" for cls in TORCHVISION_CLASS.values())]
    return any(p.is_dir() and any(p.glob("*-idx[13]-ubyte*")) for p in places)


def _idx_length(path: Path) -> Optional[int]:
    """The first dimension in an IDX header (8 bytes, the data is not read); None when unreadable,
    so that the real read reports the problem."""
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            header = f.read(8)
    except (OSError, EOFError):
        return None
    if len(header) < 8 or header[0] != 0 or header[1] != 0:
        return None
    return int.from_bytes(header[4:8], "big")


def _read_idx(path: Path, reader_name: str) -> torch.Tensor:
    """Read one IDX file with torchvision's own reader; gzipped files are unpacked to a temp dir."""
    from torchvision.datasets import mnist

    reader = getattr(mnist, reader_name)
    try:
        if path.suffix != ".gz":
            return reader(str(path))
        with tempfile.TemporaryDirectory(prefix="sweep-idx-") as tmp:
            plain = Path(tmp) / path.stem
            with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
            return reader(str(plain))
    except OSError as e:
        if e.errno in DISK_FULL:  # unpacking into the temp folder failed: the file itself may be fine
            raise DataError(f"cannot unpack {path} into {tempfile.gettempdir()} ({e.strerror}): free space there "
                            "(or set TMPDIR to another folder), or gunzip the IDX files") from None
        raise _unreadable(path, e) from None
    except (EOFError, AssertionError, TypeError, ValueError, RuntimeError) as e:
        raise _unreadable(path, e) from None


def _unreadable(path: Path, e: BaseException) -> DataError:
    detail = str(e).splitlines()[0] if str(e) else ""
    return DataError(f"cannot read IDX file {path} ({type(e).__name__}: {detail}); replace it with a good copy")


def _load_torchvision(name: str, root: Path, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's dataset class, which downloads the files into ROOT/MNIST/raw when allowed."""
    from torchvision import datasets

    cls = getattr(datasets, TORCHVISION_CLASS[name])
    hint = (
        f"put the four IDX files ({'train' if train else 't10k'}-images-idx3-ubyte[.gz], ...) in a folder and set "
        f"data.root=FOLDER, or torchvision's layout under {root}/{cls.__name__}/raw"
    )
    if not download and not (root / cls.__name__ / "raw").is_dir():
        raise DataError(f"no {name} data in {root} and data.download=false: {hint}")
    try:
        ds = cls(str(root), train=train, download=download)
    except RuntimeError as e:
        if "not found" in str(e).lower():
            raise DataError(f"no {name} data in {root} and data.download=false: {hint}") from None
        raise DataError(f"could not download {name} into {root} (no network?): {hint}") from None
    except OSError as e:
        raise DataError(f"could not read or download {name} in {root} ({e}): {hint}") from None
    return ds.data, ds.targets


@functools.lru_cache(maxsize=8)
def load_raw(name: str, root: str, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images [N, 28, 28] and int64 labels [N] of one official split, cached for the process
    so that the jobs of a multirun read the disk once. Callers must not modify them."""
    root_path = Path(root)
    split = "training" if train else "test"
    files = _split_files(root_path, name, train)
    if files is not None:
        images, labels = _read_idx(files[0], "read_image_file"), _read_idx(files[1], "read_label_file")
    else:
        images, labels = _load_torchvision(name, root_path, train, download)
    if images.ndim != 3 or len(images) != len(labels):
        raise DataError(f"the {name} {split} split in {root} is inconsistent: {len(images)} images, "
                        f"{len(labels)} labels; replace its IDX files with a matching pair")
    log.info("loaded %s %s split from %s: %d images", name, split, root, len(images))
    return images, labels.long()


class _IDXData:
    """The shared code of MNIST and Fashion-MNIST: only the folder name and the default root differ."""

    name: ClassVar[str]

    def __init__(self, root: Optional[str] = None, download: bool = True, train_size: int = 1024,
                 val_size: int = 1024, test_size: Optional[int] = None, task: str = "binary",
                 threshold: int = 3) -> None:
        if task not in TASKS:
            raise ConfigError(f"data.task={task!r} is not a task of {self.name}: use binary or multiclass")
        self.root_arg = root
        self.download = bool(download)
        self.train_size = int_at_least("train_size", train_size, 1)
        self.val_size = int_at_least("val_size", val_size, 1)
        self.test_size = None if test_size is None else int_at_least("test_size", test_size, 1)
        self.task = task
        self.threshold = int_at_least("threshold", threshold, 1, 9)
        self.num_classes = 10 if task == "multiclass" else 2

    def _fallback(self) -> Optional[Path]:
        return None

    @property
    def root(self) -> Path:
        """data.root, else $SWEEP_DATA_DIR/<name>, else the fallback, else ./data/<name>."""
        env = os.environ.get(DATA_DIR_ENV)
        if self.root_arg is None and env:
            parent = Path(env).expanduser().resolve()
            if not (parent / self.name).exists() and _holds_idx_files(parent):
                raise DataError(
                    f"${DATA_DIR_ENV}={parent} holds IDX files itself, but it is now a parent folder with one "
                    f"subfolder per dataset: move the files into {parent / self.name}/ (or set data.root)"
                )
        return data_root(self.root_arg, self.name, fallback=self._fallback())

    def _raw(self, train: bool) -> tuple[Path, torch.Tensor, torch.Tensor]:
        root = self.root
        images, labels = load_raw(self.name, str(root), train, self.download)
        return root, images, labels

    def _convert(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images as float32 in [0, 1], [N, 1, 28, 28]; labels as the task's int64 targets."""
        x = images.to(torch.float32).div_(255.0).unsqueeze(1)
        y = (labels < self.threshold).long() if self.task == "binary" else labels.clone()
        return x, y

    def _require_test_split(self, root: Path) -> None:
        """Fail before training, not after it: the test files must be there (only their headers are read)."""
        files = _split_files(root, self.name, train=False)
        if files is None:
            raise DataError(
                f"the {self.name} test split is missing from {root}: add t10k-images-idx3-ubyte[.gz] and "
                "t10k-labels-idx1-ubyte[.gz] beside the training files"
            )
        n = _idx_length(files[1])
        if self.test_size is not None and n is not None and self.test_size > n:
            raise self._test_too_large(n, root)

    def _test_too_large(self, n: int, root: Path) -> DataError:
        return DataError(
            f"data.test_size={self.test_size} exceeds the {n} images of the {self.name} test split in {root}: "
            "lower it, or set it to null for the whole split"
        )

    def _train_val(self) -> tuple[Path, torch.Tensor, torch.Tensor, int, int]:
        root, images, labels = self._raw(train=True)
        need = self.train_size + self.val_size
        if need > len(images):
            raise DataError(
                f"data.train_size + data.val_size = {need} exceeds the {len(images)} images of the {self.name} "
                f"training split in {root}: lower them"
            )
        return root, images, labels, self.train_size, need

    def train_dataset(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first train_size training images; also checks that the test split exists."""
        root, images, labels, a, _ = self._train_val()
        self._require_test_split(root)
        return self._convert(images[:a], labels[:a])

    def val_dataset(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The val_size training images after the train split."""
        _, images, labels, a, b = self._train_val()
        return self._convert(images[a:b], labels[a:b])

    def test_dataset(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first test_size images of the official test split (all of them when null)."""
        root, images, labels = self._raw(train=False)
        n = len(images) if self.test_size is None else self.test_size
        if n > len(images):
            raise self._test_too_large(len(images), root)
        return self._convert(images[:n], labels[:n])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(root={self.root_arg!r}, task={self.task!r}, train_size={self.train_size}, "
                f"val_size={self.val_size}, test_size={self.test_size})")


class MNIST(_IDXData):
    """Handwritten digits; binary by default (label < threshold), as the seed project trained it."""

    name = "mnist"

    def __init__(self, root: Optional[str] = None, download: bool = True, train_size: int = 1024,
                 val_size: int = 1024, test_size: Optional[int] = None, task: str = "binary",
                 threshold: int = 3) -> None:
        super().__init__(root, download, train_size, val_size, test_size, task, threshold)


class FashionMNIST(_IDXData):
    """Zalando's clothing images; read from Debian's dataset-fashion-mnist package when it is installed."""

    name = "fashion_mnist"

    def __init__(self, root: Optional[str] = None, download: bool = True, train_size: int = 1024,
                 val_size: int = 1024, test_size: Optional[int] = None, task: str = "multiclass",
                 threshold: int = 3) -> None:
        super().__init__(root, download, train_size, val_size, test_size, task, threshold)

    def _fallback(self) -> Optional[Path]:
        return DEBIAN_FASHION_MNIST  # looked up at call time, so tests can point it elsewhere
