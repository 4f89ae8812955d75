"""Optuna storage URLs: where a study lives by default, how it is reached, and how it is shown.

Three backends, chosen by the URL:
- ``sqlite:////abs/study.db`` (the default, in the sweep dir): workers of one machine share the file.
- ``postgresql://user:password@host:port/db``: workers on many machines; without a named driver it uses
  psycopg 3 (``postgresql+psycopg://``), whatever SQLAlchemy's default for the version installed.
- ``journal``: an append-only Optuna journal file, for shared file systems such as NFS, where SQLite's
  fcntl() locks are unreliable. ``journal`` alone means ``<sweep_dir>/study.journal``;
  ``journal:///abs/path`` an absolute path; ``journal://rel/path`` a path relative to the sweep dir
  (never the current directory). resolve_url() returns the one normalized form, ``journal:///abs/path``:
  ``journal://`` followed by the absolute path. Writers take Optuna's JournalFileSymlinkLock, which
  Optuna documents for NFSv2 or later (link() is atomic on NFS where O_EXCL may not be).

A database password must never land on disk or in a log, and Hydra saves its config and overrides into
every job directory, so URLs are masked before anything can save or print them. The real URL may also
come from the environment (STORAGE_ENV), which Hydra never records.

No heartbeats: the sweeper detects dead workers itself, the same way for every backend.
"""

from __future__ import annotations


import os
import re
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from sweep.errors import UserError, first_line

if TYPE_CHECKING:
    import optuna
    import sqlalchemy

STORAGE_ENV = "SWEEP_OPTUNA_STORAGE"
JOURNAL = "journal"
ATTEMPTS = 5
_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^:/@]*):(?P<password>[^@/]*)@")
# One URL's password: as SQLAlchemy reads it (it may hold "/"), up to the last "@" (an unquoted "@" in it).
_PASSWORD = re.compile(r"^(?P<head>[a-zA-Z][\w+.-]*://[^:/@]*):(?P<password>.*)@")
_WHERE = f"hydra.sweeper.storage or ${STORAGE_ENV}"
_FORMS = "sqlite:////abs/study.db, postgresql://user:password@host:port/db or journal:///abs/study.journal"


def mask(text: str) -> str:
    """Replace the password of every URL in text with ***."""
    return _CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


def describe(url: str) -> str:
    """The URL as logs and saved files show it: its password, however odd its characters, as ***."""
    return mask(_PASSWORD.sub(lambda m: f"{m['head']}:***@", url))


def resolve_url(configured: Optional[str], sweep_dir: Path) -> str:
    """The storage to use: hydra.sweeper.storage, else $SWEEP_OPTUNA_STORAGE, else SQLite in the sweep dir.

    Journal URLs come back as journal:///abs/path, relative ones taken from the sweep dir."""
    url = str(configured or os.environ.get(STORAGE_ENV) or "").strip()
    if url == JOURNAL or url.startswith(f"{JOURNAL}://"):
        path = url[len(f"{JOURNAL}://"):] or "study.journal"
        # "/abs" (or "//abs", as sqlite:////abs is written) is absolute; anything else is in the sweep dir.
        absolute = Path("/" + path.lstrip("/")) if path.startswith("/") else sweep_dir / path
        return f"{JOURNAL}://{absolute.resolve()}"
    if url:
        return url
    sweep_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(sweep_dir / 'study.db').resolve()}"


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """The study's storage: an RDBStorage (SQLite, PostgreSQL) or a JournalStorage; any failure is one line."""
    if url == JOURNAL or url.startswith(f"{JOURNAL}:"):
        return _open_journal(url)
    database = _parse(url)
    kwargs = _engine_kwargs(database)
    _probe(url, database, kwargs)
    storage = _create(url, database, kwargs)
    _check_schema(url, storage)
    return storage


def _fail(url: str, reason: Any, fix: str) -> UserError:
    """The one line for a storage that cannot be used: the masked URL, the reason, the fix."""
    text = first_line(reason) if isinstance(reason, BaseException) else str(reason)
    password = _PASSWORD.match(url)
    if password and len(password["password"]) >= 4:  # shorter ones would mangle the words around them
        text = text.replace(password["password"], "***")
    return UserError(f"cannot open Optuna storage {describe(url)} ({mask(text)}); {fix}")


def _parse(url: str) -> sqlalchemy.engine.URL:
    """The SQLAlchemy URL, its dialect and driver known; a PostgreSQL URL without a driver uses psycopg 3."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    fix = f"check {_WHERE}: {_FORMS}"
    try:
        database = make_url(url)
        if database.drivername in ("postgres", "postgresql"):
            database = database.set(drivername="postgresql+psycopg")
        database.get_dialect()
    except (ArgumentError, ValueError) as e:
        raise _fail(url, e, fix) from None
    return database


def _engine_kwargs(database: sqlalchemy.engine.URL) -> dict[str, Any]:
    """SQLite waits for the lock (workers of one machine share the file); servers fail in bounded time."""
    if database.get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": 60}}
    if database.get_backend_name() == "postgresql":
        return {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    return {"pool_pre_ping": True}


def _probe(url: str, database: sqlalchemy.engine.URL, kwargs: dict[str, Any]) -> None:
    """Connect once and read the catalog, so that a missing driver, a wrong password, a server that is
    down or a file that is no database is told apart from the schema-creation race _create() retries."""
    import sqlalchemy

    if database.get_backend_name() == "sqlite":
        fix = "check that the file's folder exists and is writable and that the file is an Optuna SQLite study"
    else:
        fix = "check the host, port, database, user and password, and that the server is running"
    try:
        engine = sqlalchemy.create_engine(database, **kwargs)
    except ImportError as e:
        raise _fail(url, e, f"install its database driver, or name another one in {_WHERE}") from None
    try:
        with engine.connect() as connection:
            sqlalchemy.inspect(connection).get_table_names()
    except sqlalchemy.exc.SQLAlchemyError as e:
        raise _fail(url, getattr(e, "orig", None) or e, fix) from None
    finally:
        engine.dispose()


def _create(url: str, database: sqlalchemy.engine.URL, kwargs: dict[str, Any]) -> optuna.storages.RDBStorage:
    """The RDBStorage. Workers starting together race to create the schema: the loser retries, briefly."""
    import optuna
    from sqlalchemy.exc import DBAPIError

    for attempt in range(ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(database.render_as_string(hide_password=False),
                                              engine_kwargs=kwargs, skip_compatibility_check=True)
        except DBAPIError as e:
            if attempt + 1 == ATTEMPTS:
                raise _fail(url, e.orig or e, "retry; if it persists, check the database server's log") from None
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")


def _check_schema(url: str, storage: optuna.storages.RDBStorage) -> None:
    """A study written by another Optuna version: say exactly how to upgrade it (or Optuna)."""
    current = storage.get_current_version()
    if current == storage.get_head_version():
        return
    if current in storage.get_all_versions():
        password = " (with the real password)" if describe(url) != url else ""
        raise _fail(url, f"its schema {current} was written by an older Optuna",
                    f"upgrade it once with `optuna storage upgrade --storage {describe(url)}`{password}, "
                    "after which its old studies and new ones both open")
    raise _fail(url, f"its schema {current} was written by a newer Optuna",
                "upgrade Optuna (pip install -U optuna) or use another storage")


def _open_journal(url: str) -> optuna.storages.JournalStorage:
    """A JournalStorage on the file, its folder created; a folder or file that cannot be written is one line."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    path = Path(url[len(f"{JOURNAL}://"):])
    if not url.startswith(f"{JOURNAL}://") or not path.is_absolute():
        raise _fail(url, "a journal needs an absolute path here",
                    f"write journal:///abs/path/study.journal in {_WHERE}")
    fix = f"choose a writable folder in {_WHERE}"
    if path.parent.exists() and not path.parent.is_dir():
        raise _fail(url, f"{path.parent} is a file, not a folder", fix)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The lock is a file created beside the journal: the folder itself must be writable.
        with tempfile.TemporaryFile(dir=path.parent):
            pass
        with open(path, "ab+") as journal:
            journal.seek(0)
            head = journal.read(1)
    except OSError as e:
        raise _fail(url, e, fix) from None
    # Every journal line is a JSON object: do not append to a file of another kind (a SQLite study.db).
    if head not in (b"", b"{"):
        raise _fail(url, "the file is not an Optuna journal", "check the path, or choose a new file")
    try:
        return JournalStorage(JournalFileBackend(str(path), lock_obj=JournalFileSymlinkLock(str(path))))
    except (OSError, ValueError) as e:
        raise _fail(url, e, "check that the file is an Optuna journal, or choose a new file") from None
