"""Image data sets loaded through a DataLoader: CIFAR-10 and a folder of class subfolders.

Images are decoded and transformed per example (in DataLoader workers when data.num_workers > 0).
Random augmentation uses torchvision's transforms, which draw from torch's RNG only, so a run is
reproducible from its seed and the DataLoader's worker seeds.
"""

from __future__ import annotations

import functools
import os
import pickle
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from sweep.data import data_root, int_at_least
from sweep.data.download import download_into, may_download_into
from sweep.errors import DataError, first_line

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"
IMAGE_FOLDER_SPLITS = ("train", "val", "test")


class TransformedSubset(Subset):
    """A Subset whose examples pass through a transform: the train, val and test splits share one
    underlying data set (read once) but not their transforms (augmentation is for training only)."""

    def __init__(self, dataset: Dataset, indices: Sequence[int], transform: Callable[[Any], torch.Tensor]) -> None:
        super().__init__(dataset, indices)
        self.transform = transform

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, int]:
        image, label = self.dataset[self.indices[idx]]
        return self.transform(image), int(label)

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        return [self[i] for i in indices]


# ----------------------------------------------------------------------------------------------- CIFAR-10


@functools.lru_cache(maxsize=4)
def _load_cifar10(root: str, train: bool, download: bool) -> Any:
    """torchvision's CIFAR10 (it checks every file's md5 sum, then unpickles the split's batches), once per
    process and split, so that the jobs of a multirun read the disk once. A missing folder is downloaded
    under the rule of sweep.data.download; a bad file is a DataError naming it."""
    from torchvision import datasets

    where = Path(root) / CIFAR10_FOLDER
    if not where.exists():
        if not download:
            raise DataError(f"no CIFAR-10 data in {where}: extract {CIFAR10_ARCHIVE} in {root}, or set "
                            "data.download=true")
        _download_cifar10(Path(root))
    fix = f"extract {CIFAR10_ARCHIVE} in {root} again" + (f", or delete {where} to download it" if download else "")
    try:
        ds = datasets.CIFAR10(root, train=train, download=False)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError, AttributeError) as e:
        problem = _cifar10_problem(where, datasets.CIFAR10, train)
        raise DataError(f"{problem or f'cannot read the CIFAR-10 files in {where} ({first_line(e)})'}: {fix}") from None
    labels = np.asarray(ds.targets)  # torchvision reads these as they are: a bad one would fail mid-training
    if ds.data.dtype != np.uint8 or len(labels) != len(ds.data) or not np.isin(labels, np.arange(10)).all():
        problem = _cifar10_problem(where, datasets.CIFAR10, train)
        raise DataError(f"{problem or f'the CIFAR-10 batches in {where} lack one label 0 to 9 per image'}: {fix}")
    return ds


def _download_cifar10(root: Path) -> None:
    """torchvision's download of the archive, into root only if it is new or empty; only the extracted
    folder is kept (the archive goes with the staging folder), and nothing at all on failure."""
    from torchvision import datasets

    if not may_download_into(root):
        raise DataError(f"no CIFAR-10 data in {root} (no {CIFAR10_FOLDER}/), and sweep downloads only into a new or "
                        f"empty folder (this one holds other files, left as they are): extract {CIFAR10_ARCHIVE} "
                        "there, or set data.root to a new or empty folder")
    try:
        download_into(root, lambda stage: datasets.CIFAR10(str(stage), train=True, download=True), [CIFAR10_FOLDER])
    except (RuntimeError, OSError) as e:  # URLError (no network), a damaged download, a full disk
        raise DataError(f"could not download cifar10 into {root} ({first_line(e)}; no network?): nothing was left "
                        f"behind; put the extracted {CIFAR10_FOLDER}/ folder of {CIFAR10_ARCHIVE} in {root}, "
                        "or set data.root") from None


def _cifar10_problem(where: Path, cls: Any, train: bool) -> Optional[str]:
    """The first thing wrong with the CIFAR-10 files in where, in words naming the file, in torchvision's
    order: every file's md5 sum, then the split's batches and the metadata. A file is unpickled only once
    every md5 sum matches, as torchvision does."""
    from torchvision.datasets.utils import check_integrity

    files = [*cls.train_list, *cls.test_list, [cls.meta["filename"], cls.meta["md5"]]]
    for name, md5 in files:
        path = where / name
        if not path.is_file():
            return f"CIFAR-10 file {path} is missing"
        if not check_integrity(str(path), md5):
            return f"CIFAR-10 file {path} does not match the official file's md5 sum (damaged, or not CIFAR-10's)"
    for name, _ in (cls.train_list if train else cls.test_list):
        problem = _batch_problem(where / name)
        if problem:
            return problem
    return _batch_problem(where / cls.meta["filename"], names_key=cls.meta["key"])


def _batch_problem(path: Path, names_key: Optional[str] = None) -> Optional[str]:
    """What is wrong with one CIFAR-10 batch (data: uint8 rows of 3x32x32 values; labels: one 0 to 9 each),
    or with the metadata file when names_key is given (its list of the 10 class names)."""
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
    except Exception as e:  # a damaged pickle fails in many ways
        return f"CIFAR-10 file {path} is not a readable pickle ({type(e).__name__}: {first_line(e)})"
    if not isinstance(entry, dict):
        return f"CIFAR-10 file {path} holds a {type(entry).__name__}, not the dict of a CIFAR-10 batch"
    if names_key is not None:
        names = entry.get(names_key)
        ok = isinstance(names, list) and len(names) == 10
        return None if ok else f"CIFAR-10 file {path} has no list of the 10 class names under the key {names_key!r}"
    missing = [k for k in ("data", "labels") if k not in entry]
    if missing:
        return f"CIFAR-10 batch {path} has no {' and no '.join(repr(k) for k in missing)} key"
    data, labels = entry["data"], entry["labels"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
        shape = f"{getattr(data, 'dtype', type(data).__name__)} data of shape {getattr(data, 'shape', '?')}"
        return f"CIFAR-10 batch {path} holds {shape}, where a batch holds uint8 rows of 3072 values (3x32x32 pixels)"
    if len(labels) != len(data):
        return f"CIFAR-10 batch {path} holds {len(data)} images but {len(labels)} labels"
    bad = next((y for y in labels if isinstance(y, bool) or not isinstance(y, (int, np.integer)) or not 0 <= y < 10),
               None)
    if bad is not None:
        return f"CIFAR-10 batch {path} holds the label {bad!r}, but CIFAR-10 labels are 0 to 9"
    return None


class CIFAR10:
    """CIFAR-10 (32x32 colour images, 10 classes): train and val are the first train_size and the next
    val_size images of the official training set; test is the first test_size of the test set."""

    name = "cifar10"
    task = "multiclass"
    num_classes = 10

    def __init__(self, root: Optional[str] = None, download: bool = True, train_size: int = 45000,
                 val_size: int = 5000, test_size: Optional[int] = None, augment: bool = True) -> None:
        self.root_arg = root
        self.download = bool(download)
        self.train_size = int_at_least("train_size", train_size, 1)
        self.val_size = int_at_least("val_size", val_size, 1)
        self.test_size = None if test_size is None else int_at_least("test_size", test_size, 1)
        self.augment = bool(augment)

    @property
    def root(self) -> Path:
        """data.root, else $SWEEP_DATA_DIR/cifar10, else ./data/cifar10."""
        return data_root(self.root_arg, self.name)

    def transform(self, train: bool) -> Callable[[Any], torch.Tensor]:
        """PIL image -> normalised float32 [3, 32, 32]; random crop and flip for training when augment."""
        from torchvision import transforms as T

        steps: list[Any] = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if train and self.augment else []
        return T.Compose([*steps, T.ToTensor(), T.Normalize(CIFAR10_MEAN, CIFAR10_STD)])

    def _training_set(self) -> tuple[Any, Path]:
        root = self.root
        base = _load_cifar10(str(root), True, self.download)
        need = self.train_size + self.val_size
        if need > len(base):
            raise DataError(f"data.train_size + data.val_size = {need} exceeds the {len(base)} images of the "
                            f"cifar10 training set in {root}: lower them")
        return base, root

    def train_dataset(self) -> Dataset:
        """The first train_size training images, augmented. torchvision has already checked the test
        batch's md5 sum here, so a missing test split fails before training."""
        base, _ = self._training_set()
        return TransformedSubset(base, range(self.train_size), self.transform(train=True))

    def val_dataset(self) -> Dataset:
        """The next val_size training images, never augmented."""
        base, _ = self._training_set()
        return TransformedSubset(base, range(self.train_size, self.train_size + self.val_size),
                                 self.transform(train=False))

    def test_dataset(self) -> Dataset:
        """The first test_size images of the official test set (all of them when null)."""
        root = self.root
        base = _load_cifar10(str(root), False, self.download)
        n = len(base) if self.test_size is None else self.test_size
        if n > len(base):
            raise DataError(f"data.test_size={n} exceeds the {len(base)} images of the cifar10 test set in "
                            f"{root}: lower it, or set it to null for the whole set")
        return TransformedSubset(base, range(n), self.transform(train=False))


# ------------------------------------------------------------------------------------------- ImageFolder


def load_image(path: str) -> Any:
    """torchvision's image loader (a PIL image, RGB), with a file that is not an image named in one line:
    torchvision lists files by their names only, so a bad one shows when it is read."""
    from PIL import Image
    from torchvision.datasets.folder import default_loader

    try:
        return default_loader(path)
    except PermissionError as e:
        raise DataError(f"cannot read image {path} ({e.strerror}): check its permissions") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:  # PIL's ways to refuse a file
        why = "in no format it knows" if isinstance(e, Image.UnidentifiedImageError) else first_line(e)
        raise DataError(f"{path} is not an image that PIL can read ({why}): replace it, or remove it from the "
                        "folder") from None


def _without_images(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    """The class subfolders of folder in which torchvision finds no image file (it looks through subfolders,
    following links)."""
    empty = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        names = (n for _, _, files in os.walk(sub, followlinks=True) for n in files)
        if not any(n.lower().endswith(extensions) for n in names):
            empty.append(sub)
    return empty


class ImageFolder:
    """Images in class subfolders (PATH/cat/*.png, PATH/dog/*.png, ...), split by fraction with a fixed
    seed (the same split every run), or already split as PATH/train/, PATH/val/ and PATH/test/ (each with
    the same class subfolders; the fractions are then ignored). Labels are the sorted class names' indices."""

    task = "multiclass"

    def __init__(self, path: str, image_size: Optional[int] = None, val_fraction: float = 0.2,
                 test_fraction: float = 0.2, split_seed: int = 0, augment: bool = False,
                 grayscale: bool = False) -> None:
        self.path = Path(str(path)).expanduser()
        for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise DataError(f"data.{key}={value!r} is out of range for the images in {self.path}: "
                                "it must be at least 0 and below 1")
        if val_fraction + test_fraction >= 1:
            raise DataError(f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction:g} leaves no "
                            f"training images in {self.path}: make their sum below 1")
        self.image_size = None if image_size is None else int_at_least("image_size", image_size, 1)
        self.val_fraction = float(val_fraction)
        self.test_fraction = float(test_fraction)
        self.split_seed = int_at_least("split_seed", split_seed, 0)
        self.augment = bool(augment)
        self.grayscale = bool(grayscale)
        self._splits: Optional[dict[str, tuple[Any, list[int]]]] = None

    def transform(self, train: bool) -> Callable[[Any], torch.Tensor]:
        """PIL image -> float32 [C, H, W] in [0, 1]: resize, grayscale, and a random flip for training."""
        from torchvision import transforms as T

        steps: list[Any] = []
        if self.image_size is not None:
            steps.append(T.Resize((self.image_size, self.image_size)))
        if self.grayscale:
            steps.append(T.Grayscale(num_output_channels=1))
        if train and self.augment:
            steps.append(T.RandomHorizontalFlip())
        return T.Compose([*steps, T.ToTensor()])

    @property
    def presplit(self) -> bool:
        """Whether PATH holds train/, val/ and test/ (rather than class subfolders)."""
        present = [s for s in IMAGE_FOLDER_SPLITS if (self.path / s).is_dir()]
        if present and len(present) < len(IMAGE_FOLDER_SPLITS):
            missing = [f"{s}/" for s in IMAGE_FOLDER_SPLITS if s not in present]
            raise DataError(f"{self.path} has {', '.join(f'{s}/' for s in present)} but not {', '.join(missing)}: "
                            "add the missing split folders (each with the same class subfolders), or put the class "
                            "subfolders directly in it to split by data.val_fraction and data.test_fraction")
        return bool(present)

    def _scan(self, folder: Path) -> Any:
        """torchvision's ImageFolder of one folder: it lists the files (images are read per example)."""
        from torchvision import datasets

        if not folder.is_dir():
            raise DataError(f"image folder {folder} does not exist: set data.path to a folder of class subfolders")
        try:
            return datasets.ImageFolder(str(folder), loader=load_image)
        except FileNotFoundError as e:
            from torchvision.datasets.folder import IMG_EXTENSIONS

            if "class folder" in str(e):
                raise DataError(f"{folder} has no class subfolders: put each class's images in a subfolder named "
                                "after it (PATH/cat/1.png, PATH/dog/2.png, ...)") from None
            empty = [str(d) for d in _without_images(folder, IMG_EXTENSIONS)] or [f"a class folder in {folder}"]
            raise DataError(f"{', '.join(empty)} {'holds' if len(empty) == 1 else 'hold'} no images (files ending in "
                            f"{', '.join(IMG_EXTENSIONS)}): add images to it or remove it") from None
        except OSError as e:
            raise DataError(f"cannot list the images in {folder} ({first_line(e)}): check its permissions") from None

    def _split(self) -> dict[str, tuple[Any, list[int]]]:
        """{split: (torchvision ImageFolder, indices)}, listed once per instance; no image is read here."""
        if self._splits is not None:
            return self._splits
        if not self.path.is_dir():
            raise DataError(f"image folder {self.path} does not exist: set data.path to a folder of class "
                            "subfolders, or of train/, val/ and test/")
        if self.presplit:
            sets = {s: self._scan(self.path / s) for s in IMAGE_FOLDER_SPLITS}
            classes = sets["train"].classes
            for s in ("val", "test"):
                if sets[s].classes != classes:
                    raise DataError(f"{self.path / s} has the classes {sets[s].classes} but {self.path / 'train'} "
                                    f"has {classes}: give every split the same class subfolders")
            self._splits = {s: (ds, list(range(len(ds)))) for s, ds in sets.items()}
        else:
            import numpy as np

            base = self._scan(self.path)
            n = len(base)
            n_test, n_val = round(n * self.test_fraction), round(n * self.val_fraction)
            order = np.random.default_rng(self.split_seed).permutation(n).tolist()
            parts = {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
            for s, idx in parts.items():
                if not idx:
                    raise DataError(f"{self.path} has {n} images: too few for a {s} split with data.val_fraction="
                                    f"{self.val_fraction:g} and data.test_fraction={self.test_fraction:g}; add "
                                    "images or change the fractions")
            self._splits = {s: (base, sorted(parts[s])) for s in IMAGE_FOLDER_SPLITS}
        return self._splits

    @property
    def classes(self) -> list[str]:
        """The class names, sorted: label k is classes[k]."""
        return list(self._split()["train"][0].classes)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def _dataset(self, split: str) -> Dataset:
        base, indices = self._split()[split]
        return TransformedSubset(base, indices, self.transform(train=split == "train"))

    def train_dataset(self) -> Dataset:
        """The training images (augmented when data.augment); the val and test splits are checked too."""
        return self._dataset("train")

    def val_dataset(self) -> Dataset:
        return self._dataset("val")

    def test_dataset(self) -> Dataset:
        return self._dataset("test")


__all__ = ["CIFAR10", "ImageFolder", "TransformedSubset", "CIFAR10_MEAN", "CIFAR10_STD", "load_image"]
