"""From Hydra sweep overrides to Optuna distributions, with upstream's (hydra-optuna-sweeper 1.3) syntax.

Only Optuna's current distribution classes are made (Float/Int/CategoricalDistribution): a study that mixes
them with the removed Uniform/LogUniform/... classes fails on retries with "Cannot set different distribution
kind". Every bad expression is a `ConfigError` of one line naming the key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping, Optional, Sequence, Union

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (ChoiceSweep, Glob, IntervalSweep, Override, RangeSweep,
                                              Transformer)
from hydra.errors import HydraException
from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  IntDistribution, distribution_to_json)

from sweep.errors import ConfigError

ALLOWED = ("choice(a, b, ...), range(start, stop[, step]), interval(low, high) or tag(log, interval(low, high)), "
           "or a fixed value")
SHOWN_CHANGES = 3
EVALUATING = re.compile(r"^\w+ while evaluating '.*?': ")  # the start of Hydra's reason


@dataclass(frozen=True)
class Space:
    """What the sweeper searches, and the overrides every trial gets unchanged."""

    distributions: dict[str, BaseDistribution]  # searched keys, in order
    fixed: dict[str, str]  # fixed keys -> the override's value as a string (passed as key=value)


def value_text(v: Any) -> str:
    """A value (sampled, or a choice) as a Hydra override value."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str) and not v.replace("_", "").replace("-", "").replace(".", "").replace("/", "").isalnum():
        return quoted(v)
    return str(v)


def quoted(text: str) -> str:
    """A single-quoted Hydra override value (JSON never holds a bare quote once ' is escaped as \\u0027)."""
    return "'" + text.replace("'", "\\u0027") + "'"


def edge_overrides(space: Space) -> list[str]:
    """`key=value` for the ends of every searched range and every choice of a list: checked before a study
    starts (sweep.cli.preflight), so that a value no trial could run is refused before any trial fails."""
    edges = []
    for key, d in space.distributions.items():
        values = d.choices if isinstance(d, CategoricalDistribution) else (d.low, d.high)
        edges += [f"{key}={value_text(v)}" for v in dict.fromkeys(values)]
    return edges


def parse_space(params: Optional[Mapping[str, Any]], arguments: Sequence[str]) -> Space:
    """The search space of `hydra.sweeper.params` (key -> expression) and the command-line `arguments`.

    As upstream: the arguments come after the params, and the last override of a key wins, so a key fixed
    on the command line and searched in params is fixed (upstream also keeps a key fixed in params and
    searched on the command line fixed; here the command line wins). `range(a, b)` samples a..b with b
    INCLUDED, unlike Hydra's basic sweeper: upstream's quirk, kept so that its studies mean the same.
    `interval(1, 4)` is a float interval (Hydra makes its bounds floats); `int(interval(1, 4))` an int one.
    `shuffle(...)` is ignored: the sampler picks the order, and a shuffled list would change the stored space.
    """
    parser = OverridesParser.create()
    latest: dict[str, tuple[Override, str]] = {}  # key (without +/++ prefix) -> its last override, first position
    lines = [(f"{k}={_expression(f'hydra.sweeper.params.{k}', v)}", f"hydra.sweeper.params.{k}")
             for k, v in (params or {}).items()]
    lines += [(argument, f"override {argument.partition('=')[0]}") for argument in arguments]
    for line, where in lines:
        bad = f"{where}: '{line.partition('=')[2]}'"
        override = _parse(parser, line, bad)
        if override.is_delete():
            raise ConfigError(f"{where}: deleting a key is not supported in an Optuna sweep; "
                              f"remove it from the config instead")
        latest[override.key_or_group + (f"@{override.package}" if override.package else "")] = (override, bad)

    distributions: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for override, bad in latest.values():
        if override.is_sweep_override():
            distributions[override.get_key_element()] = _distribution(override.value(), bad)
        else:
            fixed[override.get_key_element()] = override.get_value_element_as_str()
    return Space(distributions, fixed)


def grid_choices(distributions: Mapping[str, BaseDistribution]) -> dict[str, list]:
    """Every value of each searched key, for Optuna's GridSampler; only discrete distributions have them.

    Unlike upstream (which dropped the last value), an int or stepped float grid includes `high`, so the
    grid covers exactly what the other samplers sample.
    """
    grid: dict[str, list] = {}
    for key, d in distributions.items():
        if isinstance(d, CategoricalDistribution):
            grid[key] = list(d.choices)
        elif isinstance(d, IntDistribution):
            grid[key] = list(range(d.low, d.high + 1, d.step))
        elif isinstance(d, FloatDistribution) and d.step is not None:
            low, step = Decimal(str(d.low)), Decimal(str(d.step))
            count = int((Decimal(str(d.high)) - low) / step) + 1
            grid[key] = [float(low + i * step) for i in range(count)]  # decimal steps: 0.3, not 0.30000000000000004
        else:
            raise ConfigError(f"the grid sampler needs choice(...) or range(...) for {key}, not interval(...); "
                              f"change {key}'s expression, or pick another sampler")
    return grid


def space_record(space: Space) -> dict:
    """The searched distributions as JSON-able data (key -> Optuna's distribution JSON), to store with the
    study and compare when the sweep is run again. Fixed values are left out: the whole config is compared
    for those, where `model=cnn` and a config that already says cnn are the same run."""
    return {key: json.loads(distribution_to_json(d)) for key, d in space.distributions.items()}


def describe_change(old: dict, new: dict) -> Optional[str]:
    """None if two `space_record`s are the same space, else a short text naming the first differing keys."""
    changes = [f"{key}: {_describe(old.get(key))} -> {_describe(new.get(key))}"
               for key in dict.fromkeys([*new, *old]) if old.get(key) != new.get(key)]
    if not changes:
        return None
    more = len(changes) - SHOWN_CHANGES
    return "; ".join(changes[:SHOWN_CHANGES]) + (f" (and {more} more)" if more > 0 else "")


def _describe(record: Optional[Mapping[str, Any]]) -> str:
    """One key's distribution record as text, e.g. "FloatDistribution(0.0001..0.3, log)"."""
    if record is None:
        return "not searched"
    name, attributes = record.get("name"), record.get("attributes", {})
    if name == "CategoricalDistribution":
        return f"{name}({', '.join(repr(c) for c in attributes.get('choices', []))})"
    if name in ("FloatDistribution", "IntDistribution"):
        step = attributes.get("step")
        shown_step = f", step {step!r}" if step is not None and not (name == "IntDistribution" and step == 1) else ""
        log = ", log" if attributes.get("log") else ""
        return f"{name}({attributes.get('low')!r}..{attributes.get('high')!r}{shown_step}{log})"
    return f"{name}({json.dumps(attributes, sort_keys=True)})"


def _expression(where: str, value: Any) -> str:
    """A params value as override text: YAML scalars as Hydra spells them; a list or mapping is refused."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, Mapping):
        raise ConfigError(f"{where}: a mapping is not a search expression; write one dotted key per searched "
                          f"value (e.g. optimizer.lr: interval(1e-4, 0.1))")
    raise ConfigError(f"{where}: a list is not a search expression; write choice(a, b) to search, or quote it "
                      f"('[1, 2]') for a fixed list")


def _parse(parser: OverridesParser, line: str, bad: str) -> Override:
    """One override, with Hydra's parse error turned into one line that names the key."""
    try:
        return parser.parse_override(line)
    except HydraException as e:
        lines = str(e).strip().splitlines()
        # The first line may repeat the override; then comes what is wrong, after "X while evaluating '...': "
        reason = lines[1] if len(lines) > 1 and lines[0].startswith("Error parsing") else lines[0]
        raise ConfigError(f"{bad} cannot be parsed ({EVALUATING.sub('', reason)}); write {ALLOWED}") from None


def _distribution(sweep: Any, bad: str) -> BaseDistribution:
    """The Optuna distribution of one sweep, checked so that Optuna has nothing left to refuse."""
    if isinstance(sweep, Glob):
        raise ConfigError(f"{bad}: glob(...) needs the config group's options, which an Optuna sweep does not "
                          f"list; name them with choice(a, b, ...)")
    unknown = sorted(sweep.tags - {"log"})
    if unknown:
        raise ConfigError(f"{bad}: unknown tag {', '.join(unknown)}; the only tag is log, as in "
                          f"tag(log, interval(low, high))")
    log = "log" in sweep.tags
    if isinstance(sweep, RangeSweep) and sweep.step <= 0:
        raise ConfigError(f"{bad}: range(start, stop, step) needs a positive step")
    if isinstance(sweep, ChoiceSweep) or (isinstance(sweep, RangeSweep) and sweep.shuffle):
        if log:
            raise ConfigError(f"{bad}: tag(log, ...) goes on interval(low, high), not on a list of choices")
        values = sweep.list if isinstance(sweep, ChoiceSweep) else list(sweep.range())
        if not values:
            raise ConfigError(f"{bad}: no values to choose from; write {ALLOWED}")
        # As upstream: str/int/float/bool stay, lists and mappings become their override text ("[1,2]")
        return CategoricalDistribution([Transformer.encode(v) for v in values])
    if isinstance(sweep, RangeSweep):
        if log and not (sweep.step == 1 and isinstance(sweep.start, int) and isinstance(sweep.stop, int)):
            raise ConfigError(f"{bad}: a log scale cannot have a step; write tag(log, int(interval(low, high)))")
        return _bounded(bad, sweep.start, sweep.stop, log, sweep.step)
    assert isinstance(sweep, IntervalSweep)
    return _bounded(bad, sweep.start, sweep.end, log, None)


def _bounded(bad: str, low: Any, high: Any, log: bool, step: Optional[Union[int, float]]) -> BaseDistribution:
    """An int distribution when the bounds (and step) are ints, else a float one, once the bounds are checked."""
    if low > high:
        raise ConfigError(f"{bad}: the low bound {low} is above the high bound {high}")
    if log and low <= 0:
        raise ConfigError(f"{bad}: a log scale needs a low bound above 0, not {low}")
    if all(isinstance(v, int) for v in (low, high, 1 if step is None else step)):
        return IntDistribution(low, high, log=log, step=step or 1)
    return FloatDistribution(float(low), float(high), log=log, step=None if step is None else float(step))
