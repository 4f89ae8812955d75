"""End-to-end: the real `python -m sweep.train` in a subprocess (or its main() in this process, for inputs
refused before Hydra starts), against tmp_path directories."""

import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import REPO, assert_one_line_error, cli_env, run_cli, tiny
from sweep import checkpoint, cli, rundir
from sweep.config import compose
from sweep.fake_data import write_csv, write_dataset
from sweep.train import train

# MNIST's real test split (t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz): $SWEEP_TEST_MNIST, else the
# copy this project's machines keep beside the repository.
SHARED_MNIST = Path(os.environ.get("SWEEP_TEST_MNIST", REPO.parent / "shared" / "data" / "mnist-test-split"))


def record(run: Path) -> dict[str, bytes]:
    """Hydra's record of how the run was started."""
    return {p.name: p.read_bytes() for p in sorted((run / ".hydra").iterdir())}


def outcome(run: Path) -> tuple:
    """What a run computed: metrics without timings, history without the seconds column, best weights."""
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.pop("seconds")
    history = [line.rsplit(",", 1)[0] for line in (run / "history.csv").read_text().splitlines()]
    weights = checkpoint.load(run / "checkpoints" / "best.pt")["model"]
    return metrics, history, {k: v.tolist() for k, v in weights.items()}


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.01)


def newest_epoch(run: Path) -> int:
    """The epoch resume=true continues from: the newest complete epoch file (last.pt may lag behind it)."""
    return checkpoint.epoch_files(run / "checkpoints")[-1][0]


def start_cli(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sweep.train", *args], cwd=cwd, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def as_command(line: str) -> list[str]:
    """A printed `python -m sweep.train ...` command, to run with this interpreter."""
    words = shlex.split(line)
    assert words[:3] == ["python", "-m", "sweep.train"], line
    return [sys.executable, *words[1:]]


# ------------------------------------------------------------------------------------------ multirun


COUNTED_DATA = """
import torch

class Counted:
    \"\"\"Four features, binary targets; each read of the training split adds a line to `log`.\"\"\"
    task = "binary"

    def __init__(self, log: str) -> None:
        self.log = log

    def _split(self, n: int) -> tuple:
        g = torch.Generator().manual_seed(n)
        return torch.randn(n, 4, generator=g), torch.randint(0, 2, (n,), generator=g)

    def train_dataset(self) -> tuple:
        with open(self.log, "a") as f:
            f.write("read\\n")
        return self._split(16)

    def val_dataset(self) -> tuple:
        return self._split(8)

    def test_dataset(self) -> tuple:
        return self._split(8)
"""


@pytest.mark.slow
def test_a_bad_value_stops_a_basic_multirun_before_its_first_job(idx_root, tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = run_cli("-m", *tiny(idx_root), "model.num_hidden=15,-3", f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.strip() == ("error: job 1 (model.num_hidden=-3): model.num_hidden=-3 is out of range: "
                                   "it must be at least 1")
    assert not (sweep_dir / "job_0").exists() and not list(tmp_path.rglob("history.csv"))
    assert not sweep_dir.exists() and not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_a_basic_multirun_over_group_choices_runs_every_job_with_its_config(idx_root, tmp_path, cli_main):
    sweep_dir = tmp_path / "sweep"
    proc = run_cli("-m", *tiny(idx_root), "optimizer=sgd,adam", "optimizer.lr=0.02", f"hydra.sweep.dir={sweep_dir}",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for job, target in (("job_0", "torch.optim.SGD"), ("job_1", "torch.optim.Adam")):
        assert json.loads((sweep_dir / job / "metrics.json").read_text())["status"] == "completed"
        config = checkpoint.load(sweep_dir / job / "checkpoints" / "last.pt")["config"]
        assert config["optimizer"]["_target_"] == target and config["optimizer"]["lr"] == 0.02
    assert "optimizer=adam" in OmegaConf.load(sweep_dir / "job_1" / ".hydra" / "overrides.yaml")
    # what sets each job apart (curves.png's title): the swept value, not the fixed ones
    assert [rundir.swept_values(sweep_dir / j) for j in ("job_0", "job_1")] == [["optimizer=sgd"], ["optimizer=adam"]]
    started = record(sweep_dir / "job_0")

    # The same sweep again, without resume=true: refused before Hydra rewrites anything.
    status, out, err = cli_main("-m", *tiny(idx_root), "optimizer=sgd,adam", "optimizer.lr=0.02",
                                f"hydra.sweep.dir={sweep_dir}")
    assert_one_line_error(status, err, out, "job 0 (optimizer=sgd): ", f"{sweep_dir / 'job_0'} already holds a run",
                          "resume=true")
    assert record(sweep_dir / "job_0") == started


@pytest.mark.slow
def test_a_basic_multirun_reads_each_data_config_once(tmp_path, cli_main, monkeypatch):
    """Jobs that differ only outside `data` are checked on the data read for the first of them; the check
    still tries each job's model on it."""
    (tmp_path / "counted.py").write_text(COUNTED_DATA)
    (tmp_path / "conf" / "data").mkdir(parents=True)
    (tmp_path / "conf" / "data" / "counted.yaml").write_text("_target_: counted.Counted\nlog: ???\nbatch_size: 4\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reads = tmp_path / "reads"
    common = ["--config-dir", str(tmp_path / "conf"), "data=counted", f"data.log={reads}",
              f"hydra.sweep.dir={tmp_path / 'sweep'}"]

    status, out, err = cli_main("-m", *common, "+model.input_shape=[4],[5]", "model.num_hidden=4,8,16")
    assert_one_line_error(status, err, out, "job 3 (+model.input_shape=[5] model.num_hidden=4): ",
                          "sweep.models.Pigeon fails on a batch of the data (inputs of shape (2, 4))")
    assert reads.read_text() == "read\n"  # jobs 1 to 3 reused job 0's data

    reads.unlink()
    status, out, err = cli_main("-m", *common, "data.batch_size=4,8,0")
    assert_one_line_error(status, err, out, "job 2 (data.batch_size=0): data.batch_size=0 is out of range")
    assert reads.read_text() == "read\nread\n"  # two data configs before the bad one, read once each
    assert not (tmp_path / "sweep").exists()


def test_basic_jobs_are_the_basic_sweepers_cartesian_product():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parse = OverridesParser.create().parse_overrides
    jobs = cli.basic_jobs(parse(["a=1,2", "b=x", "c=range(2)", "a=choice(3,4)", "+d=[1,2]"]))
    # A later override of a key replaces the earlier one in its place; the last key varies fastest.
    assert jobs == [[f"a={a}", "b=x", f"c={c}", "+d=[1,2]"] for a in (3, 4) for c in (0, 1)]
    with pytest.raises(cli.ConfigError, match="search=optuna"):
        cli.basic_jobs(parse(["optimizer.lr=interval(0.1, 0.2)"]))


@pytest.mark.slow
def test_multirun_interrupted_then_continued_by_folder(idx_root, tmp_path):
    """Ctrl-C in the first job of a three-job sweep; the printed command (`-m resume=true hydra.sweep.dir=S`)
    continues that job and runs the two others, each with its own overrides, none retyped."""
    sweep_dir = tmp_path / "sweep"
    # Batch size 1 makes an epoch long enough to be interrupted in the middle of.
    args = [f"data.root={idx_root}", "data.train_size=500", "data.val_size=100", "data.test_size=100",
            "data.batch_size=1", "trainer.epochs=2", "optimizer.lr=0.002", "trainer.monitor=val_loss"]
    proc = start_cli("-m", *args, "model.num_hidden=4,8,16", f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    wait_for(sweep_dir / "job_0" / "checkpoints" / "epoch_001.pt", proc)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in out + err, err
    epochs = newest_epoch(sweep_dir / "job_0")
    assert err.strip().splitlines()[-1] == (f"interrupted after epoch {epochs} of job_0; continue with: "
                                            f"python -m sweep.train -m resume=true hydra.sweep.dir={sweep_dir}")
    assert not (sweep_dir / "job_1").exists()
    started = record(sweep_dir / "job_0")

    resumed = subprocess.run(as_command(err.strip().partition("; continue with: ")[2]), capture_output=True,
                             text=True, cwd=tmp_path, env=cli_env(), timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    jobs = sorted(p.name for p in sweep_dir.iterdir() if p.is_dir())
    assert jobs == ["job_0", "job_1", "job_2"]
    for job, num_hidden in zip(jobs, (4, 8, 16)):
        metrics = json.loads((sweep_dir / job / "metrics.json").read_text())
        assert metrics["status"] == "completed" and metrics["epochs_completed"] == 2
        assert metrics["direction"] == "minimize" and metrics["objective"] == metrics["best_val_loss"]
        state = checkpoint.load(sweep_dir / job / "checkpoints" / "last.pt")
        assert state["config"]["model"]["num_hidden"] == num_hidden and state["config"]["data"]["batch_size"] == 1
        assert OmegaConf.load(sweep_dir / job / ".hydra" / "config.yaml").model.num_hidden == num_hidden
        assert "epoch 2/2" in (sweep_dir / job / "train.log").read_text()
        assert (sweep_dir / job / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert record(sweep_dir / "job_0") == started  # the original record, byte for byte
    assert "resuming" in (sweep_dir / "job_0" / "train.log").read_text()
    hydra = OmegaConf.load(sweep_dir / "job_2" / ".hydra" / "hydra.yaml").hydra  # written for the new job
    assert hydra.job.num == 2 and "model.num_hidden=16" in hydra.overrides.task
    summary = resumed.stdout + resumed.stderr
    assert "sweep finished: 3 jobs" in summary and "model.num_hidden" in summary
    assert not (tmp_path / "outputs").exists()


def test_resume_overrides_replay_the_record(tmp_path):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("- model.num_hidden=7\n- optimizer.lr=0.1\n")
    (run / ".hydra" / "hydra.yaml").write_text(OmegaConf.to_yaml({"hydra": {
        "overrides": {"task": ["model.num_hidden=7", "optimizer.lr=0.1"],
                      "hydra": [f"hydra.run.dir={run}", "hydra.job.name=x", "hydra.mode=RUN"]},
        "runtime": {"config_sources": [{"path": "/mine", "schema": "file", "provider": "command-line"}]},
        "job": {"config_name": "experiment"}}}))
    argv = cli.resume_overrides(["resume=true", f"hydra.run.dir={run}", "trainer.epochs=9"])
    assert argv == ["--config-dir", "/mine", "--config-name", "experiment", "model.num_hidden=7", "optimizer.lr=0.1", "hydra.job.name=x",
                    "resume=true", f"hydra.run.dir={run}", "trainer.epochs=9", "hydra.output_subdir=null"]
    # A key given again wins over the record; without resume=true, or without a record, nothing changes.
    assert "optimizer.lr=0.1" not in cli.resume_overrides(["resume=true", f"hydra.run.dir={run}", "optimizer.lr=1"])
    assert cli.resume_overrides([f"hydra.run.dir={run}"]) == [f"hydra.run.dir={run}"]
    assert cli.resume_overrides(["resume=true", f"hydra.run.dir={tmp_path}"]) == ["resume=true",
                                                                                   f"hydra.run.dir={tmp_path}"]
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text(OmegaConf.to_yaml({"hydra": {"overrides": {
        "task": ["model.num_hidden=4,8"], "hydra": [f"hydra.sweep.dir={sweep}", "hydra.mode=MULTIRUN"]}}}))
    assert cli.resume_overrides(["-m", "resume=true", f"hydra.sweep.dir={sweep}"]) == [
        "-m", "model.num_hidden=4,8", "resume=true", f"hydra.sweep.dir={sweep}", "hydra.output_subdir=null"]


# ------------------------------------------------------------------------------- kills and Ctrl-C


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume_by_folder_is_identical(tmp_path):
    """In-memory data: killed in the middle of an epoch, then continued by `resume=true hydra.run.dir=DIR`
    alone (the run's overrides come from its record), it ends exactly as an uninterrupted run."""
    root = write_dataset(tmp_path / "data", 1700, 50)
    # Batch size 1 makes an epoch long enough to be killed in the middle of.
    args = [f"data.root={root}", "data.train_size=1500", "data.val_size=200", "data.batch_size=1",
            "trainer.epochs=3", "data.shuffle=true", "model.dropout=0.1", "optimizer.lr=0.002"]
    killed = tmp_path / "killed"
    proc = start_cli(*args, f"hydra.run.dir={killed}", cwd=tmp_path)
    wait_for(killed / "checkpoints" / "epoch_001.pt", proc)
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert not (killed / "metrics.json").exists()
    assert checkpoint.load(killed / "checkpoints" / "last.pt")["epoch"] in (1, 2)
    started = record(killed)

    resumed = run_cli("resume=true", f"hydra.run.dir={killed}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    straight = run_cli(*args, f"hydra.run.dir={tmp_path / 'straight'}", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    assert outcome(killed) == outcome(tmp_path / "straight")
    assert "resuming" in (killed / "train.log").read_text()
    assert record(killed) == started


@pytest.mark.slow
def test_ctrl_c_prints_the_continue_command_which_finishes_the_run(tmp_path, cli_main):
    root = write_dataset(tmp_path / "data", 1400, 50)
    run = tmp_path / "run"
    args = [f"data.root={root}", "data.train_size=1200", "data.val_size=200", "data.batch_size=1",
            "trainer.epochs=3", "model.num_hidden=12", "optimizer.lr=0.002", "seed=5"]
    proc = start_cli(*args, f"hydra.run.dir={run}", cwd=tmp_path)
    wait_for(run / "checkpoints" / "epoch_001.pt", proc)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1, err
    epochs = newest_epoch(run)
    message, _, command = err.strip().partition("; continue with: ")
    assert message == f"interrupted after epoch {epochs}"
    assert command == f"python -m sweep.train resume=true hydra.run.dir={run}"
    started = record(run)

    # Giving a key again with another value than the run's is refused in one line; nothing changes.
    status, out, err = cli_main("resume=true", f"hydra.run.dir={run}", "model.num_hidden=13")
    assert_one_line_error(status, err, out, "started with model.num_hidden=12, not 13", "resume with the same config")

    done = subprocess.run(as_command(command), capture_output=True, text=True, cwd=tmp_path, env=cli_env(),
                          timeout=180)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_completed"] == 3
    assert record(run) == started
    assert checkpoint.load(run / "checkpoints" / "last.pt")["config"]["seed"] == 5
    assert f"run directory: {run}" in done.stdout and done.stdout.strip().splitlines()[-1].endswith(f"results in {run}")

    again = run_cli("resume=true", f"hydra.run.dir={run}", cwd=tmp_path)
    assert again.returncode == 0 and "already finished" in again.stdout


def test_continue_command(tmp_path):
    run = tmp_path / "run"
    assert cli.continue_command(["model.num_hidden=3", f"hydra.run.dir={run}"], run) == (
        f"python -m sweep.train model.num_hidden=3 resume=true hydra.run.dir={run}")  # no record: the whole command
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "hydra.yaml").write_text("hydra:\n  overrides:\n    task: [model.num_hidden=3]\n")
    assert cli.continue_command(["model.num_hidden=3"], run) == f"python -m sweep.train resume=true hydra.run.dir={run}"
    sweep = tmp_path / "my sweep"
    assert cli.continue_command(["-m", "model.num_hidden=3,4", "resume=true", "hydra.output_subdir=null"],
                                sweep / "job_1", sweep) == (
        f"python -m sweep.train -m model.num_hidden=3,4 hydra.output_subdir=null resume=true "
        f"'hydra.sweep.dir={sweep}'")


# ------------------------------------------------------------------------------------- disk errors


@pytest.mark.slow
def test_a_file_too_large_is_one_line_and_the_run_resumes_identically(tmp_path):
    """RLIMIT_FSIZE makes the checkpoint of epoch 2 too large to write (EFBIG; root ignores permissions, not
    this). The run stops with one line; resumed without the limit it ends as an uninterrupted run."""
    root = write_dataset(tmp_path / "data", 300, 100, compress=False)  # reading .gz files writes temp files
    args = tiny(root, "trainer.epochs=3", "data.shuffle=true", "trainer.eval_every=1")
    reference = train(compose(args), tmp_path / "reference")
    ckpts = tmp_path / "reference" / "checkpoints"
    first, second = (ckpts / "epoch_001.pt").stat().st_size, (ckpts / "epoch_002.pt").stat().st_size
    assert second > first  # the history and per-iteration curve grow
    limit = (first + second) // 2

    run = tmp_path / "run"
    limited = run_cli(*args, f"hydra.run.dir={run}", cwd=tmp_path,
                      preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    line = assert_one_line_error(limited.returncode, limited.stderr, limited.stdout,
                                 "cannot write the checkpoint of epoch 2", "File too large", "resume=true")
    assert limited.returncode == 2 and len(limited.stderr.strip().splitlines()) == 1, line
    assert checkpoint.load(run / "checkpoints" / "last.pt")["epoch"] == 1
    assert not list((run / "checkpoints").glob(".*tmp"))  # no half-written file is left behind

    resumed = run_cli("resume=true", f"hydra.run.dir={run}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert outcome(run) == outcome(tmp_path / "reference")
    assert json.loads((run / "metrics.json").read_text())["objective"] == reference.objective


@pytest.mark.slow
def test_an_unwritable_output_folder_is_one_line(idx_root, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    proc = run_cli(*tiny(idx_root), f"hydra.run.dir={blocker / 'run'}", cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, proc.stdout, "cannot write", "hydra.run.dir")


# ------------------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize("overrides, fragments", [
    (["+model.num_hiden=3"], ["unknown config key 'model.num_hiden'", "did you mean model.num_hidden?"]),
    (["model.num_hiden=3"], ["unknown config key 'model.num_hiden'", "did you mean model.num_hidden?"]),
    (["model.num_outputs=3"], ["model.num_outputs is not in the model config", "+model.num_outputs=3"]),
    (["+trainer.epoch=3"], ["unknown config key 'trainer.epoch'", "did you mean trainer.epochs?"]),
    (["trainer.epoch=3"], ["trainer.epoch is not a config key (did you mean trainer.epochs?)"]),
    (["trainer.keep=3"], ["did you mean trainer.keep_checkpoints?"]),
    (["seeed=3"], ["seeed is not a config key (did you mean seed?)"]),
    (["data.batchsize=8"], ["did you mean data.batch_size?"]),
    (["zzz=1"], ["zzz is not a config key; the top-level keys are model, optimizer"]),
    (["hydra.sweeper.n_trial=3"], ["hydra.sweeper.n_trial is not a config key", "_target_"]),
    (["optimizer.lr=fast"], ["wrong type for 'optimizer.lr'"]),
    (["optimizer.lr=0"], ["optimizer.lr=0 is out of range"]),
    (["resume=true"], ["resume=true, but", "does not exist: there is nothing to continue"]),
    (["data=imagenet"], ["data=imagenet is not an option of data", "use one of cifar10, csv"]),
    (["optimizer=adamm"], ["optimizer=adamm is not an option of optimizer (did you mean adam?)"]),
    (["trainr.epochs=3"], ["trainr.epochs is not a config key (did you mean trainer.epochs?)"]),
    (["Model.num_hidden=3"], ["did you mean model.num_hidden?"]),
    (["model.num_hidden.x=3"], ["model.num_hidden holds a value, not keys"]),
    (["scheduler.T_max=3"], ["scheduler=none has no schedule to take it", "scheduler=cosine"]),
    (["+scheduler.T_max=3"], ["scheduler=none has no schedule to take it", "scheduler=cosine"]),
    (["optimizer.schedule=cosine"], ["optimizer.schedule is gone", "scheduler=cosine"]),
    (["model._target_=nope.Net"], ["model._target_=nope.Net cannot be imported", "No module named 'nope'"]),
    (["+model.num_outputs=3"], ["outputs shape (2, 3)", "binary task needs (2, 1)", "num_outputs=1"]),
    (["trainer.monitor=val_rmse"], ["trainer.monitor=val_rmse is not computed for the binary task",
                                    "val_loss, val_acc"]),
    (["trainer.device=cuda"], ["trainer.device=cuda", "no CUDA device", "trainer.device=cpu"]),
    (["trainer.precision=16"], ["trainer.precision=16 needs a CUDA device", "bf16"]),
    (["data.train_size=100000"], ["data.train_size + data.val_size = 100064 exceeds the 600 images"]),
    (["data.test_size=5000"], ["data.test_size=5000 exceeds the 200 images"]),
])
def test_bad_input_is_one_line_and_creates_nothing(idx_root, tmp_path, cli_main, overrides, fragments):
    if torch.cuda.is_available() and "cuda" in " ".join(overrides):
        pytest.skip("checks the message of a machine without CUDA; this one has CUDA")
    run = tmp_path / "run"
    status, out, err = cli_main(*tiny(idx_root), *overrides, f"hydra.run.dir={run}")
    assert status == 2
    line = assert_one_line_error(status, err, out, *fragments)
    assert not run.exists() and not (tmp_path / "outputs").exists()
    if "did you mean" in line:  # a typo: no advice to add the mistyped key with +
        assert "+" not in line.replace(overrides[0], ""), line


def test_bad_data_is_one_line_and_creates_nothing(tmp_path, cli_main):
    table = write_csv(tmp_path / "table.csv", 50, seed=0)
    words = tmp_path / "words.csv"
    words.write_text("a,b,y\n" + "".join(f"{i},w{i},{i}\n" for i in range(20)))
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["data=csv", f"data.path={table}", "data.target=price"], ["data.target=price is not a column", "x1"]),
        (["data=csv", f"data.path={words}", "data.target=y"], ["feature column(s) b", "not numeric"]),
        (["data=csv", "data.target=y"], ["data.path has no value", "data.path=..."]),
        (["data=image_folder", f"data.path={empty}"], ["has no class subfolders"]),
        (["data=image_folder", f"data.path={tmp_path / 'nowhere'}"], ["does not exist", "data.path"]),
        ([f"data.root={tmp_path / 'nowhere'}", "data.download=false"], ["no mnist data in", "data.root="]),
    ]
    for overrides, fragments in cases:
        run = tmp_path / "run"
        status, out, err = cli_main(*overrides, f"hydra.run.dir={run}")
        assert status == 2, (overrides, out, err)
        assert_one_line_error(status, err, out, *fragments)
        assert not run.exists()


@pytest.mark.slow
def test_bad_input_in_a_real_process(idx_root, tmp_path):
    """The same refusals from a real process: exit status 2, one stderr line, no traceback, nothing written."""
    run = tmp_path / "run"
    proc = run_cli(*tiny(idx_root), "model.num_hiden=3", f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert_one_line_error(proc.returncode, proc.stderr, proc.stdout, "did you mean model.num_hidden?")
    assert not run.exists()


def test_download_impossible_is_one_line(tmp_path, cli_main):
    """No network here (or a blocked one in CI): the real download code fails and says what to do."""
    status, out, err = cli_main(f"data.root={tmp_path / 'nowhere'}", f"hydra.run.dir={tmp_path / 'run'}")
    if status == 0:
        pytest.skip("checks the message of a failed download; this machine downloaded MNIST")
    assert_one_line_error(status, err, out, "could not download mnist", "data.root=")


@pytest.mark.parametrize("flags, fragment", [
    (["-m", "--cfg", "job"], "Only one of --run, --multirun, --cfg"),
    (["-m", "model.num_hidden=4,8", "--resolve"], "--resolve flag can only be used"),
])
@pytest.mark.slow
def test_conflicting_hydra_flags_are_one_line(tmp_path, flags, fragment):
    proc = run_cli(*flags, cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, proc.stdout, fragment, "--help")
    assert proc.returncode == 2 and not any(tmp_path.iterdir())


@pytest.mark.slow
def test_existing_run_and_corrupt_checkpoint(idx_root, tmp_path, cli_main):
    run = tmp_path / "run"
    proc = run_cli(*tiny(idx_root), f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"run directory: {run}" in proc.stdout and proc.stdout.strip().splitlines()[-1].endswith(
        f"results in {run}")
    started = record(run)
    assert rundir.swept_values(run) == tiny(idx_root)[1:]  # a single run's title: its overrides, less data.root
    status, out, err = cli_main(*tiny(idx_root, "optimizer.lr=0.5"), f"hydra.run.dir={run}")
    assert_one_line_error(status, err, out, "already holds a run", "resume=true")
    assert record(run) == started  # Hydra did not rewrite it

    (run / "metrics.json").unlink()
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(b"\x00garbage")
    status, out, err = cli_main("resume=true", f"hydra.run.dir={run}")
    assert_one_line_error(status, err, out, "last.pt is corrupt")
    assert last.read_bytes() == b"\x00garbage"
    assert len(list((run / "checkpoints").glob("epoch_*.pt"))) == 3


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="needs the real MNIST test split: set SWEEP_TEST_MNIST to a folder holding "
                    "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (from torchvision's MNIST/raw download)")
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
