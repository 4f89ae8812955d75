"""Optuna storage URLs: where a study lives by default, how it is reached, and how it is shown.

A database password must never land on disk or in a log, and Hydra saves its config and overrides into
every job directory, so URLs are masked before anything can save or print them. The real URL may also
come from the environment (STORAGE_ENV), which Hydra never records.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from pathlib import Path
from typing import Any, Optional

from sweep.errors import UserError

STORAGE_ENV = "SWEEP_OPTUNA_STORAGE"
ATTEMPTS = 5
_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^:/@]*):(?P<password>[^@/]*)@")


def mask(text: str) -> str:
    """Replace the password of every URL in text with ***."""
    return _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


def resolve_url(configured: Optional[str], sweep_dir: Path) -> str:
    """The storage to use: hydra.sweeper.storage, else $SWEEP_OPTUNA_STORAGE, else SQLite in the sweep dir."""
    url = configured or os.environ.get(STORAGE_ENV)
    if url:
        return str(url)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(sweep_dir / 'study.db').resolve()}"


def open_storage(url: str, heartbeat_interval: Optional[int] = None, grace_period: Optional[int] = None,
                 max_retry: Optional[int] = None) -> Any:
    """An RDBStorage, with heartbeats so that trials of a killed process are failed and retried."""
    import optuna
    from optuna.exceptions import ExperimentalWarning

    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Workers of one machine share the file: wait for the lock instead of failing at once.
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    if heartbeat_interval:
        kwargs.update(heartbeat_interval=heartbeat_interval, grace_period=grace_period)
        if max_retry:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                kwargs["failed_trial_callback"] = optuna.storages.RetryFailedTrialCallback(max_retry=max_retry)
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    for attempt in range(ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                return optuna.storages.RDBStorage(url, **kwargs)
        except Exception as e:  # SQLAlchemy raises many types for a bad URL, driver or server
            # Workers starting together race to create the schema: the loser retries.
            if attempt + 1 < ATTEMPTS and not isinstance(e, (ArgumentError, NoSuchModuleError, ValueError)):
                time.sleep(0.5 * (attempt + 1))
                continue
            reason = mask(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
            raise UserError(
                f"cannot open Optuna storage {mask(url)} ({reason}); check hydra.sweeper.storage or "
                f"${STORAGE_ENV}: sqlite:///path/study.db or postgresql://user:password@host:port/dbname"
            ) from None
    raise AssertionError("unreachable")
