"""The report's figures, drawn without pyplot (no GUI backend, no global state) and quick for 500 jobs.

Each function returns its Figure (to show or adjust in a notebook) and saves a PNG when given a path.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np
import pandas as pd

from sweep.plots import LOG_RATIO, metric_label, readable_log_axis, title_lines
from sweep.report.runs import param_columns, ranked_metric
from sweep.report.scales import Scale, param_scales
from sweep.report.summary import best_run, number_text, pooled_seed_std
from sweep.report.ticks import legible_ticks, short_labels

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.transforms import Transform

MAX_LEGEND_JOBS = 10  # above this, curves are drawn per status (one legend entry each), not per job
STATUS_COLORS = {"completed": "tab:blue", "pruned": "tab:orange", "failed": "tab:red", "interrupted": "tab:purple",
                 "running": "tab:green"}
SPLITS = {"best_val_": "Best validation", "val_": "Validation", "train_": "Training", "test_": "Test"}
DODGE_SPREAD_PT, DODGE_STEP_PT = 30.0, 7.0  # configurations sharing a value sit side by side, this far apart
BESIDE_PT = 3.0  # a configuration's seeds are drawn this far left of its error bar, above it, so both show
MIN_NOISE_SPANS = 4.0  # plot_params' y range spans at least this many pooled seed standard deviations
STOPPED = {"pruned", "failed", "interrupted"}  # curves that end before trainer.epochs, marked with an x


def _save(fig: Figure, path: Optional[Path]) -> Figure:
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def _short_keys(params: list[str]) -> dict[str, str]:
    """"model.num_hidden" -> "num_hidden" in labels, unless two parameters would then share a name."""
    last = [p.rsplit(".", 1)[-1] for p in params]
    return {p: s if last.count(s) == 1 else p for p, s in zip(params, last)}


def _job_label(row: pd.Series, params: list[str], width: int = 80) -> str:
    """"job_3 num_hidden=30 lr=0.01 [pruned]", cut to `width` characters so the legend leaves the chart its room."""
    short = _short_keys(params)
    values = " ".join(f"{short[p]}={row[p]:.3g}" if isinstance(row[p], float) else f"{short[p]}={row[p]}"
                      for p in params if not pd.isna(row[p]))
    label = f"{row['job']} {values}".strip()
    status = "" if row["status"] == "completed" else f" [{row['status']}]"
    return (label if len(label) <= width else label[: width - 1] + "…") + status


def _curves(histories: pd.DataFrame, metric: str) -> dict[str, np.ndarray]:
    """job -> (epochs, 2) array of (epoch, metric), split at job boundaries without a groupby."""
    h = histories.loc[histories[metric].notna(), ["job", "epoch", metric]] if metric in histories else histories[:0]
    if h.empty:
        return {}
    jobs = h["job"].to_numpy()
    xy = h[["epoch", metric]].to_numpy(dtype=float)
    cuts = np.flatnonzero(jobs[1:] != jobs[:-1]) + 1
    return {jobs[start]: part for start, part in zip(np.r_[0, cuts], np.split(xy, cuts))}


def axis_label(column: str) -> str:
    """"Validation accuracy" for val_acc, "Best validation RMSE" for best_val_rmse, "Training loss" for train_loss."""
    prefix = next((p for p in SPLITS if column.startswith(p)), "")
    name = metric_label(column[len(prefix):])
    if not prefix:
        return name
    return f"{SPLITS[prefix]} {name if name.isupper() else name.lower()}"


def _is_accuracy(column: str) -> bool:
    return column.endswith("_acc") or column == "acc"


def _pad_limits(ax: Axes, values: np.ndarray, upper: Optional[float] = None, log_ok: bool = False) -> None:
    """y limits that frame the data with a margin (and stop at 1.0 for accuracies); with log_ok, a log
    axis for positive values spanning LOG_RATIO or more (a regression sweep's diverging jobs)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return
    lo, hi = float(finite.min()), float(finite.max())
    if log_ok and lo > 0 and hi / lo >= LOG_RATIO:
        readable_log_axis(ax, lo, hi)
        f = (hi / lo) ** 0.04
        ax.set_ylim(lo / f, hi * f)
        return
    pad = max((hi - lo) * 0.06, abs(hi) * 0.005) or 0.01  # at least half a percent of the values' size
    top = hi + pad if upper is None else min(upper + 0.005, hi + pad)
    ax.set_ylim(lo - pad, top)


def plot_curves(runs: pd.DataFrame, histories: pd.DataFrame, path: Optional[Path] = None,
                metric: Optional[str] = None) -> Figure:
    """Every job's validation curve on one chart, the best job (chosen on validation) drawn on top.

    `metric` is a history column (default: the monitor, e.g. val_acc or val_rmse). Pruned and failed
    jobs' curves simply stop early, with an x at their last epoch.
    """
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    ranked_on, direction = ranked_metric(runs)
    metric = metric or ranked_on.removeprefix("best_")
    curves = _curves(histories, metric)
    params = param_columns(runs)
    best = best_run(runs)
    with_curve = runs[runs["job"].isin(curves.keys())]
    legend_rows = math.ceil((min(len(with_curve), MAX_LEGEND_JOBS + 1) + 3) / 2)
    fig = Figure(figsize=(11, 5.5 + 0.22 * legend_rows), layout="constrained")
    ax = fig.subplots()
    others = with_curve[with_curve["job"] != (best["job"] if best is not None else None)]
    ends = []  # last points of curves that stopped early
    if len(with_curve) <= MAX_LEGEND_JOBS:
        colors = iter(f"C{i}" for i in range(10))
        for _, row in with_curve.iterrows():
            xy = curves[row["job"]]
            is_best = best is not None and row["job"] == best["job"]
            label = ("best: " if is_best else "") + _job_label(row, params)
            ax.plot(xy[:, 0], xy[:, 1], color=next(colors), lw=2.8 if is_best else 1.3, zorder=3 if is_best else 2,
                    alpha=1.0 if is_best else 0.85, marker="o" if len(xy) <= 20 else None, ms=3, label=label)
            if row["status"] in STOPPED:
                ends.append(xy[-1])
    else:
        statuses = sorted(others["status"].unique(), key=lambda s: s != "completed")  # the many first, below
        for status in statuses:
            segs = [curves[j] for j in others.loc[others["status"] == status, "job"]]
            color = STATUS_COLORS.get(status, "tab:gray")
            ax.add_collection(LineCollection(segs, colors=color, linewidths=0.7,
                                             alpha=0.35 if status == "completed" else 0.8))
            jobs = f"{len(segs)} job" + ("" if len(segs) == 1 else "s")
            ax.plot([], [], color=color, lw=2, label=f"{status} ({jobs})")  # a legible legend entry
            if status in STOPPED:
                ends += [s[-1] for s in segs]
        if best is not None and best["job"] in curves:
            xy = curves[best["job"]]
            ax.plot(xy[:, 0], xy[:, 1], color="black", lw=2.5, zorder=3, label="best: " + _job_label(best, params))
        ax.autoscale_view()
    if ends:
        e = np.array(ends)
        ax.scatter(e[:, 0], e[:, 1], marker="x", color="black", s=18, lw=0.8, zorder=4, label="stopped early")
    if best is not None and best["job"] in curves and not pd.isna(best["best_epoch"]):
        xy = curves[best["job"]]
        at = xy[xy[:, 0] == best["best_epoch"], 1]
        y = best.get(f"best_{metric}", math.nan)  # the value at the selected epoch, as metrics.json has it
        y = at[0] if pd.isna(y) and at.size else y
        if not pd.isna(y):
            ax.plot([best["best_epoch"]], [y], marker="*", ms=14, color="gold", mec="black", zorder=5, ls="none",
                    label="best: selected epoch")
    all_y = np.concatenate([c[:, 1] for c in curves.values()]) if curves else np.array([])
    _pad_limits(ax, all_y, upper=1.0 if _is_accuracy(metric) else None, log_ok=not _is_accuracy(metric))
    if curves:  # whole epochs with room at both ends: a one-epoch sweep gets the one tick 1
        epochs = np.concatenate([c[:, 0] for c in curves.values()])
        pad = max(0.5, 0.03 * (epochs.max() - epochs.min()))
        ax.set_xlim(epochs.min() - pad, epochs.max() + pad)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    label = axis_label(metric)
    better = f" ({'higher' if direction == 'maximize' else 'lower'} is better)" if metric == ranked_on[5:] else ""
    ax.set(xlabel="Epoch", ylabel=label, title=f"{label} per epoch{better}, {len(curves)} of {len(runs)} jobs")
    ax.grid(alpha=0.3)
    if curves:  # below the chart: the curves keep the full width, and long labels fit
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    else:
        ax.text(0.5, 0.5, "no job has finished an epoch yet", ha="center", va="center", transform=ax.transAxes)
    legible_ticks(fig)
    return _save(fig, path)


def _categories(values: pd.Series, listed: tuple = ()) -> list:
    """A categorical panel's values in order, every listed one (a choice's) included: numbers (an Optuna
    choice of batch sizes) by value, anything else as text."""
    distinct = [*listed, *values.dropna().unique()]
    if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in distinct):
        return sorted(set(float(v) for v in distinct))
    return sorted({_as_text(v) for v in distinct})


def _as_text(value: Any) -> str:
    """A value as its override spells it (true, null), as the job's column holds it."""
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _slot_offsets(x: np.ndarray, slot: np.ndarray, spread: float, step: float) -> np.ndarray:
    """Each row's sideways offset: the distinct slots (>= 0) that share an x value sit side by side, `step`
    apart (less when many share it, never wider than `spread`), centred on x; rows of slot -1 stay on x."""
    offsets = np.zeros(len(x))
    for value in np.unique(x[np.isfinite(x) & (slot >= 0)]):
        here = (x == value) & (slot >= 0)
        slots = sorted(set(slot[here].tolist()))
        gap = min(step, spread / (len(slots) - 1)) if len(slots) > 1 else 0.0
        rank = {s: (i - (len(slots) - 1) / 2) * gap for i, s in enumerate(slots)}
        offsets[here] = [rank[s] for s in slot[here]]
    return offsets


def _shifted(ax: Axes, points: float) -> Transform:
    """transData moved `points` to the right: a sideways dodge that leaves the data's x values as they are."""
    from matplotlib.transforms import ScaledTranslation

    return ax.transData + ScaledTranslation(points / 72, 0, ax.figure.dpi_scale_trans)


def _x_axis(ax: Axes, scale: Scale, values: np.ndarray) -> None:
    """A numeric panel's x axis, log or linear: an Optuna range is shown whole; a basic multirun's few round
    values (not a random search) are ticked exactly, with room around them."""
    listed = np.array([float(v) for v in scale.values], dtype=float) if scale.values else np.array([])
    values = np.unique(np.r_[values[np.isfinite(values)], listed])
    lo, hi = scale.bounds if scale.bounds is not None else ((values.min(), values.max()) if values.size else (0, 1))
    if scale.kind == "log" and lo > 0:
        readable_log_axis(ax, lo, hi if hi > lo else lo * 10, "x")
    if scale.bounds is not None:
        _frame_x(ax, lo, hi, 0.03)
    elif 0 < values.size <= 12 and all(f"{v:.3g}" == f"{v:g}" for v in values):
        ax.minorticks_off()
        ax.set_xticks(values, [f"{v:g}" for v in values])
        _frame_x(ax, lo, hi, 0.08)


def _frame_x(ax: Axes, lo: float, hi: float, margin: float) -> None:
    """x limits from lo to hi with a margin of that fraction of the span (of its logarithm on a log axis)."""
    if ax.get_xscale() == "log":
        f = (hi / lo) ** margin if hi > lo else 2.0
        ax.set_xlim(lo / f, hi * f)
    else:
        pad = margin * (hi - lo) if hi > lo else max(abs(lo), 1.0) * 0.5
        ax.set_xlim(lo - pad, hi + pad)


def _plot_param(ax: Axes, runs: pd.DataFrame, key: str, column: str, scale: Scale, config: np.ndarray,
                stats: pd.DataFrame) -> list[float]:
    """`column` (the monitored one) of each job against one parameter, one point per job; where a
    configuration was run with several seeds (config >= 0), its mean ± std over them as an error bar at its
    value, its seeds' points beside it. Returns the y values drawn (for the shared y range)."""
    y = runs[column].to_numpy(dtype=float)
    status = runs["status"].to_numpy()
    categorical = scale.kind == "category" or runs[key].dtype.kind not in "iuf"  # numbers only on a number axis
    if categorical:
        cats = _categories(runs[key], scale.values)
        index = {c: float(i) for i, c in enumerate(cats)}
        as_text = bool(cats) and isinstance(cats[0], str)
        x = np.array([np.nan if pd.isna(v) else index.get(_as_text(v) if as_text else float(v), np.nan)
                      for v in runs[key]])
    else:
        x = runs[key].to_numpy(dtype=float)
    drawn = np.isfinite(x) & np.isfinite(y) & np.isin(status, ["completed", "pruned"])
    grouped = np.where(drawn & (config >= 0), config, -1)
    if categorical:  # side by side within a category: configurations, else single jobs
        # Single jobs in a shuffled order: the rows are ranked by value, and slots in rank order would draw a trend.
        shuffled = np.random.default_rng(0).permutation(len(runs))
        slot = np.where(grouped >= 0, grouped, np.where(drawn, len(runs) + shuffled, -1))
        x = x + _slot_offsets(x, slot, spread=0.6, step=0.3)
        offsets = np.zeros(len(x))
    else:  # in points: the values on the axis stay exact
        offsets = _slot_offsets(x, grouped, spread=DODGE_SPREAD_PT, step=DODGE_STEP_PT)
    beside = offsets - np.where(grouped >= 0, BESIDE_PT, 0.0)  # a configuration's seeds just left of its bar
    for shift in np.unique(beside[drawn]):
        at = drawn & (beside == shift)
        transform = _shifted(ax, shift) if shift else ax.transData
        done, pruned = at & (status == "completed"), at & (status == "pruned")
        ax.scatter(x[done], y[done], s=16, alpha=0.55, color="tab:blue", label="completed job", transform=transform,
                   zorder=4)
        if pruned.any():
            ax.scatter(x[pruned], y[pruned], s=22, marker="x", color="tab:orange", label="pruned job (partial)",
                       transform=transform, zorder=4)
    bars = stats.loc[stats.index.isin(np.unique(grouped[grouped >= 0]))]
    ys = list(y[drawn])
    if len(bars):
        first = {c: i for i, c in reversed(list(enumerate(grouped))) if c >= 0}
        bx = np.array([x[first[c]] for c in bars.index])
        shifts = np.array([offsets[first[c]] for c in bars.index])
        many = len(bars) > 12
        for shift in np.unique(shifts):
            at = shifts == shift
            ax.errorbar(bx[at], bars["mean"].to_numpy()[at], yerr=bars["std"].to_numpy()[at], fmt="o", color="black",
                        ms=3.5 if many else 5, capsize=2 if many else 4, lw=0.9 if many else 1.5, zorder=3,
                        alpha=0.75 if many else 1.0, transform=_shifted(ax, shift) if shift else ax.transData,
                        label="mean ± std over seeds")
        ys += [*(bars["mean"] - bars["std"]), *(bars["mean"] + bars["std"])]
    if categorical:
        ax.set_xticks(range(len(cats)), short_labels([f"{c:g}" if isinstance(c, float) else str(c) for c in cats]))
        ax.set_xlim(-0.5, len(cats) - 0.5)
    else:
        _x_axis(ax, scale, runs[key].to_numpy(dtype=float))
    ax.set(xlabel=key + (" (log scale)" if ax.get_xscale() == "log" else ""), title=key)
    ax.grid(alpha=0.3)
    return ys


def _configuration_ids(jobs: pd.DataFrame, groups: list[str]) -> pd.Series:
    """A number per job for its configuration, in the order of the configurations' values (not of their
    results: configurations side by side at one value must not line up by rank)."""
    try:
        return jobs.groupby(groups, dropna=False, sort=True).ngroup()
    except TypeError:  # values of mixed kinds in one column: the order they come in
        return jobs.groupby(groups, dropna=False, sort=False).ngroup()


def _y_limits(values: np.ndarray, sigma: Optional[float], accuracy: bool) -> tuple[float, float]:
    """Limits that frame the values with a margin and span at least MIN_NOISE_SPANS seed standard deviations,
    so that differences of the size seeds make look as small as they are; accuracies stop near 1."""
    lo, hi = float(values.min()), float(values.max())
    pad = max((hi - lo) * 0.06, abs(hi) * 0.005) or 0.01
    low, high = lo - pad, hi + pad
    need = MIN_NOISE_SPANS * (sigma or 0.0)
    if high - low < need:
        centre = (low + high) / 2
        low, high = centre - need / 2, centre + need / 2
    if accuracy and high > 1.005 >= hi:
        low, high = low - (high - 1.005), 1.005
    return low, high


def plot_params(runs: pd.DataFrame, path: Optional[Path] = None, scales: Optional[dict[str, Scale]] = None) -> Figure:
    """The monitored column (best_val_acc, best_val_rmse, ...) against each swept parameter: one point per
    job; with seeds swept, each configuration's mean ± std over its seeds as an error bar at its value, and a
    y range of at least MIN_NOISE_SPANS pooled seed standard deviations.

    `scales` maps parameters to their Scale (sweep.report.scales.param_scales, which write_plots gives from
    the sweep folders' records); a parameter left out gets the scale its values call for.
    """
    from matplotlib.figure import Figure

    column, direction = ranked_metric(runs)
    params = param_columns(runs)
    shown = [p for p in params if p != "seed"] or params
    scales = {**param_scales(runs), **(scales or {})}
    seeds = "seed" in params and len(params) > 1
    config = np.full(len(runs), -1)
    stats = pd.DataFrame(columns=["mean", "std", "count"])
    if seeds:  # configurations: every swept value but the seed; only completed jobs are finished results
        done = (runs["status"] == "completed") & runs[column].notna()
        ids = _configuration_ids(runs[done], [p for p in params if p != "seed"])
        stats = runs.loc[done, column].groupby(ids).agg(["mean", "std", "count"])
        stats = stats[stats["count"] >= 2]
        config[done.to_numpy()] = np.where(ids.isin(stats.index), ids, -1)
    ncols = min(3, len(shown))
    nrows = math.ceil(len(shown) / ncols)
    fig = Figure(figsize=(max(7.5, 4.4 * ncols + 0.6), 3.6 * nrows + 1.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharey=True)).ravel()
    ys: list[float] = []
    for ax, key in zip(axes, shown):
        ys += _plot_param(ax, runs, key, column, scales[key], config if key != "seed" else
                          np.full(len(runs), -1), stats)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    values = np.array(ys, dtype=float)
    values = values[np.isfinite(values)]
    sigma = pooled_seed_std(runs) if "seed" in params else None
    accuracy = _is_accuracy(column)
    if values.size:
        if not accuracy and values.min() > 0 and values.max() / values.min() >= LOG_RATIO:
            readable_log_axis(axes[0], values.min(), values.max())  # shared: every panel
            f = (values.max() / values.min()) ** 0.04
            axes[0].set_ylim(values.min() / f, max(values.max() * f, values.min() / f + MIN_NOISE_SPANS * (sigma or 0)))
        else:
            axes[0].set_ylim(*_y_limits(values, sigma, accuracy))
    label = axis_label(column)
    for ax in axes[::ncols]:
        ax.set_ylabel(label)
    better = "higher" if direction == "maximize" else "lower"
    if sigma is not None and not seeds:  # seed alone is swept: one configuration
        noise = f"one point per seed of one configuration: their spread is seed noise (std {number_text(sigma)})"
    elif sigma is not None:
        noise = (f"one point per job; error bars: mean ± std over seeds; the y range spans at least "
                 f"{MIN_NOISE_SPANS:g} seed std ({number_text(sigma)})")
    elif seeds:
        noise = "one point per job; no configuration has two completed seeds yet: no noise estimate"
    else:
        noise = "one point per job, one seed per configuration: no noise estimate"
    width = fig.get_figwidth() - 0.3
    fig.suptitle("\n".join([*title_lines(f"{label} per swept parameter ({better} is better)", width),
                             *title_lines(noise, width)]))
    handles, labels = axes[0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    fig.legend(unique.values(), unique.keys(), loc="outside lower center", ncols=len(unique), fontsize=8,
               frameon=False)
    legible_ticks(fig)
    return _save(fig, path)


def plot_importance(importances: dict[str, float], path: Optional[Path] = None, title: str = "") -> Figure:
    """Horizontal bars: each searched parameter's importance (optuna.importance, normalised to sum 1), the
    most important on top, its full name beside its bar."""
    from matplotlib.figure import Figure

    names = list(importances)[::-1]  # barh draws bottom-up
    values = np.array([importances[n] for n in names], dtype=float)
    width = min(12.0, 6.0 + 0.07 * max(map(len, names), default=0))
    fig = Figure(figsize=(width, 1.6 + 0.42 * len(names)), layout="constrained")
    ax = fig.subplots()
    ax.barh(range(len(names)), values, color="tab:blue", height=0.6)
    ax.set_yticks(range(len(names)), names)
    top = float(values.max()) if values.size and values.max() > 0 else 1.0
    for i, v in enumerate(values):
        ax.text(v + top * 0.01, i, f"{v:.2f}", va="center", fontsize=9)
    ax.set_xlim(0, top * 1.15)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set(xlabel="Importance (PED-ANOVA, normalised to sum 1)", title=title or "Parameter importance")
    ax.grid(axis="x", alpha=0.3)
    legible_ticks(fig)
    return _save(fig, path)


def plot_optuna_history(trials: pd.DataFrame, path: Optional[Path] = None, direction: str = "maximize",
                        title: str = "", monitor: Optional[str] = None) -> Figure:
    """Each trial's value against its number, pruned and failed trials marked, and the best value so far
    in `direction`. `monitor` (e.g. val_rmse) names the value on the y axis."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(10, 5), layout="constrained")
    ax = fig.subplots()
    number = trials["number"].to_numpy(dtype=float)
    value = trials["value"].to_numpy(dtype=float)
    state = trials["state"].astype(str).to_numpy()
    has_value = np.isfinite(value)
    complete = has_value & (state == "COMPLETE")
    ax.scatter(number[complete], value[complete], s=22, color="tab:blue", zorder=3, label="complete trial")
    pruned = has_value & (state == "PRUNED")
    if pruned.any():
        ax.scatter(number[pruned], value[pruned], s=26, marker="v", color="tab:orange", zorder=3,
                   label="pruned trial (last value)")
    if complete.any():
        running_best = (np.fmax if direction == "maximize" else np.fmin).accumulate(value[complete])
        xs = np.r_[number[complete], number.max()]
        ax.step(xs, np.r_[running_best, running_best[-1]], where="post", color="tab:green", lw=2, zorder=2,
                label="best so far")
    # Trials without a value sit on a rug at the bottom, by state.
    rug = ax.get_xaxis_transform()
    for name, color, marker in (("FAIL", "tab:red", "x"), ("PRUNED", "tab:orange", "v"), ("RUNNING", "tab:gray", "|")):
        where = ~has_value & (state == name)
        if where.any():
            ax.scatter(number[where], np.full(where.sum(), 0.03), transform=rug, marker=marker, color=color, s=40,
                       clip_on=False, label=f"{name.lower()} trial (no value)")
    _pad_limits(ax, value, upper=1.0 if monitor and _is_accuracy(monitor) else None,
                log_ok=not (monitor and _is_accuracy(monitor)))
    if (~has_value).any() and has_value.any():  # room for the rug below the lowest value (minimize: the best)
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo / (hi / lo) ** 0.12 if ax.get_yscale() == "log" else lo - 0.12 * (hi - lo), hi)
    if number.size:  # whole trial numbers with room at both ends: one trial gets the one tick 0
        pad = max(0.5, 0.02 * (number.max() - number.min()))
        ax.set_xlim(number.min() - pad, number.max() + pad)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ylabel = f"Trial value: {axis_label(monitor)}" if monitor else "Trial value (validation objective)"
    ax.set(xlabel="Trial number", ylabel=ylabel,
           title=f"Optimisation history ({direction}){': ' + title if title else ''}")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    legible_ticks(fig)
    return _save(fig, path)
