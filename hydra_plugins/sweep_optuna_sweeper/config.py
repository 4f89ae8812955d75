"""Registers `hydra/sweeper: sweep_optuna` and its samplers: upstream's `optuna` sweeper schema, plus our keys.

A config written for `hydra/sweeper=optuna` (hydra-optuna-sweeper 1.3) works here by changing only that name.
Hydra imports every module under hydra_plugins/ at start-up, so this one stays light: no optuna import.

Each sampler lists only keyword arguments that Optuna 4.9 and 5.0 both take with the same meaning, so that
instantiating it warns about nothing and breaks on neither; any other keyword can still be given with
`+hydra.sweeper.sampler.KEY=VALUE`.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class TPESamplerConf:
    # Left out, deprecated in Optuna 4.3/4.9 (removal planned for 6.0): consider_prior, prior_weight,
    # consider_magic_clip, consider_endpoints, gamma, weights, warn_independent_sampling; categorical_distance_func
    # (deprecated in 4.9, gone in 5.0); constraints_func (deprecated in 5.0).
    _target_: str = "optuna.samplers.TPESampler"
    seed: Optional[int] = None
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    # null: Optuna's default (5.0: multivariate for a single objective; 4.9: independent)
    multivariate: Optional[bool] = None
    group: bool = False  # needs multivariate: true
    # Penalize trials still running: ours runs n_jobs trials asynchronously (Optuna 5.0's default; 4.9's is false)
    constant_liar: bool = True


@dataclass
class RandomSamplerConf:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: Optional[int] = None


@dataclass
class CmaEsSamplerConf:
    # Left out, deprecated: x0 and sigma0 (Optuna 4.9), restart_strategy and inc_popsize (4.4, ignored since);
    # source_trials takes FrozenTrial objects, which a config cannot hold.
    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: Optional[int] = None
    n_startup_trials: int = 1
    independent_sampler: Optional[Any] = None  # e.g. {_target_: optuna.samplers.RandomSampler}
    warn_independent_sampling: bool = True
    consider_pruned_trials: bool = False
    popsize: Optional[int] = None
    use_separable_cma: bool = False
    with_margin: bool = False
    lr_adapt: bool = False


@dataclass
class NSGAIISamplerConf:
    # Left out: constraints_func (deprecated in Optuna 5.0), mutation (new in 5.0), and the *_strategy callables.
    _target_: str = "optuna.samplers.NSGAIISampler"
    seed: Optional[int] = None
    population_size: int = 50
    mutation_prob: Optional[float] = None
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5


@dataclass
class GridSamplerConf:
    _target_: str = "optuna.samplers.GridSampler"
    # The sweeper passes the grid, built from hydra.sweeper.params
    _partial_: bool = True
    seed: Optional[int] = None


@dataclass
class QMCSamplerConf:
    _target_: str = "optuna.samplers.QMCSampler"
    seed: Optional[int] = None
    qmc_type: str = "sobol"  # sobol | halton
    scramble: bool = False
    independent_sampler: Optional[Any] = None
    warn_asynchronous_seeding: bool = True
    warn_independent_sampling: bool = True


@dataclass
class GPSamplerConf:
    # Left out: constraints_func (deprecated in Optuna 5.0).
    _target_: str = "optuna.samplers.GPSampler"
    seed: Optional[int] = None
    n_startup_trials: int = 10
    deterministic_objective: bool = False
    independent_sampler: Optional[Any] = None
    warn_independent_sampling: bool = True


@dataclass
class MOTPESamplerConf:
    # Optuna removed MOTPESampler (TPESampler handles several objectives); kept so that selecting it reaches
    # the sweeper, which says so in one line.
    _target_: str = "optuna.samplers.MOTPESampler"
    seed: Optional[int] = None


@dataclass
class SweepOptunaSweeperConf:
    _target_: str = "hydra_plugins.sweep_optuna_sweeper.sweeper.SweepOptunaSweeper"
    # The sweeper instantiates the sampler itself, to turn a bad sampler into one line
    _recursive_: bool = False
    defaults: List[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])

    # Upstream's keys, with upstream's defaults.
    sampler: Any = MISSING
    direction: Any = "minimize"  # minimize | maximize, or a list of them for several objectives
    storage: Optional[Any] = None  # e.g. sqlite:///study.db
    study_name: Optional[str] = None
    n_trials: int = 20
    n_jobs: int = 2
    max_failure_rate: float = 0.0
    params: Optional[Dict[str, Any]] = None  # key -> choice(...), range(...), interval(...) or a fixed value
    custom_search_space: Optional[str] = None  # dotpath of a callable(cfg, trial) adding to the space
    # Removed upstream; kept only so that the sweeper refuses it in one line, pointing to params
    search_space: Optional[Any] = None

    # Ours.
    # none | median | successive_halving | hyperband, with keyword arguments for Optuna's class
    pruner: str = "none"
    # (null, so that a whole dict can be given: 'hydra.sweeper.pruner_args={n_startup_trials: 5}')
    pruner_args: Optional[Any] = None
    # A running trial sends a heartbeat every heartbeat_interval seconds; one silent for grace_period seconds
    # is failed and retried (at most max_retry times) in its own job directory, from its last epoch checkpoint.
    heartbeat_interval: int = 10
    grace_period: int = 60
    max_retry: int = 3
    # true: upstream's behaviour, batches of n_jobs trials that wait for their slowest (for comparison)
    synchronous: bool = False
    # e.g. [0, 1, 2, 3]: each trial in flight gets its own device, through trainer.device
    devices: Optional[List[Any]] = None


_SAMPLERS = {"tpe": TPESamplerConf, "random": RandomSamplerConf, "cmaes": CmaEsSamplerConf,
             "nsgaii": NSGAIISamplerConf, "grid": GridSamplerConf, "qmc": QMCSamplerConf, "gp": GPSamplerConf,
             "motpe": MOTPESamplerConf}

_store = ConfigStore.instance()
_store.store(group="hydra/sweeper", name="sweep_optuna", node=SweepOptunaSweeperConf, provider="sweep")
for _name, _node in _SAMPLERS.items():
    _store.store(group="hydra/sweeper/sampler", name=_name, node=_node, provider="sweep")
