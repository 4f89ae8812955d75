"""Shared fixtures and helpers: small data sets written here in real file formats, read by the real readers,
and the real CLI (as a subprocess, or in this process for inputs refused before Hydra starts)."""

from __future__ import annotations

import gc
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
import torch

from sweep import checkpoint
from sweep.fake_data import write_csv, write_dataset, write_image_folder

REPO = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("SWEEP_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(
    not POSTGRES_URL, reason="needs a PostgreSQL server: set SWEEP_TEST_POSTGRES_URL=postgresql://USER:PASSWORD@"
    "127.0.0.1:PORT/DB (on Debian, as root, eval \"$(bash .ci/start-postgres)\" starts a throw-away one)")


@pytest.fixture(scope="session")
def idx_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flat folder of four gzipped IDX files: 600 training and 200 test images."""
    return write_dataset(tmp_path_factory.mktemp("idx"), 600, 200)


@pytest.fixture(scope="session")
def csv_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A regression table of 400 rows: x1..x4 and y (see sweep.fake_data.write_csv)."""
    return write_csv(tmp_path_factory.mktemp("csv") / "table.csv", 400, seed=0)


@pytest.fixture(scope="session")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An image folder: three classes of 20 PNG images, 12x12 pixels."""
    return write_image_folder(tmp_path_factory.mktemp("images"), 20)


def tiny(root: Path, *extra: str) -> list[str]:
    """Overrides for a run that takes well under a second."""
    return [f"data.root={root}", "data.train_size=128", "data.val_size=64", "data.test_size=100",
            "trainer.epochs=3", *extra]


def cli_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def run_cli(*args: str, cwd: Path, timeout: float = 180,
            preexec_fn: Optional[Callable[[], Any]] = None) -> subprocess.CompletedProcess:
    """The real CLI, as a user runs it, from the given working directory."""
    return subprocess.run([sys.executable, "-m", "sweep.train", *args], capture_output=True, text=True,
                          timeout=timeout, env=cli_env(), cwd=cwd, preexec_fn=preexec_fn)


def assert_one_line_error(returncode: int, stderr: str, stdout: str, *fragments: str) -> str:
    """A non-zero exit, no traceback, and the last stderr line naming every fragment; returns that line."""
    assert returncode not in (0, None), stdout + stderr
    assert "Traceback" not in stderr + stdout, stderr
    lines = stderr.strip().splitlines()
    assert lines, "nothing on stderr"
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]
    return lines[-1]


def assert_same_run(a: Path, b: Path) -> None:
    """Two run directories computed the same thing: metrics (but timings), every history row, the last and
    the best weights."""
    metrics = [json.loads((run / "metrics.json").read_text()) | {"seconds": 0} for run in (a, b)]
    assert metrics[0] == metrics[1]
    history = [[line.rsplit(",", 1)[0] for line in (run / "history.csv").read_text().splitlines()] for run in (a, b)]
    assert history[0] == history[1]
    for name in ("last.pt", "best.pt"):
        wa, wb = (checkpoint.load(run / "checkpoints" / name)["model"] for run in (a, b))
        assert all(torch.equal(wa[k], wb[k]) for k in wa), name


@pytest.fixture
def cli_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> Callable[..., tuple[int, str, str]]:
    """sweep.cli.main() in this process, for inputs it refuses before Hydra starts (no process start-up:
    a tenth of the time). Returns (exit status, stdout, stderr)."""
    from sweep import cli

    def call(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["sweep.train", *args])
        monkeypatch.setattr(logging, "raiseExceptions", logging.raiseExceptions)
        monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
        try:
            cli.main()
            status = 0
        except SystemExit as e:
            status = int(e.code or 0)
        finally:
            gc.unfreeze()
        out, err = capsys.readouterr()
        return status, out, err

    return call
