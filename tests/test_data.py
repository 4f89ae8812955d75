"""The built-in data modules, on small files written here and read by the real readers (sweep's IDX reader,
torchvision's CIFAR-10 and ImageFolder code, pandas): no mock of the formats. Downloads: test_downloads.py."""

import gzip
import hashlib
import inspect
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from sweep.data import LOADER_KEYS, idx, table, vision
from sweep.data.idx import MNIST, FashionMNIST
from sweep.data.table import CSV
from sweep.data.vision import CIFAR10, ImageFolder
from sweep.errors import ConfigError, DataError
from sweep.fake_data import cifar10_checksums, make_cifar_images, make_digits, write_cifar10, write_csv, \
    write_dataset, write_idx, write_image_folder

CONF = Path(__file__).resolve().parent.parent / "conf" / "data"


def one_line(excinfo: pytest.ExceptionInfo) -> str:
    """The message of a user error: one line, without a traceback in it."""
    msg = str(excinfo.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def as_float(images: np.ndarray) -> torch.Tensor:
    """What the seed fed the model: uint8 / 255 as float32, [N, 1, 28, 28]."""
    return torch.from_numpy(images.astype(np.float32) / 255).unsqueeze(1)


def mnist(root, **kw) -> MNIST:
    return MNIST(root=str(root), download=False, **kw)


# ------------------------------------------------------------------------------------------------ configs


@pytest.mark.parametrize("name, cls", [("mnist", MNIST), ("fashion_mnist", FashionMNIST), ("cifar10", CIFAR10),
                                       ("image_folder", ImageFolder), ("csv", CSV)])
def test_each_conf_names_its_class_with_every_argument_and_the_loader_keys(name, cls, tmp_path):
    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    assert cfg._target_ == f"{cls.__module__}.{cls.__name__}"
    assert all(k in cfg for k in LOADER_KEYS)
    args = [k for k in cfg if k not in (*LOADER_KEYS, "_target_")]
    params = inspect.signature(cls.__init__).parameters
    assert set(args) == set(params) - {"self"}
    for k in args:
        if OmegaConf.is_missing(cfg, k):
            assert params[k].default is inspect.Parameter.empty
        else:
            assert cfg[k] == params[k].default, k
    for k in ("path", "target"):
        if k in params:
            cfg[k] = str(tmp_path / k)
    module = instantiate(OmegaConf.create({k: v for k, v in cfg.items() if k not in LOADER_KEYS}))
    assert isinstance(module, cls) and module.task in ("binary", "multiclass", "regression")


def test_loader_defaults():
    shuffle = {n: OmegaConf.load(CONF / f"{n}.yaml").shuffle for n in ("mnist", "fashion_mnist", "cifar10",
                                                                       "image_folder", "csv")}
    assert shuffle == {"mnist": False, "fashion_mnist": False, "cifar10": True, "image_folder": True, "csv": True}
    assert OmegaConf.load(CONF / "cifar10.yaml").num_workers == 2


# ------------------------------------------------------------------------------------------- MNIST (IDX)


def test_split_is_deterministic_and_in_order(idx_root):
    images, _ = make_digits(600, seed=0)
    module = mnist(idx_root, train_size=100, val_size=50)
    (x, _), (xv, _) = module.train_dataset(), module.val_dataset()
    assert x.shape == (100, 1, 28, 28) and xv.shape == (50, 1, 28, 28) and x.dtype == torch.float32
    assert torch.equal(x, as_float(images[:100]))  # bit-identical to the seed's conversion
    assert torch.equal(xv, as_float(images[100:150]))
    assert torch.equal(mnist(idx_root, train_size=100, val_size=50).train_dataset()[0], x)


def test_binary_task_is_label_below_threshold(idx_root):
    _, labels = make_digits(600, seed=0)
    module = mnist(idx_root, train_size=200, val_size=10)
    _, y = module.train_dataset()
    assert module.task == "binary" and module.num_classes == 2
    assert y.shape == (200,) and y.dtype == torch.int64
    assert torch.equal(y, torch.from_numpy((labels[:200] < 3).astype(np.int64)))
    _, y5 = mnist(idx_root, train_size=200, val_size=10, threshold=5).train_dataset()
    assert torch.equal(y5, torch.from_numpy((labels[:200] < 5).astype(np.int64)))


def test_multiclass_task_keeps_labels(idx_root):
    _, labels = make_digits(600, seed=0)
    module = mnist(idx_root, task="multiclass", train_size=64, val_size=8)
    _, y = module.train_dataset()
    assert module.num_classes == 10 and y.dtype == torch.int64
    assert torch.equal(y, torch.from_numpy(labels[:64].astype(np.int64)))
    _, y2 = module.train_dataset()
    y2[0] = 99  # a caller's edit must not reach the process-wide cache
    assert module.train_dataset()[1][0] == labels[0]


def test_test_split_and_test_size(idx_root):
    images, _ = make_digits(200, seed=1)
    x, y = mnist(idx_root).test_dataset()
    assert len(y) == 200 and torch.equal(x, as_float(images))
    assert len(mnist(idx_root, test_size=50).test_dataset()[1]) == 50
    too_many = mnist(idx_root, test_size=500, train_size=10, val_size=10)
    with pytest.raises(DataError, match="data.test_size=500 exceeds the 200 images") as e:
        too_many.test_dataset()
    one_line(e)
    with pytest.raises(DataError, match="data.test_size=500 exceeds the 200 images"):
        too_many.train_dataset()  # found from the IDX header before training


@pytest.mark.parametrize("kw, message", [
    ({"train_size": 0}, "data.train_size=0 is out of range: it must be at least 1"),
    ({"val_size": -3}, "data.val_size=-3 is out of range: it must be at least 1"),
    ({"test_size": 0}, "data.test_size=0 is out of range: it must be at least 1"),
    ({"threshold": 0}, "data.threshold=0 is out of range: it must be between 1 and 9"),
    ({"threshold": 10}, "data.threshold=10 is out of range: it must be between 1 and 9"),
    ({"train_size": "many"}, "data.train_size='many' is not an integer"),
    ({"task": "regression"}, "data.task='regression' is not a task of mnist: use binary or multiclass"),
])
def test_config_values_are_checked_in_init_without_reading(tmp_path, kw, message):
    with pytest.raises(ConfigError, match=message) as e:
        mnist(tmp_path / "nothing-here", **kw)
    one_line(e)


def test_uncompressed_flat_folder(tmp_path):
    root = write_dataset(tmp_path / "plain", 80, 20, compress=False)
    module = mnist(root, train_size=50, val_size=30)
    assert len(module.train_dataset()[1]) == 50 and len(module.val_dataset()[1]) == 30


def test_torchvision_layout(tmp_path, idx_root):
    """ROOT/MNIST/raw/ with unpacked files, as torchvision.datasets.MNIST leaves them."""
    raw = tmp_path / "tv" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in idx_root.glob("*.gz"):
        with gzip.open(gz) as src, open(raw / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    x, y = mnist(tmp_path / "tv", train_size=100, val_size=100).train_dataset()
    fx, fy = mnist(idx_root, train_size=100, val_size=100).train_dataset()
    assert torch.equal(x, fx) and torch.equal(y, fy)


def test_raw_split_is_read_once_per_process(idx_root):
    idx.load_raw.cache_clear()
    for _ in range(3):
        module = mnist(idx_root, train_size=10, val_size=10)
        module.train_dataset()
        module.val_dataset()
    info = idx.load_raw.cache_info()
    assert info.misses == 2 and info.hits == 7  # each split read once: the test split checked before training


def test_missing_data_without_download(tmp_path):
    with pytest.raises(DataError, match="no mnist data in .* data.download=false: put the four IDX files") as e:
        mnist(tmp_path / "empty").train_dataset()
    one_line(e)
    (tmp_path / "half" / "MNIST" / "raw").mkdir(parents=True)  # torchvision's folder, without its files
    with pytest.raises(DataError, match="no mnist data in .* data.download=false"):
        mnist(tmp_path / "half").train_dataset()


def test_split_larger_than_data(idx_root):
    with pytest.raises(DataError, match="data.train_size \\+ data.val_size = 700 exceeds the 600 images") as e:
        mnist(idx_root, train_size=600, val_size=100).train_dataset()
    one_line(e)
    with pytest.raises(DataError, match="= 700 exceeds"):
        mnist(idx_root, train_size=600, val_size=100).val_dataset()


def test_missing_test_split_is_found_before_training(tmp_path, idx_root):
    root = tmp_path / "no-test"
    root.mkdir()
    for f in idx_root.glob("train-*"):
        shutil.copy(f, root / f.name)
    with pytest.raises(DataError, match="the mnist test split is missing from .*: add t10k-images") as e:
        mnist(root, train_size=10, val_size=10).train_dataset()
    one_line(e)


# ------------------------------------------------------------------------------------------ bad IDX files

IMAGES, LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"
MAGIC_IMAGES = "expected the magic number 0x00000803 of IDX images"


def _idx(tmp: Path, array) -> bytes:
    """The bytes of an IDX file of the array, as fake_data's writer makes them."""
    return write_idx(tmp / "spare", np.asarray(array, np.uint8), compress=False).read_bytes()


def _gz_header_says(tmp: Path, n: int) -> bytes:
    """A gzip file whose IDX header claims n images but holds 20: a damaged size is never allocated."""
    good = _idx(tmp, np.zeros((20, 28, 28)))
    return gzip.compress(good[:4] + n.to_bytes(4, "big") + good[8:])


def _with_label(tmp: Path, value: int) -> bytes:
    labels = make_digits(20, seed=0)[1]
    labels[4] = value
    return _idx(tmp, labels)


# (file spoiled, its new bytes from (its good bytes, a scratch folder), what the error must say)
BAD_IDX = {
    "empty": (IMAGES, lambda b, t: b"", "is empty: replace it with a good copy"),
    "three bytes": (IMAGES, lambda b, t: b[:3], "is 3 bytes long, too short for an IDX magic number"),
    "not IDX": (IMAGES, lambda b, t: b"PK\x03\x04" + b[4:], f"is not an IDX file ({MAGIC_IMAGES}, found 0x504B0304)"),
    "float elements": (IMAGES, lambda b, t: b"\0\0\x0d\x03" + b[4:],
                       (f"holds elements of type 0x0D (float), but MNIST images are unsigned bytes ({MAGIC_IMAGES}, "
                        "found 0x00000D03)")),
    "labels as images": (IMAGES, lambda b, t: _idx(t, np.zeros(20)),
                         (f"has 1 dimension(s), where IDX images have 3 ({MAGIC_IMAGES}, found 0x00000801): it holds "
                          "labels: check that the files are not swapped")),
    "images as labels": (LABELS, lambda b, t: _idx(t, np.zeros((20, 28, 28))),
                         ("has 3 dimension(s), where IDX labels have 1 (expected the magic number 0x00000801 of IDX "
                          "labels, found 0x00000803): it holds images")),
    "short header": (IMAGES, lambda b, t: b[:10],
                     "is truncated: 10 bytes, shorter than the 16-byte header of IDX images"),
    "truncated data": (IMAGES, lambda b, t: b[:1016],
                       "is truncated: its header says 20x28x28 = 15680 bytes of data, but it holds 1000"),
    "trailing bytes": (IMAGES, lambda b, t: b + bytes(5), "holds 5 bytes after the 20x28x28 = 15680 its header says"),
    "damaged count": (IMAGES, lambda b, t: b[:4] + (2**32 - 1).to_bytes(4, "big") + b[8:],
                      "its header says 4294967295x28x28 = 3367254359280 bytes of data, but it holds 15680"),
    "32x32 images": (IMAGES, lambda b, t: _idx(t, np.zeros((20, 32, 32))),
                     "holds images of 32x32 pixels, but MNIST and Fashion-MNIST images are 28x28"),
    "label 12": (LABELS, lambda b, t: _with_label(t, 12),
                 "holds the label 12 (item 4), but MNIST and Fashion-MNIST labels are 0 to 9"),
    "fewer labels": (LABELS, lambda b, t: _idx(t, np.zeros(19)), "holds 19 labels: replace them with a matching pair"),
    "test split": ("t10k-labels-idx1-ubyte", lambda b, t: b[:12], "is truncated"),  # found before training
    "not gzip": (IMAGES + ".gz", lambda b, t: b"<html>Not Found</html>",
                 "is named .gz but is not gzip-compressed: replace it with a good copy"),
    "plain, named .gz": (IMAGES + ".gz", lambda b, t: gzip.decompress(b),
                         "is named .gz but is not gzip-compressed: it is a plain IDX file; remove .gz from its name"),
    "truncated gzip": (IMAGES + ".gz", lambda b, t: b[: len(b) // 2],
                       "is a truncated gzip file (it ends before its compressed data does)"),
    "damaged gzip": (IMAGES + ".gz", lambda b, t: b[:-8] + bytes([b[-8] ^ 0xFF]) + b[-7:],
                     "is a damaged gzip file (CRC check failed"),
    "damaged count, gzip": (IMAGES + ".gz", lambda b, t: _gz_header_says(t, 2**31),
                            "its header says 2147483648x28x28 = 1683627180032 bytes of data, but it holds 15680"),
}


@pytest.mark.parametrize("case", list(BAD_IDX))
def test_bad_idx_file_is_named_with_what_is_wrong(tmp_path, case):
    name, spoil, problem = BAD_IDX[case]
    root = write_dataset(tmp_path / "idx", 20, 10, compress=name.endswith(".gz"))
    path = root / name
    path.write_bytes(spoil(path.read_bytes(), tmp_path))
    with pytest.raises(DataError) as e:
        mnist(root, train_size=5, val_size=5).train_dataset()
    msg = one_line(e)
    assert str(path) in msg and problem in msg, msg


def test_idx_reader_is_torchvisions_format(idx_root, tmp_path):
    """The same tensors as torchvision's own IDX readers, which sweep used before."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    for gz in idx_root.glob("train-*.gz"):
        (tmp_path / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))
    images, labels = idx.load_raw(tmp_path / IMAGES, tmp_path / LABELS)
    assert torch.equal(images, read_image_file(str(tmp_path / IMAGES)))
    assert torch.equal(labels, read_label_file(str(tmp_path / LABELS)))
    assert images.dtype == torch.uint8 and labels.dtype == torch.int64 and images.shape == (600, 28, 28)


# ------------------------------------------------------------------------------------------------ CIFAR-10


@pytest.fixture
def cifar_root(tmp_path, monkeypatch):
    """Real CIFAR-10 batches (60 training, 20 test images). torchvision checks the official files' md5
    sums, which files written here cannot match, so its class attributes are pointed at these files'
    sums: its own integrity check and pickle reader then run for real."""
    import torchvision.datasets

    root = tmp_path / "cifar"
    for attr, value in cifar10_checksums(write_cifar10(root, 60, 20, seed=3)).items():
        monkeypatch.setattr(torchvision.datasets.CIFAR10, attr, value)
    vision._load_cifar10.cache_clear()
    yield root
    vision._load_cifar10.cache_clear()


def _normalised(image: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(image.reshape(3, 32, 32).astype(np.float32) / 255)
    return (x - torch.tensor(vision.CIFAR10_MEAN)[:, None, None]) / torch.tensor(vision.CIFAR10_STD)[:, None, None]


def test_cifar10_splits_and_normalisation(cifar_root):
    images, labels = make_cifar_images(80, seed=3)
    module = CIFAR10(root=str(cifar_root), download=False, train_size=40, val_size=20)
    assert module.task == "multiclass" and module.num_classes == 10
    train, val, test = module.train_dataset(), module.val_dataset(), module.test_dataset()
    assert (len(train), len(val), len(test)) == (40, 20, 20)
    for i in (0, 7, 19):
        x, y = val[i]
        assert x.dtype == torch.float32 and x.shape == (3, 32, 32) and isinstance(y, int)
        assert y == labels[40 + i] and torch.allclose(x, _normalised(images[40 + i]), atol=1e-6)
        assert torch.equal(val[i][0], x)  # no augmentation: the same every read
    x, y = test[5]
    assert y == labels[65] and torch.allclose(x, _normalised(images[65]), atol=1e-6)
    assert [train[i][1] for i in range(40)] == labels[:40]
    loader = torch.utils.data.DataLoader(train, batch_size=16)
    xb, yb = next(iter(loader))
    assert xb.shape == (16, 3, 32, 32) and yb.dtype == torch.int64
    assert len(CIFAR10(root=str(cifar_root), download=False, test_size=5, train_size=1, val_size=1).test_dataset()) == 5


def test_cifar10_augmentation_is_for_training_only_and_follows_torch_seed(cifar_root):
    images, _ = make_cifar_images(80, seed=3)
    train = CIFAR10(root=str(cifar_root), download=False, train_size=40, val_size=20).train_dataset()

    def read(seed):
        torch.manual_seed(seed)
        return train[3][0]

    assert torch.equal(read(0), read(0))
    assert any(not torch.equal(read(0), read(s)) for s in range(1, 6))
    plain = CIFAR10(root=str(cifar_root), download=False, train_size=40, val_size=20, augment=False)
    assert torch.allclose(plain.train_dataset()[3][0], _normalised(images[3]), atol=1e-6)


def test_cifar10_errors(cifar_root, tmp_path):
    with pytest.raises(DataError, match="data.train_size \\+ data.val_size = 70 exceeds the 60 images") as e:
        CIFAR10(root=str(cifar_root), download=False, train_size=50, val_size=20).train_dataset()
    one_line(e)
    with pytest.raises(DataError, match="data.test_size=30 exceeds the 20 images"):
        CIFAR10(root=str(cifar_root), download=False, train_size=5, val_size=5, test_size=30).test_dataset()
    with pytest.raises(DataError, match="no CIFAR-10 data in .*cifar-10-batches-py.*data.download=true") as e:
        CIFAR10(root=str(tmp_path / "none"), download=False).train_dataset()
    one_line(e)
    batch = cifar_root / "cifar-10-batches-py" / "test_batch"
    batch.unlink()
    vision._load_cifar10.cache_clear()
    with pytest.raises(DataError) as e:  # a missing test batch fails before training
        CIFAR10(root=str(cifar_root), download=False, train_size=5, val_size=5).train_dataset()
    assert one_line(e) == f"CIFAR-10 file {batch} is missing: extract cifar-10-python.tar.gz in {cifar_root} again"
    with pytest.raises(ConfigError, match="data.val_size=0 is out of range"):
        CIFAR10(val_size=0)


def test_cifar10_official_md5_sums_reject_foreign_files(tmp_path):
    write_cifar10(tmp_path / "c", 10, 5)
    vision._load_cifar10.cache_clear()
    with pytest.raises(DataError) as e:
        CIFAR10(root=str(tmp_path / "c"), download=True).train_dataset()
    folder = tmp_path / "c" / "cifar-10-batches-py"
    assert one_line(e) == (f"CIFAR-10 file {folder / 'data_batch_1'} does not match the official file's md5 sum "
                           f"(damaged, or not CIFAR-10's): extract cifar-10-python.tar.gz in {tmp_path / 'c'} again, "
                           f"or delete {folder} to download it")


def _batch(n: int = 12, **changes) -> dict:
    """A CIFAR-10 training batch as the official files hold it (unpickled), with some entries changed."""
    data, labels = make_cifar_images(n, seed=5)
    return {"batch_label": "training batch 2 of 5", "data": data, "labels": labels,
            "filenames": [f"{i}.png" for i in range(n)], **changes}


BAD_BATCH = {  # what data_batch_2 holds instead (a pickled dict, or bytes), and what the error must say
    "damaged pickle": (b"\x80\x02}q\x00(X\x04\x00", "is not a readable pickle (UnpicklingError: pickle data"),
    "no labels": ({k: v for k, v in _batch().items() if k != "labels"}, "has no 'labels' key"),
    "rows of 3000": (_batch(data=np.zeros((12, 3000), np.uint8)),
                     "holds uint8 data of shape (12, 3000), where a batch holds uint8 rows of 3072 values"),
    "float pixels": (_batch(data=np.zeros((12, 3072), np.float32)), "holds float32 data of shape (12, 3072)"),
    "fewer labels": (_batch(labels=[1] * 11), "holds 12 images but 11 labels"),
    "label 12": (_batch(labels=[12] + [1] * 11), "holds the label 12, but CIFAR-10 labels are 0 to 9"),
}


@pytest.mark.parametrize("case", list(BAD_BATCH))
def test_bad_cifar10_batch_is_named_with_what_is_wrong(cifar_root, monkeypatch, case):
    """A batch that matches its md5 sum (pointed at it, as the fixture does) but not the format."""
    import torchvision.datasets

    content, problem = BAD_BATCH[case]
    path = cifar_root / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(content if isinstance(content, bytes) else pickle.dumps(content, protocol=2))
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    sums = [[n, md5 if n == path.name else m] for n, m in torchvision.datasets.CIFAR10.train_list]
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "train_list", sums)
    with pytest.raises(DataError) as e:
        CIFAR10(root=str(cifar_root), download=False, train_size=5, val_size=5).train_dataset()
    msg = one_line(e)
    assert msg.startswith(f"CIFAR-10 batch {path} " if case != "damaged pickle" else f"CIFAR-10 file {path} "), msg
    assert problem in msg and msg.endswith(f": extract cifar-10-python.tar.gz in {cifar_root} again"), msg


# --------------------------------------------------------------------------------------------- ImageFolder


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """30 PNG files: 10 per class."""
    return write_image_folder(tmp_path_factory.mktemp("images") / "pets", 10)


def _labels(ds) -> list[int]:
    return [ds[i][1] for i in range(len(ds))]


def test_image_folder_split_by_fraction(images):
    module = ImageFolder(str(images))
    train, val, test = module.train_dataset(), module.val_dataset(), module.test_dataset()
    assert module.classes == ["cat", "dog", "owl"] and module.num_classes == 3 and module.task == "multiclass"
    assert (len(train), len(val), len(test)) == (18, 6, 6)
    rows = [list(ds.indices) for ds in (train, val, test)]
    assert sorted(sum(rows, [])) == list(range(30))
    assert rows == [list(ds.indices) for ds in (lambda m: (m.train_dataset(), m.val_dataset(), m.test_dataset()))(
        ImageFolder(str(images)))]  # the same split every run
    assert list(ImageFolder(str(images), split_seed=1).val_dataset().indices) != rows[1]
    x, y = train[0]
    assert x.shape == (3, 12, 12) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert y == train.dataset.targets[train.indices[0]]
    assert set(_labels(train)) == {0, 1, 2}


def test_image_folder_transforms(images):
    x, _ = ImageFolder(str(images), image_size=8, grayscale=True).train_dataset()[0]
    assert x.shape == (1, 8, 8)
    module = ImageFolder(str(images), augment=True)
    train, val = module.train_dataset(), module.val_dataset()
    torch.manual_seed(0)
    first = val[0][0]
    assert all(torch.equal(val[0][0], first) for _ in range(5))  # val is never flipped
    reads = []
    for s in range(8):
        torch.manual_seed(s)
        reads.append(train[0][0])
    assert any(torch.equal(r, reads[0].flip(-1)) for r in reads) and any(torch.equal(r, reads[0]) for r in reads[1:])
    batch = next(iter(torch.utils.data.DataLoader(train, batch_size=4)))
    assert batch[0].shape == (4, 3, 12, 12) and batch[1].dtype == torch.int64


def test_image_folder_with_train_val_test_folders(tmp_path):
    for split, n, seed in (("train", 6, 0), ("val", 2, 1), ("test", 3, 2)):
        write_image_folder(tmp_path / "d" / split, n, classes=("a", "b"), seed=seed)
    module = ImageFolder(str(tmp_path / "d"), val_fraction=0.5)  # the fractions are ignored
    assert [len(module.train_dataset()), len(module.val_dataset()), len(module.test_dataset())] == [12, 4, 6]
    assert module.classes == ["a", "b"]
    assert _labels(module.test_dataset()) == [0, 0, 0, 1, 1, 1]
    write_image_folder(tmp_path / "d" / "test", 1, classes=("c",))
    with pytest.raises(DataError, match="d/test has the classes \\['a', 'b', 'c'\\] but .*d/train has") as e:
        ImageFolder(str(tmp_path / "d")).train_dataset()  # test checked before training
    one_line(e)
    shutil.rmtree(tmp_path / "d" / "test")
    with pytest.raises(DataError, match="has train/, val/ but not test/: add the missing split folders") as e:
        ImageFolder(str(tmp_path / "d")).train_dataset()
    one_line(e)


def test_image_folder_errors(tmp_path, images):
    with pytest.raises(DataError, match="image folder .*missing does not exist") as e:
        ImageFolder(str(tmp_path / "missing")).train_dataset()
    one_line(e)
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "x.png").write_bytes(b"")
    with pytest.raises(DataError, match="flat has no class subfolders") as e:
        ImageFolder(str(tmp_path / "flat")).train_dataset()
    one_line(e)
    (tmp_path / "flat" / "empty_class").mkdir()
    (tmp_path / "flat" / "empty_class" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError) as e:
        ImageFolder(str(tmp_path / "flat")).train_dataset()
    assert one_line(e).startswith(f"{tmp_path / 'flat' / 'empty_class'} holds no images (files ending in .jpg, .jpeg, "
                                  ".png,")
    assert one_line(e).endswith("): add images to it or remove it")
    for kw, message in (({"val_fraction": 1.2}, "data.val_fraction=1.2 is out of range for the images in"),
                        ({"test_fraction": -0.1}, "data.test_fraction=-0.1 is out of range"),
                        ({"val_fraction": 0.5, "test_fraction": 0.5}, "= 1 leaves no training images")):
        with pytest.raises(DataError, match=message) as e:
            ImageFolder(str(images), **kw)
        one_line(e)
    with pytest.raises(DataError, match="has 30 images: too few for a test split with .*test_fraction=0.01") as e:
        ImageFolder(str(images), test_fraction=0.01).train_dataset()
    one_line(e)


@pytest.mark.parametrize("spoil, problem", [
    (lambda good: b"not a png", "in no format it knows"),
    (lambda good: good[: len(good) // 2], "image file is truncated"),
])
def test_a_file_that_is_not_an_image_is_named_when_read(tmp_path, spoil, problem):
    """torchvision lists images by their names; a bad one is named in one line when it is read."""
    root = write_image_folder(tmp_path / "pets", 4)
    bad = root / "dog" / "0002.png"
    bad.write_bytes(spoil(bad.read_bytes()))
    module = ImageFolder(str(root), val_fraction=0.25, test_fraction=0.25)
    errors = []
    for split in (module.train_dataset(), module.val_dataset(), module.test_dataset()):
        for i in range(len(split)):
            try:
                split[i]
            except DataError as e:
                errors.append(str(e))
    assert errors == [f"{bad} is not an image that PIL can read ({problem}): replace it, or remove it from the folder"]


# --------------------------------------------------------------------------------------------------- CSV


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    return write_csv(tmp_path_factory.mktemp("csv") / "table.csv", 200, seed=0, label=True)


def test_csv_regression_split(csv_path):
    import pandas as pd

    module = CSV(str(csv_path), target="y", features=["x1", "x2", "x3", "x4"])
    (x, y), (_, yv), (_, yt) = module.train_dataset(), module.val_dataset(), module.test_dataset()
    assert module.task == "regression" and module.num_classes is None
    assert (len(y), len(yv), len(yt)) == (140, 30, 30) and x.shape == (140, 4)
    assert x.dtype == y.dtype == torch.float32 and y.ndim == 1
    frame = pd.read_csv(csv_path)
    got = np.sort(np.concatenate([y.numpy(), yv.numpy(), yt.numpy()]))
    assert np.allclose(got, np.sort(frame.y.to_numpy(np.float32)))  # every row in exactly one split
    again = CSV(str(csv_path), target="y", features=["x1", "x2", "x3", "x4"])
    assert torch.equal(again.val_dataset()[1], yv)  # the same split every run
    assert not torch.equal(CSV(str(csv_path), target="y", features=["x1", "x2", "x3", "x4"],
                               split_seed=1).val_dataset()[1], yv)


def test_csv_features_default_to_every_other_column(tmp_path):
    path = write_csv(tmp_path / "t.csv", 40, seed=1)
    module = CSV(str(path), target="x2")
    assert module.train_dataset()[0].shape[1] == 4 and module.features == ["x1", "x3", "x4", "y"]


def test_csv_standardises_with_training_rows_only(tmp_path):
    path = tmp_path / "t.csv"
    rows = ["a,b,c,y,part"] + [f"{i},{10 * i},5,{i},train" for i in range(10)] + \
           [f"{100 + i},0,5,0,val" for i in range(3)] + ["-50,7,5,1,test"]
    path.write_text("\n".join(rows) + "\n")
    module = CSV(str(path), target="y", split_column="part")
    (x, y), (xv, _), (xt, _) = module.train_dataset(), module.val_dataset(), module.test_dataset()
    assert module.features == ["a", "b", "c"] and (len(y), len(xv), len(xt)) == (10, 3, 1)
    a, b = np.arange(10.0), 10 * np.arange(10.0)
    assert torch.allclose(x.mean(0), torch.zeros(3), atol=1e-6)
    assert torch.allclose(x[:, :2].std(0, unbiased=False), torch.ones(2))
    assert torch.equal(x[:, 2], torch.zeros(10))  # a constant column: std 0 taken as 1
    expected = torch.tensor([[(100 + i - a.mean()) / a.std(), (0 - b.mean()) / b.std(), 0.0] for i in range(3)])
    assert torch.allclose(xv, expected.float(), atol=1e-6)  # val scaled with the training rows' numbers
    assert torch.allclose(module.feature_mean, torch.tensor([4.5, 45.0, 5.0]))
    raw = CSV(str(path), target="y", split_column="part", standardize=False)
    assert torch.equal(raw.test_dataset()[0], torch.tensor([[-50.0, 7.0, 5.0]]))


def test_csv_classification(csv_path, tmp_path):
    module = CSV(str(csv_path), target="label", features=["x1", "x2", "x3", "x4"], task="multiclass")
    _, y = module.train_dataset()
    assert module.classes == ["high", "low", "mid"] and module.num_classes == 3
    assert y.dtype == torch.int64 and set(y.tolist()) == {0, 1, 2}
    with pytest.raises(DataError, match="has 3 distinct values, but the binary task needs exactly 2") as e:
        CSV(str(csv_path), target="label", features=["x1"], task="binary").train_dataset()
    one_line(e)
    path = tmp_path / "b.csv"
    path.write_text("f,g,t\n" + "".join(f"{i},{i % 3},{'yes' if i % 2 else 'no'}\n" for i in range(20)))
    binary = CSV(str(path), target="t", task="binary", val_fraction=0.25, test_fraction=0.25)
    (x, y), (_, yv) = binary.train_dataset(), binary.val_dataset()
    assert binary.classes == ["no", "yes"] and binary.num_classes == 2 and len(y) == 10 and len(yv) == 5
    f = x[:, 0] * binary.feature_std[0] + binary.feature_mean[0]  # undo the scaling: the row numbers
    assert torch.equal(y, (f.round().long() % 2))


def test_csv_is_read_once_per_instance(csv_path, monkeypatch):
    import pandas as pd

    calls = []
    real = pd.read_csv
    monkeypatch.setattr(pd, "read_csv", lambda *a, **k: calls.append(a) or real(*a, **k))
    module = CSV(str(csv_path), target="y", features=["x1"])
    assert calls == []  # __init__ reads nothing
    module.train_dataset(), module.val_dataset(), module.test_dataset(), module.num_classes
    assert len(calls) == 1


def _write(tmp_path, text: str) -> str:
    path = tmp_path / "t.csv"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, kw, message", [
    (None, {}, "CSV file .*nope.csv does not exist: set data.path"),
    ("a,b\n1,2\n", {"target": "y"}, "data.target=y is not a column of .*: use one of a, b"),
    ("a,b,y\n1,2,3\n", {"features": ["a", "z"]}, "data.features lists z, not columns of .*: use some of a, b, y"),
    ("a,b,y\n1,x,3\n2,u,4\n", {}, "feature column\\(s\\) b of .* are not numeric: drop them .* or encode them"),
    ("a,y\n1,2\n,3\n4,5\n", {}, "column a of .* has 1 missing value\\(s\\), the first in data row 2: fill or drop"),
    ("a,y\n1,2\n2,\n", {}, "column y of .* has 1 missing value"),
    ("a,y\n1,x\n2,z\n", {}, "target column y of .* is not numeric"),
    ("a,y\n" + "1,2\n" * 5, {"val_fraction": 0.05}, "the val split of .* \\(5 rows, .*\\) is empty"),
    ("a,y,s\n1,2,train\n2,3,val\n3,4,tset\n", {"split_column": "s"},
     "column s of .* holds train, tset, val: each row's value must be train, val or test"),
    ("a,y,s\n1,2,train\n2,3,val\n", {"split_column": "s"}, "the test split of .* split by column s\\) is empty"),
    ("a,y\n1,2\n", {"split_column": "s"}, "data.split_column=s is not a column"),
    ("a,y\n1,2\ninf,3\n4,5\n", {}, "column a of .* has 1 infinite value\\(s\\), the first in data row 2: replace"),
    ("a,y\n1,2\n2,-inf\n", {}, "column y of .* has 1 infinite value"),
    ("a,y\n", {}, "has a header but no data rows"),
    ("", {}, "is empty: give it a header row"),
])
def test_csv_file_errors(tmp_path, text, kw, message):
    path = str(tmp_path / "nope.csv") if text is None else _write(tmp_path, text)
    module = CSV(path, **{"target": "y", **kw})
    with pytest.raises(DataError, match=message) as e:
        module.train_dataset()
    one_line(e)


def test_csv_that_is_a_folder_or_not_text(tmp_path):
    with pytest.raises(DataError, match=f"CSV file {tmp_path} is a folder: set data.path to the table file in it") as e:
        CSV(str(tmp_path), target="y").train_dataset()
    one_line(e)
    path = tmp_path / "t.csv"
    path.write_bytes("a,y\n1,2\n".encode() + "é,3\n".encode("latin-1"))
    with pytest.raises(DataError, match="CSV file .*t.csv is not UTF-8 text \\(.*\\): save it as UTF-8") as e:
        CSV(str(path), target="y").train_dataset()
    one_line(e)


@pytest.mark.parametrize("kw, message", [
    ({"val_fraction": -0.1}, "data.val_fraction=-0.1 is out of range for .*: it must be at least 0 and below 1"),
    ({"test_fraction": 1.0}, "data.test_fraction=1.0 is out of range"),
    ({"val_fraction": 0.6, "test_fraction": 0.4}, "data.val_fraction \\+ data.test_fraction = 1 leaves no training"),
    ({"task": "ranking"}, "data.task='ranking' is not a task of the CSV data: use binary, multiclass, regression"),
])
def test_csv_argument_errors(tmp_path, kw, message):
    with pytest.raises(DataError, match=message) as e:
        CSV(str(tmp_path / "t.csv"), target="y", **kw)  # found in __init__, before any file is read
    one_line(e)


@pytest.mark.slow
def test_modules_import_without_torchvision_or_pandas():
    import subprocess
    import sys

    code = ("import sys, sweep.data.idx, sweep.data.vision, sweep.data.table; "
            "print(sorted(m for m in ('torchvision', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_table_module_is_the_csv_class():
    assert table.CSV is CSV
