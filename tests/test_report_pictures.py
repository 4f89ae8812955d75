"""The report's pictures and verdicts: one point per job, error bars only over seeds, log axes exactly where
searched so, a y range of at least four seed stds, tick labels that never overlap, the best configuration
by mean over seeds, and the parameter-importance plot from the study."""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import yaml

from sweep import rundir
from sweep.report import best_run, load_histories, load_runs, load_trials, main, seed_summary
from sweep.report.plots import plot_curves, plot_optuna_history, plot_params
from test_report import assert_real_png, copy, optuna_sweep, rewrite_metrics, write_cls_sweep, write_job


@pytest.fixture(scope="module")
def cls_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_cls_sweep(tmp_path_factory.mktemp("report") / "cls")


def exact_job(sweep_dir: Path, name: str, overrides: list[str], value: float, status: str = "completed") -> Path:
    """A job whose monitored best_val_acc is exactly `value` (its history as write_job writes it)."""
    job_dir = write_job(sweep_dir, name, overrides, status=status)
    rewrite_metrics(job_dir, best_val_acc=value, objective=value)
    return job_dir


def basic_sweep(sweep_dir: Path, swept: dict[str, list], values: Optional[list[float]] = None,
                written: Optional[int] = None) -> Path:
    """A basic multirun over the product of `swept` (multirun.yaml records it as `key=a,b,c`); only the first
    `written` jobs exist yet, when given."""
    import itertools

    sweep_dir.mkdir(parents=True)
    task = [f"{k}={','.join(map(str, v))}" for k, v in swept.items()]
    (sweep_dir / rundir.MULTIRUN).write_text(yaml.safe_dump({"hydra": {"overrides": {"task": task}}}))
    points = list(itertools.product(*swept.values()))
    for n, point in enumerate(points[:written]):
        value = values[n] if values else 0.9 + 0.001 * n
        exact_job(sweep_dir, f"job_{n}", [f"{k}={v}" for k, v in zip(swept, point)], value)
    return sweep_dir


def panels(fig) -> dict:
    """The visible axes of plot_params' figure, by parameter (their titles)."""
    return {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}


def drawn(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def tick_label_boxes(fig) -> list:
    """The extents of every tick label drawn on the figure (ticks inside their view, with text)."""
    renderer = drawn(fig)
    boxes = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis, i in ((ax.xaxis, 0), (ax.yaxis, 1)):
            lo, hi = sorted(axis.get_view_interval())
            for label in axis.get_ticklabels():
                if label.get_visible() and label.get_text().strip() and lo <= label.get_position()[i] <= hi:
                    boxes.append((ax.get_title(), label.get_text(), label.get_window_extent(renderer)))
    return boxes


def overlapping(boxes: list) -> list:
    return [(a[:2], b[:2]) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a[2].overlaps(b[2])]


def error_bars(ax) -> list[tuple[float, float, float]]:
    """(x, mean, std) of each error bar on an axes."""
    from matplotlib.container import ErrorbarContainer

    bars = []
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            line, _, (segments,) = container.lines
            for (x, y), seg in zip(line.get_xydata(), segments.get_segments()):
                bars.append((float(x), float(y), float(seg[1][1] - y)))
    return bars


def points(ax) -> int:
    """How many points the axes' scatter plots hold."""
    from matplotlib.collections import PathCollection

    return sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))


def test_params_plot_draws_one_point_per_job_and_joins_none(tmp_path):
    from sweep.fake_data import write_optuna_sweep
    from sweep.report.scales import param_scales

    study = write_optuna_sweep(tmp_path / "study", 30)
    grid = basic_sweep(tmp_path / "grid", {"model.num_hidden": [4, 8, 16], "optimizer.lr": [0.01, 0.02]})
    for d in (study, grid):
        runs = load_runs(d)
        fig = plot_params(runs, scales=param_scales(runs, [d]))
        shown = runs[runs["status"].isin(["completed", "pruned"]) & runs["best_val_acc"].notna()]
        for key, ax in panels(fig).items():
            assert points(ax) == len(shown), key
            # No line joins trials: every Line2D is a marker-only artist (error bars' markers, caps) or empty.
            joined = [line for line in ax.get_lines() if line.get_linestyle() not in ("None", "") and
                      len(line.get_xdata()) > 1]
            assert not joined, key


def test_error_bars_only_where_a_configuration_was_run_with_several_seeds(cls_sweep, tmp_path):
    grid = basic_sweep(tmp_path / "grid", {"model.num_hidden": [4, 8], "optimizer.lr": [0.01, 0.02]})
    fig = plot_params(load_runs(grid))  # each value twice, but over another parameter, not over seeds
    assert all(not error_bars(ax) for ax in panels(fig).values())
    assert "no noise estimate" in fig.get_suptitle()
    runs = load_runs(cls_sweep)
    summary = seed_summary(runs)
    bars = sorted(error_bars(panels(plot_params(runs))["model.num_hidden"]))
    expected = sorted((float(r["model.num_hidden"]), r["best_val_acc_mean"], r["best_val_acc_std"])
                      for r in summary.to_dict("records"))
    np.testing.assert_allclose(np.array(bars), np.array(expected))
    # A configuration with one completed seed has no error bar: one seed says nothing about noise.
    sweep_dir = copy(cls_sweep, tmp_path / "one_seed")
    rewrite_metrics(sweep_dir / "job_3", status="failed")
    runs = load_runs(sweep_dir)
    widths = [x for x, _, _ in error_bars(panels(plot_params(runs))["model.num_hidden"])]
    assert widths == [4.0]


@pytest.mark.slow
def test_log_axis_exactly_for_log_searched_keys_and_wide_basic_spans(tmp_path):
    from sweep.fake_data import write_optuna_sweep
    from sweep.report.scales import param_scales

    kinds = {}
    for seed in (0, 1):  # two studies of the same space: the same axes in both reports
        study = write_optuna_sweep(tmp_path / f"study_{seed}", 20, rng_seed=seed)
        runs = load_runs(study)
        assert runs["optimizer.momentum"].max() / runs["optimizer.momentum"].min() > 10  # would look "log" by span
        axes = panels(plot_params(runs, scales=param_scales(runs, [study])))
        kinds[seed] = {key: (ax.get_xscale(), ax.get_xlim()) for key, ax in axes.items()}
        assert {k: s for k, (s, _) in kinds[seed].items()} == {
            "optimizer.lr": "log", "optimizer.momentum": "linear", "model.num_hidden": "linear",
            "data.batch_size": "linear"}
        assert [t.get_text() for t in axes["data.batch_size"].get_xticklabels()] == ["16", "32", "64", "128"]
        lo, hi = axes["optimizer.lr"].get_xlim()
        assert lo < 1e-4 and hi > 0.3  # the whole searched range
    assert kinds[0] == kinds[1]
    # The study's record read back without the study: each trial's .hydra/hydra.yaml holds the space.
    (tmp_path / "study_0" / "study.db").unlink()
    runs = load_runs(tmp_path / "study_0")
    assert param_scales(runs, [tmp_path / "study_0"])["optimizer.momentum"].kind == "linear"
    # Basic multiruns: log where positive values span more than 10x, whatever the key's name.
    swept = {"model.num_hidden": [15, 30, 60, 120, 240], "optimizer.lr": [0.01, 0.05],
             "optimizer.momentum": [0, 0.5, 0.9]}
    full = basic_sweep(tmp_path / "full", swept)
    axes = panels(plot_params(load_runs(full), scales=param_scales(load_runs(full), [full])))
    assert {k: ax.get_xscale() for k, ax in axes.items()} == {
        "model.num_hidden": "log", "optimizer.lr": "linear", "optimizer.momentum": "linear"}
    # Mid-sweep (num_hidden=15 and 30 written yet: twice as wide): the scale the sweep declared, all the same.
    started = basic_sweep(tmp_path / "started", swept, written=12)
    runs = load_runs(started)
    assert set(runs["model.num_hidden"]) == {15, 30}
    assert param_scales(runs, [started])["model.num_hidden"].kind == "log"


def test_y_range_spans_four_pooled_seed_stds(tmp_path):
    from sweep.report.summary import pooled_seed_std

    sweep_dir = tmp_path / "close"
    values = {(4, 1): 0.900, (4, 2): 0.910, (8, 1): 0.901, (8, 2): 0.911, (16, 1): 0.902, (16, 2): 0.912}
    for n, ((hidden, seed), v) in enumerate(values.items()):
        exact_job(sweep_dir, f"job_{n}", [f"model.num_hidden={hidden}", f"seed={seed}"], v)
    runs = load_runs(sweep_dir)
    sigma = pooled_seed_std(runs)
    assert sigma == pytest.approx(0.01 / math.sqrt(2))
    fig = plot_params(runs)
    lo, hi = fig.axes[0].get_ylim()
    assert hi - lo >= 4 * sigma and lo <= 0.900 and 0.912 <= hi <= 1.005
    assert f"{sigma:.4f}" in fig.get_suptitle()


@pytest.mark.slow
def test_tick_labels_never_overlap(tmp_path):
    """Many long categories, many odd numbers on log and linear axes, seven panels; curves and history too."""
    from sweep.fake_data import write_optuna_sweep
    from sweep.report.scales import param_scales

    sweep_dir = tmp_path / "crowded"
    for n in range(60):
        exact_job(sweep_dir, f"job_{n}", [
            f"model.activation=activation_variant_{n % 30:02d}_with_a_long_name",
            f"optimizer.lr={10 ** (-5 + n / 12):.6g}", f"data.batch_size={2 ** (3 + n % 10)}",
            f"model.num_hidden={1 + 5 * n}", f"optimizer.weight_decay={0.000123456 * (1 + n % 9):.6g}",
            f"trainer.epochs={n % 13 + 1}", f"data.val_fraction={0.01 + 0.0123 * (n % 7):.4g}"], 0.8 + 0.003 * (n % 17))
    runs = load_runs(sweep_dir)
    figures = {"params": plot_params(runs, scales=param_scales(runs, [sweep_dir])),
               "curves": plot_curves(runs, load_histories(runs))}
    study = write_optuna_sweep(tmp_path / "study", 60)
    figures["history"] = plot_optuna_history(load_trials(study), direction="maximize", monitor="val_acc")
    for name, fig in figures.items():
        boxes = tick_label_boxes(fig)
        assert len(boxes) > (40 if name == "params" else 5), name
        assert not overlapping(boxes), name
    labels = [t.get_text() for t in panels(figures["params"])["model.activation"].get_xticklabels()]
    assert all(len(t) <= 18 for t in labels) and len(set(labels) - {""}) > 1  # shortened, still told apart


def test_report_curves_of_a_one_epoch_sweep_tick_epoch_1_only(tmp_path):
    sweep_dir = tmp_path / "one_epoch"
    for n in range(3):
        write_job(sweep_dir, f"job_{n}", [f"model.num_hidden={4 * (n + 1)}"], epochs=1, quality=0.8 + 0.01 * n)
    runs = load_runs(sweep_dir)
    fig = plot_curves(runs, load_histories(runs))
    drawn(fig)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert [t.get_text() for t in ax.get_xticklabels() if lo <= t.get_position()[0] <= hi] == ["1"]


# --------------------------------------------------------------------------- the best configuration


def test_best_configuration_is_the_best_mean_over_seeds_from_its_best_seed(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sweep_dir = tmp_path / "lucky"
    values = {15: (0.960, 0.900, 0.901), 30: (0.930, 0.920, 0.925), 60: (0.940, 0.935, 0.945)}
    names = {}
    for h, seeds in values.items():
        for seed, v in enumerate(seeds, start=1):
            names[(h, seed)] = f"job_{len(names)}"
            exact_job(sweep_dir, names[(h, seed)], [f"model.num_hidden={h}", f"seed={seed}"], v)
    runs = load_runs(sweep_dir)
    assert runs.iloc[0]["job"] == names[(15, 1)]  # the table still ranks jobs; the lucky seed tops it
    best = best_run(runs)
    assert best["job"] == names[(60, 3)]  # the best mean (0.94), and its best seed's checkpoint
    assert main([str(sweep_dir)]) == 0
    out = capsys.readouterr().out
    section = out.split("Best configuration\n")[1].split("\n\n")[0].splitlines()
    assert section[0].startswith("best configuration (the best mean over seeds): model.num_hidden=60: best_val_acc "
                                 "0.9400 ± 0.0050 (mean ± std over 3 completed seeds)")
    assert section[1].startswith(f"best: {names[(60, 3)]} (model.num_hidden=60, seed=3): best_val_acc 0.9450")
    assert section[2] == f"checkpoint: {sweep_dir / names[(60, 3)] / 'checkpoints' / 'best.pt'}"
    rerun = shlex.split(section[3].removeprefix("rerun: "))
    assert "model.num_hidden=60" in rerun and "seed=3" in rerun and rerun[-1].endswith(f"reruns/{names[(60, 3)]}")
    assert section[4].startswith(f"{names[(15, 1)]} (model.num_hidden=15, seed=1) is the best single job")
    assert section[4].endswith("a lucky seed")
    assert section[5].startswith("model.num_hidden=60 vs model.num_hidden=30: mean best_val_acc differs by")
    assert section[5].count("beyond seed noise") == 1
    md = (sweep_dir / "report.md").read_text()
    assert "## Best configuration" in md and section[0] in md
    star = next(line for line in plot_curves(runs, load_histories(runs)).axes[0].get_lines()
                if line.get_label().startswith("best: "))
    assert star.get_label().startswith(f"best: {names[(60, 3)]}")


def test_best_configuration_says_when_its_lead_is_within_noise(cls_sweep, tmp_path, capsys):
    from sweep.report import noise_verdict

    runs = load_runs(cls_sweep)
    summary = seed_summary(runs)
    verdict = noise_verdict(summary)
    assert "within seed noise" in verdict
    assert main([str(cls_sweep), "--out", str(tmp_path)]) == 0
    section = capsys.readouterr().out.split("Best configuration\n")[1].split("\n\n")[0]
    leader = summary.iloc[0]
    assert f"(the best mean over seeds): model.num_hidden={int(leader['model.num_hidden'])}: " in section
    assert f"{verdict}: the runner-up may be as good" in section and section.count("within seed noise") == 1
    assert best_run(runs)["model.num_hidden"] == leader["model.num_hidden"]


# --------------------------------------------------------------------------- parameter importance


@pytest.mark.slow
def test_importance_plot_of_an_optuna_sweep(tmp_path, capsys):
    from sweep.fake_data import write_optuna_sweep
    from sweep.report.plots import plot_importance
    from sweep.report.study import open_study, param_importances

    study_dir = write_optuna_sweep(tmp_path / "study", 30)
    assert main([str(study_dir)]) == 0
    out = capsys.readouterr().out
    path = study_dir / "report_importance.png"
    assert f"  {path}" in out.split("wrote:")[1] and "not drawn" not in out
    assert "![report_importance](report_importance.png)" in (study_dir / "report.md").read_text()
    assert_real_png(path)
    importances, title = param_importances(open_study(study_dir))
    assert set(importances) == {"model.num_hidden", "optimizer.lr", "optimizer.momentum", "data.batch_size"}
    assert sum(importances.values()) == pytest.approx(1.0) and list(importances.values()) == sorted(
        importances.values(), reverse=True)
    complete = (load_trials(study_dir)["state"] == "COMPLETE").sum()
    assert complete >= 20 and f"({complete} complete trials)" in title
    ax = plot_importance(importances, title=title).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(importances)[::-1]  # most important on top
    assert [round(p.get_width(), 6) for p in ax.patches] == [round(v, 6) for v in list(importances.values())[::-1]]
    assert not overlapping(tick_label_boxes(ax.figure))


@pytest.mark.slow
def test_importance_plot_is_skipped_with_one_line_saying_why(tmp_path, capsys, cls_sweep):
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from sweep.fake_data import write_optuna_sweep
    from sweep.study import write_results

    cases = {}
    cases["few"] = write_optuna_sweep(tmp_path / "few", 3), "has 3 complete trial(s)"
    cases["no study"] = optuna_sweep(tmp_path / "nostudy")[0], "no study.db in"
    damaged = write_optuna_sweep(tmp_path / "damaged", 12)
    (damaged / "study.db").write_bytes(b"not a database" * 100)
    cases["damaged"] = damaged, "cannot open Optuna storage sqlite:///"
    masked = write_optuna_sweep(tmp_path / "masked", 12)
    (masked / "study.db").unlink()
    results = yaml.safe_load((masked / rundir.RESULTS).read_text())
    (masked / rundir.RESULTS).write_text(yaml.safe_dump({**results, "storage": "postgresql://me:***@db.example/s"}))
    cases["masked"] = masked, "recorded without its password: set $SWEEP_OPTUNA_STORAGE"
    single = tmp_path / "single"
    single.mkdir()
    study = optuna.create_study(study_name="one", storage=f"sqlite:///{single / 'study.db'}", direction="maximize")
    for i in range(12):
        study.add_trial(create_trial(params={"optimizer.lr": 10 ** (-i / 4)}, value=0.9 - 0.01 * i,
                                     distributions={"optimizer.lr": FloatDistribution(1e-4, 1.0, log=True)}))
    write_results(study, single, f"sqlite:///{single / 'study.db'}")
    cases["one parameter"] = single, "searched optimizer.lr alone"
    for name, (sweep_dir, reason) in cases.items():
        assert main([str(sweep_dir)]) == 0, name
        out = capsys.readouterr().out
        line = next(line for line in out.splitlines() if line.startswith("report_importance.png not drawn: "))
        assert reason in line, (name, line)
        assert not (sweep_dir / "report_importance.png").exists() and line in (sweep_dir / "report.md").read_text()
        assert (sweep_dir / "report_optuna_history.png").is_file()
    assert main([str(cls_sweep), "--out", str(tmp_path / "basic")]) == 0  # a basic multirun: no study, no line
    assert "report_importance" not in capsys.readouterr().out


def test_optuna_history_of_one_trial_ticks_whole_trial_numbers(tmp_path):
    from sweep.fake_data import write_optuna_sweep

    fig = plot_optuna_history(load_trials(write_optuna_sweep(tmp_path / "one", 1)), monitor="val_acc")
    drawn(fig)
    ax = fig.axes[0]
    lo, hi = ax.get_xlim()
    assert [t.get_text() for t in ax.get_xticklabels() if lo <= t.get_position()[0] <= hi] == ["0"]
