"""A run's curves.png, drawn in the training process without pyplot (no GUI backend, no global state).

Two panels against epoch: the loss (train and validation), then the monitored metric (train_<m> and
val_<m>; with trainer.monitor=val_loss, the task's first other metric in the history), the selected
epoch marked on both with its validation value. Every call builds its own figure, so a figure never
depends on the ones drawn before it (a sweep draws one per job, possibly in several threads).
matplotlib is imported on the first call only: a process that draws nothing never pays for it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from sweep.atomic import atomic_write_with

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

NAMES = {"loss": "Loss", "acc": "Accuracy", "rmse": "RMSE", "mae": "MAE"}
LOG_RATIO = 30.0  # a positive, non-accuracy panel whose values span this factor gets a log axis
DPI = 100


def metric_label(metric: str) -> str:
    """"Accuracy" for acc, val_acc or train_acc; "RMSE" for rmse; other names as they are."""
    name = metric.split("_", 1)[1] if metric.startswith(("val_", "train_")) else metric
    return NAMES.get(name, name)


def panel_metrics(history: list[dict], monitor: str) -> list[str]:
    """The metric names of the panels: loss, then the monitored metric (or the first other one)."""
    monitored = monitor.removeprefix("val_")
    if monitored != "loss":
        return ["loss", monitored]
    columns = history[0] if history else {}
    other = next((k[len("val_"):] for k in columns if k.startswith("val_") and k != "val_loss"), None)
    return ["loss"] if other is None else ["loss", other]


def readable_log_axis(ax: Axes, lo: float, hi: float) -> None:
    """A log y axis labelled with plain numbers (0.5, 1, 2, 5, 10 rather than 10^0, 10^1)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    subs = (1.0, 2.0, 5.0) if math.log10(hi / lo) < 2.5 else (1.0,)
    ax.yaxis.set_major_locator(LogLocator(subs=subs))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _number(value: object) -> float:
    """A history cell as a float; missing, empty, NaN or infinite: NaN (a gap in the line)."""
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def _value_text(x: float) -> str:
    return f"{x:.3f}" if x == 0 or 1e-3 <= abs(x) < 1e4 else f"{x:.3g}"


def _panel(ax: Axes, history: list[dict], metric: str, best_epoch: Optional[int], monitored: bool) -> None:
    from matplotlib.ticker import MaxNLocator

    epochs = [int(r["epoch"]) for r in history]
    ax.margins(y=0.08)
    series = {split: [_number(r.get(f"{split}_{metric}")) for r in history] for split in ("train", "val")}
    for split, label in (("train", "Train"), ("val", "Validation")):
        ax.plot(epochs, series[split], marker="o", ms=3, lw=1.5, label=label, color="C0" if split == "train" else "C1")
    finite = [y for ys in series.values() for y in ys if not math.isnan(y)]
    if metric != "acc" and finite and min(finite) > 0 and max(finite) / min(finite) >= LOG_RATIO:
        readable_log_axis(ax, min(finite), max(finite))
    if best_epoch in epochs:
        y = series["val"][epochs.index(best_epoch)]
        ax.axvline(best_epoch, color="grey", ls="--", lw=1, zorder=1)
        if not math.isnan(y):
            ax.plot([best_epoch], [y], ls="none", marker="o", ms=8, mfc="none", mec="black", mew=1.5, zorder=4)
            # Text on the side of the point with more room: never across the frame.
            lo, hi = ax.get_ylim()
            scale = (lambda v: math.log(v)) if ax.get_yscale() == "log" else (lambda v: v)
            upper = (scale(y) - scale(lo)) / ((scale(hi) - scale(lo)) or 1.0) > 0.5
            right = len(epochs) > 1 and best_epoch > (epochs[0] + epochs[-1]) / 2
            ax.annotate(f"val {_value_text(y)}", (best_epoch, y), textcoords="offset points",
                        xytext=(-8 if right else 8, -12 if upper else 8), ha="right" if right else "left",
                        va="top" if upper else "bottom", fontsize=8,
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8}, zorder=5)
    first, last = (epochs[0], epochs[-1]) if epochs else (1, 1)
    pad = max(0.5, 0.03 * (last - first))
    ax.set_xlim(first - pad, last + pad)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # one epoch: one tick, 1
    name = metric_label(metric)
    ax.set(xlabel="Epoch", ylabel=name, title=name + (" (monitored)" if monitored else ""))
    ax.grid(alpha=0.3)


def curves_figure(history: list[dict], best_epoch: Optional[int], monitor: str, title: str = "") -> Figure:
    """The figure of draw_curves, not saved (tests and notebooks look at it)."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    metrics = panel_metrics(history, monitor)
    fig = Figure(figsize=(5 * len(metrics), 4.4))
    fig.subplots_adjust(left=0.08 if len(metrics) > 1 else 0.14, right=0.98, bottom=0.12, top=0.8,
                        wspace=0.25)  # fixed margins: layout engines cost as much as the drawing
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics):
        _panel(ax, history, metric, best_epoch, monitored=f"val_{metric}" == monitor)
    best = next((r for r in history if r["epoch"] == best_epoch), None)
    selected = f"Selected epoch {best_epoch}" if best is not None else "No epoch selected"
    if best is not None and not math.isnan(value := _number(best.get(monitor))):
        selected += f" ({monitor} {_value_text(value)})"
    handles = [*axes[0].get_lines()[:2], Line2D([], [], color="grey", ls="--", lw=1, marker="o", ms=6, mfc="none",
                                                 mec="black")]
    # One legend above both panels: it never covers a curve, and costs no placement search.
    fig.legend(handles=handles, labels=["Train", "Validation", selected], loc="upper center",
               bbox_to_anchor=(0.5, 0.93), ncol=3, fontsize=8, frameon=False)
    fig.suptitle(title)
    return fig


def draw_curves(history: list[dict], best_epoch: int, path: Path, monitor: str, title: str = "") -> None:
    """Write curves.png atomically: loss, then the monitored metric, per epoch, the selected epoch marked."""
    fig = curves_figure(history, best_epoch, monitor, title)
    # zlib level 1: a third of level 6's time for a few per cent more bytes
    atomic_write_with(Path(path), lambda p: fig.savefig(p, dpi=DPI, pil_kwargs={"compress_level": 1}))
