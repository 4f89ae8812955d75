"""Hydra callback that logs a comparison table when a multirun ends."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from sweep import sidecar

log = logging.getLogger(__name__)


class SweepCallbacks(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            text = sidecar.summary(sweep_dir, top=20)
        except Exception as e:  # a summary must never turn a finished sweep into a failure
            log.warning("no summary for %s: %s", sweep_dir, e)
            return
        log.info("sweep finished: %s", text)
