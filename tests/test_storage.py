"""sweep.storage: which URL a sweep uses, that each backend opens and keeps a study, and that every storage
that cannot be used is refused in one line that masks the password and names the fix."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from conftest import POSTGRES_URL, needs_postgres
from sweep.errors import UserError
from sweep.storage import STORAGE_ENV, describe, mask, open_storage, resolve_url



@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def refused(url: str, *fragments: str) -> str:
    """open_storage's one line for url, naming its masked form and every fragment."""
    with pytest.raises(UserError) as info:
        open_storage(url)
    line = str(info.value)
    assert "\n" not in line and line.startswith(f"cannot open Optuna storage {describe(url)} ("), line
    for fragment in fragments:
        assert fragment in line, line
    return line


def round_trip(url: str, name: str) -> None:
    """A study written through one storage object is read back, trial by trial, through another."""
    study = optuna.create_study(study_name=name, storage=open_storage(url), load_if_exists=True)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1) ** 2, n_trials=3)
    again = optuna.load_study(study_name=name, storage=open_storage(url))
    assert [t.params for t in again.trials][-3:] == [t.params for t in study.trials][-3:]
    assert again.best_value == study.best_value


# resolve_url

def test_configured_wins_over_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STORAGE_ENV, "sqlite:////env/study.db")
    assert resolve_url("sqlite:////conf/study.db", tmp_path) == "sqlite:////conf/study.db"
    assert resolve_url(None, tmp_path) == "sqlite:////env/study.db"


def test_default_is_sqlite_in_the_sweep_dir(tmp_path: Path) -> None:
    url = resolve_url(None, tmp_path / "sweep")
    assert url == f"sqlite:///{tmp_path.resolve()}/sweep/study.db"
    assert (tmp_path / "sweep").is_dir()


def test_journal_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """journal alone, relative and absolute paths: all absolute, never taken from the current directory."""
    monkeypatch.chdir(tmp_path)
    sweep = tmp_path / "multirun" / "sweep"
    root = tmp_path.resolve()
    assert resolve_url("journal", sweep) == f"journal://{root}/multirun/sweep/study.journal"
    assert resolve_url("journal://runs/s.journal", sweep) == f"journal://{root}/multirun/sweep/runs/s.journal"
    assert resolve_url(f"journal://{root}/j/s.journal", sweep) == f"journal://{root}/j/s.journal"
    assert resolve_url(f"journal:///{root}/j/s.journal", sweep) == f"journal://{root}/j/s.journal"
    monkeypatch.setenv(STORAGE_ENV, "journal")
    assert resolve_url(None, sweep) == f"journal://{root}/multirun/sweep/study.journal"


def test_describe_masks_odd_passwords() -> None:
    assert describe("postgresql://sweep:pw@db:5432/sweep") == "postgresql://sweep:***@db:5432/sweep"
    assert describe("postgresql://sweep:a/b@c@db/sweep") == "postgresql://sweep:***@db/sweep"
    assert describe("sqlite:////home/a@b/study.db") == "sqlite:////home/a@b/study.db"
    assert mask("see postgresql://u:pw@h/db and mysql://v:x@h/db") == "see postgresql://u:***@h/db and mysql://v:***@h/db"


# SQLite

def test_sqlite_round_trip(tmp_path: Path) -> None:
    url = resolve_url(None, tmp_path)
    storage = open_storage(url)
    assert isinstance(storage, optuna.storages.RDBStorage)
    round_trip(url, "s")


@pytest.mark.slow
def test_sqlite_workers_creating_the_schema_at_once(tmp_path: Path) -> None:
    """Workers that start together on a new file all get a storage: the schema race is retried."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    start = time.time() + 3
    code = ("import sys, time; from sweep.storage import open_storage\n"
            f"time.sleep(max(0, {start} - time.time())); open_storage(sys.argv[1])")
    workers = [subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE, text=True)
               for _ in range(3)]
    errors = [w.communicate(timeout=120)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], errors
    round_trip(url, "shared")


def test_sqlite_file_that_is_no_database(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("not a database\n" * 100)
    refused(f"sqlite:///{tmp_path / 'notes.db'}", "file is not a database", "Optuna SQLite study")


def old_study(tmp_path: Path) -> str:
    """A study.db as Optuna 2.x left it, as far as Optuna can tell: its Alembic revision is v2.6.0.a."""
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(study_name="old", storage=url).optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    with sqlite3.connect(tmp_path / "study.db") as db:
        db.execute("UPDATE alembic_version SET version_num = 'v2.6.0.a'")
    return url


@pytest.mark.slow
def test_old_schema_says_how_to_upgrade_and_the_upgrade_works(tmp_path: Path) -> None:
    url = old_study(tmp_path)
    command = f"optuna storage upgrade --storage {url}"
    refused(url, "older Optuna", f"`{command}`", "once")
    optuna_cli = Path(sys.executable).with_name("optuna")
    assert optuna_cli.exists(), "the optuna console script is installed beside python"
    done = subprocess.run([str(optuna_cli), *command.split()[1:]], check=False, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(optuna.load_study(study_name="old", storage=open_storage(url)).trials) == 2
    round_trip(url, "new")


# Journal

def test_journal_two_storages_see_each_others_trials(tmp_path: Path) -> None:
    url = resolve_url("journal://j/study.journal", tmp_path / "sweep")
    first, second = open_storage(url), open_storage(url)
    assert isinstance(first, optuna.storages.JournalStorage)
    a = optuna.create_study(study_name="j", storage=first)
    b = optuna.load_study(study_name="j", storage=second)
    a.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    b.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert len(a.trials) == len(b.trials) == 3
    assert (tmp_path / "sweep" / "j" / "study.journal").is_file()


def test_journal_under_a_regular_file(tmp_path: Path) -> None:
    """A folder that cannot exist, for root too."""
    (tmp_path / "file").write_text("x")
    refused(f"journal://{tmp_path}/file/study.journal", "is a file, not a folder", "writable folder")
    refused(f"journal://{tmp_path}/file/deeper/study.journal", "Not a directory", "writable folder")


def test_journal_in_a_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: a read-only folder is writable anyway")
        refused(f"journal://{folder}/study.journal", "Permission denied", "writable folder")
        assert not any(folder.iterdir())
    finally:
        folder.chmod(0o700)


def test_journal_relative_or_foreign_file(tmp_path: Path) -> None:
    refused("journal://rel/study.journal", "absolute path", "journal:///abs/path/study.journal")
    (tmp_path / "study.db").write_bytes(b"SQLite format 3\x00" + bytes(100))
    refused(f"journal://{tmp_path}/study.db", "not an Optuna journal")
    assert (tmp_path / "study.db").stat().st_size == 116
    (tmp_path / "broken.journal").write_text('{"op_code": 0, "worker_id": \n{}\n')
    refused(f"journal://{tmp_path}/broken.journal", "Optuna journal")


# Bad URLs

@pytest.mark.parametrize("url, reason", [
    ("sqlite:/x", "Could not parse"),
    ("foo://", "foo"),
    ("postgresql+nodriver://", "nodriver"),
    ("nosuchdb://u:hunter2@h/x", "nosuchdb"),
])
def test_bad_urls(url: str, reason: str) -> None:
    line = refused(url, reason, "sqlite:////abs/study.db", "postgresql://user:password@host:port/db", STORAGE_ENV)
    assert "hunter2" not in line


def test_missing_driver() -> None:
    line = refused("postgresql+psycopg2://u:hunter2@127.0.0.1:1/db", "psycopg2", "install its database driver")
    assert "hunter2" not in line


# PostgreSQL

@pytest.mark.slow
@needs_postgres
def test_postgres_round_trip() -> None:
    assert isinstance(open_storage(POSTGRES_URL), optuna.storages.RDBStorage)
    round_trip(POSTGRES_URL, f"storage-{os.getpid()}-{time.time_ns()}")


@needs_postgres
def test_postgres_wrong_password() -> None:
    head, rest = POSTGRES_URL.split("://", 1)
    user, after = rest.split(":", 1)
    wrong = f"{head}://{user}:wrong-{os.getpid()}@{after.split('@', 1)[1]}"
    line = refused(wrong, "password authentication failed", "password")
    assert f"wrong-{os.getpid()}" not in line


def test_unreachable_server_fails_fast() -> None:
    start = time.monotonic()
    line = refused("postgresql://u:secret@127.0.0.1:1/db", "127.0.0.1", "that the server is running")
    assert time.monotonic() - start < 15
    assert "secret" not in line
