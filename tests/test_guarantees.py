"""The guarantees beyond MNIST: other tasks and models, metric directions, the DataLoader path's exact
resumption, checkpoints from another device, the majority-class warning."""

import copy
import json
import logging
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from conftest import assert_same_run, cli_env, run_cli, tiny
from sweep import checkpoint, cli
from sweep.config import CONF_MODULE, compose
from sweep.errors import DataError
from sweep.fake_data import write_image_folder
from sweep.train import train


def csv_overrides(path: Path, *extra: str) -> list[str]:
    return ["data=csv", f"data.path={path}", "data.target=y", "optimizer=adam", "optimizer.lr=0.01",
            "model.num_hidden=64", "trainer.epochs=12", *extra]


def test_csv_regression_learns(csv_path, tmp_path):
    result = train(compose(csv_overrides(csv_path)), tmp_path)
    ys = [float(line.split(",")[4]) for line in csv_path.read_text().splitlines()[1:]]
    assert result.best_val_rmse < 0.4 * statistics.pstdev(ys), "the table is nearly a function of its features"
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert (metrics["task"], metrics["monitor"], metrics["direction"]) == ("regression", "val_rmse", "minimize")
    assert {"best_val_rmse", "best_val_mae", "train_rmse", "test_rmse", "test_mae", "test_loss"} <= set(metrics)
    assert not [k for k in metrics if "acc" in k]
    assert metrics["objective"] == metrics["best_val_rmse"]
    assert metrics["test_rmse"] == pytest.approx(math.sqrt(metrics["test_loss"]), rel=1e-4)  # loss is the MSE
    header = (tmp_path / "history.csv").read_text().splitlines()[0].split(",")
    assert header == ["epoch", "iterations", "train_loss", "train_rmse", "train_mae", "val_loss", "val_rmse",
                      "val_mae", "seconds"]


def test_small_cnn_on_images(idx_root, tmp_path):
    overrides = tiny(idx_root, "model=cnn", "model.channels=[4,8]", "model.hidden=16", "data.train_size=256",
                     "data.task=multiclass", "optimizer=adam", "optimizer.lr=0.01")
    result = train(compose(overrides), tmp_path)
    assert result.status == "completed" and result.best_val_acc > 0.5  # 10 classes: chance is 0.1
    weights = checkpoint.load(tmp_path / "checkpoints" / "best.pt")["model"]
    assert weights["features.0.weight"].shape == (4, 1, 3, 3)  # one input channel: input_shape came from the data
    assert weights["head.4.weight"].shape == (10, 16)  # ten outputs: num_outputs came from the data


def task_function_value(overrides: list[str], run_dir: Path) -> float:
    """What the CLI's @hydra.main function returns to the sweeper for one job of a multirun."""
    from hydra import compose as hydra_compose, initialize_config_module
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    with initialize_config_module(config_module=CONF_MODULE, version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.mode = RunMode.MULTIRUN
    HydraConfig.instance().set_config(cfg)
    job = copy.deepcopy(cfg)
    with open_dict(job):
        del job["hydra"]
    try:
        return cli.task_function(None)(job)
    finally:
        HydraConfig.instance().cfg = None


@pytest.mark.parametrize("monitor, higher", [("val_acc", True), ("val_loss", False), ("val_rmse", False)])
def test_selection_and_the_returned_objective_follow_the_monitors_direction(idx_root, csv_path, tmp_path, monitor,
                                                                            higher):
    if monitor == "val_rmse":
        overrides = csv_overrides(csv_path, "trainer.epochs=5", "optimizer.lr=0.05")
    else:  # a high learning rate, so that the best epoch is not simply the last
        overrides = tiny(idx_root, "trainer.epochs=5", "optimizer.lr=0.3", f"trainer.monitor={monitor}")
    value = task_function_value(overrides, tmp_path)
    lines = (tmp_path / "history.csv").read_text().splitlines()
    column = lines[0].split(",").index(monitor)
    values = [float(line.split(",")[column]) for line in lines[1:]]
    best = max(values) if higher else min(values)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert value == best == metrics["objective"] == metrics[f"best_{monitor}"]
    assert metrics["best_epoch"] == 1 + values.index(best)  # the first epoch of the best value
    assert metrics["direction"] == ("maximize" if higher else "minimize")


def test_majority_class_warning(idx_root, tmp_path, caplog):
    """Binary MNIST is imbalanced (about 3 in 10 digits are below 3): a model that learned nothing is
    no better than always answering the majority, and the run says so."""
    with caplog.at_level(logging.WARNING, logger="sweep.train"):
        result = train(compose(tiny(idx_root, "optimizer.lr=1e6")), tmp_path / "broken")
    assert result.status == "completed"
    assert "no better than always predicting the most common class" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sweep.train"):
        train(compose(tiny(idx_root, "optimizer.lr=0.05", "trainer.epochs=6")), tmp_path / "fine")
    assert "most common class" not in caplog.text


def test_majority_class_warning_on_the_dataloader_path(tmp_path, caplog):
    images = write_image_folder(tmp_path / "images", 30, classes=("many", "few"))
    for extra in sorted((images / "few").iterdir())[6:]:
        extra.unlink()
    overrides = ["data=image_folder", f"data.path={images}", "optimizer.lr=1e6", "trainer.epochs=2"]
    with caplog.at_level(logging.WARNING, logger="sweep.train"):
        train(compose(overrides), tmp_path / "run")
    assert "no better than always predicting the most common class" in caplog.text


@pytest.mark.slow
def test_a_bad_image_read_in_a_worker_process_is_our_one_line(tmp_path):
    images = write_image_folder(tmp_path / "images", 10)
    broken = sorted((images / "dog").iterdir())[0]
    broken.write_bytes(b"not a png")
    overrides = ["data=image_folder", f"data.path={images}", "data.num_workers=1", "trainer.epochs=1"]
    with pytest.raises(DataError) as raised:
        train(compose(overrides), tmp_path / "run")
    assert str(raised.value).count("\n") == 0 and str(broken) in str(raised.value)
    assert "worker" not in str(raised.value) and "Traceback" not in str(raised.value)


@pytest.mark.slow
def test_a_cuda_checkpoint_resumes_on_the_cpu(idx_root, tmp_path, caplog):
    """Written on a GPU (device cuda, a cuda RNG entry; faked by editing a real checkpoint's dict),
    loaded with weights_only=True and map_location, it continues here."""
    extra = ("trainer.epochs=3", "data.shuffle=true", "model.dropout=0.2")
    train(compose(tiny(idx_root, *extra)), tmp_path / "b")
    train(compose(tiny(idx_root, *extra)), tmp_path / "a")
    ckpts = tmp_path / "a" / "checkpoints"
    state = checkpoint.load(ckpts / "epoch_001.pt")
    state["device"] = "cuda"
    state["rng"]["cuda"] = [torch.get_rng_state()]
    state.pop("format")
    checkpoint.save(state, [ckpts / "last.pt", ckpts / "best.pt"])
    for name in ("epoch_002.pt", "epoch_003.pt", "epoch_001.pt", "../metrics.json"):
        (ckpts / name).unlink()
    with caplog.at_level(logging.WARNING, logger="sweep.device"):
        resumed = train(compose(tiny(idx_root, *extra, "resume=true")), tmp_path / "a")
    assert "written on cuda: resuming on cpu" in caplog.text
    assert resumed.epochs_completed == 3
    assert_same_run(tmp_path / "a", tmp_path / "b")  # the CPU's RNG states were in it too


@pytest.mark.slow
def test_kill_9_mid_epoch_on_the_dataloader_path_then_resume_is_identical(tmp_path):
    """Images decoded and randomly flipped by two DataLoader workers, shuffled: killed in the middle of an
    epoch, then resumed, the run ends exactly as an uninterrupted one (history and weights)."""
    images = write_image_folder(tmp_path / "images", 50, size=8)
    args = ["data=image_folder", f"data.path={images}", "data.augment=true", "data.num_workers=2",
            "data.shuffle=true", "data.batch_size=2", "trainer.epochs=3", "model.dropout=0.1", "optimizer.lr=0.01"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "sweep.train", *args, f"hydra.run.dir={killed}"], cwd=tmp_path,
                            env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # its workers too, as a killed terminal would
    deadline = time.monotonic() + 120
    while not (killed / "checkpoints" / "epoch_001.pt").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.01)
    time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists()

    resumed = run_cli("resume=true", f"hydra.run.dir={killed}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    straight = run_cli(*args, f"hydra.run.dir={tmp_path / 'straight'}", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    for name in ("history.csv",):
        a = [line.rsplit(",", 1)[0] for line in (killed / name).read_text().splitlines()]
        b = [line.rsplit(",", 1)[0] for line in (tmp_path / "straight" / name).read_text().splitlines()]
        assert a == b
    for name in ("best.pt", "last.pt"):
        a = checkpoint.load(killed / "checkpoints" / name)["model"]
        b = checkpoint.load(tmp_path / "straight" / "checkpoints" / name)["model"]
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert "resuming" in (killed / "train.log").read_text()
