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
