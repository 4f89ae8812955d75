"""The axis each swept parameter gets in the report's figures: a Scale, "log", "linear" or "category",
with what the sweep says about the axis' extent.

- An Optuna sweep's searched keys keep the scale they were searched on: a log axis exactly where the
  distribution says log=True, categories for a choice(...), linear otherwise (sweep.report.study reads
  the space the study recorded).
- Any other key (a basic multirun's): categories for values that are not all numbers, else a log axis when
  the values are all positive and span more than LOG_SPAN, else linear. The values are those the sweep
  declared (multirun.yaml's overrides, `model.num_hidden=15,30,60`) together with every job's, finished or
  not: the scale follows from the sweep's definition, never from which jobs happen to have finished.

A Scale also carries the extent the sweep defined: an Optuna range's bounds (the axis shows all of the range
searched) or the values a basic multirun or a choice(...) lists (ticked, or the categories, every one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import numpy as np
import pandas as pd

from sweep import rundir
from sweep.report.runs import param_columns

LOG_SPAN = 10.0  # a basic multirun's positive values spanning more than this factor get a log axis
SCALES = ("log", "linear", "category")


@dataclass(frozen=True)
class Scale:
    """How one parameter is drawn: kind is "log", "linear" or "category"; values are the values the sweep
    listed (a basic multirun's, or a choice's); bounds an Optuna range's (low, high)."""

    kind: str
    values: tuple = ()
    bounds: Optional[tuple[float, float]] = None


def declared_values(sweep_dir: Path) -> dict[str, list]:
    """The values a basic multirun declared for each swept key (`key=a,b,c`, `key=range(1,4)`), as the basic
    sweeper lists them; {} when multirun.yaml records none."""
    from hydra.errors import HydraException

    values: dict[str, list] = {}
    for override in rundir.declared_sweeps(sweep_dir):
        try:
            values[override.key_or_group] = list(override.sweep_iterator())
        except (HydraException, ValueError, TypeError):
            continue  # an interval(...) or glob(...): no list of values to read
    return values


def distribution_scale(record: Mapping[str, Any]) -> Scale:
    """The scale of one Optuna distribution record (sweep.space.space_record's values)."""
    attributes = record.get("attributes") or {}
    if record.get("name") == "CategoricalDistribution":
        return Scale("category", values=tuple(attributes.get("choices") or ()))
    try:
        bounds = (float(attributes["low"]), float(attributes["high"]))
    except (KeyError, TypeError, ValueError):
        bounds = None
    return Scale("log" if attributes.get("log") else "linear", bounds=bounds)


def _distinct(values: Iterable[Any]) -> tuple:
    """The values once each, in order (lists too: `model.channels=[16,32],[32,64]`)."""
    return tuple({repr(v): v for v in values}.values())


def _numbers(values: Iterable[Any]) -> Optional[np.ndarray]:
    """The values as floats, or None when one of them is not a number (bools and text are categories)."""
    out = []
    for v in values:
        if isinstance(v, bool) or v is None:
            return None
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            return None
    return np.array(out, dtype=float)


def value_scale(values: Iterable[Any]) -> str:
    """"log" for positive numbers spanning more than LOG_SPAN, "linear" for other numbers, else "category"."""
    numbers = _numbers(v for v in values if not (isinstance(v, float) and np.isnan(v)))
    if numbers is None:
        return "category"
    finite = numbers[np.isfinite(numbers)]
    if finite.size and (finite > 0).all() and finite.max() / finite.min() > LOG_SPAN:
        return "log"
    return "linear"


def param_scales(runs: pd.DataFrame, sweep_dirs: Iterable[Path] = (),
                 spaces: Optional[Mapping[Path, Mapping[str, Mapping[str, Any]]]] = None) -> dict[str, Scale]:
    """Each swept parameter's Scale. `spaces` holds each Optuna sweep folder's searched space (as
    sweep.report.study.searched_space returns it), when the caller has read it already; without it the
    space is read here, from each folder that is an Optuna sweep."""
    from sweep.report.study import is_optuna_sweep, searched_space

    searched: dict[str, list[Scale]] = {}
    declared: dict[str, list] = {}
    for d in map(Path, sweep_dirs):
        space = spaces.get(d) if spaces is not None and d in spaces else (
            searched_space(d) if is_optuna_sweep(d) else None)
        for key, record in (space or {}).items():
            searched.setdefault(key, []).append(distribution_scale(record))
        for key, values in declared_values(d).items():
            declared.setdefault(key, []).extend(values)
    scales = {}
    for key in param_columns(runs):
        if key in searched:  # a key searched on log in any study: log; the studies' ranges together
            kinds = {s.kind for s in searched[key]}
            kind = next(k for k in SCALES if k in kinds)
            bounds = [s.bounds for s in searched[key] if s.bounds is not None]
            scales[key] = Scale(kind, values=_distinct(v for s in searched[key] for v in s.values),
                                bounds=(min(b[0] for b in bounds), max(b[1] for b in bounds)) if bounds else None)
        else:
            listed = declared.get(key, [])
            scales[key] = Scale(value_scale([*listed, *runs[key].dropna().tolist()]), values=_distinct(listed))
    return scales
