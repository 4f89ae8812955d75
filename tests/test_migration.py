"""A config written for upstream's `hydra/sweeper=optuna` runs on sweep_optuna with the sweeper's name changed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, cli_env

APP = REPO / "tests" / "apps" / "quadratic.py"


@pytest.mark.slow
def test_a_lightning_hydra_template_search_runs_with_only_the_name_changed(tmp_path: Path) -> None:
    """lightning-hydra-template's mnist_optuna.yaml (hydra.mode MULTIRUN, study_name and storage null, a TPE
    sampler by _target_, params) runs as it is, and a second run continues the same study."""
    args = [sys.executable, str(APP), "hparams_search=lht_optuna", f"hydra.sweep.dir={tmp_path}"]
    for _ in range(2):
        proc = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=cli_env())
        assert proc.returncode == 0, proc.stderr[-2000:]
    rows = (tmp_path / "trials.csv").read_text().splitlines()[1:]
    assert len(rows) == 4 and all(",COMPLETE," in r for r in rows)
    assert {r.split(",")[-1] for r in rows} <= {"-1.0", "0.0", "1.0"}  # y from its choice
    results = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert results["best_value"] == min(float(r.split(",")[2]) for r in rows)
    assert sorted(p.name for p in tmp_path.glob("trial_*")) == [f"trial_{i:04d}" for i in range(4)]
