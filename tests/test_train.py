"""sweep.train.train as a library: outputs, checkpoints, selection, resumption, refusals."""

import json
import math

import pytest
import torch

from conftest import assert_same_run, tiny
from sweep import checkpoint, train as train_mod
from sweep.config import compose
from sweep.data.idx import DEBIAN_FASHION_MNIST
from sweep.errors import CheckpointError, RunDirError, TrainingDiverged
from sweep.loop import select_best_epoch
from sweep.train import train


def row(epoch, val_acc, val_loss):
    return {"epoch": epoch, "val_acc": val_acc, "val_loss": val_loss, "train_acc": 0.0, "train_loss": 0.0}


def test_select_best_epoch_by_hand():
    history = [row(1, 0.80, 0.50), row(2, 0.90, 0.40), row(3, 0.90, 0.30), row(4, 0.85, 0.35)]
    assert select_best_epoch(history, "val_acc", higher_is_better=True) == 2  # a tie goes to the earlier epoch
    assert select_best_epoch(history, "val_loss", higher_is_better=False) == 3
    history.append(row(5, 0.95, float("nan")))
    history.append(row(6, float("nan"), 0.10))
    assert select_best_epoch(history, "val_acc", higher_is_better=True) == 5
    assert select_best_epoch(history, "val_loss", higher_is_better=False) == 6
    with pytest.raises(TrainingDiverged, match="no epoch has a finite val_acc"):
        select_best_epoch([row(1, float("nan"), 1.0)], "val_acc", higher_is_better=True)


def test_one_epoch_with_a_smaller_last_batch(idx_root, tmp_path):
    # 100 training images in batches of 32: the last batch holds 4 images.
    cfg = compose(tiny(idx_root, "data.train_size=100", "trainer.epochs=1"))
    result = train(cfg, tmp_path)
    assert result.status == "completed" and result.epochs_completed == 1 and result.best_epoch == 1
    lines = (tmp_path / "history.csv").read_text().splitlines()
    assert lines[0] == "epoch,iterations,train_loss,train_acc,val_loss,val_acc,seconds"
    values = lines[1].split(",")
    assert values[0] == "1" and values[1] == "4"  # ceil(100 / 32) iterations
    assert 0.0 <= float(values[3]) <= 1.0 and 0.0 <= float(values[5]) <= 1.0


def test_training_learns_and_outputs_are_written(idx_root, tmp_path):
    result = train(compose(tiny(idx_root, "trainer.epochs=6", "optimizer.lr=0.05")), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_completed"] == 6
    assert metrics["best_val_acc"] > 0.85, "the fake digits are easy: training must learn them"
    assert metrics["objective"] == metrics["best_val_acc"] == result.objective
    assert (metrics["monitor"], metrics["direction"], metrics["task"]) == ("val_acc", "maximize", "binary")
    assert set(metrics) == {"best_epoch", "best_val_acc", "best_val_loss", "train_acc", "train_loss", "test_acc", "test_loss",
                            "epochs_completed", "seconds", "status", "objective", "monitor", "direction", "task",
                            "error"}
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "best.pt", "epoch_001.pt", "epoch_002.pt", "epoch_003.pt", "epoch_004.pt", "epoch_005.pt",
        "epoch_006.pt", "last.pt"]


def test_checkpoint_contents(idx_root, tmp_path):
    cfg = compose(tiny(idx_root, "model.num_hidden=7"))
    result = train(cfg, tmp_path)
    state = checkpoint.load(tmp_path / "checkpoints" / "epoch_002.pt")
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert set(state) >= {"model", "optimizer", "epoch", "history", "rng", "config", "device", "format"}
    assert set(state["rng"]) >= {"torch", "python", "numpy", "numpy_has_gauss", "numpy_gauss"}
    assert state["model"]["net.1.weight"].shape == (7, 784)
    assert state["config"]["model"]["num_hidden"] == 7 and state["config"]["data"]["train_size"] == 128
    assert isinstance(state["rng"]["torch"], torch.Tensor) and state["optimizer"]["state"]
    # Plain data only: it loads with weights_only=True straight from torch.
    raw = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert raw["epoch"] == 3
    best = checkpoint.load(tmp_path / "checkpoints" / "best.pt")
    assert best["epoch"] == result.best_epoch
    assert "test_" not in str(best["history"])
    # Separate files: copying one checkpoint over another (cp epoch_002.pt last.pt) changes only that one.
    ckpts = tmp_path / "checkpoints"
    names = ("epoch_003.pt", "last.pt", f"epoch_{result.best_epoch:03d}.pt", "best.pt")
    inodes = {(ckpts / n).stat().st_ino for n in names}
    assert len(inodes) == (4 if result.best_epoch != 3 else 3)


def test_keep_checkpoints_bounds_epoch_files(idx_root, tmp_path):
    train(compose(tiny(idx_root, "trainer.epochs=5", "trainer.keep_checkpoints=2")), tmp_path)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["best.pt", "epoch_004.pt", "epoch_005.pt", "last.pt"]


def test_keeping_no_epoch_files_still_selects_and_resumes_exactly(idx_root, tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    train(compose(tiny(idx_root, "trainer.epochs=4", "trainer.keep_checkpoints=0")), whole)
    assert sorted(p.name for p in (whole / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    train(compose(tiny(idx_root, "trainer.epochs=2", "trainer.keep_checkpoints=0")), split)
    train(compose(tiny(idx_root, "trainer.epochs=4", "trainer.keep_checkpoints=0", "resume=true")), split)
    assert_same_run(whole, split)


def test_auto_keeps_every_epoch_file_outside_a_study(idx_root, tmp_path):
    train(compose(tiny(idx_root, "trainer.epochs=3")), tmp_path)  # the default: trainer.keep_checkpoints=auto
    assert [e for e, _ in checkpoint.epoch_files(tmp_path / "checkpoints")] == [1, 2, 3]


def test_refuses_to_overwrite_a_run(idx_root, tmp_path):
    train(compose(tiny(idx_root)), tmp_path)
    before = {p.name: p.read_bytes() for p in (tmp_path / "checkpoints").iterdir()}
    with pytest.raises(RunDirError, match="already holds a run .* add resume=true"):
        train(compose(tiny(idx_root, "optimizer.lr=0.1")), tmp_path)
    assert {p.name: p.read_bytes() for p in (tmp_path / "checkpoints").iterdir()} == before


def test_resume_of_a_finished_run_returns_the_stored_result(idx_root, tmp_path, monkeypatch):
    first = train(compose(tiny(idx_root)), tmp_path)
    monkeypatch.setattr(train_mod, "train_epoch", lambda *a, **k: pytest.fail("must not train again"))
    (tmp_path / "curves.png").unlink()  # as if killed after metrics.json, before its figure was drawn
    again = train(compose(tiny(idx_root, "resume=true")), tmp_path)
    assert again.to_json() == first.to_json()
    assert (tmp_path / "curves.png").stat().st_size > 10_000  # drawn again from the checkpoint's history


def test_resume_refuses_a_changed_config(idx_root, tmp_path):
    train(compose(tiny(idx_root, "trainer.epochs=1")), tmp_path)
    with pytest.raises(RunDirError, match="started with optimizer.lr=0.005, not 0.1"):
        train(compose(tiny(idx_root, "resume=true", "optimizer.lr=0.1")), tmp_path)
    with pytest.raises(RunDirError, match="started with data.num_workers=0, not 2"):
        train(compose(tiny(idx_root, "resume=true", "data.num_workers=2")), tmp_path)


@pytest.mark.slow
def test_resume_extends_training_identically(idx_root, tmp_path):
    """Two epochs, then resume to five, equals five in one go (shuffling and dropout included)."""
    extra = ("data.shuffle=true", "model.dropout=0.2")
    train(compose(tiny(idx_root, "trainer.epochs=2", *extra)), tmp_path / "a")
    resumed = train(compose(tiny(idx_root, "trainer.epochs=5", "resume=true", *extra)), tmp_path / "a")
    straight = train(compose(tiny(idx_root, "trainer.epochs=5", *extra)), tmp_path / "b")
    assert resumed.to_json() | {"seconds": 0} == straight.to_json() | {"seconds": 0}
    assert_same_run(tmp_path / "a", tmp_path / "b")


def test_corrupt_checkpoint_is_refused_and_kept(idx_root, tmp_path):
    train(compose(tiny(idx_root, "trainer.epochs=2")), tmp_path)
    last = tmp_path / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="last.pt is corrupt"):
        train(compose(tiny(idx_root, "resume=true")), tmp_path)
    assert last.stat().st_size == 1000


class Gadget:
    """Anything that is not plain data needs arbitrary unpickling to load."""


def test_checkpoint_needing_unpickling_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "payload": Gadget()}, path)
    with pytest.raises(CheckpointError, match=r"needs arbitrary unpickling \(.*Gadget\) and is refused"):
        checkpoint.load(path)


def test_divergence_is_recorded_as_failed(idx_root, tmp_path):
    with pytest.raises(TrainingDiverged, match="diverged at epoch"):
        train(compose(tiny(idx_root, "optimizer.lr=1e30", "optimizer.momentum=0.0")), tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "lower optimizer.lr" in metrics["error"]
    assert metrics["test_acc"] is None and metrics["objective"] is None
    with pytest.raises(TrainingDiverged, match="diverged at epoch"):  # resuming it does not train again
        train(compose(tiny(idx_root, "optimizer.lr=1e30", "optimizer.momentum=0.0", "resume=true")), tmp_path)


@pytest.mark.skipif(not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
                    reason="needs real Fashion-MNIST IDX files: apt-get install dataset-fashion-mnist (Debian, Ubuntu)")
@pytest.mark.slow
def test_real_fashion_mnist_from_debian(tmp_path, monkeypatch):
    monkeypatch.delenv("SWEEP_DATA_DIR", raising=False)
    cfg = compose(["data=fashion_mnist", "data.train_size=2000", "data.val_size=1000", "data.test_size=2000",
                   "data.download=false", "trainer.epochs=2", "model.num_hidden=64", "optimizer.lr=0.05"])
    result = train(cfg, tmp_path)
    assert result.best_val_acc > 0.6 and result.test_acc > 0.6  # 10 classes: chance is 0.1


def test_stored_result_of_another_config_is_not_returned(idx_root, tmp_path):
    train(compose(tiny(idx_root)), tmp_path)
    with pytest.raises(RunDirError, match="started with model.num_hidden=30, not 12"):
        train(compose(tiny(idx_root, "resume=true", "model.num_hidden=12")), tmp_path)


def test_eval_every_records_per_iteration_curves(idx_root, tmp_path):
    # 128 images in batches of 32: 4 iterations per epoch, 3 epochs; every 2nd iteration is evaluated.
    train(compose(tiny(idx_root, "trainer.eval_every=2")), tmp_path)
    lines = (tmp_path / "iterations.csv").read_text().splitlines()
    assert lines[0] == "iteration,epoch,batch_loss,train_acc,val_acc"
    rows = [line.split(",") for line in lines[1:]]
    assert [int(r[0]) for r in rows] == [2, 4, 6, 8, 10, 12]
    assert [int(r[1]) for r in rows] == [1, 1, 2, 2, 3, 3]
    last_epoch_val = float((tmp_path / "history.csv").read_text().splitlines()[-1].split(",")[5])
    assert float(rows[-1][4]) == last_epoch_val  # iteration 12 ends epoch 3: the same model, the same number


def test_cosine_scheduler_runs_over_the_whole_run(idx_root, tmp_path):
    """scheduler=cosine: torch's CosineAnnealingLR, stepped every iteration, T_max filled with the run's length."""
    extra = ("scheduler=cosine", "optimizer.lr=0.1")
    train(compose(tiny(idx_root, *extra)), tmp_path)
    # 128 images in batches of 32: 4 iterations an epoch, 12 in all.
    for epoch, steps in ((1, 4), (2, 8), (3, 12)):
        state = checkpoint.load(tmp_path / "checkpoints" / f"epoch_{epoch:03d}.pt")
        assert state["scheduler"]["T_max"] == 12 and state["scheduler"]["last_epoch"] == steps
        assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.05 * (1 + math.cos(math.pi * steps / 12)))
    # The schedule's length is part of the run: a cosine run cannot be extended on resume.
    with pytest.raises(RunDirError, match="trainer.epochs=3, not 5"):
        train(compose(tiny(idx_root, "trainer.epochs=5", "resume=true", *extra)), tmp_path)


def test_cosine_run_resumed_mid_schedule_is_identical(idx_root, tmp_path):
    extra = ("scheduler=cosine", "optimizer.lr=0.1", "trainer.epochs=3")
    train(compose(tiny(idx_root, *extra)), tmp_path / "b")
    train(compose(tiny(idx_root, *extra)), tmp_path / "a")
    ckpt = tmp_path / "a" / "checkpoints"
    for name in ("last.pt", "best.pt"):  # back to the end of epoch 1, as if killed during epoch 2
        (ckpt / name).write_bytes((ckpt / "epoch_001.pt").read_bytes())
    for name in ("epoch_002.pt", "epoch_003.pt", "../metrics.json"):
        (ckpt / name).unlink()
    train(compose(tiny(idx_root, *extra, "resume=true")), tmp_path / "a")
    assert_same_run(tmp_path / "a", tmp_path / "b")


@pytest.mark.slow
@pytest.mark.parametrize("epochs_done", [1, 2])
def test_resume_after_a_kill_between_the_epoch_file_and_last_pt(idx_root, tmp_path, epochs_done):
    """A kill after epoch_NNN.pt but before best.pt and last.pt: the complete epoch file is used."""
    extra = ("data.shuffle=true", "model.dropout=0.2")
    train(compose(tiny(idx_root, f"trainer.epochs={epochs_done}", *extra)), tmp_path / "a")
    ckpt = tmp_path / "a" / "checkpoints"
    if epochs_done == 1:  # killed during the very first epoch's writes: only epoch_001.pt exists
        (ckpt / "last.pt").unlink()
        (ckpt / "best.pt").unlink()
    else:  # last.pt and best.pt still hold epoch 1
        (ckpt / "last.pt").write_bytes((ckpt / "epoch_001.pt").read_bytes())
        (ckpt / "best.pt").write_bytes((ckpt / "epoch_001.pt").read_bytes())
    (tmp_path / "a" / "metrics.json").unlink()
    train(compose(tiny(idx_root, "trainer.epochs=4", "resume=true", *extra)), tmp_path / "a")
    train(compose(tiny(idx_root, "trainer.epochs=4", *extra)), tmp_path / "b")
    assert_same_run(tmp_path / "a", tmp_path / "b")
