"""Shared fixtures: small IDX data sets written here and read through torchvision's real readers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sweep.fake_data import write_dataset

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _private_data_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Decoded-data cache entries go to a temp folder (inherited by CLI subprocesses), not ~/.cache."""
    os.environ["SWEEP_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def idx_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flat folder of four gzipped IDX files: 600 training and 200 test images."""
    return write_dataset(tmp_path_factory.mktemp("idx"), 600, 200)


def tiny(root: Path, *extra: str) -> list[str]:
    """Overrides for a run that takes well under a second."""
    return [f"data.root={root}", "data.train_size=128", "data.val_size=64", "data.test_size=100",
            "trainer.epochs=3", *extra]


def run_cli(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """The real CLI, as a user runs it, from the given working directory."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, "-m", "sweep.train", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd)
