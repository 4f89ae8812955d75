"""The report's figures, drawn without pyplot (no GUI backend, no global state) and quick for 500 jobs.

Each function returns its Figure (to show or adjust in a notebook) and saves a PNG when given a path.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
import pandas as pd

from sweep.plots import LOG_RATIO, metric_label, readable_log_axis
from sweep.report.runs import param_columns, ranked_metric
from sweep.report.summary import best_run

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_LEGEND_JOBS = 10  # above this, curves are drawn per status (one legend entry each), not per job
STATUS_COLORS = {"completed": "tab:blue", "pruned": "tab:orange", "failed": "tab:red", "interrupted": "tab:purple",
                 "running": "tab:green"}
SPLITS = {"best_val_": "Best validation", "val_": "Validation", "train_": "Training", "test_": "Test"}
LOG_KEYS = ("lr", "weight_decay")  # parameters searched on a log scale
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
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    label = axis_label(metric)
    better = f" ({'higher' if direction == 'maximize' else 'lower'} is better)" if metric == ranked_on[5:] else ""
    ax.set(xlabel="Epoch", ylabel=label, title=f"{label} per epoch{better}, {len(curves)} of {len(runs)} jobs")
    ax.grid(alpha=0.3)
    if curves:  # below the chart: the curves keep the full width, and long labels fit
        fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    else:
        ax.text(0.5, 0.5, "no job has finished an epoch yet", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, path)


def _log_axis(key: str, values: np.ndarray) -> bool:
    """Learning rates and weight decays, or any positive parameter spanning a decade or more (15..240 units)."""
    if values.size == 0 or not (values > 0).all():
        return False
    return key.rsplit(".", 1)[-1] in LOG_KEYS or values.max() / values.min() >= 10


def _plot_param(ax: Axes, runs: pd.DataFrame, key: str, column: str) -> None:
    """`column` (the monitored one) of each job against one parameter, and the mean ± std per value
    where values repeat."""
    acc = runs[column].to_numpy(dtype=float)
    numeric = runs[key].dtype.kind in "if"
    if numeric:
        x = runs[key].to_numpy(dtype=float)
    else:
        cats = sorted(runs[key].dropna().astype(str).unique())
        x = runs[key].map({c: i for i, c in enumerate(cats)}).to_numpy(dtype=float)
        ax.set_xticks(range(len(cats)), cats, rotation=30 if max(map(len, cats), default=0) > 6 else 0)
    ok = np.isfinite(x) & np.isfinite(acc)
    done = ok & (runs["status"] == "completed").to_numpy()
    pruned = ok & (runs["status"] == "pruned").to_numpy()
    ax.scatter(x[done], acc[done], s=16, alpha=0.5, color="tab:blue", label="completed job")
    if pruned.any():
        ax.scatter(x[pruned], acc[pruned], s=22, marker="x", color="tab:orange", label="pruned job (partial)")
    stats = pd.DataFrame({"x": x[done], "acc": acc[done]}).groupby("x")["acc"].agg(["mean", "std", "count"])
    if (stats["count"] >= 2).any():
        ax.errorbar(stats.index, stats["mean"], yerr=stats["std"].fillna(0.0), fmt="-o" if numeric else "o",
                    color="black", ms=5, capsize=4, lw=1.5, zorder=3, label="mean ± std")
    if numeric:
        if _log_axis(key, x[ok]):
            ax.set_xscale("log")
        values = np.unique(x[ok])
        if 0 < values.size <= 12 and all(f"{v:.3g}" == f"{v:g}" for v in values):
            # a grid of round values (not a random search): tick exactly the values tried, with room around them
            ax.minorticks_off()
            ax.set_xticks(values, [f"{v:g}" for v in values], rotation=30 if values.size > 6 else 0)
            lo, hi = values[0], values[-1]
            if ax.get_xscale() == "log":
                f = (hi / lo) ** 0.08 if hi > lo else 2.0
                ax.set_xlim(lo / f, hi * f)
            else:
                pad = 0.08 * (hi - lo) if hi > lo else max(abs(lo), 1.0) * 0.5
                ax.set_xlim(lo - pad, hi + pad)
    else:
        ax.set_xlim(-0.5, len(cats) - 0.5)
    ax.set(xlabel=key, title=key)
    ax.grid(alpha=0.3)


def plot_params(runs: pd.DataFrame, path: Optional[Path] = None) -> Figure:
    """The monitored column (best_val_acc, best_val_rmse, ...) against each swept parameter; with seeds
    swept, the mean ± std over seeds per value."""
    from matplotlib.figure import Figure

    column, direction = ranked_metric(runs)
    params = param_columns(runs)
    shown = [p for p in params if p != "seed"] or params
    ncols = min(3, len(shown))
    nrows = math.ceil(len(shown) / ncols)
    fig = Figure(figsize=(max(7.0, 4.4 * ncols + 0.6), 3.6 * nrows + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharey=True)).ravel()
    for ax, key in zip(axes, shown):
        _plot_param(ax, runs, key, column)
    for ax in axes[len(shown):]:
        ax.set_visible(False)
    shown_y = runs.loc[runs["status"].isin(["completed", "pruned"]), column].to_numpy(dtype=float)
    shown_y = shown_y[np.isfinite(shown_y)]
    if not _is_accuracy(column) and shown_y.size and shown_y.min() > 0 and shown_y.max() / shown_y.min() >= LOG_RATIO:
        readable_log_axis(axes[0], shown_y.min(), shown_y.max())  # shared: every panel; limits stay automatic
    label = axis_label(column)
    for ax in axes[::ncols]:
        ax.set_ylabel(label)
    seeds = "seed" in params and len(params) > 1
    better = "higher" if direction == "maximize" else "lower"
    fig.suptitle(f"{label} per swept parameter\n({better} is better" + (", mean ± std over seeds)" if seeds else ")"))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=8, frameon=False)
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
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ylabel = f"Trial value: {axis_label(monitor)}" if monitor else "Trial value (validation objective)"
    ax.set(xlabel="Trial number", ylabel=ylabel,
           title=f"Optimisation history ({direction}){': ' + title if title else ''}")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return _save(fig, path)
