"""`python -m sweep.train` and `sweep-train`: the thin Hydra wrapper around sweep.train.train.

Before Hydra creates anything, a single run is checked and prepared (config, run directory, data,
model); its prepared data is handed to the run. A multirun of Hydra's basic sweeper has every job
checked so before the first starts; other sweepers check their own trials. Every user error (ours,
Hydra's, OmegaConf's, a disk that cannot be written) becomes one line on stderr and a non-zero exit
status; Ctrl-C exits 130 with the command that continues the run. `resume=true hydra.run.dir=DIR`
(or `-m resume=true hydra.sweep.dir=S`) takes the rest of the command from the run's own record.
"""

from __future__ import annotations

import errno
import gc
import itertools
import json
import logging
import os
import re
import shlex
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional

from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from sweep import rundir
from sweep.atomic import atomic_write_text
from sweep.errors import ConfigError, TrainingDiverged, UserError, first_line

log = logging.getLogger("sweep.train")
MULTIRUN_FLAGS = ("-m", "--multirun")
# A folder that cannot take a run's files: read-only, full, over quota, over the file-size limit, no
# permission, or a file where a folder must go. Other OSErrors come from reading data (a damaged image).
WRITE_ERRNOS = {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.ENOTDIR,
                errno.EISDIR, errno.EEXIST}
# Hydra's flags that take a value (--info takes one of its choices, or none).
VALUE_FLAGS = ("--config-dir", "-cd", "--config-name", "-cn", "--config-path", "-cp", "--cfg", "-c", "--package",
               "-p", "--experimental-rerun")
INFO_FLAGS = ("--info", "-i")
INFO_CHOICES = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")
CONFIG_DIR_FLAGS = ("--config-dir", "-cd")
CONFIG_NAME_FLAGS = ("--config-name", "-cn")
NOT_OVERRIDABLE = re.compile(r"Could not override '([\w.]+)'")
Composer = Callable[[list[str]], DictConfig]  # overrides -> the config Hydra composes for them

if TYPE_CHECKING:
    from hydra.core.override_parser.types import Override
    from hydra.errors import MissingConfigException

    from sweep.build import Prepared


class JobFailed(BaseException):
    """A single run's user error or divergence, raised past Hydra's job runner (which catches Exception)
    so that main() prints it once, on stderr."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """(Hydra's flags with their values, the overrides), each in the given order."""
    flags: list[str] = []
    overrides: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-"):
            flags.append(a)
            takes = a in VALUE_FLAGS or (a in INFO_FLAGS and i + 1 < len(argv) and argv[i + 1] in INFO_CHOICES)
            if takes and i + 1 < len(argv):
                flags.append(argv[i + 1])
                i += 1
        else:
            overrides.append(a)
        i += 1
    return flags, overrides


def _flag(flags: list[str], names: tuple[str, ...]) -> Optional[str]:
    """The value of a flag (`--config-dir DIR` or `--config-dir=DIR`), the last one winning."""
    found = None
    for i, f in enumerate(flags):
        name, sep, value = f.partition("=")
        if name in names:
            found = value if sep else (flags[i + 1] if i + 1 < len(flags) else None)
    return found


def _value(overrides: list[str], key: str) -> Optional[str]:
    """The value of `key=...` among the overrides (the last one wins, as in Hydra)."""
    found = None
    for a in overrides:
        k, sep, v = a.partition("=")
        if sep and k.lstrip("+~") == key:
            found = v
    return found


def _key(override: str) -> str:
    """The key an override sets (`+model.x=1` and `~model.x` name model.x)."""
    return override.partition("=")[0].lstrip("+~")


def resume_overrides(argv: list[str]) -> list[str]:
    """`resume=true hydra.run.dir=DIR` (or `-m resume=true hydra.sweep.dir=S`) continues the run with the
    command it was started with: its record's overrides (task and Hydra's) and --config-dir, then the ones
    given now, which win. Hydra's record in DIR/.hydra is left as it was (hydra.output_subdir=null), so
    the report and rerun commands still read the original."""
    flags, overrides = split_argv(argv)
    if str(_value(overrides, "resume")).lower() != "true":
        return argv
    multirun = any(f in MULTIRUN_FLAGS for f in flags)
    folder = _value(overrides, "hydra.sweep.dir" if multirun else "hydra.run.dir")
    record = rundir.launch_record(Path(folder), multirun) if folder is not None else None
    if record is None:
        return argv
    given = {_key(o) for o in overrides}
    kept = [o for o in [*record.task, *record.hydra] if _key(o) not in given]
    if record.config_dir is not None and _flag(flags, CONFIG_DIR_FLAGS) is None:
        flags = [*flags, "--config-dir", record.config_dir]
    if record.config_name not in (None, "config") and _flag(flags, CONFIG_NAME_FLAGS) is None:
        flags = [*flags, "--config-name", record.config_name]
    quiet = [] if "hydra.output_subdir" in given else ["hydra.output_subdir=null"]
    return [*flags, *kept, *overrides, *quiet]


@contextmanager
def _hydra(config_dir: Optional[str], config_name: str) -> Iterator[Composer]:
    """Hydra's public compose API on our config folder, yielding compose(overrides): the config as Hydra
    composes it for a run, its hydra.* keys included."""
    from hydra import compose, initialize_config_module

    from sweep.config import CONF_MODULE

    extra = []
    if config_dir is not None:
        folder = Path(config_dir).expanduser().resolve()
        if not folder.is_dir():
            raise ConfigError(f"--config-dir {config_dir} is not a folder: give the folder that holds your "
                              "config groups (model/, data/, ...)")
        extra = [f"hydra.searchpath=[file://{folder}]"]  # what --config-dir adds to Hydra's search path

    def composed(overrides: list[str]) -> DictConfig:
        added = extra if _value(overrides, "hydra.searchpath") is None else []
        return compose(config_name=config_name, overrides=[*overrides, *added], return_hydra_config=True)

    with initialize_config_module(config_module=CONF_MODULE, version_base="1.3"):
        yield composed


def _not_a_key(e: Exception, overrides: list[str], compose: Composer) -> Exception:
    """Hydra refuses `trainer.epoch=3` when the key is not in the config, and advises `+trainer.epoch=3`: the
    wrong advice for a typo. Say which key was meant ("did you mean"), or list the keys there. In the groups
    named by _target_, a keyword that the class takes but the group's file lacks still gets the `+` advice."""
    from sweep.config import TARGET_GROUPS, did_you_mean, validate

    match = NOT_OVERRIDABLE.search(str(e))
    given = [o for o in overrides if match is not None and _key(o) == match.group(1)]
    if not given:
        return e
    key = match.group(1)
    parent = key.rpartition(".")[0]
    if parent in TARGET_GROUPS:
        try:
            validate(compose([f"+{o}" if o in given and not o.startswith(("+", "~")) else o for o in overrides]))
        except ConfigError as refused:
            return refused  # the class takes no such keyword: check_target says what was meant
        except Exception:
            return e
        return ConfigError(f"{key} is not in the {parent} config file, though its class takes it: add it "
                           f"with +{given[-1]}")
    try:
        node = compose([o for o in overrides if o not in given])
    except Exception:
        return e
    parts = key.split(".")
    for i, part in enumerate(parts):  # down to the first part that is not there
        here = ".".join(parts[:i])
        if not isinstance(node, DictConfig):
            return ConfigError(f"{key} is not a config key: {here} holds a value, not keys; set {here}=VALUE")
        if part not in node:
            known = [k for k in node if i or k != "hydra"]
            where = f"the keys of {here}" if here else "the top-level keys"
            hint = did_you_mean(part, known, here, ".".join(parts[i + 1:])) or f"; {where} are {', '.join(known)}"
            return ConfigError(f"{key} is not a config key{hint}")
        node = node[part]
    return e


def _composed(compose: Composer, overrides: list[str]) -> DictConfig:
    """compose(overrides), a key or group option that is not there said as _not_a_key and _not_an_option say it."""
    from hydra.errors import ConfigCompositionException, MissingConfigException

    try:
        return compose(overrides)
    except MissingConfigException as e:
        raise _not_an_option(e) from None
    except ConfigCompositionException as e:
        raise _not_a_key(e, overrides, compose) from None


def _not_an_option(e: MissingConfigException) -> Exception:
    """Hydra's "Could not find 'optimizer/adamm'", followed by its whole search path, as one line with the
    option that was probably meant."""
    from sweep.config import did_you_mean

    group, _, name = (e.missing_cfg_file or "").rpartition("/")
    if not group or not e.options:
        return e
    options = list(e.options)
    return ConfigError(f"{group}={name} is not an option of {group}{did_you_mean(name, options)}: use one of "
                       f"{', '.join(options)}")


def _check_run_dir(run_dir: Path, cfg: DictConfig) -> None:
    """A run directory that exists already: refuse to overwrite it; on resume, check last.pt and the config."""
    if run_dir.is_dir():
        rundir.resume_state(run_dir, OmegaConf.to_container(cfg, resolve=True), cfg.resume)


def basic_jobs(overrides: list[Override]) -> list[list[str]]:
    """Each job's overrides, as Hydra's basic sweeper lists them: one list of values per key (a later
    override of a key replaces an earlier one, in its place), then their cartesian product in that order."""
    values: dict[str, list[str]] = {}
    for o in overrides:
        key = o.get_key_element()
        if not o.is_sweep_override():
            values[key] = [f"{key}={o.get_value_element_as_str()}"]
        elif o.is_discrete_sweep():
            values[key] = [f"{key}={v}" for v in o.sweep_string_iterator()]
        else:
            raise ConfigError(f"{o.input_line}: the basic sweeper takes lists (a,b), choice(), range() and glob(), "
                              "not intervals: give a list of values, or sample the interval with search=optuna")
    return [list(job) for job in itertools.product(*values.values())]


def _check_on(cfg: DictConfig, first: Prepared) -> None:
    """What prepare() checks beyond the data, for a validated job config whose data config is first's: on
    first's data, so that it is not read again."""
    from sweep import device
    from sweep.build import try_build

    compute = device.setup(cfg.trainer.device, cfg.trainer.precision, cfg.trainer.deterministic, cfg.trainer.threads)
    first.task.check_monitor(cfg.trainer.monitor or first.task.default_monitor)
    try_build(cfg, compute, first.task, first.train, first.input_shape, first.num_outputs)


def _check_multirun(overrides: list[str], compose: Composer) -> None:
    """A multirun checked before its first job, for the sweepers whose jobs are known up front: every job
    of Hydra's basic sweeper; for sweep_optuna, the fixed settings and every end of the searched space
    (each choice of a list), so that a value no trial could run never becomes a study's fixed setting or
    a row of failed trials. Other sweepers check their own trials."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from sweep.space import edge_overrides, parse_space

    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())  # glob() lists groups
    given = parser.parse_overrides(overrides)
    master = _composed(compose, [o.input_line for o in given if not o.is_sweep_override()])  # as Hydra's
    sweeper = master.hydra.runtime.choices.get("hydra/sweeper")
    task = [o.input_line for o in given if not o.is_hydra_override()]
    if sweeper == "basic":
        params = master.hydra.sweeper.get("params") or {}
        jobs = basic_jobs(parser.parse_overrides([*(f"{k}={v}" for k, v in params.items()), *task]))
        named = []
        for num, job in enumerate(jobs):
            apart = " ".join(o for o in job if any(o not in other for other in jobs))
            named.append((f"job {num}{f' ({apart})' if apart else ''}", job))
        _check_jobs(master, compose, named, folders=True)
    elif sweeper == "sweep_optuna":
        space = parse_space(master.hydra.sweeper.get("params"), task)
        fixed = [f"{k}={v}" for k, v in space.fixed.items()]
        jobs = [("", fixed), *((f"the search space reaches {edge}", [*fixed, edge]) for edge in edge_overrides(space))]
        # In a thread that then ends: the sweeper trains in threads of its own, and the OpenMP workers torch
        # starts for a check in this thread would stay and spin beside them (twice the training time on 2 cores).
        with ThreadPoolExecutor(max_workers=1) as checker:
            checker.submit(_check_jobs, master, compose, jobs, False).result()


def _check_jobs(master: DictConfig, compose: Composer, jobs: list[tuple[str, list[str]]], folders: bool) -> None:
    """Each job (a name, its task overrides) composed as its launcher composes it and checked as a single
    run is, in order; the data is read once per data config. The first bad job is named. With `folders`,
    each job's folder (hydra.sweep.subdir, numbered as Hydra's launcher numbers jobs) must hold no run."""
    from hydra.errors import HydraException

    from sweep.build import prepare
    from sweep.config import validate

    firsts: dict[str, Prepared] = {}  # a data config (as JSON) -> the preparation of its first job
    for num, (name, job) in enumerate(jobs):
        try:
            cfg = _composed(compose, [*master.hydra.overrides.hydra, *job])
            if folders:
                with open_dict(cfg):
                    cfg.hydra.job.id, cfg.hydra.job.num = f"{cfg.hydra.job.name}_{num}", num
            checked = validate(cfg)
            data = json.dumps(OmegaConf.to_container(checked.data), sort_keys=True, default=str)
            if data in firsts:
                _check_on(checked, firsts[data])
            else:
                firsts[data] = prepare(cfg)
            if folders:
                _check_run_dir(Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir), checked)
        except (UserError, HydraException, OmegaConfBaseException) as e:
            raise UserError(f"{name}: {_one_line(e)}" if name else _one_line(e)) from None


def preflight(argv: list[str]) -> Optional[Prepared]:
    """Check everything before Hydra creates or rewrites anything: a single run, which is also prepared
    (its preparation is handed to it), every job of a basic multirun, or an Optuna search's fixed settings
    and the ends of its space. Command lines with Hydra's other flags are left to Hydra.
    """
    from sweep.build import prepare

    flags, overrides = split_argv(argv)
    names = [f.partition("=")[0] for f in flags if f.startswith("-")]
    if any(n not in (*CONFIG_DIR_FLAGS, *CONFIG_NAME_FLAGS, *MULTIRUN_FLAGS) for n in names):
        return None
    with _hydra(_flag(flags, CONFIG_DIR_FLAGS), _flag(flags, CONFIG_NAME_FLAGS) or "config") as compose:
        if any(n in MULTIRUN_FLAGS for n in names):
            _check_multirun(overrides, compose)
            return None
        cfg = _composed(compose, overrides)
        run_dir = Path(str(cfg.hydra.run.dir))
        if cfg.get("resume") is True and not run_dir.exists():  # a mistyped folder must not start afresh
            raise ConfigError(f"resume=true, but {run_dir} does not exist: there is nothing to continue; check "
                              "hydra.run.dir, or leave out resume=true to start a new run")
        prepared = prepare(cfg)
        _check_run_dir(run_dir, prepared.cfg)
        return prepared


def _write_hydra_record(run_dir: Path, cfg: DictConfig, hc: DictConfig) -> None:
    """Hydra's record (.hydra/config.yaml, hydra.yaml, overrides.yaml) for a job that a resumed multirun
    starts for the first time: resume sets hydra.output_subdir=null to keep the other jobs' records."""
    folder = run_dir / rundir.HYDRA
    atomic_write_text(folder / "config.yaml", OmegaConf.to_yaml(cfg))
    atomic_write_text(folder / rundir.HYDRA_RECORD, OmegaConf.to_yaml(OmegaConf.create({"hydra": hc})))
    atomic_write_text(folder / rundir.OVERRIDES, OmegaConf.to_yaml(hc.overrides.task))


def task_function(prepared: Any) -> Callable[[DictConfig], float]:
    """The function Hydra runs for each job; it returns the monitored validation value of the selected
    epoch to the sweeper (higher or lower is better, as the monitor's direction says)."""

    def sweep_train(cfg: DictConfig) -> float:
        """One job: train (or continue) in Hydra's output folder; user errors end a single run in one line."""
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        from sweep import trial
        from sweep.build import prepare
        from sweep.train import Interrupted, train

        hc = HydraConfig.get()
        run_dir = Path(hc.runtime.output_dir)
        multirun = hc.mode == RunMode.MULTIRUN
        if multirun and hc.output_subdir is None and cfg.get("resume") and not (run_dir / rundir.HYDRA).exists():
            _write_hydra_record(run_dir, cfg, hc)
        reuse = None
        if prepared is not None:  # a single run, prepared before Hydra started: the same config?
            job = {k: v for k, v in OmegaConf.to_container(cfg, resolve=True).items() if k != "hydra"}
            reuse = prepared if OmegaConf.to_container(prepared.cfg) == job else None
        try:
            prep = reuse or prepare(cfg)
            result = train(cfg, run_dir, epoch_hook=trial.epoch_hook(run_dir), prepared=prep)
        except UserError as e:
            if not multirun:
                raise JobFailed(str(e), 2) from None
            log.error("%s", e)
            raise  # the sweeper records this job as failed
        except TrainingDiverged as e:
            if not multirun:
                raise JobFailed(str(e), 1) from None
            log.error("%s", e)
            return float("nan")  # a failed trial: the sweep goes on
        except Interrupted as e:
            if trial.current() is not None:  # an Optuna trial: its sweeper queues it again
                raise trial.TrialInterrupted(str(e)) from None
            if multirun:
                e.sweep_dir = Path(hc.sweep.dir)
            raise
        return float(result.objective)

    return sweep_train


def _rejected_flags(e: ValueError) -> bool:
    """Hydra refuses conflicting flags (-m with --cfg, --resolve without --cfg) and a bare --shell-completion
    with a ValueError, raised from its flag checks before anything runs."""
    last = traceback.extract_tb(e.__traceback__)[-1]
    hydras = Path(last.filename).parts[-3:-1] == ("hydra", "_internal")
    return hydras and last.name in ("_run_hydra", "shell_completion")


def _os_error(e: Optional[BaseException]) -> Optional[OSError]:
    """The OSError behind e (Hydra wraps a failed log file in a ValueError), if any."""
    while e is not None:
        if isinstance(e, OSError):
            return e
        e = e.__cause__ or e.__context__
    return None


def _program() -> list[str]:
    """The command as the user ran it: the console script, or python -m sweep.train."""
    return ["sweep-train"] if Path(sys.argv[0]).name == "sweep-train" else ["python", "-m", "sweep.train"]


def continue_command(argv: list[str], run_dir: Path, sweep_dir: Optional[Path] = None) -> str:
    """The command that continues an interrupted run (or sweep): by folder alone when Hydra's record of
    the command is there, else the command itself with resume=true."""
    flags, overrides = split_argv(argv)
    if sweep_dir is not None:
        head = [*_program(), "-m"]
        where = f"hydra.sweep.dir={sweep_dir}"
        recorded = rundir.launch_record(sweep_dir, multirun=True) is not None
        dir_key = "hydra.sweep.dir"
    else:
        head = _program()
        where = f"hydra.run.dir={run_dir}"
        recorded = rundir.launch_record(run_dir, multirun=False) is not None
        dir_key = "hydra.run.dir"
    if recorded:
        return shlex.join([*head, "resume=true", where])
    kept_flags = [f for f in flags if f not in MULTIRUN_FLAGS]
    kept = [o for o in overrides if _key(o) not in ("resume", dir_key)]
    return shlex.join([*head, *kept_flags, *kept, "resume=true", where])


def _fail(msg: str, status: int) -> None:
    """One line on stderr, then exit; raised from within except blocks, so no exception chain is printed."""
    print(f"error: {msg}", file=sys.stderr)
    raise SystemExit(status) from None


def _one_line(e: BaseException) -> str:
    """A Hydra or OmegaConf message, which may span lines, joined into one, with its cause's first line."""
    msg = " ".join(line.strip() for line in str(e).strip().splitlines() if line.strip())
    cause = e.__cause__
    if isinstance(cause, OmegaConfBaseException) and str(cause).strip():
        msg += ": " + str(cause).strip().splitlines()[0]
    return msg


def main() -> None:
    """Run Hydra, turning every user error into one line on stderr."""
    import hydra
    from hydra.errors import HydraException

    from sweep.config import CONF_PATH, MOVED_KEYS
    from sweep.train import Interrupted

    os.environ.setdefault("HYDRA_FULL_ERROR", "1")  # let errors reach us instead of Hydra's printer
    logging.raiseExceptions = False  # a log file on a full disk must not print a traceback per line
    argv = sys.argv[1:]
    if "" not in sys.path and os.getcwd() not in sys.path:  # the console script: _target_s import from here,
        sys.path.insert(0, os.getcwd())                     # as they do under python -m sweep.train
    try:
        for a in argv:
            if _key(a) in MOVED_KEYS:
                _fail(f"{_key(a)} is gone: {MOVED_KEYS[_key(a)]}", 2)
        argv = resume_overrides(argv)
        prepared = preflight(argv)
        flags, overrides = split_argv(argv)
        sys.argv = [sys.argv[0], *flags, *overrides]  # Hydra's parser wants its flags before the overrides
        hydra.main(version_base="1.3", config_path=CONF_PATH, config_name="config")(task_function(prepared))()
    except JobFailed as e:
        _fail(str(e), e.status)
    except Interrupted as e:
        where = f" of {e.run_dir.name}" if e.sweep_dir is not None else ""
        print(f"interrupted after epoch {e.epochs_done}{where}; continue with: "
              f"{continue_command(argv, e.run_dir, e.sweep_dir)}", file=sys.stderr)
        raise SystemExit(130) from None
    except KeyboardInterrupt:
        print("interrupted before the first epoch was saved; run the same command again", file=sys.stderr)
        raise SystemExit(130) from None
    except (UserError, HydraException, OmegaConfBaseException) as e:
        _fail(_one_line(e), 2)
    except (OSError, ValueError) as e:
        disk = _os_error(e)
        if disk is not None and disk.errno in WRITE_ERRNOS:
            _fail(f"cannot write {disk.filename or 'the output folder'} ({disk.strerror or disk}): choose a writable "
                  "folder with hydra.run.dir=... (hydra.sweep.dir=... for -m), or free space", 2)
        if disk is not None:  # a data file that cannot be read (a damaged image, say)
            _fail(f"cannot read {disk.filename or 'a data file'} ({disk.strerror or first_line(disk)}): fix or "
                  "remove the file", 2)
        if isinstance(e, ValueError) and _rejected_flags(e):
            _fail(f"{e}; see {shlex.join(_program())} --help", 2)
        raise
    finally:
        # The interpreter's last garbage collections walk torch's whole object graph: about 0.35 s per
        # process. Frozen objects are skipped; atexit handlers and file closes still run as usual.
        gc.freeze()
