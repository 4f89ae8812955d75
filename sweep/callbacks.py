"""Hydra callback that logs a comparison table when a multirun ends (built in this process)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)

SUMMARY_ROWS = 20


class SweepCallbacks(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            from sweep.report import load_runs, summary_table  # pandas: only once the sweep is over

            runs = load_runs(sweep_dir)
            table = summary_table(runs, top=SUMMARY_ROWS)
        except Exception as e:  # a summary must never turn a finished sweep into a failure
            log.warning("no summary for %s: %s", sweep_dir, e)
            return
        log.info("sweep finished: %d jobs in %s (python -m sweep.report %s for the full report)\n%s",
                 len(runs), sweep_dir, sweep_dir, table)
