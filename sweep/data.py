"""Load MNIST-style IDX data once into memory and cut the seed's train/val/test splits."""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from sweep.atomic import atomic_write_bytes, atomic_write_json
from sweep.errors import DataError

log = logging.getLogger(__name__)

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
TORCHVISION_CLASS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
NUM_CLASSES = 10


@dataclass(frozen=True)
class Split:
    """Images as float32 in [0, 1], shape [N, 1, 28, 28]; targets float [N, 1] (binary) or int64 [N]."""

    images: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.targets)


def resolve_root(cfg: DictConfig) -> Path:
    """data.root, or the documented fallbacks when it is null."""
    if cfg.root is not None:
        return Path(cfg.root).expanduser().resolve()
    env = os.environ.get("SWEEP_DATA_DIR")
    if env:
        return Path(env).expanduser().resolve()
    if cfg.name == "fashion_mnist" and _flat_files(DEBIAN_FASHION_MNIST, train=True):
        return DEBIAN_FASHION_MNIST
    return Path("data").resolve()


def _flat_files(root: Path, train: bool) -> tuple[Path, Path] | None:
    """The (images, labels) IDX files of a flat folder, plain or gzipped, if both are there."""
    prefix = "train" if train else "t10k"
    found = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        candidates = [root / f"{prefix}-{kind}", root / f"{prefix}-{kind}.gz"]
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is None:
            return None
        found.append(hit)
    return found[0], found[1]


def _split_files(root: Path, name: str, train: bool) -> tuple[Path, Path] | None:
    """A split's IDX pair in a flat folder, or in torchvision's layout (ROOT/MNIST/raw/)."""
    return _flat_files(root, train) or _flat_files(root / TORCHVISION_CLASS[name] / "raw", train)


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
    except (OSError, EOFError, AssertionError, TypeError, ValueError, RuntimeError) as e:
        raise DataError(f"cannot read IDX file {path} ({type(e).__name__}: {e}); replace it with a good copy") from None


def cache_dir() -> Path | None:
    """Where decoded IDX files are kept: $SWEEP_CACHE_DIR (off: nowhere), else the user's cache folder."""
    env = os.environ.get("SWEEP_CACHE_DIR")
    if env == "off":
        return None
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sweep"


def _read_idx_pair(images_path: Path, labels_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Read an (images, labels) pair with torchvision's readers, or from the cache a previous read left.

    Importing torchvision costs about 1.5 s (it imports torch._dynamo), so later processes load the
    decoded tensors instead. One cache entry per pair of paths records both files' sizes and
    modification times; an entry that is missing, stale or unreadable is rebuilt from the IDX files.
    """
    # ctime and inode too: copies that keep size and mtime (cp -p, rsync -a) still change those
    stats = [[str(p.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
             for p, st in ((p, p.stat()) for p in (images_path, labels_path))]
    folder, entry = cache_dir(), None
    if folder is not None:
        entry = folder / f"idx-{hashlib.sha1(repr([s[0] for s in stats]).encode()).hexdigest()[:20]}.pt"
        try:
            cached = torch.load(entry, weights_only=True)
            images, labels = cached["images"], cached["labels"]
            if cached["sources"] == stats and images.dtype == torch.uint8 and len(images) == len(labels):
                return images, labels
        except FileNotFoundError:
            pass
        except Exception as e:  # a cache entry is disposable: rebuild it from the IDX files
            log.warning("ignoring unreadable cache entry %s (%s); rebuilding it", entry, type(e).__name__)
    images, labels = _read_idx(images_path, "read_image_file"), _read_idx(labels_path, "read_label_file")
    if entry is not None:
        buf = io.BytesIO()
        torch.save({"images": images, "labels": labels, "sources": stats}, buf)
        try:
            atomic_write_bytes(entry, buf.getvalue())
            atomic_write_json(entry.with_suffix(".json"), {"sources": [s[0] for s in stats]})
            _evict_orphans(folder)
        except OSError as e:
            log.warning("cannot cache decoded data in %s (%s); set SWEEP_CACHE_DIR to a writable folder, "
                        "or to off", folder, e)
    return images, labels


def _evict_orphans(folder: Path) -> None:
    """Delete the entries of IDX files that no longer exist (temporary data sets, moved folders)."""
    for index in folder.glob("idx-*.json"):
        try:
            sources = json.loads(index.read_text())["sources"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not all(Path(src).exists() for src in sources):
            index.with_suffix(".pt").unlink(missing_ok=True)
            index.unlink(missing_ok=True)


@functools.lru_cache(maxsize=8)
def load_raw(name: str, root: str, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images [N, 28, 28] and int64 labels [N] of one official split, cached for the process
    so that the jobs of a multirun read the disk once."""
    root_path = Path(root)
    split = "training" if train else "test"
    files = _split_files(root_path, name, train)
    if files is not None:
        images, labels = _read_idx_pair(*files)
    else:
        images, labels = _load_torchvision(name, root_path, train, download)
    if images.ndim != 3 or len(images) != len(labels):
        raise DataError(f"the {name} {split} split in {root} is inconsistent: {len(images)} images, {len(labels)} labels")
    log.info("loaded %s %s split from %s: %d images", name, split, root, len(images))
    return images, labels.long()


def _load_torchvision(name: str, root: Path, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
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


def to_split(images: torch.Tensor, labels: torch.Tensor, cfg: DictConfig) -> Split:
    """Raw uint8 images and labels as model inputs and targets for cfg.task."""
    x = images.to(torch.float32).div_(255.0).unsqueeze(1)
    if cfg.task == "binary":
        y = (labels < cfg.threshold).to(torch.float32).unsqueeze(1)
    else:
        y = labels.clone()
    return Split(x, y)


def load_train_val(cfg: DictConfig) -> tuple[Split, Split]:
    """The seed's split: the first train_size images of the official training split, then val_size more."""
    root = resolve_root(cfg)
    images, labels = load_raw(cfg.name, str(root), True, cfg.download)
    need = cfg.train_size + cfg.val_size
    if need > len(images):
        raise DataError(
            f"data.train_size + data.val_size = {need} exceeds the {len(images)} images of the {cfg.name} "
            f"training split in {root}: lower them"
        )
    a, b = cfg.train_size, need
    return to_split(images[:a], labels[:a], cfg), to_split(images[a:b], labels[a:b], cfg)


def require_test_split(cfg: DictConfig) -> None:
    """Fail before training, not after it, when the test split is missing; checks files without reading them."""
    root = resolve_root(cfg)
    if _split_files(root, cfg.name, train=False):
        return
    raise DataError(
        f"the {cfg.name} test split is missing from {root}: add t10k-images-idx3-ubyte[.gz] and "
        "t10k-labels-idx1-ubyte[.gz] beside the training files"
    )


def load_test(cfg: DictConfig) -> Split:
    """The official test split (its first test_size images). Only called after model selection."""
    root = resolve_root(cfg)
    images, labels = load_raw(cfg.name, str(root), False, cfg.download)
    n = len(images) if cfg.test_size is None else cfg.test_size
    if n > len(images):
        raise DataError(
            f"data.test_size={n} exceeds the {len(images)} images of the {cfg.name} test split in {root}: "
            "lower it, or set it to null for the whole split"
        )
    return to_split(images[:n], labels[:n], cfg)


def num_outputs(cfg: DictConfig) -> int:
    return 1 if cfg.task == "binary" else NUM_CLASSES
