"""A user's own model class and data module, and a spy data module that records when sweep reads each split."""

import json
import textwrap
from pathlib import Path
from typing import Any, Optional

import pytest
import torch

from conftest import run_cli, tiny
from sweep import checkpoint
from sweep.config import compose
from sweep.data.idx import MNIST
from sweep.train import train

NETS = '''
import json
from pathlib import Path
from typing import Sequence

import torch
from torch import nn


class TinyNet(nn.Module):
    """Records what sweep passed it, in the working folder."""

    def __init__(self, width: int = 8, num_outputs: int = 1, input_shape: Sequence[int] = (1,)) -> None:
        super().__init__()
        Path("constructed.json").write_text(json.dumps({"num_outputs": num_outputs, "input_shape": list(input_shape)}))
        inputs = int(torch.tensor(list(input_shape)).prod())
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(inputs, width), nn.ReLU(), nn.Linear(width, num_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
'''

BLOBS = '''
import torch


class Blobs:
    """Three Gaussian blobs in `features` dimensions, in memory."""

    task = "multiclass"
    num_classes = 3

    def __init__(self, n: int = 300, features: int = 5, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        centres = torch.randn(3, features, generator=g) * 3
        self.y = torch.randint(0, 3, (n,), generator=g)
        self.x = centres[self.y] + torch.randn(n, features, generator=g)

    def train_dataset(self):
        return self.x[:200], self.y[:200]

    def val_dataset(self):
        return self.x[200:250], self.y[200:250]

    def test_dataset(self):
        return self.x[250:], self.y[250:]
'''


def write_user_project(folder: Path) -> Path:
    """mypkg/ (a model and a data module) and conf/ (model/mine.yaml, data/mine.yaml) in folder."""
    (folder / "mypkg").mkdir(parents=True)
    (folder / "mypkg" / "__init__.py").write_text("")
    (folder / "mypkg" / "nets.py").write_text(NETS)
    (folder / "mypkg" / "blobs.py").write_text(BLOBS)
    conf = folder / "conf"
    (conf / "model").mkdir(parents=True)
    (conf / "data").mkdir()
    (conf / "model" / "mine.yaml").write_text("_target_: mypkg.nets.TinyNet\nwidth: 16\n")
    (conf / "data" / "mine.yaml").write_text(textwrap.dedent("""\
        _target_: mypkg.blobs.Blobs
        n: 300
        features: 5
        batch_size: 16
        shuffle: true
        """))
    return conf


@pytest.mark.slow
def test_a_users_model_and_data_through_the_cli(tmp_path):
    conf = write_user_project(tmp_path)
    run = tmp_path / "run"
    proc = run_cli("--config-dir", str(conf), "model=mine", "data=mine", "trainer.epochs=4", "optimizer.lr=0.05",
                   f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # sweep passed the output width and one example's shape, because the constructor takes them.
    assert json.loads((tmp_path / "constructed.json").read_text()) == {"num_outputs": 3, "input_shape": [5]}
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "multiclass" and metrics["best_val_acc"] > 0.8 and metrics["test_acc"] > 0.7
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    assert state["config"]["model"]["_target_"] == "mypkg.nets.TinyNet" and state["config"]["data"]["n"] == 300
    assert f"run directory: {run}" in proc.stdout

    # A keyword the user's class does not take is refused before anything is written, with a suggestion.
    refused = run_cli("--config-dir", str(conf), "model=mine", "data=mine", "+model.widht=3",
                      f"hydra.run.dir={tmp_path / 'refused'}", cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "mypkg.nets.TinyNet takes no keyword widht (did you mean model.width?)" in refused.stderr
    assert not (tmp_path / "refused").exists()


class SpyMNIST(MNIST):
    """MNIST that records each split read, with what the run directory held at that moment."""

    events: list[tuple[str, dict[str, Any]]] = []
    run_dir: Optional[Path] = None

    def _seen(self, split: str) -> None:
        ckpts = self.run_dir / "checkpoints"
        last = ckpts / "last.pt"
        SpyMNIST.events.append((split, {
            "last_epoch": checkpoint.load(last)["epoch"] if last.exists() else None,
            "best": (ckpts / "best.pt").exists(),
            "metrics": (self.run_dir / "metrics.json").exists(),
        }))

    def train_dataset(self) -> tuple[torch.Tensor, torch.Tensor]:
        self._seen("train")
        return super().train_dataset()

    def val_dataset(self) -> tuple[torch.Tensor, torch.Tensor]:
        self._seen("val")
        return super().val_dataset()

    def test_dataset(self) -> tuple[torch.Tensor, torch.Tensor]:
        self._seen("test")
        return super().test_dataset()


def test_the_test_split_is_read_once_after_selection(idx_root, tmp_path, monkeypatch):
    monkeypatch.setattr(SpyMNIST, "events", [])
    monkeypatch.setattr(SpyMNIST, "run_dir", tmp_path)
    result = train(compose(tiny(idx_root, f"data._target_={__name__}.SpyMNIST")), tmp_path)
    nothing = {"last_epoch": None, "best": False, "metrics": False}
    assert SpyMNIST.events == [
        ("train", nothing), ("val", nothing),  # prepared before the first epoch
        ("test", {"last_epoch": 3, "best": True, "metrics": False}),  # once: after the last checkpoint
    ]
    assert result.test_acc is not None and json.loads((tmp_path / "metrics.json").read_text())["test_acc"] == \
        result.test_acc
