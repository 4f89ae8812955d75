"""Compare the jobs of one or more sweep directories as a pandas DataFrame."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import pandas as pd
import yaml

from sweep.errors import UserError

METRIC_COLUMNS = ["best_epoch", "best_val_acc", "best_val_loss", "train_acc", "test_acc", "epochs_completed", "seconds"]


def _job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(p.parent.parent for p in sweep_dir.glob("*/.hydra/overrides.yaml"))


def _overrides(job_dir: Path) -> dict[str, str]:
    items = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text()) or []
    params = {}
    for item in items:
        key, _, value = str(item).partition("=")
        key = key.lstrip("+~")
        if key.startswith("hydra.") or key == "resume":
            continue
        params[key] = value
    return params


def _job_row(job_dir: Path) -> dict:
    row: dict = {"job": job_dir.name, "path": str(job_dir)}
    metrics_path = job_dir / "metrics.json"
    if metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text())
        row["status"] = metrics.get("status", "unknown")
        row.update({k: metrics.get(k) for k in METRIC_COLUMNS})
    else:
        row["status"] = "interrupted" if (job_dir / "checkpoints" / "last.pt").exists() else "not started"
    row.update(_overrides(job_dir))
    return row


def load_runs(paths: Path | str | Iterable[Path | str]) -> pd.DataFrame:
    """One row per job, ranked by validation accuracy (never by test accuracy)."""
    dirs = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    rows = []
    for d in dirs:
        if not d.is_dir():
            raise UserError(f"{d} is not a directory: pass a sweep directory such as outputs/sweeps/<time>")
        jobs = _job_dirs(d)
        if not jobs:
            raise UserError(f"{d} holds no sweep jobs (no */.hydra/overrides.yaml): pass a sweep directory")
        rows += [_job_row(j) for j in jobs]
    df = pd.DataFrame(rows)
    for col in METRIC_COLUMNS:
        if col not in df:
            df[col] = float("nan")
        df[col] = pd.to_numeric(df[col], errors="coerce")
    params = [c for c in df.columns if c not in {"job", "path", "status", *METRIC_COLUMNS}]
    for col in params:
        df[col] = _maybe_numeric(df[col])
    df = df[["job", "path", "status", *params, *METRIC_COLUMNS]]
    return df.sort_values(["best_val_acc", "best_val_loss"], ascending=[False, True], na_position="last",
                          kind="stable").reset_index(drop=True)


def _maybe_numeric(col: pd.Series) -> pd.Series:
    converted = pd.to_numeric(col, errors="coerce")
    return converted if converted.notna().sum() == col.notna().sum() else col


def summary_table(df: pd.DataFrame) -> str:
    cols = [c for c in df.columns if c not in ("path",)]
    return df[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}")
