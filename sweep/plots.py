"""A run's curves.png, drawn without pyplot so that no GUI backend or global state is involved.
(sweep.sidecar decides which process draws it.)"""

from __future__ import annotations

from pathlib import Path


def plot_run_curves(history: list[dict], best_epoch: int, path: Path, title: str = "") -> None:
    """The seed's training curves per epoch: loss, then train and validation accuracy, best epoch marked."""
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in history]
    fig = Figure(figsize=(10, 4))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.86, wspace=0.22)  # fixed: layout engines are slow
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, [r["train_loss"] for r in history], marker="o", ms=3, label="Train")
    ax_loss.plot(epochs, [r["val_loss"] for r in history], marker="o", ms=3, label="Validation")
    ax_loss.set(xlabel="Epoch", ylabel="Loss", title="Loss")
    ax_acc.plot(epochs, [r["train_acc"] for r in history], marker="o", ms=3, label="Train")
    ax_acc.plot(epochs, [r["val_acc"] for r in history], marker="o", ms=3, label="Validation")
    ax_acc.set(xlabel="Epoch", ylabel="Accuracy", title="Accuracy")
    best = next(r for r in history if r["epoch"] == best_epoch)
    for ax in (ax_loss, ax_acc):
        ax.axvline(best_epoch, color="grey", ls="--", lw=1, label=f"Selected epoch {best_epoch}")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    ax_acc.annotate(f"val {best['val_acc']:.3f}", (best_epoch, best["val_acc"]),
                    textcoords="offset points", xytext=(6, -14), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=100)
