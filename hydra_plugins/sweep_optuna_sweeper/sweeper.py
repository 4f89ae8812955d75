"""The Sweeper class Hydra instantiates. Hydra imports every module under hydra_plugins/ at start-up, so the
implementation (sweep.search, which imports Optuna) is imported only when a sweep starts.

A user error (a bad setting, a changed study, a storage that cannot be opened) ends the sweep with one line
on stderr and exit status 2, in any Hydra app: raised as an exception, Hydra would print a traceback.
"""

import functools
import sys
from typing import Any, Callable, List, TypeVar

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

F = TypeVar("F", bound=Callable[..., Any])


def _one_line_errors(method: F) -> F:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sweep.errors import UserError

        try:
            return method(*args, **kwargs)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper  # type: ignore[return-value]


class SweepOptunaSweeper(Sweeper):
    @_one_line_errors
    def __init__(self, **kwargs: Any) -> None:
        from sweep.search import OptunaSweeper

        self.sweeper = OptunaSweeper(**kwargs)

    @_one_line_errors
    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    @_one_line_errors
    def sweep(self, arguments: List[str]) -> None:
        return self.sweeper.sweep(arguments)
