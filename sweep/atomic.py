"""Atomic file writes: every file is either the old one or the complete new one, never half-written.

Torch-free, so that processes that only write files (the plotting helper) start fast.
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
from pathlib import Path
from typing import Any, Callable


def _unique() -> str:
    """Temp-file names differ between processes and between threads (jobs may run in threads)."""
    return f"{os.getpid()}-{threading.get_ident()}"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then os.replace over the target."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{_unique()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    """A CSV with a header; missing or None fields are written empty."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_write_with(path: Path, write: Callable[[Path], None]) -> None:
    """For writers that want a path (matplotlib): write to a temp path, then os.replace."""
    tmp = path.with_name(f".{path.stem}.{_unique()}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
