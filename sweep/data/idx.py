"""MNIST and Fashion-MNIST from their IDX files, held in memory (the fast path: batched by slicing).

Train and val are the first `train_size` and the next `val_size` images of the official training
split, in file order; test is the first `test_size` images of the official test split. The raw read of
a split is cached for the process, so the jobs of a multirun read the disk once.

IDX files are read here with numpy (http://yann.lecun.com/exdb/mnist/: a 4-byte magic number, 0x00000803
for images and 0x00000801 for labels, one big-endian 4-byte size per dimension, then the bytes), so that
every way a file can be bad is one line naming the file and what is wrong. torchvision only downloads,
under the rule of sweep.data.download.
"""

from __future__ import annotations

import functools
import gzip
import logging
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO, ClassVar, Optional

import numpy as np
import torch

from sweep.data import DATA_DIR_ENV, data_root, int_at_least
from sweep.data.download import download_into, may_download_into
from sweep.errors import ConfigError, DataError, first_line
from sweep.tasks import TASKS as ALL_TASKS

log = logging.getLogger(__name__)

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
TORCHVISION_CLASS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
TASKS = tuple(name for name, task in ALL_TASKS.items() if task.classifies)  # digits are classes
IDX_KINDS = {"images": (3, 0x00000803), "labels": (1, 0x00000801)}  # kind: (dimensions, magic number)
IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short", 0x0C: "int", 0x0D: "float", 0x0E: "double"}
IMAGE_SIZE = (28, 28)
NUM_LABELS = 10
GOOD_COPY = "replace it with a good copy"


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


# ------------------------------------------------------------------------------------------ IDX format


def _open(path: Path) -> BinaryIO:
    """The file to read, through gzip when its name ends in .gz (checked first: it must hold gzip data)."""
    if path.suffix == ".gz":
        with open(path, "rb") as f:
            start = f.read(3)
        if start and start[:2] != b"\x1f\x8b":
            plain = start == b"\x00\x00\x08"
            raise DataError(f"IDX file {path} is named .gz but is not gzip-compressed: "
                            + ("it is a plain IDX file; remove .gz from its name" if plain else GOOD_COPY))
        return gzip.open(path, "rb")
    return open(path, "rb")


def read_idx(path: Path, kind: str) -> torch.Tensor:
    """An MNIST IDX file as uint8 images [N, 28, 28] (kind "images") or labels [N] ("labels"), checked
    against the format: a bad file is a DataError naming it and what is wrong with it."""
    header = 4 + 4 * IDX_KINDS[kind][0]
    try:
        with _open(path) as f:
            dims = _idx_header(path, f.read(header), kind)
            need = math.prod(dims)
            if _can_hold(path, header + need):
                data = bytearray(need)  # read straight into the tensor's memory: one pass, one copy
                held = f.readinto(data)
                extra = len(f.read()) if held == need else 0
            else:  # damaged, or a gzip file of several members: measure what it holds, not what it says
                rest = f.read()
                data = bytearray(rest[:need])
                held, extra = len(data), len(rest) - len(data)
    except EOFError:
        raise DataError(f"IDX file {path} is a truncated gzip file (it ends before its compressed data does): "
                        f"{GOOD_COPY}") from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"IDX file {path} is a damaged gzip file ({first_line(e)}): {GOOD_COPY}") from None
    except OSError as e:
        raise DataError(f"cannot read IDX file {path} ({e.strerror or first_line(e)}): check its permissions") from None
    says = f"{'x'.join(str(d) for d in dims)} = {need}" if len(dims) > 1 else str(need)
    if held < need:
        raise DataError(f"IDX file {path} is truncated: its header says {says} bytes of data, but it holds {held}: "
                        f"{GOOD_COPY}")
    if extra:
        raise DataError(f"IDX file {path} holds {extra} bytes after the {says} its header says: {GOOD_COPY}")
    array = np.frombuffer(data, dtype=np.uint8).reshape(dims)
    if kind == "labels" and need and int(array.max()) >= NUM_LABELS:
        at = int(np.argmax(array >= NUM_LABELS))
        raise DataError(f"IDX file {path} holds the label {int(array[at])} (item {at}), but MNIST and Fashion-MNIST "
                        f"labels are 0 to {NUM_LABELS - 1}: {GOOD_COPY}")
    return torch.from_numpy(array)


def _can_hold(path: Path, size: int) -> bool:
    """Whether the file holds at least `size` bytes (a gzip file: exactly, by the unpacked size its last four
    bytes record, modulo 2**32), so that a damaged header's size is never allocated before it is checked."""
    stored = path.stat().st_size
    if path.suffix != ".gz":
        return stored >= size
    with open(path, "rb") as f:
        f.seek(max(stored - 4, 0))
        return int.from_bytes(f.read(4), "little") == size % 2**32


def _idx_header(path: Path, header: bytes, kind: str) -> tuple[int, ...]:
    """The dimensions in an IDX header of the given kind, or a DataError saying how the header is wrong."""
    ndim, magic = IDX_KINDS[kind]
    if not header:
        raise DataError(f"IDX file {path} is empty: {GOOD_COPY}")
    if len(header) < 4:
        raise DataError(f"IDX file {path} is {len(header)} bytes long, too short for an IDX magic number: {GOOD_COPY}")
    found = int.from_bytes(header[:4], "big")
    seen = f"expected the magic number 0x{magic:08X} of IDX {kind}, found 0x{found:08X}"
    if header[0] or header[1]:
        raise DataError(f"{path} is not an IDX file ({seen}): {GOOD_COPY}")
    if header[2] != 0x08:
        what = IDX_TYPES.get(header[2], "an unknown type")
        raise DataError(f"IDX file {path} holds elements of type 0x{header[2]:02X} ({what}), but MNIST {kind} are "
                        f"unsigned bytes ({seen}): {GOOD_COPY}")
    if header[3] != ndim:
        other = next((k for k, (n, _) in IDX_KINDS.items() if n == header[3]), None)
        fix = f"it holds {other}: check that the files are not swapped" if other else GOOD_COPY
        raise DataError(f"IDX file {path} has {header[3]} dimension(s), where IDX {kind} have {ndim} ({seen}): {fix}")
    if len(header) < 4 + 4 * ndim:
        raise DataError(f"IDX file {path} is truncated: {len(header)} bytes, shorter than the {4 + 4 * ndim}-byte "
                        f"header of IDX {kind}: {GOOD_COPY}")
    dims = struct.unpack(f">{ndim}I", header[4:])
    if kind == "images" and dims[1:] != IMAGE_SIZE:
        raise DataError(f"IDX file {path} holds images of {dims[1]}x{dims[2]} pixels, but MNIST and Fashion-MNIST "
                        "images are 28x28: use the data set's own files, or your own data module for other sizes")
    return dims


@functools.lru_cache(maxsize=8)
def load_raw(images: Path, labels: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images [N, 28, 28] and int64 labels [N] of one split's IDX pair, cached for the process so
    that the jobs of a multirun read the disk once. Callers must not modify them."""
    x, y = read_idx(images, "images"), read_idx(labels, "labels")
    if len(x) != len(y):
        raise DataError(f"IDX file {images} holds {len(x)} images but {labels} holds {len(y)} labels: replace them "
                        "with a matching pair")
    log.info("loaded %s: %d images", images, len(x))
    return x, y.long()


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
        images, labels = load_raw(*(_split_files(root, self.name, train) or self._download(root, train)))
        return root, images, labels

    def _download(self, root: Path, train: bool) -> tuple[Path, Path]:
        """The split's IDX files after torchvision downloads the data set into root, under the rule of
        sweep.data.download (only into a new or empty folder; nothing left behind on failure)."""
        tv_name = TORCHVISION_CLASS[self.name]
        hint = (f"put the four IDX files ({'train' if train else 't10k'}-images-idx3-ubyte[.gz], ...) in a folder and "
                f"set data.root=FOLDER, or torchvision's layout under {root}/{tv_name}/raw")
        if not self.download:
            raise DataError(f"no {self.name} data in {root} and data.download=false: {hint}")
        if not may_download_into(root):
            default = data_root(None, self.name, fallback=self._fallback())
            given = self.root_arg is not None and default != root
            elsewhere = f"leave data.root unset to use {default}, or " if given else ""
            raise DataError(f"no {self.name} IDX files in {root}, and sweep downloads only into a new or empty folder "
                            f"(this one holds other files, left as they are): put the four IDX files there (or in "
                            f"{tv_name}/raw/ under it), or {elsewhere}set data.root to a new or empty folder")
        from torchvision import datasets

        tv_class = getattr(datasets, tv_name)
        try:
            download_into(root, lambda stage: tv_class(str(stage), train=True, download=True), [tv_name])
        except RuntimeError as e:  # torchvision: every mirror failed for one of the files
            lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()] or [type(e).__name__]
            why = " ".join(dict.fromkeys([lines[0], lines[-1]]))
            raise DataError(f"could not download {self.name} into {root} ({why}; no network?): nothing was left "
                            f"behind; {hint}") from None
        except OSError as e:  # a full disk, a folder that cannot be created
            raise DataError(f"could not download {self.name} into {root} ({e.strerror or first_line(e)}): nothing "
                            f"was left behind; {hint}") from None
        files = _split_files(root, self.name, train)
        if files is None:
            raise DataError(f"torchvision downloaded {self.name} into {root}, but not the IDX files read here: {hint}")
        return files

    def _convert(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images as float32 in [0, 1], [N, 1, 28, 28]; labels as the task's int64 targets."""
        x = images.to(torch.float32).div_(255.0).unsqueeze(1)
        y = (labels < self.threshold).long() if self.task == "binary" else labels.clone()
        return x, y

    def _require_test_split(self, root: Path) -> None:
        """Fail before training, not after it: the test files must be there and good (read and checked now,
        cached for test_dataset, which alone uses them)."""
        files = _split_files(root, self.name, train=False)
        if files is None:
            raise DataError(
                f"the {self.name} test split is missing from {root}: add t10k-images-idx3-ubyte[.gz] and "
                "t10k-labels-idx1-ubyte[.gz] beside the training files"
            )
        n = len(load_raw(*files)[1])
        if self.test_size is not None and self.test_size > n:
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
