"""Tick labels that never overlap: long category names are shortened when drawn, and a crowded axis is
rotated (x: 45 degrees, then 90) and then thinned (every second label, then every fourth, ...) until no
two labels' boxes on the drawn figure touch. The check uses the labels' real extents from the renderer,
after the layout engine has placed everything, so it holds for any number of panels, values or digits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axis import Axis
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

MAX_LABEL_CHARS = 18
GAP_PX = 1.0  # labels closer than this count as touching
ROUNDS = 8  # rotations and thinnings tried per figure; each costs one layout pass


def _cut(part: str, room: int, keep_start: bool) -> str:
    """`part` in at most `room` characters, "…" standing for what is cut (its end, or its start)."""
    if len(part) <= room:
        return part
    if room <= 1:
        return "…"[:room]
    return part[: room - 1] + "…" if keep_start else "…" + part[len(part) - room + 1:]


def short_labels(texts: list[str], width: int = MAX_LABEL_CHARS) -> list[str]:
    """Category names in at most `width` characters each, still told apart: what all of them share at
    their start and end is cut first ("activation_variant_07_long" -> "activati…07…_long"); names whose
    differences are long themselves keep both of their ends."""
    if all(len(t) <= width for t in texts):
        return list(texts)
    import os

    head = len(os.path.commonprefix(texts)) if len(texts) > 1 else 0
    tail = len(os.path.commonprefix([t[head:][::-1] for t in texts])) if len(texts) > 1 else 0
    out = []
    for text in texts:
        start, middle, end = text[:head], text[head: len(text) - tail], text[len(text) - tail:]
        room = width - len(middle)
        if room < 2:  # what tells them apart is long itself: keep both ends of the whole name
            keep = (width - 1) // 2
            out.append(text[: width - 1 - keep] + "…" + text[len(text) - keep:])
            continue
        first = min(len(start), room // 2 if end else room)
        out.append(_cut(start, first, True) + middle + _cut(end, room - len(_cut(start, first, True)), False))
    return out


def overlaps(boxes: list[Bbox], gap: float = GAP_PX) -> bool:
    """Whether any two of the boxes come closer than `gap` pixels."""
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if a.x0 < b.x1 + gap and b.x0 < a.x1 + gap and a.y0 < b.y1 + gap and b.y0 < a.y1 + gap:
                return True
    return False


def _in_view(axis: Axis) -> list[tuple[float, Text]]:
    """(location, label) of the axis' major ticks inside its view: the ones that are drawn."""
    lo, hi = sorted(axis.get_view_interval())
    tol = 1e-9 * max(abs(hi - lo), abs(hi), 1e-300)
    locs = list(axis.get_majorticklocs())
    ticks = zip(locs, axis.get_major_ticks(len(locs)))
    return [(float(v), tick.label1) for v, tick in ticks if lo - tol <= v <= hi + tol]


def label_boxes(axis: Axis, renderer: RendererBase) -> list[Bbox]:
    """The drawn extents of an axis' visible, non-empty major tick labels."""
    return [t.get_window_extent(renderer) for _, t in _in_view(axis) if t.get_visible() and t.get_text().strip()]


def _freeze(axis: Axis) -> tuple[list[float], list[str]]:
    """Fix the axis' ticks to those now in view with their drawn texts, so that rotating or blanking labels
    survives the next layout pass."""
    ticks = _in_view(axis)
    locs, texts = [v for v, _ in ticks], [t.get_text() for _, t in ticks]
    axis.set_ticks(locs, texts)
    return locs, texts


def _relieve(axis: Axis) -> None:
    """One step less crowded: rotate an x axis' labels (45, then 90 degrees), else keep every second label."""
    locs, texts = _freeze(axis)
    labels = [t for _, t in _in_view(axis)]
    rotation = labels[0].get_rotation() if labels else 0.0
    if axis.axis_name == "x" and rotation < 89:
        angle = 45.0 if rotation < 44 else 90.0
        for label in labels:
            label.set_rotation(angle)
            label.set_horizontalalignment("right" if angle == 45.0 else "center")
            label.set_rotation_mode("anchor" if angle == 45.0 else "default")
        return
    shown = [i for i, t in enumerate(texts) if t.strip()]
    keep = set(shown[::2])
    axis.set_ticks(locs, [t if i in keep else "" for i, t in enumerate(texts)])
    for _, label in _in_view(axis):  # set_ticks keeps the labels' rotation, but not their alignment
        label.set_rotation(rotation)
        if axis.axis_name == "x" and rotation == 45.0:
            label.set_horizontalalignment("right")
            label.set_rotation_mode("anchor")


def legible_ticks(fig: Figure) -> None:
    """Rotate, then thin, every crowded axis of the figure until no two tick labels of an axis touch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    for _ in range(ROUNDS):
        fig.draw_without_rendering()  # the layout engine places everything, nothing is rasterised
        crowded = [axis for ax in fig.axes if ax.get_visible() for axis in (ax.xaxis, ax.yaxis)
                   if overlaps(label_boxes(axis, renderer))]
        if not crowded:
            return
        for axis in crowded:
            _relieve(axis)
