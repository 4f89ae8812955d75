"""A run's curves.png, drawn without pyplot so that no GUI backend or global state is involved.
(sweep.sidecar decides which process draws it.)"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

CURVES = (("Loss", "train_loss", "val_loss"), ("Accuracy", "train_acc", "val_acc"))


class _CurvesFigure:
    """One figure, redrawn with every run's data: a sweep draws one per job, and building the axes,
    ticks and legends anew each time was about a third of matplotlib's cost."""

    def __init__(self) -> None:
        from matplotlib.figure import Figure

        self.fig = Figure(figsize=(10, 4))
        self.fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.86, wspace=0.22)  # layout engines are slow
        self.axes = self.fig.subplots(1, 2)
        self.lines: list[Any] = []
        self.selected: list[Any] = []
        self.legends: list[Any] = []
        # Loss falls and accuracy rises, so their upper and lower right corners stay clear.
        for ax, (name, *_), corner in zip(self.axes, CURVES, ("upper right", "lower right")):
            self.lines += [ax.plot([], [], marker="o", ms=3, label=label)[0] for label in ("Train", "Validation")]
            self.selected.append(ax.axvline(1, color="grey", ls="--", lw=1, label="Selected epoch"))
            ax.set(xlabel="Epoch", ylabel=name, title=name)
            ax.grid(alpha=0.3)
            self.legends.append(ax.legend(loc=corner, fontsize=8))
        self.note = self.axes[1].annotate("", (0, 0), textcoords="offset points", xytext=(6, -14), fontsize=8)
        self.title = self.fig.suptitle("")
        self.lock = threading.Lock()  # jobs may finish in several threads of one process

    def draw(self, history: list[dict], best_epoch: int, path: Path, title: str) -> None:
        epochs = [r["epoch"] for r in history]
        best = next(r for r in history if r["epoch"] == best_epoch)
        with self.lock:
            keys = [key for _, *pair in CURVES for key in pair]
            for line, key in zip(self.lines, keys):
                line.set_data(epochs, [r[key] for r in history])
            for ax, marker, legend in zip(self.axes, self.selected, self.legends):
                marker.set_xdata([best_epoch, best_epoch])
                legend.get_texts()[2].set_text(f"Selected epoch {best_epoch}")
                ax.relim()
                ax.autoscale_view()
            self.note.set_text(f"val {best['val_acc']:.3f}")
            self.note.xy = (best_epoch, best["val_acc"])
            self.title.set_text(title)
            self.fig.savefig(path, dpi=100)


@functools.lru_cache(maxsize=1)
def _figure() -> _CurvesFigure:
    return _CurvesFigure()


def plot_run_curves(history: list[dict], best_epoch: int, path: Path, title: str = "") -> None:
    """The seed's training curves per epoch: loss, then train and validation accuracy, best epoch marked."""
    _figure().draw(history, best_epoch, path, title)
