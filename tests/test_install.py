"""First contact: a non-editable install that carries its configs and runs from any folder, the console
scripts, shell completion and --help."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import REPO, assert_one_line_error, cli_env, run_cli, tiny
from test_user_code import write_user_project

GROUPS = ("data", "model", "optimizer", "scheduler", "search", "trainer")


def script(name: str) -> Path:
    """A console script of the installed package (beside this Python, or on PATH)."""
    found = Path(sysconfig.get_path("scripts")) / name
    if found.is_file():
        return found
    which = shutil.which(name)
    if which is None:
        pytest.skip(f"{name} is not installed: run pip install -e . in the repository first")
    return Path(which)


@pytest.mark.slow
def test_help_says_what_a_new_user_needs_and_stays_short(tmp_path: Path) -> None:
    proc = run_cli("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert len(text.splitlines()) <= 40, text
    for needed in ("sweep-train -m model.num_hidden=15,30,60", "search=optuna", "resume=true hydra.run.dir=",
                   "hydra.sweep.dir=", "outputs/runs/", "outputs/sweeps/", "sweep-report", "--cfg job",
                   "-sc install=bash"):
        assert needed in text, needed
    for group in GROUPS:  # every group, with every option its folder holds
        options = sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml"))
        assert f"{group}: {', '.join(options)}" in text, group
    assert "powered by Hydra" not in text and not list(tmp_path.iterdir())  # nothing written


@pytest.mark.slow
def test_bash_completion_through_the_console_script(tmp_path: Path) -> None:
    """The README's `eval "$(sweep-train -sc install=bash)"`, then what bash does on TAB, for three lines."""
    exe = script("sweep-train")
    lines = ["sweep-train model=", "sweep-train trainer.ep", "sweep-train search="]
    code = f'eval "$({exe} -sc install=bash)"\n' + "".join(
        f'COMP_LINE="{line}" COMP_POINT={len(line)} COMP_CWORD={line.count(" ")} hydra_bash_completion; '
        'echo "${COMPREPLY[*]}"\n' for line in lines)
    proc = subprocess.run(["bash", "-c", code], capture_output=True, text=True, timeout=60,
                          env={**cli_env(), "PATH": f"{exe.parent}{os.pathsep}{os.environ['PATH']}"}, cwd=tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    groups, keys, searches = (line.split() for line in proc.stdout.splitlines())
    assert groups == ["model=cnn", "model=pigeon"] and keys == ["trainer.epochs="]
    assert "search=optuna" in searches and "search=basic" in searches


@pytest.mark.slow
def test_shell_completion_without_a_subcommand_is_one_line(tmp_path: Path) -> None:
    proc = run_cli("--shell-completion", cwd=tmp_path)
    assert_one_line_error(proc.returncode, proc.stderr, proc.stdout, "install", "--help")


@pytest.mark.slow
def test_a_target_in_the_current_folder_imports_under_the_console_script(idx_root: Path, tmp_path: Path) -> None:
    conf = write_user_project(tmp_path)
    run = tmp_path / "run"
    proc = subprocess.run([str(script("sweep-train")), "--config-dir", str(conf), "model=mine",
                           *tiny(idx_root, "trainer.epochs=1"), f"hydra.run.dir={run}"],
                          capture_output=True, text=True, timeout=180, env=cli_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((run / "metrics.json").read_text())["epochs_completed"] == 1


def _venv_with_the_package(where: Path) -> Path:
    """A virtual environment that sees this Python's packages (torch, hydra, ...) and holds sweep installed
    from the repository the way `pip install .` does (a built wheel, not an editable link)."""
    # No pip of its own: this Python's pip and setuptools (>= 64) build the wheel, offline.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(where)], check=True,
                   timeout=120)
    source = where.parent / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    for folder in ("sweep", "conf", "hydra_plugins"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for file in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / file, source / file)
    python = where / "bin" / "python"
    proc = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                           "--quiet", str(source)], capture_output=True, text=True, timeout=300,
                          cwd=where, env={**cli_env(), "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return where / "bin"


@pytest.mark.slow
def test_a_non_editable_install_runs_from_any_folder(idx_root: Path, tmp_path: Path) -> None:
    bin_dir = _venv_with_the_package(tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**cli_env(), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    where = subprocess.run([str(bin_dir / "python"), "-c", "import sweep, sweep.conf; print(sweep.conf.__file__)"],
                           capture_output=True, text=True, timeout=60, cwd=elsewhere, env=env)
    installed = Path(where.stdout.strip()).parent
    assert installed.is_relative_to(tmp_path / "venv"), where.stdout + where.stderr  # not the repository
    assert (installed / "model" / "pigeon.yaml").is_file() and (installed / "hydra" / "help" / "sweep.yaml").is_file()

    train = subprocess.run([str(bin_dir / "sweep-train"), "-m", "model.num_hidden=8,16",
                            *tiny(idx_root, "trainer.epochs=2")],
                           capture_output=True, text=True, timeout=300, cwd=elsewhere, env=env)
    assert train.returncode == 0, train.stderr
    sweeps = list((elsewhere / "outputs" / "sweeps").iterdir())  # Hydra's folder, under the current one
    assert len(sweeps) == 1 and sorted(p.name for p in sweeps[0].glob("job_*")) == ["job_0", "job_1"]
    assert (sweeps[0] / "job_1" / "checkpoints" / "epoch_002.pt").is_file()

    report = subprocess.run([str(bin_dir / "sweep-report")], capture_output=True, text=True, timeout=120,
                            cwd=elsewhere, env=env)
    assert report.returncode == 0, report.stderr
    assert (sweeps[0] / "report.md").is_file() and "num_hidden" in report.stdout
    helped = subprocess.run([str(bin_dir / "python"), "-m", "sweep.train", "--help"], capture_output=True, text=True,
                            timeout=60, cwd=elsewhere, env=env)
    assert helped.returncode == 0 and "sweep-report" in helped.stdout
