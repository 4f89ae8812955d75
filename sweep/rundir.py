"""The run directory's contract, shared by training, the sweepers and the report: file names, the
metrics.json schema, history.csv, which config keys may change on resume, and the state to resume from.

    RUN_DIR/
      .hydra/            Hydra's record of how the run was started (never rewritten on resume)
      train.log          the console's lines
      checkpoints/       epoch_NNN.pt, best.pt (the epoch chosen on validation), last.pt (resume point)
      history.csv        epoch, iterations, train_<m>..., val_<m>..., seconds   (m: loss, then the task's metrics)
      iterations.csv     with trainer.eval_every=N: per-iteration curves
      metrics.json       RunResult.to_json(): written last, atomically
      curves.png         the monitored metric and the loss per epoch, the selected epoch marked
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from sweep import atomic
from sweep.errors import RunDirError

if TYPE_CHECKING:
    from hydra.core.override_parser.types import Override

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
BEST, LAST = "best.pt", "last.pt"
HISTORY = "history.csv"
ITERATIONS = "iterations.csv"
METRICS = "metrics.json"
CURVES = "curves.png"
LOG = "train.log"
HYDRA = ".hydra"
OVERRIDES, HYDRA_RECORD = "overrides.yaml", "hydra.yaml"  # in .hydra/: what Hydra recorded of the command
MULTIRUN = "multirun.yaml"  # a sweep folder's record of its command
TRIALS = "trials.csv"  # an Optuna sweep folder: one row per trial (sweep.search)
PARETO_FRONT = "pareto_front.csv"  # a multi-objective Optuna sweep folder: its Pareto-optimal trials
RESULTS = "optimization_results.yaml"  # an Optuna sweep folder: upstream's summary of the study
TRIAL = "trial.json"  # an Optuna trial's job folder: its number, study, parameters, state and values
STOP = "STOP"  # written into a job folder by its sweeper on Ctrl-C: the job stops at its next epoch boundary
DEFAULT_MONITOR, DEFAULT_DIRECTION = "val_acc", "maximize"  # what runs written before monitors had directions used

# Keys that may change between an interrupted run and its resumption: where the data and the outputs
# are, how many epochs to train, and where to compute (another device or thread count may change the last
# bits of the numbers, which is the point of moving a run). Not data.num_workers: with random
# augmentation, which worker transforms which example decides the random numbers it gets.
RESUMABLE_KEYS = frozenset({
    "resume", "trainer.epochs", "trainer.keep_checkpoints", "trainer.device", "trainer.threads",
    "data.root", "data.download",
})
# ...except trainer.epochs when a learning-rate schedule is set: its length is part of the run.
SCHEDULE_BOUND_KEYS = frozenset({"trainer.epochs"})


def history_columns(metric_names: list[str]) -> list[str]:
    """epoch, iterations, train_loss, train_acc, val_loss, val_acc, seconds (classification)."""
    return ["epoch", "iterations", *(f"train_{m}" for m in metric_names), *(f"val_{m}" for m in metric_names),
            "seconds"]


def write_history(run_dir: Path, history: list[dict], metric_names: list[str]) -> None:
    atomic.atomic_write_csv(run_dir / HISTORY, history, history_columns(metric_names))


def curve_columns(metric: str) -> list[str]:
    """iterations.csv: the batch loss and the task's first metric (acc, rmse) on the whole train and val splits."""
    return ["iteration", "epoch", "batch_loss", f"train_{metric}", f"val_{metric}"]


def write_iterations(run_dir: Path, curve: list[dict], metric: str) -> None:
    atomic.atomic_write_csv(run_dir / ITERATIONS, curve, curve_columns(metric))


def read_history(run_dir: Path) -> list[dict]:
    """history.csv as a list of rows with numbers (empty cells: NaN); [] when there is none."""
    try:
        with open(run_dir / HISTORY, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return []
    return [{k: (int(v) if k in ("epoch", "iterations") else float(v) if v else math.nan) for k, v in r.items()}
            for r in rows]


@dataclass
class RunResult:
    """What metrics.json holds. `values` are best_val_<m>, train_<m> (both of the selected epoch) and
    test_<m> (filled only after selection is final) for every metric m of the task."""

    status: str
    monitor: str
    direction: str
    task: str
    best_epoch: Optional[int]
    objective: Optional[float]
    epochs_completed: int
    seconds: float
    values: dict[str, Optional[float]] = field(default_factory=dict)
    error: Optional[str] = None

    def __getattr__(self, name: str) -> Any:
        """result.best_val_acc, result.test_rmse, ...: the task's per-metric values."""
        values = self.__dict__.get("values") or {}
        if name in values:
            return values[name]
        raise AttributeError(name)

    def to_json(self) -> dict:
        d = asdict(self)
        d.update(d.pop("values"))
        return d

    @classmethod
    def from_json(cls, d: dict) -> "RunResult":
        fixed = {k: d.get(k) for k in cls.__dataclass_fields__ if k != "values"}
        fixed["monitor"] = fixed["monitor"] or DEFAULT_MONITOR  # written before monitors had directions
        fixed["direction"] = fixed["direction"] or ("minimize" if fixed["monitor"] == "val_loss" else DEFAULT_DIRECTION)
        fixed["task"] = fixed["task"] or "classification"
        fixed["epochs_completed"] = fixed["epochs_completed"] or 0
        fixed["seconds"] = fixed["seconds"] or 0.0
        return cls(**fixed, values={k: v for k, v in d.items() if k not in cls.__dataclass_fields__})


def write_result(run_dir: Path, result: RunResult) -> None:
    atomic.atomic_write_json(run_dir / METRICS, result.to_json())


def read_metrics(run_dir: Path) -> Optional[dict]:
    """metrics.json, or None when it is missing or unreadable (it is written last: unfinished)."""
    try:
        d = json.loads((run_dir / METRICS).read_text())
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def flat(d: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat(v, key + "."))
        else:
            out[key] = v
    return out


def resumable_keys(config: dict) -> frozenset:
    """RESUMABLE_KEYS, less trainer.epochs when a learning-rate schedule runs over the run's length."""
    if (config.get("scheduler") or {}).get("_target_"):
        return RESUMABLE_KEYS - SCHEDULE_BOUND_KEYS
    return RESUMABLE_KEYS


def check_same_config(stored: dict, current: dict, run_dir: Path) -> None:
    """Refuse to continue a run with a config that would change its results."""
    a, b = flat(upgrade_config(stored)), flat(current)
    keep = resumable_keys(current)
    for key in sorted(set(a) | set(b)):
        if key not in keep and a.get(key) != b.get(key):
            raise RunDirError(
                f"{run_dir} was started with {key}={a.get(key)}, not {b.get(key)}: resume with the same config "
                f"(or leave the key out: resume=true takes the run's config from {run_dir}/.hydra), "
                "or start a new run directory"
            )


def upgrade_config(stored: dict) -> dict:
    """A run written before models, data and optimizers were named by _target_ (sweep 0.1) cannot be
    continued with today's code: its keys mean other things now. Say so, once, instead of a key diff."""
    if "_target_" not in (stored.get("model") or {}):
        raise RunDirError(
            "this run was written by sweep 0.1, before models and data were named by _target_: its checkpoints "
            "still load for inspection (sweep.checkpoint.load), but resume it with sweep 0.1, or start a new run"
        )
    return stored


def stored_result(run_dir: Path, config: dict, epochs: int) -> Optional[RunResult]:
    """The result of a run that already finished in run_dir (resume=true returns it without training)."""
    stored = read_metrics(run_dir)
    if stored is None:
        return None
    status = stored.get("status")
    done = status in ("failed", "pruned") or (status == "completed" and stored.get("epochs_completed", 0) >= epochs)
    if not done:
        return None
    last = run_dir / CHECKPOINTS / LAST
    if last.exists():  # the stored result must belong to this config, not an earlier run's
        from sweep import checkpoint  # torch: only where a checkpoint is read, so the report stays torch-free

        check_same_config(checkpoint.load(last)["config"], config, run_dir)
    return RunResult.from_json(stored)


def holds_a_run(run_dir: Path) -> bool:
    """A run was started here: a checkpoint or metrics.json exists (Hydra's .hydra alone does not count)."""
    ckpt_dir = run_dir / CHECKPOINTS
    return (run_dir / METRICS).exists() or (ckpt_dir.is_dir() and any(ckpt_dir.glob("*.pt")))


def refuse_overwrite(run_dir: Path) -> None:
    if holds_a_run(run_dir):
        raise RunDirError(
            f"{run_dir} already holds a run (checkpoints or metrics.json); add resume=true to continue "
            "it, or pick a new directory with hydra.run.dir=... (hydra.sweep.dir=... for -m)"
        )


def resume_state(run_dir: Path, config: dict, resume: bool) -> tuple[Optional[dict], bool]:
    """(state to continue from or None, whether the newest epoch file is newer than last.pt).

    An epoch ends by writing epoch_NNN.pt, then best.pt, then last.pt. A kill between those writes leaves
    an epoch file newer than last.pt (or no last.pt at all): that file is complete, so the run continues
    from it, and the caller finishes the interrupted best.pt and last.pt writes first.
    """
    if not resume:
        refuse_overwrite(run_dir)
        return None, False
    from sweep import checkpoint

    ckpt_dir = run_dir / CHECKPOINTS
    last = ckpt_dir / LAST
    newest = checkpoint.epoch_files(ckpt_dir)[-1:]
    state = checkpoint.load(last) if last.exists() else None
    interrupted = bool(newest) and (state is None or newest[0][0] > state["epoch"])
    if interrupted:
        state = checkpoint.load(newest[0][1])
    if state is None:
        log.debug("resume=true but %s has no checkpoint yet: starting from epoch 1", run_dir)
        return None, False
    check_same_config(state["config"], config, run_dir)
    return state, interrupted


# Overrides that say how a run was launched, not what it trained: no report column, not in a rerun, not in
# curves.png's title (which also leaves out where the data is: FOLDER_KEYS).
LAUNCH_KEYS = frozenset({"resume", "search"})
FOLDER_KEYS = frozenset({"data.root", "data.path"})


def is_launch_key(key: str) -> bool:
    return key.startswith(("hydra.", "hydra/")) or key == "hydra" or key in LAUNCH_KEYS


def declared_sweeps(sweep_dir: Path) -> list[Override]:
    """The sweeps (comma lists, choice(), range(), interval(), glob()) on the command line of a basic
    multirun, from its SWEEP_DIR/multirun.yaml, parsed by Hydra's override parser; [] when it records none."""
    import yaml

    try:
        task = yaml.safe_load((Path(sweep_dir) / MULTIRUN).read_text())["hydra"]["overrides"]["task"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return []
    items = [str(o) for o in task or [] if "," in str(o) or "(" in str(o)]  # a sweep lists values, or calls
    if not items:
        return []
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    sweeps = []
    for item in items:
        try:
            override = parser.parse_override(item)
        except HydraException:
            continue
        if override.is_sweep_override():
            sweeps.append(override)
    return sweeps


def swept_values(run_dir: Path) -> list[str]:
    """What sets this run apart, from Hydra's record: in a sweep's job, its values of the swept keys (comma
    lists, choice(), range() or interval() on the command line, and hydra.sweeper.params); in a single run,
    the command line's overrides. Launch keys (hydra.*, resume) and data folders are left out."""
    import yaml

    try:
        task = [str(o) for o in yaml.safe_load((run_dir / HYDRA / OVERRIDES).read_text()) or []]
        hydra = yaml.safe_load((run_dir / HYDRA / HYDRA_RECORD).read_text())["hydra"]
        swept: Optional[set[str]] = None
        if hydra.get("mode") == "MULTIRUN":
            swept = set((hydra.get("sweeper") or {}).get("params") or {})
            sweep_dir = Path(hydra["runtime"]["cwd"]) / hydra["sweep"]["dir"]  # as given: maybe relative
            swept |= {o.key_or_group for o in declared_sweeps(sweep_dir)}
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return []
    values = []
    for o in task:
        key = o.partition("=")[0].lstrip("+~")
        if (swept is None or key in swept) and not is_launch_key(key) and key not in FOLDER_KEYS:
            values.append(o)
    return values


@dataclass
class LaunchRecord:
    """How Hydra started a run or a sweep, from its record (RUN_DIR/.hydra/ or SWEEP_DIR/multirun.yaml):
    the task's overrides, Hydra's own (hydra.*, hydra/launcher=..., without the output folders and mode),
    the folder --config-dir added (if any) and the primary config's name (--config-name)."""

    task: list[str]
    hydra: list[str]
    config_dir: Optional[str]
    config_name: Optional[str]


# Hydra overrides that a resumption gives anew rather than taking from the record.
NOT_REPLAYED = ("hydra.run.dir", "hydra.sweep.dir", "hydra.mode", "hydra.output_subdir")


def launch_record(folder: Path, multirun: bool) -> Optional[LaunchRecord]:
    """The record of the run in `folder` (a sweep's folder when multirun), or None when there is none."""
    import yaml

    if multirun:
        path = folder / MULTIRUN
    else:
        path = folder / HYDRA / HYDRA_RECORD
    try:
        hydra = (yaml.safe_load(path.read_text()) or {})["hydra"]
        overrides = hydra["overrides"]
        task = [str(o) for o in overrides.get("task") or []]
        if not multirun and (folder / HYDRA / OVERRIDES).is_file():  # what the report reads too
            task = [str(o) for o in yaml.safe_load((folder / HYDRA / OVERRIDES).read_text()) or []]
        own = [str(o) for o in overrides.get("hydra") or []
               if str(o).partition("=")[0].lstrip("+~") not in NOT_REPLAYED]
        sources = (hydra.get("runtime") or {}).get("config_sources") or []
        config_name = (hydra.get("job") or {}).get("config_name")
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        return None
    config_dir = next((s.get("path") for s in sources if isinstance(s, dict) and s.get("provider") == "command-line"),
                      None)
    return LaunchRecord(task=task, hydra=own, config_dir=config_dir, config_name=config_name)
