"""Compare the jobs of one or more sweep directories: a pandas DataFrame, a terminal report, files and plots.

    python -m sweep.report [SWEEP_DIR ...] [--out DIR] [--top N]

With no SWEEP_DIR, the newest sweep under ./outputs/ is read. Rows are ranked on validation numbers
only: test_acc is shown, never used to rank or to pick the best job.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import pandas as pd
import yaml

from sweep.atomic import atomic_write_with
from sweep.errors import UserError

METRIC_COLUMNS = ["best_epoch", "best_val_acc", "best_val_loss", "train_acc", "test_acc", "epochs_completed", "seconds"]
INT_COLUMNS = ("best_epoch", "epochs_completed")
FIXED_COLUMNS = {"job", "path", "status", "error", *METRIC_COLUMNS}
# Private row keys, dropped once the DataFrame is built:
MONITOR = "\0monitor"  # each job's trainer.monitor (metrics.json): decides the ranking
RECORDED = "\0recorded"  # whether the job's overrides could be read: only then does a missing key mean "not set"
# Overrides that say how a job was launched, not what it trained: no parameter column, not in a rerun.
LAUNCH_KEYS = {"resume", "search"}
# ...except that a search overlay may also set what is trained (search=fashion_budget sets the data,
# the optimizer and the schedule): a rerun keeps it. In a single run its sweeper settings do nothing.
RERUN_KEEPS = {"search"}
RUNNING_WINDOW_S = 60.0  # a job without metrics.json that wrote something this recently is still running
TRIAL_STATES = {"COMPLETE": "completed", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: 500 jobs stay quick


# --------------------------------------------------------------------------- reading a sweep


def _natural_key(name: str) -> list:
    """job_2 before job_10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _job_dirs(sweep_dir: Path) -> list[Path]:
    """Children that Hydra made into jobs (they hold .hydra/); reruns live one level deeper, in reruns/."""
    return sorted((p.parent for p in sweep_dir.glob("*/.hydra")), key=lambda p: _natural_key(p.name))


def _read_yaml(path: Path) -> Any:
    with open(path, "rb") as f:
        return yaml.load(f, Loader=_LOADER)


def _overrides(job_dir: Path) -> Optional[list[str]]:
    """The job's command-line overrides plus its swept values, as Hydra recorded them; None if unreadable."""
    try:
        items = _read_yaml(job_dir / ".hydra" / "overrides.yaml")
    except (OSError, yaml.YAMLError):
        return None  # Hydra is still writing the job's folder, or the file was damaged
    return [str(item) for item in items or []] if isinstance(items, (list, type(None))) else None


def _split_override(item: str) -> tuple[str, str] | None:
    """("model.num_hidden", "30") from "model.num_hidden=30"; None for a deletion such as "~key"."""
    key, sep, value = item.partition("=")
    if not sep:
        return None
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return key.lstrip("+~"), value


def _is_launch_key(key: str) -> bool:
    return key.startswith(("hydra.", "hydra/")) or key == "hydra" or key in LAUNCH_KEYS


def _logged_error(job_dir: Path) -> Optional[str]:
    """The last ERROR line of train.log: a job stopped by an error before it could write metrics.json."""
    try:
        lines = (job_dir / "train.log").read_text(errors="replace").splitlines()
    except OSError:
        return None
    return next((line.split("][ERROR] - ", 1)[1] for line in reversed(lines) if "][ERROR] - " in line), None)


def _status_without_metrics(job_dir: Path, now: float) -> str:
    """running (wrote something within the last minute), interrupted (has checkpoints) or not started."""
    newest = 0.0
    for name in ("train.log", "history.csv", "checkpoints/last.pt", ".hydra/overrides.yaml"):
        try:
            newest = max(newest, (job_dir / name).stat().st_mtime)
        except OSError:
            continue
    if now - newest < RUNNING_WINDOW_S:
        return "running"
    return "interrupted" if (job_dir / "checkpoints" / "last.pt").exists() else "not started"


def _job_row(job_dir: Path, name: str, trial: Optional[dict], now: float) -> dict:
    overrides = _overrides(job_dir)
    row: dict = {"job": name, "path": str(job_dir), RECORDED: overrides is not None}
    for item in overrides or []:
        pair = _split_override(item)
        if pair is not None and not _is_launch_key(pair[0]):
            row[pair[0]] = pair[1]
    metrics_path = job_dir / "metrics.json"
    try:
        metrics = json.loads(metrics_path.read_text())
    except FileNotFoundError:
        metrics = None
    except (OSError, ValueError) as e:
        metrics = {"status": "unreadable", "error": f"{metrics_path}: {e}"}
    if metrics is not None and not isinstance(metrics, dict):
        metrics = {"status": "unreadable", "error": f"{metrics_path} does not hold a JSON object"}
    if metrics is not None:
        row.update({k: metrics.get(k) for k in METRIC_COLUMNS})
        row["status"] = metrics.get("status") or "unknown"
        row["error"] = metrics.get("error")
        row[MONITOR] = metrics.get("monitor")
    elif (error := _logged_error(job_dir)) is not None or (trial is not None and trial.get("state") == "FAIL"):
        row["status"], row["error"] = "failed", error
    else:
        row["status"] = _status_without_metrics(job_dir, now)
    return row


def load_trials(sweep_dir: Path | str) -> Optional[pd.DataFrame]:
    """An Optuna sweep's trials.csv (number, state, value, duration_s, job_dir, params_*), or None."""
    path = Path(sweep_dir) / "trials.csv"
    if not path.is_file():
        return None
    try:
        trials = pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise UserError(f"{path} cannot be read as a table ({e}): let the Optuna sweep rewrite it, or delete it "
                        "to report the jobs alone") from None
    missing = {"number", "state", "value", "job_dir"} - set(trials.columns)
    if missing:
        raise UserError(f"{path} lacks the column(s) {', '.join(sorted(missing))}: it is not an Optuna trials "
                        "table written by sweep; delete it to report the jobs alone")
    trials["value"] = pd.to_numeric(trials["value"], errors="coerce")
    return trials.sort_values("number", kind="stable").reset_index(drop=True)


def _trial_rows(sweep_dir: Path, trials: pd.DataFrame, job_names: set[str], prefix: str) -> tuple[dict, list[dict]]:
    """Trials by job folder name, and rows for trials that have no job folder (yet)."""
    by_name: dict[str, dict] = {}
    orphans: list[dict] = []
    for trial in trials.to_dict("records"):
        job_dir = trial["job_dir"]
        name = Path(job_dir).name if isinstance(job_dir, str) and job_dir else f"trial_{int(trial['number']):04d}"
        by_name[name] = trial
        if name in job_names:
            continue
        row = {"job": prefix + name, "path": str(sweep_dir / name),
               "status": TRIAL_STATES.get(str(trial["state"]), str(trial["state"]).lower())}
        row.update({k[len("params_"):]: str(v) for k, v in trial.items() if k.startswith("params_") and not pd.isna(v)})
        orphans.append(row)
    return by_name, orphans


def _check_sweep_dir(d: Path) -> None:
    """Raise a one-line UserError that says what d is, when it holds no jobs."""
    hint = "pass a sweep directory such as outputs/sweeps/<time>"
    if not d.exists():
        raise UserError(f"{d} does not exist: {hint}")
    if not d.is_dir():
        raise UserError(f"{d} is not a directory: {hint}")
    if not any(d.iterdir()):
        raise UserError(f"{d} is empty: it holds no jobs; {hint}")
    if (d / ".hydra").is_dir():
        raise UserError(f"{d} is a single run, not a sweep: pass its parent folder to compare it with its "
                        "neighbours, or a sweep directory")
    nested = _sweeps_under(d, depth=1) + _sweeps_under(d, depth=2)
    if nested:
        newest = max(nested, key=lambda p: p.stat().st_mtime)
        raise UserError(f"{d} holds sweeps, not jobs: pass one of them, e.g. {newest}")
    raise UserError(f"{d} is not a sweep directory (no job folder with a .hydra/ inside): {hint}")


def _sweeps_under(root: Path, depth: int) -> list[Path]:
    """Folders `depth` levels below root that hold job folders."""
    pattern = "/".join(["*"] * (depth + 1)) + "/.hydra"
    return list({p.parent.parent for p in root.glob(pattern)})


def newest_sweep(outputs: Path | str = "outputs") -> Path:
    """The sweep under outputs/ (outputs/sweeps/<time>, outputs/optuna/<study>, ...) modified last."""
    outputs = Path(outputs)
    sweeps = _sweeps_under(outputs, depth=2) if outputs.is_dir() else []
    if not sweeps:
        raise UserError(f"no sweep under {outputs.resolve()}: run one (python -m sweep.train -m ...) or pass a "
                        "sweep directory")
    return max(sweeps, key=lambda p: p.stat().st_mtime)


def _as_dirs(paths: Path | str | Iterable[Path | str]) -> list[Path]:
    dirs = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    if not dirs:
        raise UserError("no sweep directory given: pass at least one, such as outputs/sweeps/<time>")
    unique: dict[Path, Path] = {}
    for d in dirs:
        unique.setdefault(d.resolve(), d)
    return list(unique.values())


def load_runs(paths: Path | str | Iterable[Path | str]) -> pd.DataFrame:
    """One row per job of one or more sweep directories, best first on validation numbers (never on test).

    Columns: job, path, status, one column per swept parameter (its config key), the metrics of
    metrics.json (NaN where a job failed or has not finished), and error. With several sweep
    directories, job names are prefixed with the sweep's folder name so that they stay unique.
    """
    dirs = _as_dirs(paths)
    common = Path(os.path.commonpath([d.resolve() for d in dirs])) if len(dirs) > 1 else None
    now = time.time()
    rows: list[dict] = []
    for d in dirs:
        jobs = _job_dirs(d) if d.is_dir() else []
        trials = load_trials(d) if d.is_dir() else None
        if not jobs and trials is None:
            _check_sweep_dir(d)
        prefix = f"{d.resolve().relative_to(common).as_posix()}/" if common is not None else ""
        by_name, orphans = _trial_rows(d, trials, {j.name for j in jobs}, prefix) if trials is not None else ({}, [])
        rows += [_job_row(j, prefix + j.name, by_name.get(j.name), now) for j in jobs]
        rows += orphans
    if not rows:
        raise UserError(f"{', '.join(map(str, dirs))} holds no jobs or trials yet: wait for the sweep to start one")
    return _frame(rows)


def _frame(rows: list[dict]) -> pd.DataFrame:
    """Rows to a typed, ranked DataFrame in one go (no per-job pandas work)."""
    df = pd.DataFrame(rows)
    known = df[RECORDED].eq(True) if RECORDED in df else pd.Series(False, index=df.index)
    if not known.any():
        known[:] = True  # trials alone: their params_* columns are all there is
    for col in METRIC_COLUMNS:
        values = pd.to_numeric(df[col], errors="coerce") if col in df else pd.Series(math.nan, index=df.index)
        df[col] = values.astype("Int64") if col in INT_COLUMNS else values.astype(float)
    if "error" not in df:
        df["error"] = None
    monitors = set(df[MONITOR].dropna()) if MONITOR in df else set()
    keys = ["best_val_loss", "best_val_acc"] if monitors == {"val_loss"} else ["best_val_acc", "best_val_loss"]
    params = []
    for col in (c for c in df.columns if c not in FIXED_COLUMNS and c not in (MONITOR, RECORDED)):
        df[col] = _maybe_numeric(df[col])
        # A value shared by every job (data.root=...) is not a swept parameter; a key set in some jobs only is.
        if len(df) == 1 or df[col].nunique() > 1 or df.loc[known, col].isna().any():
            params.append(col)
    df = df[["job", "path", "status", *params, *METRIC_COLUMNS, "error"]]
    df = df.sort_values(keys, ascending=[k == "best_val_loss" for k in keys], na_position="last",
                        kind="stable").reset_index(drop=True)
    df.attrs["ranked_on"] = keys[0]
    return df


def _maybe_numeric(col: pd.Series) -> pd.Series:
    converted = pd.to_numeric(col, errors="coerce")
    return converted if converted.notna().sum() == col.notna().sum() else col


def param_columns(runs: pd.DataFrame) -> list[str]:
    """The swept parameters: every column that is neither the job's identity nor a metric."""
    return [c for c in runs.columns if c not in FIXED_COLUMNS]


def load_histories(runs: pd.DataFrame) -> pd.DataFrame:
    """Every job's history.csv in one long DataFrame (a `job` column, then the epoch columns), in runs' order."""
    records: list[dict] = []
    for job, path in zip(runs["job"], runs["path"]):
        try:
            lines = (Path(path) / "history.csv").read_text().splitlines()
        except OSError:
            continue  # failed in epoch 1, or not started: no curve
        if not lines:
            continue
        header = lines[0].split(",")
        records += [{"job": job, **dict(zip(header, line.split(",")))} for line in lines[1:] if line]
    hist = pd.DataFrame(records, columns=None if records else ["job", "epoch", "val_acc"])
    for col in hist.columns.drop("job"):
        hist[col] = pd.to_numeric(hist[col], errors="coerce")
    return hist


# --------------------------------------------------------------------------- summaries


def best_run(runs: pd.DataFrame) -> Optional[pd.Series]:
    """The top-ranked completed job (ranked on validation only), or None while no job has completed."""
    done = runs[(runs["status"] == "completed") & runs["best_val_acc"].notna()]
    return None if done.empty else done.iloc[0]


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
    kept = [item for item in _overrides(job_dir) or []
            if (pair := _split_override(item)) is None or not _is_launch_key(pair[0]) or pair[0] in RERUN_KEEPS]
    cmd = shlex.join(["python", "-m", "sweep.train", *kept, f"hydra.run.dir={rerun_path(row)}"])
    cwd = _sweep_cwd(job_dir)
    if cwd is not None and Path(cwd).resolve() != Path.cwd().resolve():
        cmd = f"cd {shlex.quote(cwd)} && {cmd}"
    return cmd


def _sweep_cwd(job_dir: Path) -> Optional[str]:
    """The working directory the job was launched from (hydra.runtime.cwd), when Hydra recorded it."""
    try:
        return str(_read_yaml(job_dir / ".hydra" / "hydra.yaml")["hydra"]["runtime"]["cwd"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return None


def seed_summary(runs: pd.DataFrame) -> Optional[pd.DataFrame]:
    """best_val_acc over seeds, per combination of the other swept parameters: mean, std and count.

    Only completed jobs count (a pruned or failed job's number is not a finished result). None when
    seed is not swept.
    """
    params = param_columns(runs)
    if "seed" not in params:
        return None
    groups = [p for p in params if p != "seed"]
    done = runs[runs["status"] == "completed"]
    acc = done["best_val_acc"]
    if groups:
        table = done.groupby(groups, dropna=False, sort=False)["best_val_acc"].agg(["mean", "std", "count"])
        table = table.reset_index()
    else:
        table = pd.DataFrame({"mean": [acc.mean()], "std": [acc.std()], "count": [acc.count()]})
    table = table.rename(columns={"mean": "best_val_acc_mean", "std": "best_val_acc_std"})
    return table.sort_values("best_val_acc_mean", ascending=False, na_position="last",
                             kind="stable").reset_index(drop=True)


def noise_verdict(summary: pd.DataFrame) -> Optional[str]:
    """Whether the leading group beats the runner-up by more than two standard errors of the difference.

    A rough check (Welch's standard error), to flag differences that seeds alone could produce.
    """
    groups = [c for c in summary.columns if c not in ("best_val_acc_mean", "best_val_acc_std", "count")]
    top = summary[summary["count"] >= 2].head(2)
    if not groups or len(top) < 2:
        return None
    (a, b) = (top.iloc[0], top.iloc[1])
    diff = a["best_val_acc_mean"] - b["best_val_acc_mean"]
    se = math.sqrt(a["best_val_acc_std"] ** 2 / a["count"] + b["best_val_acc_std"] ** 2 / b["count"])
    verdict = "within" if diff <= 2 * se else "beyond"
    return (f"{_param_text(a, groups)} vs {_param_text(b, groups)}: mean best_val_acc differs by {diff:.4f}, "
            f"{verdict} seed noise (2 standard errors: {2 * se:.4f})")


def _cell_format(col: str, kind: str) -> Callable[[Any], str]:
    if col == "seconds":
        return "{:.2f}".format
    if kind == "f" and col.startswith(("best_val_", "train_acc", "test_acc")):
        return "{:.4f}".format
    return "{:g}".format if kind == "f" else str


def _display(df: pd.DataFrame) -> pd.DataFrame:
    """Every cell as text: 4 decimals for accuracies and losses, "-" where a value is missing."""
    out = {}
    for col in df.columns:
        fmt = _cell_format(col, df[col].dtype.kind)
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


def _markdown_table(df: pd.DataFrame) -> str:
    cells = _display(df)
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + " --- |" * len(df.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines)


def _problem_lines(problems: pd.DataFrame, shown: int = 12) -> str:
    """Per status, the jobs (the first few names) and each distinct error with how many jobs hit it."""
    lines = []
    for status, group in problems.groupby("status", sort=True):
        names = sorted(group["job"], key=_natural_key)
        more = f" and {len(names) - shown} more" if len(names) > shown else ""
        lines.append(f"{status} ({len(names)}): {', '.join(names[:shown])}{more}")
        for error, count in group["error"].dropna().value_counts(sort=True).items():
            lines.append(f"  {count} x {error}")
    return "\n".join(lines)


def ranking_title(runs: pd.DataFrame) -> str:
    """What the table's order means: validation numbers only (best_val_loss when every job monitored val_loss)."""
    return (f"{len(runs)} jobs, ranked on {runs.attrs.get('ranked_on', 'best_val_acc')} (validation; test_acc is shown, never used to "
            "rank or to pick the best)")


def report_sections(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """(title, text) pairs below the table: best configuration, unfinished jobs, seeds (terminal and report.md)."""
    params = param_columns(runs)
    best = best_run(runs)
    if best is None:
        sections = [("Best configuration", "no completed job yet")]
    else:
        ckpt = Path(best["path"]) / "checkpoints" / "best.pt"
        sections = [("Best configuration", "\n".join([
            f"best: {best['job']} ({_param_text(best, params) or 'no swept parameter'}): "
            f"best_val_acc {best['best_val_acc']:.4f}, best_val_loss {best['best_val_loss']:.4f} "
            f"at epoch {best['best_epoch']}",
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
        sections.append(("best_val_acc across seeds (completed jobs)", text + (f"\n{verdict}" if verdict else "")))
    return sections


# --------------------------------------------------------------------------- files


def _sweep_direction(sweep_dir: Path) -> str:
    """Optuna's direction from multirun.yaml (hydra.sweeper.direction); sweep maximizes val_acc by default."""
    try:
        direction = _read_yaml(sweep_dir / "multirun.yaml")["hydra"]["sweeper"]["direction"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return "maximize"
    return str(direction[0] if isinstance(direction, list) else direction).lower()


def write_plots(runs: pd.DataFrame, sweep_dirs: list[Path], out_dir: Path) -> list[Path]:
    """The report's PNGs in out_dir: curves of every job, best_val_acc per parameter, Optuna histories."""
    from sweep.report_plots import plot_curves, plot_optuna_history, plot_params

    written = []
    path = out_dir / "report_curves.png"
    atomic_write_with(path, lambda p: plot_curves(runs, load_histories(runs), p))
    written.append(path)
    if param_columns(runs):
        path = out_dir / "report_params.png"
        atomic_write_with(path, lambda p: plot_params(runs, p))
        written.append(path)
    studies = [(d, t) for d in sweep_dirs if (t := load_trials(d)) is not None]
    for d, trials in studies:
        path = out_dir / ("report_optuna_history.png" if len(studies) == 1 else f"report_optuna_history_{d.name}.png")
        atomic_write_with(path, lambda p: plot_optuna_history(trials, p, direction=_sweep_direction(d), title=str(d)))
        written.append(path)
    return written


def write_report(runs: pd.DataFrame, sweep_dirs: list[Path], out_dir: Path,
                 sections: Optional[list[tuple[str, str]]] = None) -> list[Path]:
    """report.csv (every column), report.md (the terminal report, with the plots) and the PNGs, in out_dir.

    `sections` are report_sections(runs), when the caller has them already.
    """
    sections = report_sections(runs) if sections is None else sections
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        plots = write_plots(runs, sweep_dirs, out_dir)
        csv_path, md_path = out_dir / "report.csv", out_dir / "report.md"
        atomic_write_with(csv_path, lambda p: runs.to_csv(p, index=False))
        md = [f"# Sweep report\n\nSweeps: {', '.join(f'`{d}`' for d in sweep_dirs)}\n",
              f"## {ranking_title(runs)}\n\n{_markdown_table(runs.drop(columns=['path', 'error']))}\n"]
        md += [f"## {title}\n\n```\n{text}\n```\n" for title, text in sections]
        md.append("## Plots\n\n" + "\n".join(f"![{p.stem}]({p.name})" for p in plots) + "\n")
        atomic_write_with(md_path, lambda p: p.write_text("\n".join(md)))
    except OSError as e:
        raise UserError(f"cannot write the report into {out_dir} ({e.strerror or e}): pass --out DIR") from None
    return [csv_path, md_path, *plots]


# --------------------------------------------------------------------------- CLI


def main(argv: Optional[list[str]] = None) -> int:
    """The CLI: print the report, write its files; a user error is one line on stderr and exit status 2."""
    parser = argparse.ArgumentParser(prog="python -m sweep.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dirs", nargs="*", type=Path, metavar="SWEEP_DIR",
                        help="sweep directories (default: the newest sweep under ./outputs/)")
    parser.add_argument("--out", type=Path, help="folder for report.csv, report.md and the PNGs "
                        "(default: the first SWEEP_DIR)")
    parser.add_argument("--top", type=int, default=30, help="rows shown in the terminal (default 30; 0: all); "
                        "report.csv and report.md hold every job")
    args = parser.parse_args(argv)
    try:
        dirs = _as_dirs(args.sweep_dirs) if args.sweep_dirs else [newest_sweep()]
        runs = load_runs(dirs)
        sections = report_sections(runs)
        files = write_report(runs, dirs, args.out or dirs[0], sections)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        print(f"{ranking_title(runs)}\n{summary_table(runs, top=args.top or None)}\n")
        for title, text in sections:
            print(f"{title}\n{text}\n")
        print("wrote:\n" + "\n".join(f"  {p}" for p in files), flush=True)
    except BrokenPipeError:  # `python -m sweep.report | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
