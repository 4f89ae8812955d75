"""Atomic, data-only checkpoints: every file is either the old one or the complete new one."""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from sweep.atomic import atomic_write_bytes
from sweep.errors import CheckpointError

FORMAT = "sweep-checkpoint/2"
READABLE = (FORMAT, "sweep-checkpoint/1")  # /1: sweep 0.1, before _target_ configs (loads, does not resume)
EPOCH_FILE = re.compile(r"^epoch_(\d{3,})\.pt$")


def epoch_path(ckpt_dir: Path, epoch: int) -> Path:
    return ckpt_dir / f"epoch_{epoch:03d}.pt"


def save(state: dict[str, Any], paths: list[Path]) -> None:
    """Serialise once, then write the same bytes atomically to every path (epoch, best, last).

    Separate files, not hard links: a user who copies an epoch file over last.pt must not change it.
    """
    buf = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buf)
    data = buf.getvalue()
    for p in paths:
        atomic_write_bytes(p, data)


def _corrupt(path: Path, reason: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} is corrupt ({reason}); move it away and copy the newest good "
        "epoch_NNN.pt over last.pt to resume from there, or start a new run directory"
    )


def load(path: Path) -> dict[str, Any]:
    """Load with weights_only=True: a checkpoint is data, and nothing in it may run code."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise _corrupt(path, "not a torch checkpoint archive")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        reason = str(e)
        if "GLOBAL" in reason or "Unsupported" in reason:
            global_name = reason.split("GLOBAL", 1)[-1].split()[0] if "GLOBAL" in reason else "an object"
            raise CheckpointError(
                f"checkpoint {path} needs arbitrary unpickling ({global_name}) and is refused; "
                "only load checkpoints written by sweep"
            ) from None
        raise _corrupt(path, reason.strip().splitlines()[0][:120]) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise _corrupt(path, (str(e).strip().splitlines() or [type(e).__name__])[0][:120]) from None
    if not isinstance(state, dict) or state.get("format") not in READABLE:
        raise CheckpointError(f"{path} is not a sweep checkpoint (no '{FORMAT}' marker); point to a file sweep wrote")
    return state


def epoch_files(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """(epoch, path) of every epoch_NNN.pt, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := EPOCH_FILE.match(p.name))]
    return sorted(found)


def epoch_files_kept(setting: int | str | None, in_study: bool) -> int | None:
    """How many epoch_NNN.pt files trainer.keep_checkpoints keeps (None: all). `auto` keeps all in a single
    run or a basic multirun, as the seed teaches, and none in a trial of an Optuna study, where hundreds
    of trials would fill the disk; best.pt and last.pt are always kept, so selection and resume still work."""
    if setting == "auto":
        return 0 if in_study else None
    return setting  # type: ignore[return-value]


def prune_epoch_files(ckpt_dir: Path, keep: int | None) -> None:
    """Keep the `keep` newest epoch files; best.pt and last.pt are separate files and always stay."""
    if keep is None:
        return
    files = epoch_files(ckpt_dir)
    for _, p in files[: max(0, len(files) - keep)]:
        p.unlink(missing_ok=True)
