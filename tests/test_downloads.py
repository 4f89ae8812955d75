"""Downloads through torchvision's real code, from a local HTTP mirror or (offline) from its own mirrors:
a failed one leaves nothing behind, and a folder that holds files is never written."""

import functools
import hashlib
import http.server
import shutil
import socket
import tarfile
import threading
from pathlib import Path
from typing import Optional

import pytest
import torch

from sweep.data import idx, vision
from sweep.data.download import download_into, may_download_into
from sweep.data.idx import MNIST, FashionMNIST
from sweep.data.vision import CIFAR10
from sweep.errors import DataError
from sweep.fake_data import cifar10_checksums, write_cifar10, write_dataset
from test_data import mnist, one_line

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def serve(monkeypatch):
    """serve(folder): a local HTTP server over folder (a missing file is a 404) and its base URL, so that
    torchvision's own download code runs for real, without the internet."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    servers = []

    def start(folder: Path) -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=folder))
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _mnist_mirror(monkeypatch, url: str, files: Path) -> None:
    """torchvision's MNIST class pointed at a mirror of the files written here (the md5 sums are theirs)."""
    import torchvision.datasets

    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz"]
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [url])
    monkeypatch.setattr(torchvision.datasets.MNIST, "resources",
                        [(n, hashlib.md5((files / n).read_bytes()).hexdigest()) for n in names])


def tree(folder: Path) -> list[str]:
    """Every path under folder, relative to it, sorted: what a test compares before and after."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_download_goes_through_torchvision(tmp_path, idx_root, monkeypatch, serve):
    """torchvision's own download code, over HTTP from a local mirror; only the finished files land."""
    _mnist_mirror(monkeypatch, serve(idx_root), idx_root)
    module = MNIST(root=str(tmp_path / "dl"), download=True, train_size=100, val_size=100)
    x, _ = module.train_dataset()
    files = [f"MNIST/raw/{name}" for p in idx_root.glob("*.gz") for name in (p.name, p.stem)]
    assert tree(tmp_path / "dl") == sorted(["MNIST", "MNIST/raw", *files])  # no staging folder left
    assert torch.equal(x, mnist(idx_root, train_size=100, val_size=100).train_dataset()[0])
    assert len(module.test_dataset()[1]) == 200


@pytest.fixture
def places(tmp_path, monkeypatch):
    """place(where): the data.root (None: the default place) for a download into `where`, with the folders
    around it set up."""
    monkeypatch.delenv("SWEEP_DATA_DIR", raising=False)

    def place(where: str) -> Optional[str]:
        if where == "new root":  # data.root names folders that do not exist yet
            return str(tmp_path / "a" / "b" / "mnist")
        if where == "empty root":
            (tmp_path / "empty").mkdir()
            return str(tmp_path / "empty")
        if where == "./data":  # no data.root, no $SWEEP_DATA_DIR: ./data/mnist
            monkeypatch.chdir(tmp_path)
            return None
        (tmp_path / "datasets" / "cifar10").mkdir(parents=True)  # $SWEEP_DATA_DIR, with another data set in it
        (tmp_path / "datasets" / "cifar10" / "keep.txt").write_text("x")
        monkeypatch.setenv("SWEEP_DATA_DIR", str(tmp_path / "datasets"))
        return None

    return place


@pytest.mark.parametrize("where", ["new root", "empty root", "./data", "$SWEEP_DATA_DIR"])
def test_failed_download_leaves_nothing_behind(tmp_path, idx_root, monkeypatch, serve, places, where):
    """Two of the four files download, the third is missing from the mirror: nothing of it stays."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        shutil.copy(idx_root / name, mirror / name)
    _mnist_mirror(monkeypatch, serve(mirror), idx_root)
    root = places(where)
    before = tree(tmp_path)
    with pytest.raises(DataError, match="could not download mnist into .*t10k-images-idx3-ubyte.gz: HTTP Error 404"
                                        ".*nothing was left behind; put the four IDX files") as e:
        MNIST(root=root, download=True).train_dataset()
    one_line(e)
    assert tree(tmp_path) == before


@pytest.fixture
def offline():
    """The real mirrors, with each connection attempt bounded: a network that drops packets fails in seconds
    instead of hanging (here, without a network, name resolution fails at once)."""
    saved = socket.getdefaulttimeout()
    socket.setdefaulttimeout(5)
    yield
    socket.setdefaulttimeout(saved)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("where", ["./data", "$SWEEP_DATA_DIR"])
def test_offline_download_leaves_nothing_behind(tmp_path, offline, places, where):
    """torchvision's real download from its real mirrors, nothing changed: without a network it fails by itself."""
    root = places(where)
    before = tree(tmp_path)
    try:
        MNIST(root=root, download=True).train_dataset()
    except DataError as e:
        assert "could not download mnist into" in str(e) and "nothing was left behind" in str(e)
    else:
        pytest.skip("this machine could download MNIST")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("cls", [MNIST, FashionMNIST, CIFAR10])
def test_no_download_into_a_folder_that_holds_files(tmp_path, cls, monkeypatch):
    """A data.root that holds other files is only read: the error says what to do, and nothing is written."""
    monkeypatch.delenv("SWEEP_DATA_DIR", raising=False)
    monkeypatch.setattr(idx, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")
    monkeypatch.chdir(tmp_path)
    shared = tmp_path / "shared"
    (shared / "other").mkdir(parents=True)
    (shared / "other" / "notes.txt").write_text("someone's data")
    before = tree(tmp_path)
    what = "CIFAR-10 data" if cls is CIFAR10 else f"{cls.name} IDX files"
    with pytest.raises(DataError, match=f"no {what} in {shared}.*sweep downloads only into a new or empty folder "
                                        "\\(this one holds other files, left as they are\\).*set data.root to a new "
                                        "or empty folder") as e:
        cls(root=str(shared), download=True).train_dataset()
    if cls is not CIFAR10:
        assert f"or leave data.root unset to use {tmp_path / 'data' / cls.name}, or set data.root" in one_line(e)
    assert tree(tmp_path) == before


def test_download_into_keeps_a_result_that_another_download_put_first(tmp_path):
    """Two jobs may download at once: the second one's result gives way, and its staging folder goes."""
    (tmp_path / "MNIST").mkdir()
    (tmp_path / "MNIST" / "first.txt").write_text("first")

    def fetch(stage: Path) -> None:
        (stage / "MNIST").mkdir()
        (stage / "MNIST" / "second.txt").write_text("second")

    assert may_download_into(tmp_path / "new") and not may_download_into(tmp_path)
    download_into(tmp_path, fetch, ["MNIST"])
    assert tree(tmp_path) == ["MNIST", "MNIST/first.txt"]


def test_interrupted_download_removes_the_folders_it_made(tmp_path):
    (tmp_path / "kept").mkdir()

    def fetch(stage: Path) -> None:
        (stage / "partial.gz").write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download_into(tmp_path / "kept" / "a" / "b", fetch, ["x"])
    with pytest.raises(KeyboardInterrupt):
        download_into(tmp_path / "kept", fetch, ["x"])
    assert tree(tmp_path) == ["kept"]  # the folder that existed before stays


def test_fashion_mnist_defaults_to_debian_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("SWEEP_DATA_DIR", raising=False)
    monkeypatch.setattr(idx, "DEBIAN_FASHION_MNIST", write_dataset(tmp_path / "debian", 30, 10))
    module = FashionMNIST(download=False, train_size=20, val_size=10)
    assert module.root == tmp_path / "debian" and module.task == "multiclass" and module.num_classes == 10
    assert len(module.train_dataset()[1]) == 20
    monkeypatch.setenv("SWEEP_DATA_DIR", str(tmp_path / "elsewhere"))
    assert module.root == tmp_path / "elsewhere" / "fashion_mnist"
    monkeypatch.delenv("SWEEP_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    assert MNIST().root == tmp_path / "data" / "mnist"  # no Debian fallback for MNIST


def test_sweep_data_dir_holds_one_subfolder_per_dataset(monkeypatch, tmp_path):
    monkeypatch.setenv("SWEEP_DATA_DIR", str(tmp_path / "datasets"))
    write_dataset(tmp_path / "datasets" / "mnist", 40, 10)
    assert len(MNIST(download=False, train_size=20, val_size=20).train_dataset()[1]) == 20
    # Fashion-MNIST never reads the digits beside it: its own subfolder is missing
    with pytest.raises(DataError, match="no fashion_mnist data in .*datasets/fashion_mnist"):
        FashionMNIST(download=False, train_size=20, val_size=20).train_dataset()


@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_sweep_data_dir_holding_the_files_itself_is_refused(monkeypatch, tmp_path, layout):
    parent = tmp_path / "datasets"
    write_dataset(parent if layout == "flat" else parent / "MNIST" / "raw", 40, 10)
    monkeypatch.setenv("SWEEP_DATA_DIR", str(parent))
    for cls in (MNIST, FashionMNIST):
        with pytest.raises(DataError, match=f"SWEEP_DATA_DIR={parent} holds IDX files itself, but it is now a "
                                            f"parent folder with one subfolder per dataset: move the files into "
                                            f"{parent / cls.name}/") as e:
            cls(download=False, train_size=20, val_size=20).train_dataset()
        one_line(e)
    assert len(MNIST(root=str(parent), download=False, train_size=20, val_size=20).train_dataset()[1]) == 20



def _cifar_mirror(tmp_path: Path, monkeypatch, url: str) -> Path:
    """cifar-10-python.tar.gz of small batches written here, and torchvision's CIFAR10 pointed at it."""
    import torchvision.datasets

    mirror = tmp_path / "mirror"
    sums = write_cifar10(mirror / "src", 60, 20, seed=3)
    with tarfile.open(mirror / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(mirror / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    for attr, value in {**cifar10_checksums(sums), "url": url + "cifar-10-python.tar.gz",
                        "tgz_md5": hashlib.md5((mirror / "cifar-10-python.tar.gz").read_bytes()).hexdigest()}.items():
        monkeypatch.setattr(torchvision.datasets.CIFAR10, attr, value)
    vision._load_cifar10.cache_clear()
    return mirror


def test_cifar10_download_keeps_only_the_extracted_folder(tmp_path, monkeypatch, serve):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    _cifar_mirror(tmp_path, monkeypatch, serve(mirror))
    module = CIFAR10(root=str(tmp_path / "dl"), download=True, train_size=40, val_size=20)
    assert len(module.train_dataset()) == 40 and len(module.test_dataset()) == 20
    assert tree(tmp_path / "dl") == ["cifar-10-batches-py", *sorted(
        f"cifar-10-batches-py/{p.name}" for p in (mirror / "src" / "cifar-10-batches-py").iterdir())]
    vision._load_cifar10.cache_clear()


def test_cifar10_failed_download_leaves_nothing_behind(tmp_path, monkeypatch, serve):
    (tmp_path / "empty").mkdir()
    _cifar_mirror(tmp_path, monkeypatch, serve(tmp_path / "empty"))  # the archive is not where the URL says
    before = tree(tmp_path)
    with pytest.raises(DataError, match="could not download cifar10 into .*HTTP Error 404.*nothing was left behind"):
        CIFAR10(root=str(tmp_path / "new" / "cifar"), download=True).train_dataset()
    assert tree(tmp_path) == before
