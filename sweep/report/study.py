"""What an Optuna sweep folder records of its study, for the report: the study itself (opened where the
sweep recorded its storage), the space it searched (which keys on a log scale), and its parameter importances.

The sweep folder records its storage and study in optimization_results.yaml and in each trial's trial.json
(sweep.study, sweep.search); the default storage is SQLite in the folder itself (study.db, sweep.storage).
A password in a URL is recorded masked (***): the real URL then comes from $SWEEP_OPTUNA_STORAGE.
Everything that cannot be read is a UserError of one line saying why: the report leaves that part out.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

import yaml

from sweep import rundir
from sweep.errors import ConfigError, UserError, first_line

if TYPE_CHECKING:
    import optuna

DEFAULT_DB = "study.db"
MIN_IMPORTANCE_TRIALS = 10  # PED-ANOVA compares the best tenth of the complete trials with all of them


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None


def is_optuna_sweep(sweep_dir: Path) -> bool:
    """An Optuna sweep folder: trials.csv or optimization_results.yaml beside its trial folders."""
    return (sweep_dir / rundir.TRIALS).is_file() or (sweep_dir / rundir.RESULTS).is_file()


def _recorded(sweep_dir: Path) -> tuple[Optional[str], Optional[str]]:
    """(storage URL as shown, study name) from optimization_results.yaml, else from a trial's trial.json."""
    results = _yaml(sweep_dir / rundir.RESULTS)
    if isinstance(results, dict) and results.get("storage"):
        return str(results["storage"]), results.get("study_name")
    for trial in sorted(sweep_dir.glob(f"*/{rundir.TRIAL}")):
        try:
            record = json.loads(trial.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("storage"):
            return str(record["storage"]), record.get("study_name")
    return None, None


def storage_url(sweep_dir: Path) -> tuple[str, Optional[str]]:
    """(the URL to open, the study name) of the study an Optuna sweep folder recorded."""
    from sweep.storage import JOURNAL, STORAGE_ENV, describe

    shown, name = _recorded(sweep_dir)
    local = sweep_dir / DEFAULT_DB
    if shown and "***" in shown:
        real = os.environ.get(STORAGE_ENV)
        if real and describe(real) == shown:
            return real, name
        raise UserError(f"the study's storage {shown} is recorded without its password: set ${STORAGE_ENV} to its "
                        "URL to read the study")
    if shown and shown.startswith(f"{JOURNAL}://"):
        path = Path(shown[len(f"{JOURNAL}://"):])
        if path.is_file():
            return shown, name
        raise UserError(f"the study's journal {path} is not there (moved or deleted)")
    if shown and not shown.startswith("sqlite:"):
        return shown, name  # a database server
    if shown and Path(shown.removeprefix("sqlite:///")).is_file():
        return shown, name
    if local.is_file():  # the default storage; also where a moved sweep folder's study now is
        return f"sqlite:///{local.resolve()}", name
    raise UserError(f"no {DEFAULT_DB} in {sweep_dir} and no other storage recorded: the study cannot be read")


def open_study(sweep_dir: Path) -> optuna.Study:
    """The Optuna study of an Optuna sweep folder, opened read-only in effect (nothing is written to it)."""
    import optuna

    from sweep.storage import describe, open_storage

    url, name = storage_url(sweep_dir)
    try:
        storage = open_storage(url)
        names = optuna.study.get_all_study_names(storage)
    except UserError:
        raise
    except Exception as e:  # a database that went away meanwhile, a damaged journal
        raise UserError(f"cannot read Optuna storage {describe(url)} ({first_line(e)})") from None
    if name is None and len(names) == 1:
        name = names[0]
    if name not in names:
        held = ", ".join(sorted(names)[:5]) or "none"
        raise UserError(f"Optuna storage {describe(url)} holds no study {name or '(unnamed)'} (it holds: {held})")
    return optuna.load_study(study_name=name, storage=storage)


def searched_space(sweep_dir: Path, study: Optional[optuna.Study] = None) -> dict[str, dict]:
    """The searched keys and their Optuna distributions as JSON records ({"name": "FloatDistribution",
    "attributes": {"low": ..., "high": ..., "log": true, ...}}): the space the study was started with (a
    study attribute), else its trials' distributions, else the space a trial's .hydra/ records; {} if none."""
    if study is not None:
        from optuna.distributions import distribution_to_json

        from sweep.study import SPACE_ATTR

        recorded = study.user_attrs.get(SPACE_ATTR)
        if isinstance(recorded, dict) and recorded:
            return recorded
        space = {k: json.loads(distribution_to_json(d)) for t in study.get_trials(deepcopy=False)
                 for k, d in t.distributions.items()}
        if space:
            return space
    return _job_space(sweep_dir)


def _job_space(sweep_dir: Path) -> dict[str, dict]:
    """The space in a trial's own record (.hydra/hydra.yaml: hydra.sweeper.params), parsed as the sweeper
    parses it. Keys searched by command-line expressions alone are not recorded there."""
    for record in sorted(sweep_dir.glob(f"*/{rundir.HYDRA}/{rundir.HYDRA_RECORD}")):
        try:
            params = (_yaml(record) or {})["hydra"]["sweeper"]["params"]
        except (KeyError, TypeError):
            continue
        if not isinstance(params, dict) or not params:
            continue
        from sweep.space import parse_space, space_record

        try:
            return space_record(parse_space(params, []))
        except ConfigError:
            return {}
    return {}


def param_importances(study: Union[optuna.Study, UserError]) -> tuple[dict[str, float], str]:
    """(each searched parameter's importance, normalised to sum 1, largest first; a title naming the study
    and its complete trials), by Optuna's PED-ANOVA evaluator. `study` may be the UserError that said why it
    could not be opened: it is raised again, as is one saying why there is too little to compare."""
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator, get_param_importances
    from optuna.trial import TrialState

    if isinstance(study, UserError):
        raise study
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < MIN_IMPORTANCE_TRIALS:
        raise UserError(f"study {study.study_name} has {len(complete)} complete trial(s); PED-ANOVA compares the "
                        f"best tenth of them with all, which needs at least {MIN_IMPORTANCE_TRIALS}")
    params = sorted({k for t in complete for k in t.params})
    if len(params) < 2:
        raise UserError(f"study {study.study_name} searched {' '.join(params) or 'no parameter'} alone: there is "
                        "nothing to rank it against")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            importances = get_param_importances(study, evaluator=PedAnovaImportanceEvaluator())
    except Exception as e:  # whatever Optuna meets in a study it did not write itself: no figure, still a report
        raise UserError(f"Optuna could not compute the importances ({type(e).__name__}: {first_line(e)})") from None
    title = f"Parameter importance in study {study.study_name} ({len(complete)} complete trials)"
    return dict(sorted(importances.items(), key=lambda kv: -kv[1])), title
