"""curves.png: loss and the monitored metric per epoch, the selected epoch marked; no figure depends on
the ones drawn before it in the same process."""

from pathlib import Path

import pytest
from matplotlib.image import imread

from sweep import plots


def history(epochs: int, scale: float) -> list[dict]:
    """A classification run's history.csv rows."""
    return [{"epoch": e, "iterations": 4 * e, "train_loss": scale / e, "train_acc": 0.5 + e / (8 * epochs),
             "val_loss": 1.2 * scale / e, "val_acc": 0.5 + e / (9 * epochs), "seconds": 0.1 * e}
            for e in range(1, epochs + 1)]


def regression_history(epochs: int, scale: float) -> list[dict]:
    """A regression run's rows: loss (MSE), rmse and mae; the loss spans three decades."""
    rows = []
    for e in range(1, epochs + 1):
        row = {"epoch": e, "iterations": 4 * e, "seconds": 0.1 * e}
        for split, f in (("train", 1.0), ("val", 1.1)):
            rmse = f * (scale * 0.5 ** e + 0.4)
            row.update({f"{split}_loss": rmse ** 2, f"{split}_rmse": rmse, f"{split}_mae": 0.8 * rmse})
        rows.append(row)
    return rows


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and imread(path)[..., :3].var() > 1e-3


@pytest.mark.parametrize("epochs, best", [(3, 2), (1, 1)])  # one epoch: a pruned trial, say
def test_a_figure_does_not_depend_on_the_ones_drawn_before(tmp_path: Path, epochs: int, best: int) -> None:
    short, long = history(epochs, 1.0), history(12, 40.0)
    plots.draw_curves(short, best, tmp_path / "first.png", "val_acc", title="short")
    plots.draw_curves(long, 9, tmp_path / "long.png", "val_acc", title="long")
    plots.draw_curves(regression_history(20, 30.0), 20, tmp_path / "reg.png", "val_rmse", title="reg")
    plots.draw_curves(short, best, tmp_path / "again.png", "val_acc", title="short")
    assert (tmp_path / "again.png").read_bytes() == (tmp_path / "first.png").read_bytes()
    assert (tmp_path / "long.png").read_bytes() != (tmp_path / "first.png").read_bytes()
    plots.draw_curves(history(3, 1.0), 3, tmp_path / "other_epoch.png", "val_acc", title="short")  # the marker moves
    assert (tmp_path / "other_epoch.png").read_bytes() != (tmp_path / "first.png").read_bytes()
    assert all(is_png(p) for p in tmp_path.glob("*.png"))
    assert not list(tmp_path.glob(".*"))  # written atomically: no temp file left


@pytest.mark.parametrize("run, best", [(history(12, 40.0), 9), (history(3, 1.0), 2), (history(1, 1.0), 1)])
def test_classification_panels_loss_and_accuracy(run: list[dict], best: int) -> None:
    fig = plots.curves_figure(run, best, "val_acc", title="job_3")
    loss_axes, acc_axes = fig.axes
    assert (loss_axes.get_title(), acc_axes.get_title()) == ("Loss", "Accuracy (monitored)")
    assert acc_axes.get_ylabel() == "Accuracy" and fig.get_suptitle() == "job_3"
    low, high = loss_axes.get_ylim()
    assert low <= min(r["train_loss"] for r in run) and max(r["val_loss"] for r in run) <= high < 2 * max(
        r["val_loss"] for r in run)  # fitted to this run
    lo, hi = acc_axes.get_xlim()
    assert lo < 1 and len(run) < hi < len(run) + 1
    assert [t for t in acc_axes.get_xticks() if lo <= t <= hi] == [float(e) for e in range(1, len(run) + 1)] or \
        len(run) > 10  # whole epochs only; a one-epoch run has the one tick 1
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts == ["Train", "Validation", f"Selected epoch {best} (val_acc {run[best - 1]['val_acc']:.3f})"]
    assert [t.get_text() for t in acc_axes.texts] == [f"val {run[best - 1]['val_acc']:.3f}"]
    assert [t.get_text() for t in loss_axes.texts] == [f"val {run[best - 1]['val_loss']:.3f}"]


def test_regression_panels_loss_and_rmse(tmp_path: Path) -> None:
    run = regression_history(15, 300.0)
    fig = plots.curves_figure(run, 15, "val_rmse")
    loss_axes, rmse_axes = fig.axes
    assert (loss_axes.get_title(), rmse_axes.get_title()) == ("Loss", "RMSE (monitored)")
    assert rmse_axes.get_ylabel() == "RMSE" and loss_axes.get_yscale() == "log"  # MSE over four decades
    assert [t.get_text() for t in rmse_axes.texts] == [f"val {run[-1]['val_rmse']:.3f}"]
    assert "val_rmse" in fig.legends[0].get_texts()[2].get_text()
    assert not any("acc" in ax.get_ylabel().lower() for ax in fig.axes)
    plots.draw_curves(run, 15, tmp_path / "curves.png", "val_rmse", title="regression")
    assert is_png(tmp_path / "curves.png")


def test_val_loss_monitor_shows_the_tasks_first_other_metric() -> None:
    fig = plots.curves_figure(history(5, 1.0), 4, "val_loss")
    assert [ax.get_title() for ax in fig.axes] == ["Loss (monitored)", "Accuracy"]
    fig = plots.curves_figure(regression_history(5, 3.0), 4, "val_loss")
    assert [ax.get_title() for ax in fig.axes] == ["Loss (monitored)", "RMSE"]
    fig = plots.curves_figure(regression_history(5, 3.0), 4, "val_mae")
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "MAE (monitored)"]
    loss_only = [{k: v for k, v in r.items() if "acc" not in k} for r in history(3, 1.0)]
    assert [ax.get_title() for ax in plots.curves_figure(loss_only, 1, "val_loss").axes] == ["Loss (monitored)"]


def test_gaps_and_a_missing_selected_epoch_do_not_break_the_figure(tmp_path: Path) -> None:
    run = history(4, 1.0)
    run[2]["val_loss"] = float("nan")
    run[3]["train_loss"] = float("inf")
    plots.draw_curves(run, None, tmp_path / "curves.png", "val_acc")  # a run that failed before selecting
    assert is_png(tmp_path / "curves.png")
    fig = plots.curves_figure(run, None, "val_acc")
    assert fig.legends[0].get_texts()[2].get_text() == "No epoch selected"
    assert all(ax.get_ylim()[1] < 10 for ax in fig.axes)  # the infinite value is a gap, not the scale


# --------------------------------------------------------------------------- legible at a glance


def drawn(fig):
    """The figure laid out and drawn by Agg, and its renderer: text extents as they land in the PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def tick_label_boxes(ax, renderer) -> list:
    """The extents of the tick labels drawn on an axes (those of ticks inside the view, with text)."""
    boxes = []
    for axis, i in ((ax.xaxis, 0), (ax.yaxis, 1)):
        lo, hi = sorted(axis.get_view_interval())
        for label in axis.get_ticklabels():
            if label.get_visible() and label.get_text().strip() and lo <= label.get_position()[i] <= hi:
                boxes.append(label.get_window_extent(renderer))
    return boxes


def suptitle(fig):
    """The figure's title as drawn (the Text artist whose text get_suptitle returns)."""
    from matplotlib.text import Text

    return next(t for t in fig.findobj(Text) if t.get_text() == fig.get_suptitle() and t.get_text())


def touching(boxes) -> list:
    return [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if a.overlaps(b)]


def test_a_long_title_is_wrapped_inside_the_figure_above_the_legend() -> None:
    title = ("model.num_hidden=30 optimizer.lr=0.1 optimizer.momentum=0.9 model.activation=gelu data.batch_size=64 "
             "data.root=/a/long/path/to/the/data/folder seed=3 · completed")
    for run in (history(15, 1.0), [{k: v for k, v in r.items() if "acc" not in k} for r in history(15, 1.0)]):
        fig = plots.curves_figure(run, 9, "val_acc" if "val_acc" in run[0] else "val_loss", title=title)
        renderer = drawn(fig)
        text = suptitle(fig)
        box, page = text.get_window_extent(renderer), fig.bbox
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1  # never clipped
        lines = text.get_text().split("\n")
        assert len(lines) > 1 and lines[-1].endswith("seed=3 · completed")
        if len(fig.axes) == 2:  # ten inches: every word kept
            assert " ".join(lines) == title
        legend = fig.legends[0].get_window_extent(renderer)
        assert legend.y1 <= box.y0 and all(legend.y0 >= ax.title.get_window_extent(renderer).y1 for ax in fig.axes)
    fig = plots.curves_figure(history(3, 1.0), 2, "val_acc", title="seed=1 " * 200 + "· pruned")
    lines = fig.get_suptitle().split("\n")
    assert len(lines) == plots.MAX_TITLE_LINES and lines[-1].startswith("… ") and lines[-1].endswith("· pruned")
    renderer = drawn(fig)
    box = suptitle(fig).get_window_extent(renderer)
    assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1


@pytest.mark.parametrize("run, best, monitor", [
    (history(15, 1.0), 15, "val_acc"),  # the selected epoch is the last one, on a rising curve
    (history(15, 1.0), 1, "val_acc"),
    (history(2, 1.0), 2, "val_acc"),
    (history(1, 1.0), 1, "val_acc"),
    (regression_history(15, 300.0), 15, "val_rmse"),  # a log axis
    ([{**r, "val_acc": 0.9 - 0.01 * abs(r["epoch"] - 8)} for r in history(15, 1.0)], 8, "val_acc"),  # a peak
])
def test_the_val_label_stays_inside_its_panel_off_the_curves(run: list[dict], best: int, monitor: str) -> None:
    import numpy as np

    fig = plots.curves_figure(run, best, monitor, title="num_hidden=30 · completed")
    renderer = drawn(fig)
    for ax in fig.axes:
        (label,) = ax.texts
        box = label.get_bbox_patch().get_window_extent(renderer)  # the text's white box, not its leader line
        frame = ax.get_window_extent(renderer)
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, label
        # Off the curves: no point of the train or validation line (sampled along its segments) under the text.
        for line in ax.get_lines()[:2]:
            xy = line.get_transform().transform(line.get_xydata())
            xy = xy[np.isfinite(xy).all(axis=1)]
            steps = np.linspace(0, 1, 50)[:, None]
            dense = np.concatenate([xy, *(a + steps * (b - a) for a, b in zip(xy[:-1], xy[1:]))])
            inside = ((dense[:, 0] > box.x0) & (dense[:, 0] < box.x1) & (dense[:, 1] > box.y0) & (dense[:, 1] < box.y1))
            assert not inside.any(), (ax.get_title(), line.get_label())
        assert not touching(tick_label_boxes(ax, renderer))


def test_a_one_epoch_run_has_the_one_tick_1() -> None:
    fig = plots.curves_figure(history(1, 1.0), 1, "val_acc", title="x · completed")
    drawn(fig)
    for ax in fig.axes:
        lo, hi = ax.get_xlim()
        shown = [t.get_text() for t in ax.get_xticklabels() if lo <= t.get_position()[0] <= hi]
        assert shown == ["1"]
