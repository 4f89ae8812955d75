"""Reading sweep directories into a pandas DataFrame: one row per job, ranked on the monitored validation metric.

The files of a job are those of sweep.rundir's contract (metrics.json, history.csv, checkpoints/, .hydra/);
an Optuna sweep adds trials.csv beside its trial folders.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Optional

import pandas as pd
import yaml

from sweep import rundir
from sweep.errors import UserError

LEADING_METRICS = ("best_epoch", "objective")
TRAILING_METRICS = ("epochs_completed", "seconds")
METRIC_PREFIXES = ("best_val_", "train_", "test_")  # + a metric name: metrics.json's per-metric values
INT_COLUMNS = ("best_epoch", "epochs_completed")
IDENTITY_COLUMNS = ("job", "path", "status", "error")
# Within each prefix: loss first, then the built-in tasks' metrics in sweep.tasks' order (imported
# from there it would cost the report a torch import), then any other metric alphabetically.
METRIC_ORDER = ("loss", "acc", "rmse", "mae")
# Private row keys, dropped once the DataFrame is built:
MONITOR = "\0monitor"  # each job's (monitor, direction) from metrics.json: decides the ranking
RECORDED = "\0recorded"  # whether the job's overrides could be read: only then does a missing key mean "not set"
# Launch keys (sweep.rundir.LAUNCH_KEYS) get no parameter column and stay out of a rerun, except that a
# search overlay may also set what is trained (search=fashion_budget sets the data, the optimizer and the
# schedule): a rerun keeps it. In a single run its sweeper settings do nothing.
RERUN_KEEPS = {"search"}
RUNNING_WINDOW_S = 60.0  # a job without metrics.json that wrote something this recently is still running
TRIAL_STATES = {"COMPLETE": "completed", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running"}
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: 500 jobs stay quick


def is_metric_column(col: str) -> bool:
    """best_epoch, objective, best_val_<m>, train_<m>, test_<m>, epochs_completed, seconds."""
    return col in LEADING_METRICS or col in TRAILING_METRICS or col.startswith(("best_", *METRIC_PREFIXES))


def monitored_column(monitor: str) -> str:
    """The runs' column that holds a monitor's value at the selected epoch: val_rmse -> best_val_rmse."""
    return f"best_{monitor}"


def _metric_sort_key(col: str) -> tuple:
    prefix = next(p for p in METRIC_PREFIXES if col.startswith(p))
    name = col[len(prefix):]
    rank = METRIC_ORDER.index(name) if name in METRIC_ORDER else len(METRIC_ORDER)
    return METRIC_PREFIXES.index(prefix), rank, name


def metric_columns(columns: Iterable[str]) -> list[str]:
    """The metric columns among `columns`, in the report's order (loss first within each prefix)."""
    found = {c for c in columns if c.startswith(METRIC_PREFIXES)}
    return [*LEADING_METRICS, *sorted(found, key=_metric_sort_key), *TRAILING_METRICS]


# --------------------------------------------------------------------------- reading a sweep


def natural_key(name: str) -> list:
    """job_2 before job_10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _job_dirs(sweep_dir: Path) -> list[Path]:
    """Children that Hydra made into jobs (they hold .hydra/); reruns live one level deeper, in reruns/."""
    return sorted((p.parent for p in sweep_dir.glob(f"*/{rundir.HYDRA}")), key=lambda p: natural_key(p.name))


def _read_yaml(path: Path) -> Any:
    with open(path, "rb") as f:
        return yaml.load(f, Loader=_LOADER)


def overrides(job_dir: Path) -> Optional[list[str]]:
    """The job's command-line overrides plus its swept values, as Hydra recorded them; None if unreadable."""
    try:
        items = _read_yaml(job_dir / rundir.HYDRA / rundir.OVERRIDES)
    except (OSError, yaml.YAMLError):
        return None  # Hydra is still writing the job's folder, or the file was damaged
    return [str(item) for item in items or []] if isinstance(items, (list, type(None))) else None


def split_override(item: str) -> tuple[str, str] | None:
    """("model.num_hidden", "30") from "model.num_hidden=30"; None for a deletion such as "~key"."""
    key, sep, value = item.partition("=")
    if not sep:
        return None
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return key.lstrip("+~"), value


def sweep_cwd(job_dir: Path) -> Optional[str]:
    """The working directory the job was launched from (hydra.runtime.cwd), when Hydra recorded it."""
    try:
        return str(_read_yaml(job_dir / rundir.HYDRA / rundir.HYDRA_RECORD)["hydra"]["runtime"]["cwd"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return None


def sweep_direction(sweep_dir: Path, default: str = rundir.DEFAULT_DIRECTION) -> str:
    """An Optuna sweep's direction from multirun.yaml (hydra.sweeper.direction), else `default`."""
    try:
        direction = _read_yaml(Path(sweep_dir) / rundir.MULTIRUN)["hydra"]["sweeper"]["direction"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return default
    if isinstance(direction, list):
        direction = direction[0] if direction else default
    return str(direction).lower() if direction else default


def _logged_error(job_dir: Path) -> Optional[str]:
    """The last ERROR line of train.log: a job stopped by an error before it could write metrics.json."""
    try:
        lines = (job_dir / rundir.LOG).read_text(errors="replace").splitlines()
    except OSError:
        return None
    return next((line.split("][ERROR] - ", 1)[1] for line in reversed(lines) if "][ERROR] - " in line), None)


def _status_without_metrics(job_dir: Path, now: float) -> str:
    """running (wrote something within the last minute), interrupted (has checkpoints) or not started."""
    last = Path(rundir.CHECKPOINTS) / rundir.LAST
    newest = 0.0
    for name in (rundir.LOG, rundir.HISTORY, last, Path(rundir.HYDRA) / rundir.OVERRIDES):
        try:
            newest = max(newest, (job_dir / name).stat().st_mtime)
        except OSError:
            continue
    if now - newest < RUNNING_WINDOW_S:
        return "running"
    return "interrupted" if (job_dir / last).exists() else "not started"


def _metrics_row(metrics: dict) -> dict:
    """A job's metrics.json as row values: status, error, the metrics, and (monitor, direction) privately.

    Old files (no direction, or no monitor) are read as sweep.rundir reads them: val_acc, maximize.
    """
    result = rundir.RunResult.from_json(metrics)
    row = {k: metrics.get(k) for k in (*LEADING_METRICS, *TRAILING_METRICS)}
    row.update({k: v for k, v in result.values.items() if k.startswith(METRIC_PREFIXES)})
    row["status"] = result.status or "unknown"
    row["error"] = result.error
    row[MONITOR] = (str(result.monitor), str(result.direction).lower())
    return row


def _job_row(job_dir: Path, name: str, trial: Optional[dict], now: float) -> dict:
    items = overrides(job_dir)
    row: dict = {"job": name, "path": str(job_dir), RECORDED: items is not None}
    for item in items or []:
        pair = split_override(item)
        if pair is not None and not rundir.is_launch_key(pair[0]):
            row[pair[0]] = pair[1]
    metrics = rundir.read_metrics(job_dir)
    if metrics is not None:
        row.update(_metrics_row(metrics))
    elif (job_dir / rundir.METRICS).exists():  # written atomically, so damaged, not half-written
        row["status"] = "unreadable"
        row["error"] = f"{job_dir / rundir.METRICS} is not a readable JSON object"
    elif (error := _logged_error(job_dir)) is not None or (trial is not None and trial.get("state") == "FAIL"):
        row["status"], row["error"] = "failed", error
    else:
        row["status"] = _status_without_metrics(job_dir, now)
    return row


def load_trials(sweep_dir: Path | str) -> Optional[pd.DataFrame]:
    """An Optuna sweep's trials.csv (number, state, value, duration_s, job_dir, params_*), or None."""
    path = Path(sweep_dir) / rundir.TRIALS
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
    if (d / rundir.HYDRA).is_dir():
        raise UserError(f"{d} is a single run, not a sweep: pass its parent folder to compare it with its "
                        "neighbours, or a sweep directory")
    nested = _sweeps_under(d, depth=1) + _sweeps_under(d, depth=2)
    if nested:
        newest = max(nested, key=lambda p: p.stat().st_mtime)
        raise UserError(f"{d} holds sweeps, not jobs: pass one of them, e.g. {newest}")
    raise UserError(f"{d} is not a sweep directory (no job folder with a {rundir.HYDRA}/ inside): {hint}")


def _sweeps_under(root: Path, depth: int) -> list[Path]:
    """Folders `depth` levels below root that hold job folders."""
    pattern = "/".join(["*"] * (depth + 1)) + "/" + rundir.HYDRA
    return list({p.parent.parent for p in root.glob(pattern)})


def newest_sweep(outputs: Path | str = "outputs") -> Path:
    """The sweep under outputs/ (outputs/sweeps/<time>, outputs/optuna/<study>, ...) modified last."""
    outputs = Path(outputs)
    sweeps = _sweeps_under(outputs, depth=2) if outputs.is_dir() else []
    if not sweeps:
        raise UserError(f"no sweep under {outputs.resolve()}: run one (python -m sweep.train -m ...) or pass a "
                        "sweep directory")
    return max(sweeps, key=lambda p: p.stat().st_mtime)


def as_dirs(paths: Path | str | Iterable[Path | str]) -> list[Path]:
    """One or more sweep directories as a list of Paths, each once."""
    dirs = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    if not dirs:
        raise UserError("no sweep directory given: pass at least one, such as outputs/sweeps/<time>")
    unique: dict[Path, Path] = {}
    for d in dirs:
        unique.setdefault(d.resolve(), d)
    return list(unique.values())


def load_runs(paths: Path | str | Iterable[Path | str]) -> pd.DataFrame:
    """One row per job of one or more sweep directories, best first on the monitored validation metric.

    Columns: job, path, status, one column per swept parameter (its config key), then the metrics of
    metrics.json (best_epoch, objective, every best_val_<m>, train_<m>, test_<m> the jobs wrote, loss
    first, epochs_completed, seconds; NaN where a job failed or has not finished), and error. With several
    sweep directories, job names are prefixed with the sweep's folder path so that they stay unique.

    Rows are ranked on best_<monitor> in the monitor's direction, as the jobs selected their epochs
    (test numbers are never used). runs.attrs holds monitor, direction and ranked_on, and monitors
    ({monitor: jobs}) when the jobs did not all monitor the same metric: then the most common one ranks.
    """
    dirs = as_dirs(paths)
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


def _ranking(monitors: list[tuple[str, str]]) -> tuple[str, str, dict[str, int]]:
    """(monitor, direction, jobs per monitor) from the jobs' (monitor, direction) pairs: the most common."""
    if not monitors:
        return rundir.DEFAULT_MONITOR, rundir.DEFAULT_DIRECTION, {}
    counts = Counter(m for m, _ in monitors)
    monitor = counts.most_common(1)[0][0]  # ties: the monitor of the first job in order
    direction = Counter(d for m, d in monitors if m == monitor).most_common(1)[0][0]
    return monitor, direction, dict(counts.most_common())


def _frame(rows: list[dict]) -> pd.DataFrame:
    """Rows to a typed, ranked DataFrame in one go (no per-job pandas work)."""
    monitor, direction, counts = _ranking([r[MONITOR] for r in rows if MONITOR in r])
    ranked_on = monitored_column(monitor)
    keys = dict.fromkeys(k for r in rows for k in r)
    metrics = metric_columns([*keys, ranked_on, "best_val_loss"])  # both exist even before any job has finished
    if ranked_on not in metrics:  # a monitor that is not a val_ metric (hand-written metrics.json): still a column
        metrics.insert(len(LEADING_METRICS), ranked_on)
    df = pd.DataFrame(rows)
    known = df[RECORDED].eq(True) if RECORDED in df else pd.Series(False, index=df.index)
    if not known.any():
        known[:] = True  # trials alone: their params_* columns are all there is
    for col in metrics:
        values = pd.to_numeric(df[col], errors="coerce") if col in df else pd.Series(math.nan, index=df.index)
        df[col] = values.astype("Int64") if col in INT_COLUMNS else values.astype(float)
    if "error" not in df:
        df["error"] = None
    params = []
    for col in keys:
        if col in IDENTITY_COLUMNS or col in (MONITOR, RECORDED) or is_metric_column(col):
            continue
        df[col] = _maybe_numeric(df[col])
        # A value shared by every job (data.root=...) is not a swept parameter; a key set in some jobs only is.
        if len(df) == 1 or df[col].nunique() > 1 or df.loc[known, col].isna().any():
            params.append(col)
    df = df[["job", "path", "status", *params, *metrics, "error"]]
    # Ties on the monitored value go to the lower validation loss (to the higher accuracy when the loss ranks).
    order = [(ranked_on, direction == "minimize")]
    if ranked_on != "best_val_loss":
        order.append(("best_val_loss", True))
    elif "best_val_acc" in df:
        order.append(("best_val_acc", False))
    df = df.sort_values([c for c, _ in order], ascending=[a for _, a in order], na_position="last",
                        kind="stable").reset_index(drop=True)
    df.attrs.update(monitor=monitor, direction=direction, ranked_on=ranked_on)
    if len(counts) > 1:
        df.attrs["monitors"] = counts
    return df


def _maybe_numeric(col: pd.Series) -> pd.Series:
    converted = pd.to_numeric(col, errors="coerce")
    return converted if converted.notna().sum() == col.notna().sum() else col


def param_columns(runs: pd.DataFrame) -> list[str]:
    """The swept parameters: every column that is neither the job's identity nor a metric."""
    return [c for c in runs.columns if c not in IDENTITY_COLUMNS and not is_metric_column(c)]


def load_histories(runs: pd.DataFrame) -> pd.DataFrame:
    """Every job's history.csv in one long DataFrame (a `job` column, then the epoch columns: epoch,
    iterations, train_<m>..., val_<m>..., seconds), in runs' order. Jobs of different tasks may be
    mixed: a column a job's task lacks is NaN in its rows."""
    records: list[dict] = []
    for job, path in zip(runs["job"], runs["path"]):
        try:
            history = rundir.read_history(Path(path))
        except (ValueError, TypeError, KeyError):
            continue  # a damaged file (histories are written atomically): no curve rather than no report
        records += [{"job": job, **row} for row in history if isinstance(row.get("epoch"), int)]
    hist = pd.DataFrame(records, columns=None if records else ["job", "epoch"])
    for col in hist.columns.drop("job"):
        hist[col] = pd.to_numeric(hist[col], errors="coerce")
    return hist


def ranked_metric(runs: pd.DataFrame) -> tuple[str, str]:
    """(column, direction) that runs are ranked on: runs.attrs from load_runs, else guessed from the columns
    (a DataFrame read back from report.csv): best_val_acc (maximize), else the first other best_val_<m>
    that is not the loss (minimize: rmse, mae), else best_val_loss (minimize)."""
    col, direction = runs.attrs.get("ranked_on"), runs.attrs.get("direction")
    if col in runs.columns and direction in ("maximize", "minimize"):
        return col, direction
    if "best_val_acc" in runs.columns:
        return "best_val_acc", "maximize"
    other = [c for c in runs.columns if c.startswith("best_val_") and c != "best_val_loss"]
    return (other[0] if other else "best_val_loss"), "minimize"
