"""curves.png: one figure per process is redrawn for every run, so no run may show another's data."""

from pathlib import Path

import pytest

from sweep import plots


def history(epochs: int, scale: float) -> list[dict]:
    return [{"epoch": e, "train_loss": scale / e, "val_loss": 1.2 * scale / e, "train_acc": 0.5 + e / (8 * epochs),
             "val_acc": 0.5 + e / (9 * epochs)} for e in range(1, epochs + 1)]


@pytest.mark.parametrize("epochs, best", [(3, 2), (1, 1)])  # one epoch: a pruned trial, say
def test_a_figure_does_not_depend_on_the_ones_drawn_before(tmp_path: Path, epochs: int, best: int) -> None:
    short, long = history(epochs, 1.0), history(12, 40.0)
    plots._figure.cache_clear()  # as in a new process
    plots.plot_run_curves(short, best, tmp_path / "first.png", title="short")
    plots.plot_run_curves(long, 9, tmp_path / "long.png", title="long")
    plots.plot_run_curves(short, best, tmp_path / "again.png", title="short")
    assert (tmp_path / "again.png").read_bytes() == (tmp_path / "first.png").read_bytes()
    assert (tmp_path / "long.png").read_bytes() != (tmp_path / "first.png").read_bytes()
    plots.plot_run_curves(history(3, 1.0), 3, tmp_path / "other_epoch.png", title="short")  # marker and label move
    assert (tmp_path / "other_epoch.png").read_bytes() != (tmp_path / "first.png").read_bytes()


def test_axes_and_labels_follow_each_run(tmp_path: Path) -> None:
    figure = plots._figure()
    for run, best in ((history(12, 40.0), 9), (history(3, 1.0), 2)):  # a large run, then a small one
        plots.plot_run_curves(run, best, tmp_path / "curves.png")
        loss_axes, acc_axes = figure.axes
        low, high = loss_axes.get_ylim()
        assert low <= min(r["train_loss"] for r in run) and max(r["val_loss"] for r in run) <= high < 2 * max(
            r["val_loss"] for r in run)  # fitted to this run, not the one before
        assert acc_axes.get_xlim()[1] < len(run) + 1
        assert figure.legend.get_texts()[2].get_text() == f"Selected epoch {best}"
        assert figure.note.get_text() == f"val {run[best - 1]['val_acc']:.3f}"
