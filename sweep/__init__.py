"""sweep: Hydra-configured hyper-parameter sweeps for PyTorch models.

`report_value(value, step)` lets any Hydra app report per-epoch values of a sweep_optuna trial for pruning.
"""

from sweep.trial import TrialInterrupted, report_value

__all__ = ["TrialInterrupted", "report_value"]
