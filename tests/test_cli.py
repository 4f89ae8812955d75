"""End-to-end: the real `python -m sweep.train` in a subprocess, against tmp_path directories."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import REPO, run_cli, tiny
from sweep.fake_data import write_dataset
from sweep import checkpoint

SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist-test-split"


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    last = proc.stderr.strip().splitlines()[-1]
    for fragment in fragments:
        assert fragment in last, last


def test_multirun_of_the_seed_models(idx_root, tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = run_cli("-m", *tiny(idx_root), "model.num_hidden=4,8,16", f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    jobs = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())
    assert jobs == ["job_0", "job_1", "job_2"]
    for job, num_hidden in zip(jobs, (4, 8, 16)):
        metrics = json.loads((sweep_dir / job / "metrics.json").read_text())
        assert metrics["status"] == "completed"
        hydra = OmegaConf.load(sweep_dir / job / ".hydra" / "hydra.yaml").hydra
        assert hydra.sweeper._target_.endswith("SweepBasicSweeper")  # composed once for all (sweep.compose)
        assert hydra.overrides.task[-1] == f"model.num_hidden={num_hidden}" and hydra.job.num == int(job[-1])
        assert OmegaConf.load(sweep_dir / job / ".hydra" / "config.yaml").model.num_hidden == num_hidden
        assert "epoch 3/3" in (sweep_dir / job / "train.log").read_text()
        assert (sweep_dir / job / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # drawn by the sidecar
    hidden = [checkpoint.load(sweep_dir / j / "checkpoints" / "last.pt")["config"]["model"]["num_hidden"] for j in jobs]
    assert hidden == [4, 8, 16]
    summary = proc.stdout + proc.stderr
    assert "sweep finished: 3 jobs" in summary and "model.num_hidden" in summary and "best_val_acc" in summary
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").iterdir())


def test_kill_9_mid_epoch_then_resume_is_identical(tmp_path):
    # Batch size 1 over 3000 images makes each epoch long enough to be killed in the middle of.
    root = write_dataset(tmp_path / "data", 3200, 50)
    args = [f"data.root={root}", "data.train_size=3000", "data.val_size=200", "data.batch_size=1",
            "trainer.epochs=3", "data.shuffle=true", "model.dropout=0.1"]
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "sweep.train", *args, f"hydra.run.dir={killed}"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (killed / "checkpoints" / "epoch_001.pt").exists():
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.3)  # well inside epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists()
    assert checkpoint.load(killed / "checkpoints" / "last.pt")["epoch"] == 1

    resumed = run_cli(*args, f"hydra.run.dir={killed}", "resume=true", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    straight = run_cli(*args, f"hydra.run.dir={tmp_path / 'straight'}", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr

    def outcome(run: Path) -> tuple:
        metrics = json.loads((run / "metrics.json").read_text())
        metrics.pop("seconds")
        history = [line.rsplit(",", 1)[0] for line in (run / "history.csv").read_text().splitlines()]
        weights = checkpoint.load(run / "checkpoints" / "best.pt")["model"]
        return metrics, history, {k: v.tolist() for k, v in weights.items()}

    assert outcome(killed) == outcome(tmp_path / "straight")
    assert "resuming" in (killed / "train.log").read_text()


def test_rerunning_a_finished_run_does_not_train(idx_root, tmp_path):
    run = tmp_path / "run"
    assert run_cli(*tiny(idx_root), f"hydra.run.dir={run}", cwd=tmp_path).returncode == 0
    before = (run / "checkpoints" / "last.pt").stat().st_mtime_ns
    again = run_cli(*tiny(idx_root), f"hydra.run.dir={run}", "resume=true", cwd=tmp_path)
    assert again.returncode == 0
    assert "already finished" in again.stdout + again.stderr
    assert (run / "checkpoints" / "last.pt").stat().st_mtime_ns == before


@pytest.mark.parametrize("override, fragments", [
    ("+model.num_hiden=3", ["unknown config key 'model.num_hiden'"]),
    ("model.num_hiden=3", ["model.num_hiden", "+model.num_hiden"]),
    ("optimizer.lr=fast", ["wrong type for 'optimizer.lr'"]),
    ("optimizer.lr=0", ["optimizer.lr=0.0 is out of range"]),
    ("data=imagenet", ["data/imagenet", "mnist"]),
])
def test_bad_config_is_one_line_and_creates_nothing(idx_root, tmp_path, override, fragments):
    run = tmp_path / "run"
    proc = run_cli(*tiny(idx_root), override, f"hydra.run.dir={run}", cwd=tmp_path)
    assert_one_line_error(proc, *fragments)
    assert not run.exists()


@pytest.mark.parametrize("flags, fragment", [
    (["-m", "--cfg", "job"], "Only one of --run, --multirun, --cfg"),
    (["-m", "model.num_hidden=4,8", "--resolve"], "--resolve flag can only be used"),
])
def test_conflicting_hydra_flags_are_one_line(tmp_path, flags, fragment):
    proc = run_cli(*flags, cwd=tmp_path)
    assert_one_line_error(proc, fragment, "--help")
    assert proc.returncode == 2 and not any(tmp_path.iterdir())


def test_missing_data_is_one_line_and_creates_nothing(tmp_path):
    run = tmp_path / "run"
    proc = run_cli(f"data.root={tmp_path / 'nowhere'}", "data.download=false", f"hydra.run.dir={run}", cwd=tmp_path)
    assert_one_line_error(proc, "no mnist data in", "data.root=")
    assert not run.exists()


def test_download_impossible_is_one_line(tmp_path):
    """No network here (or a blocked one in CI): the real download code fails and says what to do."""
    proc = run_cli(f"data.root={tmp_path / 'nowhere'}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
                   timeout=300)
    if proc.returncode == 0:
        pytest.skip("this machine could download MNIST")
    assert_one_line_error(proc, "could not download mnist", "data.root=")


def test_existing_run_and_corrupt_checkpoint(idx_root, tmp_path):
    run = tmp_path / "run"
    assert run_cli(*tiny(idx_root), f"hydra.run.dir={run}", cwd=tmp_path).returncode == 0
    hydra_config = (run / ".hydra" / "config.yaml").read_text()
    refused = run_cli(*tiny(idx_root, "optimizer.lr=0.5"), f"hydra.run.dir={run}", cwd=tmp_path)
    assert_one_line_error(refused, "already holds a run", "resume=true")
    assert (run / ".hydra" / "config.yaml").read_text() == hydra_config  # Hydra did not rewrite it

    (run / "metrics.json").unlink()
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(b"\x00garbage")
    corrupt = run_cli(*tiny(idx_root), f"hydra.run.dir={run}", "resume=true", cwd=tmp_path)
    assert_one_line_error(corrupt, "last.pt is corrupt")
    assert last.read_bytes() == b"\x00garbage"
    assert len(list((run / "checkpoints").glob("epoch_*.pt"))) == 3


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="../shared/data/mnist-test-split is not here")
def test_real_mnist_digits(tmp_path):
    """The real 10,000 test digits, copied under both split names, through the real CLI."""
    root = tmp_path / "mnist"
    root.mkdir()
    for kind in ("images-idx3-ubyte.gz", "labels-idx1-ubyte.gz"):
        shutil.copy(SHARED_MNIST / f"t10k-{kind}", root / f"train-{kind}")
        shutil.copy(SHARED_MNIST / f"t10k-{kind}", root / f"t10k-{kind}")
    run = tmp_path / "run"
    proc = run_cli(f"data.root={root}", "trainer.epochs=5", f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["best_val_acc"] > 0.85 and metrics["test_acc"] > 0.85


def test_training_process_imports_no_dynamo_torchvision_matplotlib_or_pandas(idx_root, tmp_path):
    """The start-up work of issue 5: with decoded data cached, a multirun's own process imports none of
    these (the sidecar draws and tabulates); -X importtime lists every module the process imported."""
    for attempt in ("fills the cache", "uses it"):
        sweep_dir = tmp_path / attempt.replace(" ", "_")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "sweep.train", "-m", *tiny(idx_root),
                               "model.num_hidden=4,8", f"hydra.sweep.dir={sweep_dir}"],
                              capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "torch" in imported and "hydra" in imported
    assert not imported & {"torch._dynamo", "torchvision", "matplotlib", "pandas"}
    assert all((sweep_dir / job / "curves.png").is_file() for job in ("job_0", "job_1"))
    assert "sweep finished: 2 jobs" in proc.stdout + proc.stderr
