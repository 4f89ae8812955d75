"""A run's curves.png, drawn without pyplot so that no GUI backend or global state is involved.
(sweep.sidecar decides which process draws it.)"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

CURVES = (("Loss", "train_loss", "val_loss"), ("Accuracy", "train_acc", "val_acc"))
LINE_KEYS = [key for _, *pair in CURVES for key in pair]  # the history column of each line, in drawing order


class _CurvesFigure:
    """One figure, redrawn with every run's data: a sweep draws one per job, and building the axes,
    ticks and legends anew each time was about a third of matplotlib's cost."""

    def __init__(self) -> None:
        from matplotlib.figure import Figure

        self.fig = Figure(figsize=(10, 4.4))
        self.fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.8, wspace=0.22)  # layout engines are slow
        self.axes = self.fig.subplots(1, 2)
        self.lines: list[Any] = []
        self.selected: list[Any] = []
        for ax, (name, *_) in zip(self.axes, CURVES):
            self.lines += [ax.plot([], [], marker="o", ms=3, label=label)[0] for label in ("Train", "Validation")]
            self.selected.append(ax.axvline(1, color="grey", ls="--", lw=1, label="Selected epoch"))
            ax.set(xlabel="Epoch", ylabel=name, title=name)
            ax.grid(alpha=0.3)
        # One legend above both panels: it never covers a curve, and costs no placement search.
        self.legend = self.fig.legend(handles=[*self.lines[:2], self.selected[0]], loc="upper center",
                                      bbox_to_anchor=(0.5, 0.93), ncol=3, fontsize=8, frameon=False)
        self.note = self.axes[1].annotate("", (0, 0), textcoords="offset points", xytext=(6, -14), fontsize=8)
        self.title = self.fig.suptitle("")
        self.lock = threading.Lock()  # jobs may finish in several threads of one process

    def draw(self, history: list[dict], best_epoch: int, path: Path, title: str) -> None:
        epochs = [r["epoch"] for r in history]
        best = next(r for r in history if r["epoch"] == best_epoch)
        with self.lock:
            for line, key in zip(self.lines, LINE_KEYS):
                line.set_data(epochs, [r[key] for r in history])
            for ax, marker in zip(self.axes, self.selected):
                marker.set_xdata([best_epoch, best_epoch])
                marker.set_visible(False)  # the limits are the data's: the marker's x would come through
                ax.relim(visible_only=True)  # the last run's transform, with round-off (a 1-epoch run broke)
                marker.set_visible(True)
                ax.autoscale_view()
            self.legend.get_texts()[2].set_text(f"Selected epoch {best_epoch}")
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
