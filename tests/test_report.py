"""The run-comparison report (sweep.report), over sweep directories written here as sweep.train leaves them
(sweep.rundir's formats: .hydra/, metrics.json, history.csv, checkpoints/, train.log, trials.csv), and one
end-to-end test over a sweep that the real CLI trains on tiny data."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.image import imread
from omegaconf import OmegaConf

from conftest import REPO, run_cli, tiny
from sweep import rundir
from sweep.atomic import atomic_write_json
from sweep.callbacks import SweepCallbacks
from sweep.errors import UserError
from sweep.report import (best_run, load_histories, load_runs, load_trials, main, rerun_command, seed_summary,
                          summary_table)
from sweep.report.plots import plot_curves, plot_optuna_history, plot_params

PLOTS = ("report_curves.png", "report_params.png")
METRICS = {"binary": ["loss", "acc"], "multiclass": ["loss", "acc"], "regression": ["loss", "rmse", "mae"]}
MONITORS = {"binary": "val_acc", "multiclass": "val_acc", "regression": "val_rmse"}
CLASSIFICATION_COLUMNS = ["best_epoch", "objective", "best_val_loss", "best_val_acc", "train_loss", "train_acc",
                          "test_loss", "test_acc", "epochs_completed", "seconds"]
REGRESSION_COLUMNS = ["best_epoch", "objective", "best_val_loss", "best_val_rmse", "best_val_mae", "train_loss",
                      "train_rmse", "train_mae", "test_loss", "test_rmse", "test_mae", "epochs_completed", "seconds"]
LAUNCH = ["hydra.sweep.dir=somewhere", "hydra/launcher=basic"]  # recorded by Hydra, never a parameter or rerun


# --------------------------------------------------------------------------- writing run directories


def history_rows(task: str, epochs: int, quality: float, loss_shift: float = 0.0) -> list[dict]:
    """Per-epoch rows as training writes them; higher quality is a better model. The loss is lowest at an
    earlier epoch than the accuracy is highest, so that the monitor decides the selected epoch."""
    rows = []
    for e in range(1, epochs + 1):
        row: dict = {"epoch": e, "iterations": 4 * e}
        for split, gap in (("train", 0.02), ("val", 0.0)):
            if task == "regression":
                rmse = 2 * (1 - quality) + 3 * math.exp(-e) + 0.01 * e - gap + loss_shift
                values = {"loss": rmse ** 2, "rmse": rmse, "mae": 0.8 * rmse}
            else:
                acc = quality - 0.3 * math.exp(-e / 1.5) - 0.004 * max(0, e - 4) + gap
                values = {"loss": 1.3 - acc + 0.03 * e + loss_shift, "acc": acc}
            row.update({f"{split}_{m}": v for m, v in values.items()})
        row["seconds"] = 0.25 * e
        rows.append(row)
    return rows


def write_job(sweep_dir: Path, name: str, overrides: list[str], *, task: str = "binary", monitor: Optional[str] = None,
              status: Optional[str] = "completed", epochs: int = 6, quality: float = 0.9, loss_shift: float = 0.0,
              old_schema: bool = False, cwd: Optional[Path] = None, error: Optional[str] = None) -> Path:
    """One job folder as sweep.train leaves it. status None: no metrics.json (killed, running, not started).
    old_schema: metrics.json as sweep wrote it before monitors had directions (no direction, task, train_loss,
    test_loss)."""
    job_dir = sweep_dir / name
    (job_dir / rundir.HYDRA).mkdir(parents=True)
    (job_dir / rundir.HYDRA / "overrides.yaml").write_text(yaml.safe_dump([*overrides, *LAUNCH]))
    (job_dir / rundir.HYDRA / "hydra.yaml").write_text(yaml.safe_dump(
        {"hydra": {"runtime": {"cwd": str(cwd or sweep_dir.parent)}, "mode": "MULTIRUN"}}))
    names = METRICS[task]
    history = history_rows(task, epochs, quality, loss_shift)
    (job_dir / rundir.LOG).write_text("".join(f"[2026-01-01 10:00:00,000][sweep.train][INFO] - epoch {r['epoch']}\n"
                                              for r in history))
    if history:
        rundir.write_history(job_dir, history, names)
        (job_dir / rundir.CHECKPOINTS).mkdir()
        for ckpt in (rundir.LAST, rundir.BEST, "epoch_001.pt"):
            (job_dir / rundir.CHECKPOINTS / ckpt).write_bytes(b"")  # placeholders: the report never opens them
    if status is None:
        return job_dir
    monitor = monitor or MONITORS[task]
    direction = "minimize" if monitor in ("val_loss", "val_rmse", "val_mae") else "maximize"
    best = (max if direction == "maximize" else min)(history, key=lambda r: r[monitor]) if history else None
    values: dict = {}
    for m in names:
        values[f"best_val_{m}"] = best and best[f"val_{m}"]
        values[f"train_{m}"] = best and best[f"train_{m}"]
        values[f"test_{m}"] = best and status != "failed" and best[f"val_{m}"] * 0.99 or None
    result = rundir.RunResult(status=status, monitor=monitor, direction=direction, task=task,
                              best_epoch=best and best["epoch"], objective=best and best[monitor],
                              epochs_completed=len(history), seconds=0.25 * len(history), values=values, error=error)
    metrics = result.to_json()
    if old_schema:
        keep = ("best_epoch", "best_val_acc", "best_val_loss", "train_acc", "test_acc", "epochs_completed", "seconds",
                "status", "objective", "monitor", "error")
        metrics = {k: metrics[k] for k in keep}
    atomic_write_json(job_dir / rundir.METRICS, metrics)
    return job_dir


def set_old(path: Path, seconds_ago: float = 3600) -> None:
    """Age every file under path, as if its job had stopped writing long ago."""
    old = time.time() - seconds_ago
    for p in [path, *path.rglob("*")]:
        os.utime(p, (old, old))


def metrics_of(job_dir: Path) -> dict:
    return json.loads((job_dir / rundir.METRICS).read_text())


def rewrite_metrics(job_dir: Path, **changes) -> None:
    (job_dir / rundir.METRICS).write_text(json.dumps({**metrics_of(job_dir), **changes}))


def run_report(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m sweep.report`, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "sweep.report", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def assert_real_png(path: Path, min_bytes: int = 15_000) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > min_bytes, path
    pixels = imread(path)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 500
    assert pixels[..., :3].var() > 1e-3
    assert len(np.unique(pixels[..., :3].reshape(-1, 3), axis=0)) > 20  # lines, text and markers, not a blank


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working directory the sweeps were launched from (and the reports run in)."""
    return tmp_path_factory.mktemp("report")


def write_cls_sweep(sweep_dir: Path) -> Path:
    """`-m model.num_hidden=4,8 seed=1,2` on a binary task, monitor val_acc: the widths' means are within
    seed noise of each other."""
    qualities = {(4, 1): 0.90, (4, 2): 0.935, (8, 1): 0.925, (8, 2): 0.905}
    for n, ((hidden, seed), q) in enumerate(qualities.items()):
        write_job(sweep_dir, f"job_{n}", ["data.root=/data/idx", f"model.num_hidden={hidden}", f"seed={seed}"],
                  quality=q, loss_shift=0.01 * n)
    return sweep_dir


@pytest.fixture(scope="module")
def cls_sweep(work: Path) -> Path:
    return write_cls_sweep(work / "cls")


@pytest.fixture(scope="module")
def reg_sweep(work: Path) -> Path:
    """`-m model.num_hidden=4,8,16 seed=1,2,3` on a regression task (monitor val_rmse), plus a job with a far too
    high learning rate: the widths differ far beyond seed noise, and the bad job's RMSE is 40 times the best."""
    sweep_dir = work / "reg"
    n = 0
    for seed in (1, 2, 3):
        for hidden, q in ((4, 0.5), (8, 0.8), (16, 0.7)):
            write_job(sweep_dir, f"job_{n}", ["data.root=/data/idx", f"model.num_hidden={hidden}", "optimizer.lr=0.01",
                                              f"seed={seed}"], task="regression", quality=q + 0.002 * seed)
            n += 1
    write_job(sweep_dir, f"job_{n}", ["data.root=/data/idx", "model.num_hidden=8", "optimizer.lr=1.0", "seed=1"],
              task="regression", quality=-8.0)
    return sweep_dir


@pytest.fixture(scope="module")
def mixed_sweep(work: Path) -> Path:
    """Every state a sweep can be caught in: job_0 completed; job_1 diverged in its first epoch (failed, no
    history); job_2 killed after some epochs (checkpoints, no metrics.json); job_3 created but never trained
    (.hydra/ only); job_4 training right now (train.log just written); job_5 stopped by a config error before
    its first epoch (an ERROR line in train.log, no metrics.json); job_6 interrupted by Ctrl-C (metrics.json
    says so); job_7 completed but worse than job_0."""
    sweep_dir = work / "mixed"
    common = ["data.root=/data/idx", "optimizer.momentum=0"]
    write_job(sweep_dir, "job_0", [*common, "optimizer.lr=0.05"], quality=0.95)
    write_job(sweep_dir, "job_1", [*common, "optimizer.lr=1e30"], status="failed", epochs=0,
              error="training diverged at epoch 1 (train_loss=nan); lower optimizer.lr")
    set_old(write_job(sweep_dir, "job_2", [*common, "optimizer.lr=0.05"], status=None, epochs=3))
    set_old(write_job(sweep_dir, "job_3", [*common, "optimizer.lr=0.05"], status=None, epochs=0))
    write_job(sweep_dir, "job_4", [*common, "optimizer.lr=0.05"], status=None, epochs=2)
    job_5 = write_job(sweep_dir, "job_5", [*common, "optimizer.lr=0.05", "data.train_size=5000"], status=None, epochs=0)
    (job_5 / rundir.LOG).write_text("[2026-01-01 10:00:00,000][sweep.train][ERROR] - data.train_size=5000 + "
                                    "data.val_size=64 exceeds the 600 training images\n")
    set_old(job_5)
    write_job(sweep_dir, "job_6", [*common, "optimizer.lr=0.01"], status="interrupted", epochs=2, quality=1.05)
    write_job(sweep_dir, "job_7", [*common, "optimizer.lr=0.01"], quality=0.85)
    return sweep_dir


def copy(sweep_dir: Path, dest: Path) -> Path:
    return shutil.copytree(sweep_dir, dest, ignore=shutil.ignore_patterns("report*"))


# --------------------------------------------------------------------------- the table and its ranking


def test_classification_columns_rows_and_ranking_on_val_acc(cls_sweep, work, capsys, monkeypatch):
    monkeypatch.chdir(work)
    assert main([str(cls_sweep)]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(cls_sweep / "report.csv")
    assert list(table.columns) == ["job", "path", "status", "model.num_hidden", "seed", *CLASSIFICATION_COLUMNS,
                                   "error"]  # data.root is shared by every job: not a parameter
    for row in table.to_dict("records"):
        metrics = metrics_of(cls_sweep / row["job"])
        assert Path(row["path"]) == cls_sweep / row["job"] and row["status"] == metrics["status"] == "completed"
        for col in CLASSIFICATION_COLUMNS:
            assert row[col] == pytest.approx(metrics[col]), col
    assert table["best_val_acc"].is_monotonic_decreasing
    runs = load_runs(cls_sweep)
    assert (runs.attrs["monitor"], runs.attrs["direction"], runs.attrs["ranked_on"]) == ("val_acc", "maximize",
                                                                                         "best_val_acc")
    assert "monitors" not in runs.attrs
    assert str(runs["best_epoch"].dtype) == "Int64" and str(runs["epochs_completed"].dtype) == "Int64"
    assert out.startswith("4 jobs, ranked on best_val_acc (highest first; validation only")
    assert "data.root" not in out.split("Best")[0] and all(job in out for job in table["job"])
    best = table.iloc[0]
    best_line = next(line for line in out.splitlines() if line.startswith("best: "))
    assert best_line.startswith(f"best: {best['job']} (model.num_hidden={best['model.num_hidden']}, "
                                f"seed={best['seed']}): best_val_acc {best['best_val_acc']:.4f}, "
                                f"best_val_loss {best['best_val_loss']:.4f} at epoch {best['best_epoch']}")
    assert "test" not in best_line
    assert f"checkpoint: {cls_sweep / best['job'] / 'checkpoints' / 'best.pt'}" in out


def test_jobs_that_monitored_val_loss_are_ranked_on_it_lowest_first(cls_sweep, tmp_path):
    sweep_dir = tmp_path / "loss"
    # The loss order is the reverse of the accuracy order: the ranking must follow the monitor, not accuracy.
    for n, (q, shift) in enumerate(((0.95, 0.3), (0.93, 0.2), (0.91, 0.1), (0.89, 0.0))):
        write_job(sweep_dir, f"job_{n}", [f"model.num_hidden={4 * (n + 1)}"], monitor="val_loss", quality=q,
                  loss_shift=shift)
    runs = load_runs(sweep_dir)
    assert runs.attrs["ranked_on"] == "best_val_loss" and runs.attrs["direction"] == "minimize"
    assert runs["best_val_loss"].is_monotonic_increasing and list(runs["job"]) == ["job_3", "job_2", "job_1", "job_0"]
    assert best_run(runs)["job"] == "job_3"
    assert not runs["best_val_acc"].is_monotonic_decreasing  # val_acc would have ranked them otherwise
    # Each job's values are those of the epoch it selected on val_loss, not the epoch of its best accuracy.
    history = history_rows("binary", 6, 0.89, 0.0)
    selected = min(history, key=lambda r: r["val_loss"])
    assert runs.iloc[0]["best_epoch"] == selected["epoch"] != max(history, key=lambda r: r["val_acc"])["epoch"]
    assert runs.iloc[0]["best_val_acc"] == pytest.approx(selected["val_acc"])


def test_regression_sweep_ranks_on_val_rmse_with_regression_columns(reg_sweep, work, capsys, monkeypatch):
    runs = load_runs(reg_sweep)
    assert (runs.attrs["monitor"], runs.attrs["direction"], runs.attrs["ranked_on"]) == ("val_rmse", "minimize",
                                                                                         "best_val_rmse")
    assert list(runs.columns) == ["job", "path", "status", "model.num_hidden", "optimizer.lr", "seed",
                                  *REGRESSION_COLUMNS, "error"]
    assert not [c for c in runs.columns if "acc" in c]
    assert runs["best_val_rmse"].is_monotonic_increasing
    assert runs.iloc[-1]["optimizer.lr"] == 1.0 and runs.iloc[0]["model.num_hidden"] == 8
    for row in runs.to_dict("records"):
        metrics = metrics_of(Path(row["path"]))
        assert {k: row[k] for k in REGRESSION_COLUMNS} == pytest.approx({k: metrics[k] for k in REGRESSION_COLUMNS})
    best = best_run(runs)
    assert best["job"] == runs.iloc[0]["job"] and best["best_val_rmse"] == runs["best_val_rmse"].min()
    monkeypatch.chdir(work)
    assert main([str(reg_sweep), "--top", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("10 jobs, ranked on best_val_rmse (lowest first; validation only")
    best_line = next(line for line in out.splitlines() if line.startswith("best: "))
    assert f"best_val_rmse {best['best_val_rmse']:.4f}, best_val_loss {best['best_val_loss']:.4f}, " \
           f"best_val_mae {best['best_val_mae']:.4f} at epoch {best['best_epoch']}" in best_line
    assert "acc" not in out and "test" not in best_line
    md = (reg_sweep / "report.md").read_text()
    assert "ranked on best_val_rmse" in md and "best_val_rmse across seeds" in md


@pytest.mark.parametrize("sweep, column", [("cls_sweep", "test_acc"), ("reg_sweep", "test_rmse")])
def test_test_numbers_never_rank_or_pick_the_best(sweep, column, request, tmp_path):
    sweep_dir = copy(request.getfixturevalue(sweep), tmp_path / "copy")
    before = load_runs(sweep_dir)
    good, bad = (1.0, 0.0) if column.endswith("acc") else (0.0, 1e6)
    for job, value in ((before["job"].iloc[0], bad), (before["job"].iloc[-1], good)):  # the best test: the last
        rewrite_metrics(sweep_dir / job, **{column: value, column.replace("rmse", "loss"): value})
    after = load_runs(sweep_dir)
    assert list(after["job"]) == list(before["job"])
    assert best_run(after)["job"] == best_run(before)["job"] == before["job"].iloc[0]
    assert after.attrs["ranked_on"] == before.attrs["ranked_on"] == f"best_val_{column.split('_')[1]}"
    # A re-sorted frame (on a test column, say) still gives the validation-best job.
    assert best_run(after.sort_values(column))["job"] == before["job"].iloc[0]


def test_old_metrics_json_without_direction_still_loads(cls_sweep, tmp_path):
    """Runs written before monitors had directions (no direction, task, train_loss or test_loss keys) sit beside
    new ones: they load, monitored val_acc (or the val_loss they name), and rank with them."""
    sweep_dir = copy(cls_sweep, tmp_path / "copy")
    write_job(sweep_dir, "job_4", ["data.root=/data/idx", "model.num_hidden=16", "seed=1"], quality=0.99,
              old_schema=True)
    write_job(sweep_dir, "job_5", ["data.root=/data/idx", "model.num_hidden=16", "seed=2"], quality=0.5,
              old_schema=True)
    assert "direction" not in metrics_of(sweep_dir / "job_4") and "train_loss" not in metrics_of(sweep_dir / "job_4")
    runs = load_runs(sweep_dir).set_index("job")
    assert runs.attrs["ranked_on"] == "best_val_acc" and runs.attrs["direction"] == "maximize"
    assert list(runs.columns[-len(CLASSIFICATION_COLUMNS) - 1:-1]) == CLASSIFICATION_COLUMNS
    assert runs.index[0] == "job_4" and runs.index[-1] == "job_5"
    # job_4 ranks first alone, but its configuration's seeds (0.99 and 0.5) have the worst mean: not the best.
    assert best_run(runs.reset_index())["model.num_hidden"] != 16
    assert math.isnan(runs.loc["job_4", "train_loss"]) and math.isnan(runs.loc["job_4", "test_loss"])
    assert runs.loc["job_4", "test_acc"] == pytest.approx(metrics_of(sweep_dir / "job_4")["test_acc"])
    assert not runs.loc["job_0", ["train_loss", "test_loss"]].isna().any()
    # Oldest of all: no monitor key either.
    for job in ("job_4", "job_5"):
        metrics = metrics_of(sweep_dir / job)
        del metrics["monitor"]
        (sweep_dir / job / rundir.METRICS).write_text(json.dumps(metrics))
    assert load_runs(sweep_dir).attrs["ranked_on"] == "best_val_acc"
    assert main([str(sweep_dir)]) == 0


def test_jobs_that_disagree_on_the_monitor_rank_on_the_most_common(tmp_path, capsys):
    sweep_dir = tmp_path / "disagree"
    for n, monitor in enumerate(("val_loss", "val_acc", "val_loss", "val_loss")):
        write_job(sweep_dir, f"job_{n}", [f"seed={n}"], monitor=monitor, quality=0.9 - 0.01 * n)
    runs = load_runs(sweep_dir)
    assert runs.attrs["monitor"] == "val_loss" and runs.attrs["ranked_on"] == "best_val_loss"
    assert runs.attrs["monitors"] == {"val_loss": 3, "val_acc": 1}
    assert runs["best_val_loss"].is_monotonic_increasing
    assert main([str(sweep_dir)]) == 0
    title = capsys.readouterr().out.splitlines()[0]
    assert title.startswith("4 jobs, ranked on best_val_loss (lowest first")
    assert "the jobs monitored different metrics (3 val_loss, 1 val_acc): ranked on the most common, val_loss" in title


# --------------------------------------------------------------------------- seeds, best job, rerun


@pytest.mark.parametrize("sweep, column, direction, verdict", [("cls_sweep", "best_val_acc", "maximize", "within"),
                                                               ("reg_sweep", "best_val_rmse", "minimize", "beyond")])
def test_seeds_are_summarised_per_configuration_on_the_monitored_column(sweep, column, direction, verdict, request,
                                                                       tmp_path, capsys):
    sweep_dir = request.getfixturevalue(sweep)
    runs = load_runs(sweep_dir)
    groups = [p for p in ("model.num_hidden", "optimizer.lr") if p in runs]
    by_group: dict[tuple, list[float]] = {}
    for row in runs.to_dict("records"):
        by_group.setdefault(tuple(row[g] for g in groups), []).append(metrics_of(Path(row["path"]))[column])
    summary = seed_summary(runs)
    assert list(summary.columns) == [*groups, f"{column}_mean", f"{column}_std", "count"]
    means = summary[f"{column}_mean"]
    assert means.is_monotonic_decreasing if direction == "maximize" else means.is_monotonic_increasing
    for row in summary.to_dict("records"):
        values = by_group[tuple(row[g] for g in groups)]
        assert row[f"{column}_mean"] == pytest.approx(statistics.mean(values)) and row["count"] == len(values)
        if len(values) > 1:
            assert row[f"{column}_std"] == pytest.approx(statistics.stdev(values))
    assert main([str(sweep_dir), "--out", str(tmp_path)]) == 0
    section = capsys.readouterr().out.split(f"{column} across seeds (completed jobs)")[1].split("\n\n")[0]
    assert f"{column}_mean" in section and f"{column} across seeds" in (tmp_path / "report.md").read_text()
    verdict_line = section.strip().splitlines()[-1]
    assert f"mean {column} differs by" in verdict_line and f"{verdict} seed noise" in verdict_line
    a, b = summary.iloc[0], summary.iloc[1]
    margin = abs(a[f"{column}_mean"] - b[f"{column}_mean"])
    assert f"differs by {margin:.4f}" in verdict_line


def test_no_seed_summary_without_swept_seeds(mixed_sweep):
    assert seed_summary(load_runs(mixed_sweep)) is None


def test_rerun_command_trains_the_best_job_again_into_a_new_folder(cls_sweep, work, tmp_path, monkeypatch):
    monkeypatch.chdir(work)
    best = best_run(load_runs(cls_sweep))
    args = shlex.split(rerun_command(best))
    assert args[:3] == ["python", "-m", "sweep.train"]
    recorded = yaml.safe_load((cls_sweep / best["job"] / ".hydra" / "overrides.yaml").read_text())
    assert args[3:-1] == [o for o in recorded if not o.startswith("hydra")]  # launch keys are not rerun
    assert args[-1] == f"hydra.run.dir={cls_sweep.absolute() / 'reruns' / best['job']}"
    (cls_sweep / "reruns" / best["job"]).mkdir(parents=True)  # taken: the next free name
    try:
        assert shlex.split(rerun_command(best))[-1].endswith(f"reruns/{best['job']}_2")
        assert len(load_runs(cls_sweep)) == 4  # a rerun is not mistaken for a job of the sweep
    finally:
        shutil.rmtree(cls_sweep / "reruns")
    monkeypatch.chdir(tmp_path)  # elsewhere: the command first goes where the sweep was launched
    assert rerun_command(best).startswith(f"cd {shlex.quote(str(cls_sweep.parent))} && python -m sweep.train ")


def test_search_overlay_stays_in_the_rerun_and_resume_does_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_job(tmp_path / "s", "trial_0000", ["search=fashion_budget", "resume=true", "model.num_hidden=64"])
    runs = load_runs(tmp_path / "s")
    assert "search" not in runs and "resume" not in runs
    args = shlex.split(rerun_command(best_run(runs)))
    assert "search=fashion_budget" in args and "resume=true" not in args and "model.num_hidden=64" in args


# --------------------------------------------------------------------------- plots


@pytest.mark.parametrize("sweep, metric, label", [("cls_sweep", "val_acc", "Validation accuracy"),
                                                  ("reg_sweep", "val_rmse", "Validation RMSE")])
@pytest.mark.slow
def test_plots_are_real_images_of_the_monitored_metric(sweep, metric, label, request, work, monkeypatch):
    sweep_dir = request.getfixturevalue(sweep)
    monkeypatch.chdir(work)
    assert main([str(sweep_dir)]) == 0
    for name in PLOTS:
        assert_real_png(sweep_dir / name)
    runs = load_runs(sweep_dir)
    best = best_run(runs)
    ax = plot_curves(runs, load_histories(runs)).axes[0]
    assert ax.get_ylabel() == label and ax.get_title().startswith(f"{label} per epoch (")
    star = next(line for line in ax.get_lines() if line.get_label() == "best: selected epoch")
    assert (star.get_xdata()[0], star.get_ydata()[0]) == (best["best_epoch"], pytest.approx(best[f"best_{metric}"]))
    if metric == "val_rmse":  # the diverged job's RMSE is 40 times the best: a log axis keeps the rest readable
        assert ax.get_yscale() == "log"
    else:
        assert ax.get_yscale() == "linear" and ax.get_ylim()[1] <= 1.005
    params = plot_params(runs)
    assert params.axes[0].get_ylabel() == f"Best {label[0].lower()}{label[1:]}"
    assert ("lower" if metric == "val_rmse" else "higher") + " is better" in params.get_suptitle()


def test_plot_curves_of_another_metric(cls_sweep):
    runs = load_runs(cls_sweep)
    ax = plot_curves(runs, load_histories(runs), metric="val_loss").axes[0]
    assert ax.get_ylabel() == "Validation loss" and "better" not in ax.get_title()
    star = next(line for line in ax.get_lines() if line.get_label() == "best: selected epoch")
    assert star.get_ydata()[0] == pytest.approx(best_run(runs)["best_val_loss"])  # at the selected epoch


# --------------------------------------------------------------------------- unfinished jobs, bad directories


@pytest.mark.slow
def test_failed_interrupted_and_running_jobs_are_reported(mixed_sweep, work):
    proc = run_report(str(mixed_sweep), cwd=work)  # the real `python -m sweep.report`
    assert proc.returncode == 0, proc.stderr
    assert "RuntimeWarning" not in proc.stderr
    table = pd.read_csv(mixed_sweep / "report.csv").set_index("job")
    assert table["status"].to_dict() == {"job_0": "completed", "job_1": "failed", "job_2": "interrupted",
                                         "job_3": "not started", "job_4": "running", "job_5": "failed",
                                         "job_6": "interrupted", "job_7": "completed"}
    assert table.loc["job_1", "optimizer.lr"] == 1e30 and "diverged" in table.loc["job_1", "error"]
    assert table.loc["job_5", "data.train_size"] == 5000 and "exceeds" in table.loc["job_5", "error"]
    assert table.loc[["job_1", "job_2", "job_3", "job_4", "job_5"], "best_val_acc"].isna().all()
    # job_6 scored best of all before Ctrl-C, but only a completed job can be the best.
    assert table.index[0] == "job_6" and table.loc["job_6", "best_val_acc"] > table.loc["job_0", "best_val_acc"]
    assert "best: job_0 (optimizer.lr=0.05): best_val_acc" in proc.stdout
    assert "failed (2): job_1, job_5" in proc.stdout and "interrupted (2): job_2, job_6" in proc.stdout
    assert "not started (1): job_3" in proc.stdout and "running (1): job_4" in proc.stdout
    for name in PLOTS:
        assert_real_png(mixed_sweep / name, min_bytes=10_000)
    curves = load_histories(load_runs(mixed_sweep))
    assert set(curves["job"]) == {"job_0", "job_2", "job_4", "job_6", "job_7"}  # job_1 never finished an epoch
    assert list(curves.columns) == ["job", *rundir.history_columns(METRICS["binary"])]


def test_a_damaged_metrics_file_is_a_row_not_a_crash(cls_sweep, tmp_path):
    sweep_dir = copy(cls_sweep, tmp_path / "copy")
    (sweep_dir / "job_1" / rundir.METRICS).write_text("{not json")
    (sweep_dir / "job_2" / rundir.HISTORY).write_text("epoch,iterations,val_acc\nx,1,0.5\n")
    runs = load_runs(sweep_dir).set_index("job")
    assert runs.loc["job_1", "status"] == "unreadable" and "metrics.json" in runs.loc["job_1", "error"]
    assert set(load_histories(runs.reset_index())["job"]) == {"job_0", "job_1", "job_3"}
    assert main([str(sweep_dir)]) == 0


def test_empty_and_non_sweep_directories(tmp_path, cls_sweep, work, capsys):
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
    (tmp_path / "file.txt").write_text("x")
    cases = [(tmp_path / "nowhere", "does not exist"), (tmp_path / "notes", "is not a sweep directory"),
             (tmp_path / "file.txt", "is not a directory"), (cls_sweep / "job_0", "is a single run, not a sweep"),
             (work, "holds sweeps, not jobs")]
    for path, fragment in cases:
        capsys.readouterr()
        assert main([str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and fragment in err[0], err


def test_no_argument_reads_the_newest_sweep_under_outputs(cls_sweep, mixed_sweep, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([]) == 2
    assert "no sweep under" in capsys.readouterr().err
    old = copy(cls_sweep, tmp_path / "outputs" / "sweeps" / "2026-01-01_10-00-00")
    new = copy(mixed_sweep, tmp_path / "outputs" / "optuna" / "study")
    os.utime(old, (time.time() - 600,) * 2)
    assert main([]) == 0
    assert (new / "report.csv").is_file() and not (old / "report.csv").exists()
    os.utime(new, (time.time() - 1200,) * 2)
    assert main([]) == 0
    assert (old / "report.csv").is_file()


def test_several_sweep_directories(cls_sweep, mixed_sweep, reg_sweep, tmp_path, capsys):
    runs = load_runs([cls_sweep, mixed_sweep, cls_sweep])  # each directory once
    assert len(runs) == 12 and runs["job"].is_unique
    assert {"cls/job_0", "mixed/job_1"} <= set(runs["job"])
    assert {"model.num_hidden", "seed", "optimizer.lr", "optimizer.momentum"} <= set(runs.columns)
    out = tmp_path / "out"
    assert main([str(cls_sweep), str(mixed_sweep), "--out", str(out), "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert "... and 9 more jobs" in printed
    assert len(pd.read_csv(out / "report.csv")) == 12 and all((out / p).is_file() for p in PLOTS)
    assert summary_table(runs).count("\n") == 12  # the header and every job, for the end-of-sweep log
    # A classification and a regression sweep together: both tasks' columns, ranked on the commoner monitor.
    both = load_runs([cls_sweep, reg_sweep])
    assert {"best_val_acc", "best_val_rmse", "test_acc", "test_mae"} <= set(both.columns)
    assert both.attrs["monitors"] == {"val_rmse": 10, "val_acc": 4} and both.attrs["ranked_on"] == "best_val_rmse"
    assert both.iloc[:10]["job"].str.startswith("reg/").all()  # the classification jobs have no RMSE: last


# --------------------------------------------------------------------------- Optuna


def optuna_sweep(dest: Path) -> tuple[Path, list[dict]]:
    """An Optuna-layout regression sweep (trial_NNNN folders, trial.json, trials.csv, multirun.yaml): three
    complete trials, one pruned after two epochs, one diverged, and one still queued (no folder yet)."""
    plan = [(8, 0.6, "completed"), (16, 0.8, "completed"), (4, 0.3, "pruned"), (32, 0.7, "completed"),
            (64, -50.0, "failed")]
    trials = []
    for number, (hidden, q, status) in enumerate(plan):
        params = {"model.num_hidden": hidden, "seed": 1}
        epochs = {"pruned": 2, "failed": 0}.get(status, 6)
        job_dir = write_job(dest, f"trial_{number:04d}", [f"{k}={v}" for k, v in params.items()], task="regression",
                            quality=q, status=status, epochs=epochs,
                            error="training diverged at epoch 1 (train_loss=nan)" if status == "failed" else None)
        metrics = metrics_of(job_dir)
        state = {"completed": "COMPLETE", "pruned": "PRUNED", "failed": "FAIL"}[status]
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
    (dest / "multirun.yaml").write_text("hydra:\n  sweeper:\n    direction: minimize\n")
    return dest, trials


def test_optuna_sweep(tmp_path, capsys):
    study, trials = optuna_sweep(tmp_path / "study")
    assert main([str(study)]) == 0
    out = capsys.readouterr().out
    table = pd.read_csv(study / "report.csv").set_index("job")
    assert table["status"].to_dict() == {"trial_0001": "completed", "trial_0003": "completed",
                                         "trial_0000": "completed", "trial_0002": "pruned", "trial_0004": "failed",
                                         "trial_0005": "running"}
    assert list(table.index[:3]) == ["trial_0001", "trial_0003", "trial_0000"]  # lowest RMSE first
    assert table.loc["trial_0002", "epochs_completed"] == 2 and table.loc["trial_0005", "seed"] == 3
    assert "best: trial_0001 (model.num_hidden=16" in out
    curves = load_histories(load_runs(study))
    assert (curves["job"] == "trial_0002").sum() == 2  # the pruned trial's curve is drawn; it stops early
    history = study / "report_optuna_history.png"
    assert str(history) in out
    assert_real_png(history)
    fig = plot_optuna_history(load_trials(study), direction="minimize", monitor="val_rmse")
    best_line = next(line for line in fig.axes[0].get_lines() if line.get_label() == "best so far")
    complete = [t["value"] for t in trials if t["state"] == "COMPLETE"]
    assert list(best_line.get_ydata()) == [*np.minimum.accumulate(complete), min(complete)]
    assert fig.axes[0].get_ylabel() == "Trial value: Validation RMSE"


def test_trials_without_job_folders_yet(tmp_path):
    study, _ = optuna_sweep(tmp_path / "study")
    for job_dir in study.glob("trial_*"):
        shutil.rmtree(job_dir)
    runs = load_runs(study)
    assert len(runs) == 6 and set(runs["status"]) == {"completed", "pruned", "failed", "running"}
    assert runs["best_val_loss"].isna().all() and {"model.num_hidden", "seed"} <= set(runs.columns)


# --------------------------------------------------------------------------- the end-of-sweep log, the benchmark


def test_end_of_sweep_log_is_the_table(cls_sweep, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="sweep.callbacks")
    SweepCallbacks().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(cls_sweep)}}}))
    message = caplog.records[-1].getMessage()
    assert caplog.records[-1].levelno == logging.INFO
    assert message == (f"sweep finished: 4 jobs in {cls_sweep} (python -m sweep.report {cls_sweep} for the full "
                       f"report)\n{summary_table(load_runs(cls_sweep), top=20)}")
    caplog.clear()
    SweepCallbacks().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "gone")}}}))
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert caplog.records[0].getMessage().startswith(f"no summary for {tmp_path / 'gone'}: ")


@pytest.mark.slow
def test_benchmark_smoke():
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "report_bench.py"), "--smoke", "--task", "regression"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "python -m sweep.report over 20 jobs" in proc.stdout and "load_runs over 20 jobs" in proc.stdout


# --------------------------------------------------------------------------- end to end, through the real CLI


@pytest.mark.slow
def test_real_cli_sweep_report_and_rerun(idx_root, work):
    """`python -m sweep.train -m model.num_hidden=4,8 seed=1,2` on tiny data, then `python -m sweep.report`,
    then the best job's rerun command: the same selected epoch and validation accuracy."""
    sweep_dir = work / "real"
    proc = run_cli("-m", *tiny(idx_root), "model.num_hidden=4,8", "seed=1,2", f"hydra.sweep.dir={sweep_dir}", cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert f"sweep finished: 4 jobs in {sweep_dir}" in proc.stdout + proc.stderr
    report = run_report(str(sweep_dir), cwd=work)
    assert report.returncode == 0, report.stderr
    table = pd.read_csv(sweep_dir / "report.csv")
    assert sorted(table["job"]) == ["job_0", "job_1", "job_2", "job_3"] and set(table["status"]) == {"completed"}
    assert {"model.num_hidden", "seed", "best_val_acc", "best_val_loss", "train_acc", "test_acc"} <= set(table.columns)
    assert table["best_val_acc"].is_monotonic_decreasing and "ranked on best_val_acc" in report.stdout
    for job in table["job"]:
        assert (sweep_dir / job / rundir.CURVES).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in PLOTS:
        assert_real_png(sweep_dir / name)
    best = best_run(load_runs(sweep_dir))  # the best seed of the best mean over seeds
    command = next(line for line in report.stdout.splitlines() if line.startswith("rerun: "))[len("rerun: "):]
    args = shlex.split(command)
    assert args[:3] == ["python", "-m", "sweep.train"]
    rerun_dir = Path(args[-1].removeprefix("hydra.run.dir="))
    assert rerun_dir == sweep_dir.absolute() / "reruns" / best["job"]
    again = subprocess.run([sys.executable, *args[1:]], capture_output=True, text=True, cwd=work, timeout=180)
    assert again.returncode == 0, again.stderr
    metrics = metrics_of(rerun_dir)
    assert (metrics["best_val_acc"], metrics["best_epoch"]) == (best["best_val_acc"], best["best_epoch"])
    assert len(load_runs(sweep_dir)) == 4
