"""The run-comparison report, over sweep directories that the real CLI trains on tiny data."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.image import imread

from conftest import REPO, run_cli, tiny
from sweep.errors import UserError
from sweep.report import (METRIC_COLUMNS, best_run, load_histories, load_runs, load_trials, main, seed_summary,
                          summary_table)
from sweep.report_plots import plot_optuna_history

PLOTS = ("report_curves.png", "report_params.png")


def run_report(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m sweep.report`, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "sweep.report", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def metrics_of(job_dir: Path) -> dict:
    return json.loads((job_dir / "metrics.json").read_text())


def swept(job_dir: Path) -> dict:
    """The job's overrides as Hydra recorded them, read without the report's code."""
    items = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text())
    return dict(item.split("=", 1) for item in items)


def job_number(name: str) -> int:
    return int(re.search(r"(\d+)$", name).group(1))


def set_old(path: Path, seconds_ago: float = 3600) -> None:
    """Age every file under path, as if its job had stopped writing long ago."""
    old = time.time() - seconds_ago
    for p in [path, *path.rglob("*")]:
        os.utime(p, (old, old))


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working directory the sweeps are launched from (and the reports and reruns run in)."""
    return tmp_path_factory.mktemp("report")


@pytest.fixture(scope="module")
def seeds_sweep(idx_root: Path, work: Path) -> Path:
    """`-m model.num_hidden=4,8 seed=1,2`: four real jobs."""
    sweep_dir = work / "seeds"
    proc = run_cli("-m", *tiny(idx_root), "model.num_hidden=4,8", "seed=1,2", f"hydra.sweep.dir={sweep_dir}", cwd=work)
    assert proc.returncode == 0, proc.stderr
    return sweep_dir


@pytest.fixture(scope="module")
def seeds_report(seeds_sweep: Path, work: Path) -> subprocess.CompletedProcess:
    proc = run_report(str(seeds_sweep), cwd=work)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def mixed_sweep(idx_root: Path, work: Path) -> Path:
    """A real completed job_0 and a real diverged job_1 (lr=1e30), plus the states a sweep can be caught in:
    job_2 killed after some epochs (checkpoints, no metrics.json), job_3 created but never trained
    (.hydra/ only), job_4 training right now (no metrics.json, train.log just written), and job_5, a real
    job stopped by a config error before its first epoch (an ERROR line in train.log, no metrics.json)."""
    sweep_dir = work / "mixed"
    proc = run_cli("-m", *tiny(idx_root), "optimizer.lr=0.05,1e30", "optimizer.momentum=0",
                   f"hydra.sweep.dir={sweep_dir}", cwd=work)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("-m", *tiny(idx_root), "data.train_size=5000", "optimizer.lr=0.05", "optimizer.momentum=0",
                   f"hydra.sweep.dir={work / 'too_big'}", cwd=work)
    assert proc.returncode != 0 and "exceeds" in proc.stderr
    (work / "too_big" / "job_0").rename(sweep_dir / "job_5")
    done = sweep_dir / "job_0"
    for name in ("job_2", "job_4"):
        shutil.copytree(done, sweep_dir / name)
        (sweep_dir / name / "metrics.json").unlink()
    shutil.copytree(done / ".hydra", sweep_dir / "job_3" / ".hydra")
    set_old(sweep_dir / "job_2")
    set_old(sweep_dir / "job_3")
    (sweep_dir / "job_4" / "train.log").touch()
    return sweep_dir


def test_columns_rows_and_ranking(seeds_sweep, seeds_report):
    table = pd.read_csv(seeds_sweep / "report.csv")
    assert list(table.columns) == ["job", "path", "status", "model.num_hidden", "seed", *METRIC_COLUMNS, "error"]
    assert sorted(table["job"]) == ["job_0", "job_1", "job_2", "job_3"]
    for row in table.itertuples(index=False):
        job_dir = seeds_sweep / row.job
        metrics, overrides = metrics_of(job_dir), swept(job_dir)
        assert Path(row.path) == job_dir and row.status == metrics["status"] == "completed"
        assert row._3 == int(overrides["model.num_hidden"]) and row.seed == int(overrides["seed"])
        for col in METRIC_COLUMNS:
            assert getattr(row, col) == pytest.approx(metrics[col]), col
    # Ranked on validation accuracy, ties on validation loss.
    keys = list(zip(-table["best_val_acc"], table["best_val_loss"]))
    assert keys == sorted(keys)
    out = seeds_report.stdout
    assert "ranked on best_val_acc" in out and "model.num_hidden" in out and "data.root" not in out.split("Best")[0]
    assert all(job in out for job in table["job"])


def test_test_accuracy_never_ranks(seeds_sweep, tmp_path):
    copy = shutil.copytree(seeds_sweep, tmp_path / "copy", ignore=shutil.ignore_patterns("*.pt", "*.png"))
    before = load_runs(copy)
    for job, test_acc in ((before["job"].iloc[0], 0.0), (before["job"].iloc[-1], 1.0)):
        metrics = metrics_of(copy / job)
        (copy / job / "metrics.json").write_text(json.dumps({**metrics, "test_acc": test_acc}))
    after = load_runs(copy)
    assert list(after["job"]) == list(before["job"])
    assert best_run(after)["job"] == best_run(before)["job"]


def test_jobs_that_monitored_val_loss_are_ranked_on_it(seeds_sweep, tmp_path):
    copy = shutil.copytree(seeds_sweep, tmp_path / "copy", ignore=shutil.ignore_patterns("*.pt", "*.png"))
    for job_dir in copy.glob("job_*"):
        (job_dir / "metrics.json").write_text(json.dumps({**metrics_of(job_dir), "monitor": "val_loss"}))
    runs = load_runs(copy)
    assert runs["best_val_loss"].is_monotonic_increasing and runs.attrs["ranked_on"] == "best_val_loss"


def test_best_line_and_rerun_reproduce_the_best_job(seeds_sweep, seeds_report, work):
    jobs = sorted((p for p in seeds_sweep.glob("job_*")), key=lambda p: job_number(p.name))
    best = min(jobs, key=lambda p: (-metrics_of(p)["best_val_acc"], metrics_of(p)["best_val_loss"], job_number(p.name)))
    out = seeds_report.stdout
    assert f"best: {best.name} (" in out
    assert f"checkpoint: {best / 'checkpoints' / 'best.pt'}" in out and (best / "checkpoints" / "best.pt").is_file()
    assert "test_acc" not in next(line for line in out.splitlines() if line.startswith("best: "))
    command = next(line for line in out.splitlines() if line.startswith("rerun: "))[len("rerun: "):]
    args = shlex.split(command)
    assert args[:3] == ["python", "-m", "sweep.train"]
    rerun_dir = Path(args[-1].removeprefix("hydra.run.dir="))
    assert rerun_dir == seeds_sweep.absolute() / "reruns" / best.name
    assert args[3:-1] == yaml.safe_load((best / ".hydra" / "overrides.yaml").read_text())
    proc = subprocess.run([sys.executable, *args[1:]], capture_output=True, text=True, cwd=work, timeout=180)
    assert proc.returncode == 0, proc.stderr
    again, original = metrics_of(rerun_dir), metrics_of(best)
    assert (again["best_val_acc"], again["best_epoch"]) == (original["best_val_acc"], original["best_epoch"])
    assert len(load_runs(seeds_sweep)) == 4  # the rerun is not mistaken for a job of the sweep


def test_seeds_are_summarised_per_configuration(seeds_sweep, seeds_report):
    by_hidden: dict[int, list[float]] = {}
    for job_dir in seeds_sweep.glob("job_*"):
        by_hidden.setdefault(int(swept(job_dir)["model.num_hidden"]), []).append(metrics_of(job_dir)["best_val_acc"])
    summary = seed_summary(load_runs(seeds_sweep))
    assert list(summary.columns) == ["model.num_hidden", "best_val_acc_mean", "best_val_acc_std", "count"]
    assert summary["best_val_acc_mean"].is_monotonic_decreasing
    for row in summary.itertuples(index=False):
        accs = by_hidden[row._0]
        assert row.best_val_acc_mean == pytest.approx(statistics.mean(accs))
        assert row.best_val_acc_std == pytest.approx(statistics.stdev(accs))
        assert row.count == len(accs) == 2
    section = seeds_report.stdout.split("best_val_acc across seeds")[1]
    assert "best_val_acc_mean" in section and "seed noise" in section
    assert "best_val_acc across seeds" in (seeds_sweep / "report.md").read_text()


def test_plots_are_real_images(seeds_sweep, seeds_report):
    for name in PLOTS:
        path = seeds_sweep / name
        assert str(path) in seeds_report.stdout
        assert path.stat().st_size > 15_000
        pixels = imread(path)
        assert pixels.shape[0] > 300 and pixels.shape[1] > 500
        assert pixels[..., :3].var() > 1e-3
        assert len(np.unique(pixels[..., :3].reshape(-1, 3), axis=0)) > 20  # lines, text and markers, not a blank


def test_failed_interrupted_and_running_jobs_are_reported(mixed_sweep, work):
    proc = run_report(str(mixed_sweep), cwd=work)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(mixed_sweep / "report.csv").set_index("job")
    assert table["status"].to_dict() == {"job_0": "completed", "job_1": "failed", "job_2": "interrupted",
                                         "job_3": "not started", "job_4": "running", "job_5": "failed"}
    assert table.loc["job_1", "optimizer.lr"] == 1e30 and "diverged" in table.loc["job_1", "error"]
    assert table.loc["job_5", "data.train_size"] == 5000 and "exceeds" in table.loc["job_5", "error"]
    assert table.loc[["job_1", "job_2", "job_3", "job_4", "job_5"], "best_val_acc"].isna().all()
    assert table.index[0] == "job_0" and "best: job_0 (data.train_size=128, optimizer.lr=0.05)" in proc.stdout
    assert "failed (2): job_1, job_5" in proc.stdout and "interrupted (1): job_2" in proc.stdout
    assert all((mixed_sweep / name).stat().st_size > 10_000 for name in PLOTS)
    curves = load_histories(load_runs(mixed_sweep))
    assert set(curves["job"]) == {"job_0", "job_2", "job_4"}  # the diverged job_1 never finished an epoch


def test_empty_and_non_sweep_directories(tmp_path, seeds_sweep, work, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_report(str(empty), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: {empty} is empty: it holds no jobs; pass a sweep directory "
                                                "such as outputs/sweeps/<time>"]
    assert not any(empty.iterdir())
    with pytest.raises(UserError, match="is empty"):
        load_runs(empty)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("x")
    cases = [(tmp_path / "nowhere", "does not exist"), (tmp_path / "notes", "is not a sweep directory"),
             (seeds_sweep / "job_0", "is a single run, not a sweep"), (work, "holds sweeps, not jobs")]
    for path, fragment in cases:
        capsys.readouterr()
        assert main([str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err


def test_no_argument_reads_the_newest_sweep_under_outputs(seeds_sweep, mixed_sweep, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([]) == 2
    assert "no sweep under" in capsys.readouterr().err
    skip = shutil.ignore_patterns("*.pt", "*.png", "report.*")
    old = shutil.copytree(seeds_sweep, tmp_path / "outputs" / "sweeps" / "2026-01-01_10-00-00", ignore=skip)
    new = shutil.copytree(mixed_sweep, tmp_path / "outputs" / "optuna" / "study", ignore=skip)
    os.utime(old, (time.time() - 600,) * 2)
    proc = run_report(cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (new / "report.csv").is_file() and not (old / "report.csv").exists()
    os.utime(new, (time.time() - 1200,) * 2)
    assert main([]) == 0
    assert (old / "report.csv").is_file()


def test_several_sweep_directories(seeds_sweep, mixed_sweep, tmp_path, capsys):
    runs = load_runs([seeds_sweep, mixed_sweep])
    assert len(runs) == 10 and runs["job"].is_unique
    assert {"seeds/job_0", "mixed/job_1"} <= set(runs["job"])
    assert {"model.num_hidden", "seed", "optimizer.lr", "optimizer.momentum"} <= set(runs.columns)
    out = tmp_path / "out"
    assert main([str(seeds_sweep), str(mixed_sweep), "--out", str(out), "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert "... and 7 more jobs" in printed
    assert len(pd.read_csv(out / "report.csv")) == 10 and all((out / p).is_file() for p in PLOTS)
    assert summary_table(runs).count("\n") == 10  # the header and every job, for the end-of-sweep log


def optuna_copy(seeds_sweep: Path, mixed_sweep: Path, dest: Path) -> tuple[Path, list[dict]]:
    """An Optuna-layout sweep (trial_NNNN folders, trial.json, trials.csv) made of real jobs: the four seed jobs,
    the third one stopped after two epochs as a pruned trial does, the diverged job, and a trial still queued."""
    dest.mkdir()
    sources = sorted(seeds_sweep.glob("job_*"), key=lambda p: job_number(p.name)) + [mixed_sweep / "job_1"]
    trials = []
    for number, src in enumerate(sources):
        job_dir = shutil.copytree(src, dest / f"trial_{number:04d}", ignore=shutil.ignore_patterns("*.pt", "*.png"))
        metrics = metrics_of(job_dir)
        state = {"completed": "COMPLETE", "failed": "FAIL"}[metrics["status"]]
        if number == 2:
            with open(job_dir / "history.csv") as f:
                rows = list(csv.DictReader(f))[:2]
            (job_dir / "history.csv").write_text("\n".join(
                [",".join(rows[0])] + [",".join(r.values()) for r in rows]) + "\n")
            top = max(rows, key=lambda r: float(r["val_acc"]))
            metrics.update(status="pruned", epochs_completed=2, best_epoch=int(top["epoch"]),
                           best_val_acc=float(top["val_acc"]), objective=float(rows[-1]["val_acc"]))
            (job_dir / "metrics.json").write_text(json.dumps(metrics))
            state = "PRUNED"
        params = {k: v for k, v in swept(job_dir).items() if k in ("model.num_hidden", "seed", "optimizer.lr")}
        trial = {"number": number, "state": state, "value": metrics["objective"], "duration_s": metrics["seconds"],
                 "job_dir": str(job_dir), "params": params}
        (job_dir / "trial.json").write_text(json.dumps({k: trial[k] for k in ("number", "params", "state", "value")}))
        trials.append(trial)
    trials.append({"number": len(trials), "state": "RUNNING", "value": None, "duration_s": None,
                   "job_dir": str(dest / f"trial_{len(trials):04d}"), "params": {"model.num_hidden": 8, "seed": 3}})
    keys = sorted({k for t in trials for k in t["params"]})
    with open(dest / "trials.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["number", "state", "value", "duration_s", "job_dir", *(f"params_{k}" for k in keys)])
        for t in trials:
            writer.writerow([t["number"], t["state"], t["value"], t["duration_s"], t["job_dir"],
                             *(t["params"].get(k, "") for k in keys)])
    (dest / "optimization_results.yaml").write_text("name: optuna\n")
    (dest / "multirun.yaml").write_text("hydra:\n  sweeper:\n    direction: maximize\n")
    return dest, trials


def test_optuna_sweep(seeds_sweep, mixed_sweep, tmp_path, work):
    study, trials = optuna_copy(seeds_sweep, mixed_sweep, tmp_path / "study")
    proc = run_report(str(study), cwd=work)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(study / "report.csv").set_index("job")
    assert table["status"].to_dict() == {"trial_0000": "completed", "trial_0001": "completed", "trial_0002": "pruned",
                                         "trial_0003": "completed", "trial_0004": "failed", "trial_0005": "running"}
    assert table.loc["trial_0002", "epochs_completed"] == 2 and table.loc["trial_0005", "seed"] == 3
    curves = load_histories(load_runs(study))
    assert (curves["job"] == "trial_0002").sum() == 2  # the pruned trial's curve is drawn; it stops early
    history = study / "report_optuna_history.png"
    assert str(history) in proc.stdout and history.stat().st_size > 15_000 and imread(history).var() > 1e-3
    fig = plot_optuna_history(load_trials(study))
    best_line = next(line for line in fig.axes[0].get_lines() if line.get_label() == "best so far")
    complete = [t["value"] for t in trials if t["state"] == "COMPLETE"]
    assert list(best_line.get_ydata()) == [*np.maximum.accumulate(complete), max(complete)]


def test_real_optuna_sweep(idx_root, work):
    study = work / "optuna"
    proc = run_cli("-m", *tiny(idx_root), "search=optuna", "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={study}",
                   cwd=work)
    assert proc.returncode == 0, proc.stderr
    report = run_report(str(study), cwd=work)
    assert report.returncode == 0, report.stderr
    table = pd.read_csv(study / "report.csv")
    assert sorted(table["job"]) == ["trial_0000", "trial_0001"] and set(table["status"]) == {"completed"}
    assert {"model.num_hidden", "optimizer.lr"} <= set(table.columns)
    assert (study / "report_optuna_history.png").stat().st_size > 10_000
    # The overlay stays in the rerun command (an overlay may set what is trained); resume does not.
    rerun = next(line for line in report.stdout.splitlines() if line.startswith("rerun: "))[len("rerun: "):]
    assert "search=optuna" in rerun and "resume=" not in rerun and "hydra.run.dir=" in rerun
    assert subprocess.run(rerun, shell=True, cwd=work, capture_output=True).returncode == 0
    rerun_dir = Path(shlex.split(rerun.split("&&")[-1])[-1].split("=", 1)[1])
    best = table.iloc[0]
    assert json.loads((rerun_dir / "metrics.json").read_text())["best_val_acc"] == best["best_val_acc"]


def test_benchmark_smoke():
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "report_bench.py"), "--smoke"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "python -m sweep.report over 20 jobs" in proc.stdout and "load_runs over 20 jobs" in proc.stdout
