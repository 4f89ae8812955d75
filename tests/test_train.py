import json
import math

import pytest
import torch

from conftest import tiny
from sweep import checkpoint, data as data_mod, train as train_mod
from sweep.config import compose
from sweep.errors import CheckpointError, RunDirError, TrainingDiverged
from sweep.train import select_best_epoch, train


def row(epoch, val_acc, val_loss):
    return {"epoch": epoch, "val_acc": val_acc, "val_loss": val_loss, "train_acc": 0.0, "train_loss": 0.0}


def test_select_best_epoch_by_hand():
    history = [row(1, 0.80, 0.50), row(2, 0.90, 0.40), row(3, 0.90, 0.30), row(4, 0.85, 0.35)]
    assert select_best_epoch(history, "val_acc") == 2  # tie at 0.90 goes to the earlier epoch
    assert select_best_epoch(history, "val_loss") == 3
    history.append(row(5, 0.95, float("nan")))
    assert select_best_epoch(history, "val_acc") == 2  # a non-finite epoch is never selected


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
    for key in ("best_epoch", "best_val_acc", "best_val_loss", "train_acc", "test_acc", "epochs_completed",
                "seconds", "status", "objective"):
        assert key in metrics
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "best.pt", "epoch_001.pt", "epoch_002.pt", "epoch_003.pt", "epoch_004.pt", "epoch_005.pt",
        "epoch_006.pt", "last.pt"]


def test_checkpoint_contents(idx_root, tmp_path):
    cfg = compose(tiny(idx_root, "model.num_hidden=7"))
    result = train(cfg, tmp_path)
    state = checkpoint.load(tmp_path / "checkpoints" / "epoch_002.pt")
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert set(state) >= {"model", "optimizer", "epoch", "history", "rng_torch", "config"}
    assert state["model"]["net.1.weight"].shape == (7, 784)
    assert state["config"]["model"]["num_hidden"] == 7 and state["config"]["data"]["train_size"] == 128
    assert isinstance(state["rng_torch"], torch.Tensor) and state["optimizer"]["state"]
    # Plain data only: it loads with weights_only=True straight from torch.
    raw = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert raw["epoch"] == 3
    best = checkpoint.load(tmp_path / "checkpoints" / "best.pt")
    assert best["epoch"] == result.best_epoch
    assert "test_acc" not in str(best["history"])
    # Separate files: copying one checkpoint over another (cp epoch_002.pt last.pt) changes only that one.
    ckpts = tmp_path / "checkpoints"
    names = ("epoch_003.pt", "last.pt", f"epoch_{result.best_epoch:03d}.pt", "best.pt")
    inodes = {(ckpts / n).stat().st_ino for n in names}
    assert len(inodes) == (4 if result.best_epoch != 3 else 3)


def test_keep_checkpoints_bounds_epoch_files(idx_root, tmp_path):
    train(compose(tiny(idx_root, "trainer.epochs=5", "trainer.keep_checkpoints=2")), tmp_path)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["best.pt", "epoch_004.pt", "epoch_005.pt", "last.pt"]


def test_test_split_is_read_once_and_only_after_selection(idx_root, tmp_path, monkeypatch):
    events = []
    real_load_test, real_select = train_mod.load_test, train_mod.select_best_epoch
    monkeypatch.setattr(train_mod, "load_test", lambda cfg: events.append("test") or real_load_test(cfg))
    monkeypatch.setattr(train_mod, "select_best_epoch",
                        lambda h, m: events.append(f"select after {len(h)} epochs") or real_select(h, m))
    real_evaluate = train_mod.evaluate
    monkeypatch.setattr(train_mod, "evaluate", lambda model, split, task: events.append(f"eval {len(split)}")
                        or real_evaluate(model, split, task))
    train(compose(tiny(idx_root)), tmp_path)
    # 3 epochs x (train, val) evaluations, then selection, then the one test evaluation (100 images).
    assert events == ["eval 128", "eval 64"] * 3 + ["select after 3 epochs", "test", "eval 100"]


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


def test_resume_extends_training_identically(idx_root, tmp_path):
    """Two epochs, then resume to five, equals five in one go (shuffling and dropout included)."""
    extra = ("data.shuffle=true", "model.dropout=0.2")
    train(compose(tiny(idx_root, "trainer.epochs=2", *extra)), tmp_path / "a")
    resumed = train(compose(tiny(idx_root, "trainer.epochs=5", "resume=true", *extra)), tmp_path / "a")
    straight = train(compose(tiny(idx_root, "trainer.epochs=5", *extra)), tmp_path / "b")
    assert resumed.to_json() | {"seconds": 0} == straight.to_json() | {"seconds": 0}
    a = checkpoint.load(tmp_path / "a" / "checkpoints" / "last.pt")["model"]
    b = checkpoint.load(tmp_path / "b" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


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


def test_monitor_val_loss(idx_root, tmp_path):
    result = train(compose(tiny(idx_root, "trainer.epochs=4", "trainer.monitor=val_loss")), tmp_path)
    history = (tmp_path / "history.csv").read_text().splitlines()[1:]
    losses = [float(line.split(",")[4]) for line in history]
    assert result.best_epoch == 1 + losses.index(min(losses))
    assert math.isclose(result.best_val_loss, min(losses))


@pytest.mark.skipif(not (data_mod.DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed")
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


def test_cosine_schedule(idx_root, tmp_path):
    from sweep.train import cosine_lr

    lr_at = cosine_lr(0.1, 100)
    assert lr_at(0) == pytest.approx(0.1) and lr_at(50) == pytest.approx(0.05) and lr_at(100) == pytest.approx(0.0)
    extra = ("optimizer.schedule=cosine", "optimizer.lr=0.1")
    train(compose(tiny(idx_root, *extra)), tmp_path)
    # 128 images in batches of 32: 12 iterations; the last step used the lr of iteration 11 of 12.
    state = checkpoint.load(tmp_path / "checkpoints" / "last.pt")
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(cosine_lr(0.1, 12)(11))
    # The schedule's length is part of the run: a cosine run cannot be extended on resume.
    with pytest.raises(RunDirError, match="trainer.epochs=3, not 5"):
        train(compose(tiny(idx_root, "trainer.epochs=5", "resume=true", *extra)), tmp_path)


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
    resumed = train(compose(tiny(idx_root, "trainer.epochs=4", "resume=true", *extra)), tmp_path / "a")
    straight = train(compose(tiny(idx_root, "trainer.epochs=4", *extra)), tmp_path / "b")
    assert resumed.to_json() | {"seconds": 0} == straight.to_json() | {"seconds": 0}
    a = checkpoint.load(ckpt / "best.pt")["model"]
    b = checkpoint.load(tmp_path / "b" / "checkpoints" / "best.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
