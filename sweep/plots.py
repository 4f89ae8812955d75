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
TITLE_PT, LABEL_PT = 12.0, 8.0  # font sizes: the title, the "val 0.xxx" label
LABEL_OFFSETS_PT = (8.0, 24.0, 48.0)  # how far from its point the label may sit, nearest first
MAX_TITLE_LINES = 3
LINE_IN = 0.2  # the height of one more title line, in inches


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


def readable_log_axis(ax: Axes, lo: float, hi: float, axis: str = "y") -> None:
    """A log axis ("x" or "y") labelled with plain numbers (0.5, 1, 2, 5, 10 rather than 10^0, 10^1)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    subs = (1.0, 2.0, 5.0) if math.log10(hi / lo) < 2.5 else (1.0,)
    target.set_major_locator(LogLocator(subs=subs))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())


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
    first, last = (epochs[0], epochs[-1]) if epochs else (1, 1)
    pad = max(0.5, 0.03 * (last - first))
    ax.set_xlim(first - pad, last + pad)
    # Whole epochs only: a one-epoch run gets the one tick 1 (never 0.96 ... 1.04).
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if best_epoch in epochs:
        y = series["val"][epochs.index(best_epoch)]
        ax.axvline(best_epoch, color="grey", ls="--", lw=1, zorder=1)
        if not math.isnan(y):
            ax.plot([best_epoch], [y], ls="none", marker="o", ms=8, mfc="none", mec="black", mew=1.5, zorder=4)
            _label_point(ax, best_epoch, y, f"val {_value_text(y)}")
    name = metric_label(metric)
    ax.set(xlabel="Epoch", ylabel=name, title=name + (" (monitored)" if monitored else ""))
    ax.grid(alpha=0.3)


def _label_point(ax: Axes, x: float, y: float, text: str) -> None:
    """Write `text` near (x, y), in the nearest place that lies inside the axes and covers no curve (else the
    fewest curve points); a label set further off gets a thin leader line to its point.

    The text's size is estimated from its length (no renderer, no layout pass: a sweep draws this figure
    once per job), so the choice costs nothing beside the drawing itself.
    """
    import numpy as np

    ax.get_ylim()  # settles the autoscaled limits, so that transData maps to the final place
    scale = ax.figure.dpi / 72
    px, py = ax.transData.transform((x, y))
    box = ax.bbox
    w, h = (LABEL_PT * 0.62 * len(text) + 6) * scale, LABEL_PT * 1.6 * scale
    samples = []
    for line in ax.get_lines():
        xy = line.get_transform().transform(line.get_xydata())
        xy = xy[np.isfinite(xy).all(axis=1)]
        if len(xy) > 1:
            t = np.linspace(0.0, 1.0, 25)[:, None, None]
            samples.append((xy[:-1] + t * (xy[1:] - xy[:-1])).reshape(-1, 2))
        samples.append(xy)
    cloud = np.concatenate(samples)

    def cost(place: tuple[float, float]) -> tuple[bool, int, float]:
        dx, dy = place[0] * scale, place[1] * scale
        x0 = px + dx if dx > 0 else px + dx - w
        y0 = py + dy if dy > 0 else py + dy - h
        inside = box.x0 <= x0 and x0 + w <= box.x1 and box.y0 <= y0 and y0 + h <= box.y1
        under = (cloud[:, 0] >= x0) & (cloud[:, 0] <= x0 + w) & (cloud[:, 1] >= y0) & (cloud[:, 1] <= y0 + h)
        return not inside, int(under.sum()), math.hypot(*place)

    places = [(sx * ox, sy * oy) for oy in LABEL_OFFSETS_PT for ox in LABEL_OFFSETS_PT for sx, sy in
              ((1, 1), (1, -1), (-1, 1), (-1, -1))]
    dx, dy = min(places, key=cost)
    leader = {"arrowstyle": "-", "color": "grey", "lw": 0.6} if max(abs(dx), abs(dy)) > LABEL_OFFSETS_PT[0] else None
    ax.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), arrowprops=leader,
                ha="left" if dx > 0 else "right", va="bottom" if dy > 0 else "top", fontsize=LABEL_PT,
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8}, zorder=5)


def title_lines(title: str, width_in: float, fontsize: float = TITLE_PT, max_lines: int = MAX_TITLE_LINES) -> list[str]:
    """`title` wrapped to the figure's width (at most max_lines lines; beyond, the middle is cut and the end,
    a run's status, kept), so that a long title is never clipped at the figure's edges."""
    import textwrap

    chars = max(20, int(width_in * 72 / (0.66 * fontsize)))  # wide for an average character
    lines = textwrap.wrap(title, chars, break_on_hyphens=False) or [""]
    if len(lines) > max_lines:
        tail = lines[-1] if len(lines[-1]) <= chars - 2 else lines[-1][-(chars - 2):]
        lines = [*lines[: max_lines - 1], "… " + tail]
    return lines


def curves_figure(history: list[dict], best_epoch: Optional[int], monitor: str, title: str = "") -> Figure:
    """The figure of draw_curves, not saved (tests and notebooks look at it)."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    metrics = panel_metrics(history, monitor)
    width = 5.0 * len(metrics)
    lines = title_lines(title, width - 0.3)
    extra = LINE_IN * (len(lines) - 1)  # the figure grows with the title; the panels keep their size
    height = 4.4 + extra
    fig = Figure(figsize=(width, height))
    # Fixed margins in inches (layout engines cost as much as the drawing): title, legend, panel titles.
    fig.subplots_adjust(left=0.08 if len(metrics) > 1 else 0.14, right=0.98, bottom=0.53 / height,
                        top=1 - (0.88 + extra) / height, wspace=0.25)
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
               bbox_to_anchor=(0.5, 1 - (0.31 + extra) / height), ncol=3, fontsize=8, frameon=False)
    fig.suptitle("\n".join(lines), y=1 - 0.09 / height, fontsize=TITLE_PT, linespacing=1.15)
    return fig


def draw_curves(history: list[dict], best_epoch: int, path: Path, monitor: str, title: str = "") -> None:
    """Write curves.png atomically: loss, then the monitored metric, per epoch, the selected epoch marked.
    `title` (the run's swept values and status, say) is wrapped to the figure's width."""
    fig = curves_figure(history, best_epoch, monitor, title)
    # zlib level 1: a third of level 6's time for a few per cent more bytes
    atomic_write_with(Path(path), lambda p: fig.savefig(p, dpi=DPI, pil_kwargs={"compress_level": 1}))
