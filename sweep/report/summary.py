"""What the report says below the table: the best configuration (with seeds swept, the best mean over
seeds), the job whose checkpoint it recommends and how to rerun it, the jobs that did not complete, and,
with seeds swept, whether the leader's margin is beyond seed noise. All of it on the
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
from sweep.report.runs import (RERUN_KEEPS, metric_columns, natural_key, overrides, param_columns,
                               ranked_metric, split_override, sweep_cwd)


def _best_job(jobs: pd.DataFrame, col: str, direction: str) -> Optional[pd.Series]:
    """The best completed job of `jobs` on col, in its direction (ties: the earlier row)."""
    done = jobs[(jobs["status"] == "completed") & jobs[col].notna()]
    if done.empty:
        return None
    return done.sort_values(col, ascending=direction == "minimize", kind="stable").iloc[0]


def _same_configuration(jobs: pd.DataFrame, row: pd.Series, groups: list[str]) -> pd.Series:
    """Which jobs have every value of `row` in `groups` (a missing value matches a missing one)."""
    mask = pd.Series(True, index=jobs.index)
    for g in groups:
        mask &= (jobs[g] == row[g]) | (jobs[g].isna() & pd.isna(row[g]))
    return mask


def best_configuration(runs: pd.DataFrame) -> Optional[tuple[pd.Series, Optional[pd.Series]]]:
    """(job, configuration): the job whose checkpoint the report recommends, and, with seed swept, its
    configuration's row of seed_summary (None without seeds); None while no job has completed.

    Without seeds, the job is the best completed one on the monitored validation column. With seed swept,
    the configuration (every swept value but the seed) with the best MEAN over its completed seeds wins,
    among those with at least two completed seeds when there are any; the job is its best seed. A single
    lucky seed never decides the configuration.
    """
    col, direction = ranked_metric(runs)
    seeds = seed_summary(runs)
    if seeds is not None:
        mean = f"{col}_mean"
        ranked = seeds[seeds[mean].notna()]
        repeated = ranked[ranked["count"] >= 2]
        pool = repeated if len(repeated) else ranked
        if not pool.empty:
            top = pool.iloc[0]
            groups = [c for c in seeds.columns if c not in (mean, f"{col}_std", "count")]
            job = _best_job(runs[_same_configuration(runs, top, groups)], col, direction)
            if job is not None:
                return job, top
    job = _best_job(runs, col, direction)
    return None if job is None else (job, None)


def best_run(runs: pd.DataFrame) -> Optional[pd.Series]:
    """The job the report recommends (its checkpoint, its rerun command), or None while no job has completed:
    the best completed job on the monitored validation column, in its direction (ties: the earlier row);
    with seed swept, the best seed of the configuration with the best mean over seeds (best_configuration)."""
    best = best_configuration(runs)
    return None if best is None else best[0]


def pooled_seed_std(runs: pd.DataFrame) -> Optional[float]:
    """The standard deviation that seeds alone cause, pooled over the configurations with two or more
    completed seeds (each weighted by its seeds less one); None without such a configuration."""
    seeds = seed_summary(runs)
    if seeds is None:
        return None
    col = seeds.attrs["metric"]
    repeated = seeds[(seeds["count"] >= 2) & seeds[f"{col}_std"].notna()]
    dof = float((repeated["count"] - 1).sum())
    if dof <= 0:
        return None
    return math.sqrt(float(((repeated["count"] - 1) * repeated[f"{col}_std"] ** 2).sum()) / dof)


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
            if (pair := split_override(item)) is None or not rundir.is_launch_key(pair[0])
            or pair[0] in RERUN_KEEPS]
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


def _noise(summary: pd.DataFrame) -> Optional[tuple[str, bool]]:
    """(the verdict's text, whether the lead is within seed noise), or None without two repeated configurations."""
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
    within = margin <= 2 * se
    return (f"{_param_text(a, groups)} vs {_param_text(b, groups)}: mean {col} differs by {number_text(margin)}, "
            f"{'within' if within else 'beyond'} seed noise (2 standard errors: {number_text(2 * se)})"), within


def noise_verdict(summary: pd.DataFrame) -> Optional[str]:
    """Whether the leading group beats the runner-up by more than two standard errors of the difference.

    A rough check (Welch's standard error), to flag differences that seeds alone could produce.
    """
    noise = _noise(summary)
    return None if noise is None else noise[0]


def number_text(x: float) -> str:
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
    order = "highest" if direction == "maximize" else "lowest"
    title = (f"{len(runs)} job{'' if len(runs) == 1 else 's'}, ranked on {col} ({order} first; "
             "validation only: test numbers are shown, never used to rank or to pick the best)")
    monitors = runs.attrs.get("monitors")
    if monitors:
        counts = ", ".join(f"{n} {m}" for m, n in monitors.items())
        title += (f"; the jobs monitored different metrics ({counts}): ranked on the most common, "
                  f"{runs.attrs.get('monitor', col.removeprefix('best_'))}")
    return title


def _best_lines(runs: pd.DataFrame) -> list[str]:
    """The best configuration section: the configuration (with seeds: its mean), the recommended job, its
    checkpoint and rerun command, and, with seeds, whether the lead is beyond seed noise."""
    params = param_columns(runs)
    col, direction = ranked_metric(runs)
    best = best_configuration(runs)
    if best is None:
        return ["no completed job yet"]
    job, config = best
    lines = []
    if config is not None:
        groups = [p for p in params if p != "seed"]
        mean, std, count = config[f"{col}_mean"], config[f"{col}_std"], int(config["count"])
        spread = (f"{number_text(mean)} ± {number_text(std)} (mean ± std over {count} completed seeds)" if count >= 2
                  else f"{number_text(mean)} (one completed seed)")
        which = (f"best configuration (the best mean over seeds): {_param_text(config, groups)}" if groups
                 else "one configuration (only seed is swept)")
        lines.append(f"{which}: {col} {spread}; its best seed:")
    shown = [col, *(c for c in metric_columns(runs.columns) if c.startswith("best_val_") and c != col)]
    values = ", ".join(f"{c} {number_text(job[c])}" for c in shown if not pd.isna(job[c]))
    epoch = "" if pd.isna(job["best_epoch"]) else f" at epoch {job['best_epoch']}"
    lines += [f"best: {job['job']} ({_param_text(job, params) or 'no swept parameter'}): {values}{epoch}",
              f"checkpoint: {Path(job['path']) / rundir.CHECKPOINTS / rundir.BEST}",
              f"rerun: {rerun_command(job)}"]
    if config is None:
        return lines
    seeds = seed_summary(runs)
    top = _best_job(runs, col, direction)
    if top is not None and top["job"] != job["job"]:
        own = seeds[_same_configuration(seeds, top, groups)]
        why = ("its configuration has a single completed seed" if own.empty or own["count"].iloc[0] < 2
               else "its configuration's mean over seeds is worse: a lucky seed")
        lines.append(f"{top['job']} ({_param_text(top, params)}) is the best single job "
                     f"({col} {number_text(top[col])}), but {why}")
    noise = _noise(seeds) if seeds is not None else None
    if noise is None:
        if groups:
            lines.append("seed noise unknown: fewer than two configurations have two or more completed seeds")
    elif noise[1]:
        lines.append(f"{noise[0]}: the runner-up may be as good; run more seeds to tell them apart")
    else:
        lines.append(noise[0])
    return lines


def report_sections(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(title, text) pairs below the table: best configuration, unfinished jobs, seeds (terminal and report.md)."""
    col, _ = ranked_metric(runs)
    sections = [("Best configuration", "\n".join(_best_lines(runs)))]
    problems = runs[runs["status"] != "completed"]
    if not problems.empty:
        sections.append(("Jobs that did not complete", _problem_lines(problems)))
    seeds = seed_summary(runs)
    if seeds is not None:
        text = _display(seeds).to_string(index=False)
        verdict = noise_verdict(seeds)
        sections.append((f"{col} across seeds (completed jobs)", text + (f"\n{verdict}" if verdict else "")))
    return sections
