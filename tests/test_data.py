import gzip
import json
import shutil

import numpy as np
import pytest
import torch

from sweep.fake_data import make_digits, write_dataset
from sweep import data
from sweep.config import compose
from sweep.errors import DataError


def data_cfg(root, *extra):
    return compose([f"data.root={root}", "data.download=false", *extra]).data


def test_split_is_deterministic_and_in_order(idx_root):
    images, labels = make_digits(600, seed=0)
    train, val = data.load_train_val(data_cfg(idx_root, "data.train_size=100", "data.val_size=50"))
    assert train.images.shape == (100, 1, 28, 28) and val.images.shape == (50, 1, 28, 28)
    expected_train = torch.from_numpy(images[:100].astype(np.float32) / 255).unsqueeze(1)
    expected_val = torch.from_numpy(images[100:150].astype(np.float32) / 255).unsqueeze(1)
    assert torch.equal(train.images, expected_train)
    assert torch.equal(val.images, expected_val)
    again, _ = data.load_train_val(data_cfg(idx_root, "data.train_size=100", "data.val_size=50"))
    assert torch.equal(again.images, train.images)


def test_binary_task_is_label_below_threshold(idx_root):
    _, labels = make_digits(600, seed=0)
    train, _ = data.load_train_val(data_cfg(idx_root, "data.train_size=200", "data.val_size=10"))
    assert train.targets.shape == (200, 1) and train.targets.dtype == torch.float32
    assert torch.equal(train.targets.squeeze(1), torch.from_numpy((labels[:200] < 3).astype(np.float32)))
    train5, _ = data.load_train_val(data_cfg(idx_root, "data.train_size=200", "data.val_size=10", "data.threshold=5"))
    assert torch.equal(train5.targets.squeeze(1), torch.from_numpy((labels[:200] < 5).astype(np.float32)))


def test_multiclass_task_keeps_labels(idx_root):
    _, labels = make_digits(600, seed=0)
    train, _ = data.load_train_val(data_cfg(idx_root, "data.task=multiclass", "data.train_size=64", "data.val_size=8"))
    assert train.targets.dtype == torch.int64
    assert torch.equal(train.targets, torch.from_numpy(labels[:64].astype(np.int64)))


def test_test_split_and_test_size(idx_root):
    assert len(data.load_test(data_cfg(idx_root))) == 200
    assert len(data.load_test(data_cfg(idx_root, "data.test_size=50"))) == 50
    with pytest.raises(DataError, match="data.test_size=500 exceeds the 200 images"):
        data.load_test(data_cfg(idx_root, "data.test_size=500"))


def test_uncompressed_flat_folder(tmp_path):
    root = write_dataset(tmp_path / "plain", 80, 20, compress=False)
    train, val = data.load_train_val(data_cfg(root, "data.train_size=50", "data.val_size=30"))
    assert len(train) == 50 and len(val) == 30


def test_torchvision_layout_through_the_dataset_class(tmp_path, idx_root):
    """ROOT/MNIST/raw/ with unpacked files is read by torchvision.datasets.MNIST itself."""
    raw = tmp_path / "tv" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in idx_root.glob("*.gz"):
        with gzip.open(gz) as src, open(raw / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    train, _ = data.load_train_val(data_cfg(tmp_path / "tv", "data.train_size=100", "data.val_size=100"))
    flat, _ = data.load_train_val(data_cfg(idx_root, "data.train_size=100", "data.val_size=100"))
    assert torch.equal(train.images, flat.images) and torch.equal(train.targets, flat.targets)


def test_raw_split_is_read_once_per_process(idx_root):
    data.load_raw.cache_clear()
    for _ in range(3):
        data.load_train_val(data_cfg(idx_root, "data.train_size=10", "data.val_size=10"))
    info = data.load_raw.cache_info()
    assert info.misses == 1 and info.hits == 2


def test_missing_data_without_download(tmp_path):
    with pytest.raises(DataError, match="no mnist data in .* data.download=false: put the four IDX files"):
        data.load_train_val(data_cfg(tmp_path / "empty"))


def test_split_larger_than_data(idx_root):
    with pytest.raises(DataError, match="train_size \\+ data.val_size = 700 exceeds the 600 images"):
        data.load_train_val(data_cfg(idx_root, "data.train_size=600", "data.val_size=100"))


def test_missing_test_split_is_found_before_training(tmp_path, idx_root):
    root = tmp_path / "no-test"
    root.mkdir()
    for f in idx_root.glob("train-*"):
        shutil.copy(f, root / f.name)
    data.require_test_split(data_cfg(idx_root))
    with pytest.raises(DataError, match="test split is missing"):
        data.require_test_split(data_cfg(root))


def test_corrupt_idx_file(tmp_path):
    root = write_dataset(tmp_path / "bad", 20, 10)
    (root / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot read IDX file"):
        data.load_train_val(data_cfg(root, "data.train_size=5", "data.val_size=5"))


def test_fashion_mnist_defaults_to_debian_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("SWEEP_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", write_dataset(tmp_path / "debian", 30, 10))
    cfg = compose(["data=fashion_mnist"]).data
    assert data.resolve_root(cfg) == tmp_path / "debian"
    monkeypatch.setenv("SWEEP_DATA_DIR", str(tmp_path / "elsewhere"))
    assert data.resolve_root(cfg) == tmp_path / "elsewhere"


def _reload(root, *extra):
    data.load_raw.cache_clear()  # forget this process's copy: the next read goes to disk or the cache
    return data.load_train_val(data_cfg(root, "data.train_size=50", "data.val_size=10", *extra))[0]


def test_decoded_data_is_cached_for_later_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEP_CACHE_DIR", str(tmp_path / "cache"))
    root = write_dataset(tmp_path / "d", 80, 10)
    first = _reload(root)
    assert len(list((tmp_path / "cache").glob("idx-*.pt"))) == 1  # the training pair (test split not read)

    def no_reader(*args):
        raise AssertionError("the IDX files were read again")

    monkeypatch.setattr(data, "_read_idx", no_reader)
    assert torch.equal(_reload(root).images, first.images)


def test_a_changed_file_or_a_corrupt_entry_is_read_again(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEP_CACHE_DIR", str(tmp_path / "cache"))
    root = write_dataset(tmp_path / "d", 80, 10)

    def raw():
        data.load_raw.cache_clear()
        return data.load_raw("mnist", str(root), True, False)

    assert len(raw()[0]) == 80
    write_dataset(root, 90, 10)  # the same paths, other files
    assert len(raw()[0]) == 90
    entry = next((tmp_path / "cache").glob("idx-*.pt"))
    entry.write_bytes(b"garbage")
    images, labels = raw()
    assert len(images) == len(labels) == 90
    assert entry.read_bytes()[:2] == b"PK"  # rebuilt as a torch archive


def test_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEP_CACHE_DIR", "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    _reload(write_dataset(tmp_path / "d", 80, 10))
    assert not (tmp_path / "xdg").exists() and not (tmp_path / "home").exists()


def test_entries_of_deleted_data_sets_are_evicted(tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEP_CACHE_DIR", str(tmp_path / "cache"))
    gone = write_dataset(tmp_path / "gone", 80, 10)
    _reload(gone)
    shutil.rmtree(gone)
    _reload(write_dataset(tmp_path / "kept", 80, 10))  # writing an entry sweeps out the orphans
    kept = [json.loads(p.read_text())["sources"][0] for p in (tmp_path / "cache").glob("idx-*.json")]
    assert len(kept) == 1 and "kept" in kept[0]
    assert len(list((tmp_path / "cache").glob("idx-*.pt"))) == 1
