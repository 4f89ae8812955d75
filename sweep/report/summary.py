"""What the report says below the table: the best job and how to rerun it, the jobs that did not
complete, and, with seeds swept, whether the leader's margin is beyond seed noise. All of it on the
monitored validation metric (runs.attrs["ranked_on"], in runs.attrs["direction"]); test numbers are
shown in the table, never used here.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path
from typing import Any, Callable, Optional

import pandas as pd

from sweep import rundir
from sweep.report.runs import (RERUN_KEEPS, is_launch_key, metric_columns, natural_key, overrides, param_columns,
                               ranked_metric, split_override, sweep_cwd)


def best_run(runs: pd.DataFrame) -> Optional[pd.Series]:
    """The best completed job on the monitored validation column, in its direction (ties: the earlier row),
    or None while no job has completed."""
    col, direction = ranked_metric(runs)
    done = runs[(runs["status"] == "completed") & runs[col].notna()]
    if done.empty:
        return None
    return done.sort_values(col, ascending=direction == "minimize", kind="stable").iloc[0]


def _param_text(row: pd.Series, params: list[str]) -> str:
    """"model.num_hidden=30, seed=2": the job's swept values, for the best line and the noise check."""
    return ", ".join(f"{p}={row[p]:g}" if isinstance(row[p], float) else f"{p}={row[p]}"
                     for p in params if not pd.isna(row[p]))


def rerun_path(row: pd.Series) -> Path:
    """A fresh folder for rerunning a job: SWEEP/reruns/<job>, numbered when that one exists already."""
    job_dir = Path(row["path"]).absolute()
    base = job_dir.parent / "reruns" / job_dir.name
    path, n = base, 2
    while path.exists():
        path, n = base.with_name(f"{base.name}_{n}"), n + 1
    return path


def rerun_command(row: pd.Series) -> str:
    """The shell command that trains the job again: its overrides minus launch keys, into a new folder.

    It starts with `cd <the sweep's working directory> &&` when that differs from the current one,
    so that relative paths in the overrides (data.root=...) mean what they meant to the sweep.
    """
    job_dir = Path(row["path"])
    kept = [item for item in overrides(job_dir) or []
            if (pair := split_override(item)) is None or not is_launch_key(pair[0]) or pair[0] in RERUN_KEEPS]
    cmd = shlex.join(["python", "-m", "sweep.train", *kept, f"hydra.run.dir={rerun_path(row)}"])
    cwd = sweep_cwd(job_dir)
    if cwd is not None and Path(cwd).resolve() != Path.cwd().resolve():
        cmd = f"cd {shlex.quote(cwd)} && {cmd}"
    return cmd


def seed_summary(runs: pd.DataFrame) -> Optional[pd.DataFrame]:
    """The monitored column (best_val_acc, best_val_rmse, ...) over seeds, per combination of the other
    swept parameters: <column>_mean, <column>_std and count, best mean first in the monitor's direction.

    Only completed jobs count (a pruned or failed job's number is not a finished result). None when
    seed is not swept. The table's attrs hold metric (the column) and direction.
    """
    params = param_columns(runs)
    if "seed" not in params:
        return None
    col, direction = ranked_metric(runs)
    groups = [p for p in params if p != "seed"]
    done = runs[runs["status"] == "completed"]
    values = done[col]
    if groups:
        table = done.groupby(groups, dropna=False, sort=False)[col].agg(["mean", "std", "count"]).reset_index()
    else:
        table = pd.DataFrame({"mean": [values.mean()], "std": [values.std()], "count": [values.count()]})
    table = table.rename(columns={"mean": f"{col}_mean", "std": f"{col}_std"})
    table = table.sort_values(f"{col}_mean", ascending=direction == "minimize", na_position="last",
                              kind="stable").reset_index(drop=True)
    table.attrs = {"metric": col, "direction": direction}
    return table


def noise_verdict(summary: pd.DataFrame) -> Optional[str]:
    """Whether the leading group beats the runner-up by more than two standard errors of the difference.

    A rough check (Welch's standard error), to flag differences that seeds alone could produce.
    """
    col = summary.attrs.get("metric") or next(c[: -len("_mean")] for c in summary.columns if c.endswith("_mean"))
    direction = summary.attrs.get("direction", "maximize")
    mean, std = f"{col}_mean", f"{col}_std"
    groups = [c for c in summary.columns if c not in (mean, std, "count")]
    top = summary[summary["count"] >= 2].head(2)
    if not groups or len(top) < 2:
        return None
    (a, b) = (top.iloc[0], top.iloc[1])
    margin = (a[mean] - b[mean]) if direction == "maximize" else (b[mean] - a[mean])
    se = math.sqrt(a[std] ** 2 / a["count"] + b[std] ** 2 / b["count"])
    verdict = "within" if margin <= 2 * se else "beyond"
    return (f"{_param_text(a, groups)} vs {_param_text(b, groups)}: mean {col} differs by {_number(margin)}, "
            f"{verdict} seed noise (2 standard errors: {_number(2 * se)})")


def _number(x: float) -> str:
    """4 decimals (accuracies, losses), or 4 significant digits for very small or very large values."""
    return f"{x:.4f}" if x == 0 or 1e-3 <= abs(x) < 1e5 else f"{x:.4g}"


def _is_metric(col: str) -> bool:
    return col == "objective" or col.startswith(("best_val_", "train_", "test_"))


def _cell_format(col: str, values: pd.Series) -> Callable[[Any], str]:
    """How a column's numbers are shown; one format per column, so that its digits line up."""
    kind = values.dtype.kind
    if col == "seconds":
        return "{:.2f}".format
    if kind == "f" and _is_metric(col):
        finite = values[values.abs() < math.inf].abs()
        top = float(finite.max()) if len(finite) else 0.0
        # 4 decimals (accuracies, losses); 4 significant digits where the values are all tiny or huge.
        return "{:.4f}".format if top == 0 or 1e-2 <= top < 1e5 else "{:.4g}".format
    return "{:g}".format if kind == "f" else str


def _display(df: pd.DataFrame) -> pd.DataFrame:
    """Every cell as text: 4 decimals for the metrics, "-" where a value is missing."""
    out = {}
    for col in df.columns:
        fmt = _cell_format(col, df[col])
        missing = df[col].isna().to_numpy()
        out[col] = ["-" if m else fmt(v) for v, m in zip(df[col].tolist(), missing)]
    return pd.DataFrame(out, index=df.index)


def summary_table(df: pd.DataFrame, top: Optional[int] = None) -> str:
    """The runs as aligned text (no path or error column), the first `top` rows when given."""
    shown = df.drop(columns=[c for c in ("path", "error") if c in df])
    if top is not None and len(shown) > top:
        shown = shown.head(top)
    text = _display(shown).to_string(index=False)
    if len(shown) < len(df):
        text += f"\n... and {len(df) - len(shown)} more jobs"
    return text


def markdown_table(df: pd.DataFrame) -> str:
    cells = _display(df)
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + " --- |" * len(df.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines)


def _problem_lines(problems: pd.DataFrame, shown: int = 12) -> str:
    """Per status, the jobs (the first few names) and each distinct error with how many jobs hit it."""
    lines = []
    for status, group in problems.groupby("status", sort=True):
        names = sorted(group["job"], key=natural_key)
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        lines.append(f"{status} ({len(names)}): {', '.join(names[:shown])}{more}")
        for error, count in group["error"].dropna().value_counts(sort=True).items():
            lines.append(f"  {count} x {error}")
    return "\n".join(lines)


def ranking_title(runs: pd.DataFrame) -> str:
    """What the table's order means: the monitored validation column, in its direction; test never ranks.
    When the jobs monitored different metrics, it says so, and which one (the most common) ranks."""
    col, direction = ranked_metric(runs)
    title = (f"{len(runs)} jobs, ranked on {col} ({'highest' if direction == 'maximize' else 'lowest'} first; "
             "validation only: test numbers are shown, never used to rank or to pick the best)")
    monitors = runs.attrs.get("monitors")
    if monitors:
        counts = ", ".join(f"{n} {m}" for m, n in monitors.items())
        title += (f"; the jobs monitored different metrics ({counts}): ranked on the most common, "
                  f"{runs.attrs.get('monitor', col.removeprefix('best_'))}")
    return title


def report_sections(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(title, text) pairs below the table: best configuration, unfinished jobs, seeds (terminal and report.md)."""
    params = param_columns(runs)
    col, _ = ranked_metric(runs)
    best = best_run(runs)
    if best is None:
        sections = [("Best configuration", "no completed job yet")]
    else:
        ckpt = Path(best["path"]) / rundir.CHECKPOINTS / rundir.BEST
        shown = [col, *(c for c in metric_columns(runs.columns) if c.startswith("best_val_") and c != col)]
        values = ", ".join(f"{c} {_number(best[c])}" for c in shown if not pd.isna(best[c]))
        epoch = "" if pd.isna(best["best_epoch"]) else f" at epoch {best['best_epoch']}"
        sections = [("Best configuration", "\n".join([
            f"best: {best['job']} ({_param_text(best, params) or 'no swept parameter'}): {values}{epoch}",
            f"checkpoint: {ckpt}",
            f"rerun: {rerun_command(best)}",
        ]))]
    problems = runs[runs["status"] != "completed"]
    if not problems.empty:
        sections.append(("Jobs that did not complete", _problem_lines(problems)))
    seeds = seed_summary(runs)
    if seeds is not None:
        text = _display(seeds).to_string(index=False)
        verdict = noise_verdict(seeds)
        sections.append((f"{col} across seeds (completed jobs)", text + (f"\n{verdict}" if verdict else "")))
    return sections
