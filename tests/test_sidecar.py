"""The sidecar process that draws curves.png and builds the end-of-sweep table for the CLI."""

import json
import signal

import pytest

from sweep import sidecar

PNG = b"\x89PNG\r\n\x1a\n"
HISTORY = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "train_acc": 0.5 + e / 20, "val_acc": 0.5 + e / 25}
           for e in range(1, 6)]


@pytest.fixture()
def sweep_dir(tmp_path):
    """Two finished jobs, as sweep.report reads them (metrics.json and Hydra's overrides.yaml)."""
    root = tmp_path / "sweep"
    for i, (hidden, acc) in enumerate([(8, 0.81), (16, 0.86)]):
        job = root / f"job_{i}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- model.num_hidden={hidden}\n")
        (job / "metrics.json").write_text(json.dumps({
            "status": "completed", "best_epoch": 3, "best_val_acc": acc, "best_val_loss": 0.4, "train_acc": 0.9,
            "test_acc": acc - 0.01, "epochs_completed": 5, "seconds": 1.0, "objective": acc, "monitor": "val_acc"}))
    return root


@pytest.fixture()
def started():
    sidecar.start()
    assert sidecar._process is not None
    yield sidecar._process
    sidecar.stop()


def test_sidecar_draws_and_tabulates_like_this_process(started, sweep_dir, tmp_path):
    paths = [tmp_path / f"curves{i}.png" for i in range(3)]
    for p in paths:
        sidecar.draw_curves(HISTORY, 4, p, title=p.stem)
    text = sidecar.summary(sweep_dir, top=20)  # answered after the figures queued before it
    assert all(p.read_bytes()[:8] == PNG for p in paths)
    assert text == sidecar._summary(sweep_dir, 20)
    assert text.startswith("2 jobs in") and text.index("job_1") < text.index("job_0")  # best first
    sidecar.stop()  # nothing outstanding: ended at once
    assert started.returncode is not None and sidecar._process is None


@pytest.mark.parametrize("noticed_by", ["stop", "the next figure"])
def test_figures_a_dead_sidecar_left_are_drawn_here(started, tmp_path, noticed_by):
    started.send_signal(signal.SIGSTOP)  # it cannot take the request off the pipe...
    sidecar.draw_curves(HISTORY, 2, tmp_path / "handed.png")
    started.kill()  # ...and dies with it unwritten
    started.wait()
    if noticed_by == "stop":
        sidecar.stop()
    else:
        sidecar.draw_curves(HISTORY, 2, tmp_path / "next.png")
        assert (tmp_path / "next.png").is_file()
    assert (tmp_path / "handed.png").read_bytes()[:8] == PNG


def test_a_dead_sidecar_means_the_work_is_done_here(started, sweep_dir, tmp_path):
    started.kill()
    started.wait()
    sidecar.draw_curves(HISTORY, 2, tmp_path / "here.png")
    assert (tmp_path / "here.png").read_bytes()[:8] == PNG
    assert sidecar._process is None
    assert "job_0" in sidecar.summary(sweep_dir, top=20)


def test_a_figure_that_cannot_be_written_fails_alone(capfd, tmp_path):
    sidecar.start()  # here, not in a fixture: its stderr must be the one capfd reads
    started = sidecar._process
    (tmp_path / "file").write_text("not a folder")
    sidecar.draw_curves(HISTORY, 2, tmp_path / "file" / "curves.png")
    sidecar.draw_curves(HISTORY, 2, tmp_path / "ok.png")
    sidecar.stop()
    assert (tmp_path / "ok.png").is_file()
    assert started.returncode == 1
    assert "cannot draw" in capfd.readouterr().err


@pytest.mark.parametrize("argv, wanted", [([], True), (["-m", "model.num_hidden=1,2"], True),
                                          (["--multirun", "x=1"], True), (["--cfg", "job"], False),
                                          (["--help"], False), (["-m", "--info"], False)])
def test_only_training_command_lines_start_a_sidecar(argv, wanted):
    assert sidecar.wanted(argv) is wanted


def test_an_idle_sidecar_is_ended_not_awaited():
    """After a config error, say: nothing was handed over, so exiting need not wait for its imports."""
    sidecar.start()
    process = sidecar._process
    sidecar.stop()
    assert process.returncode is not None and process.returncode != 0  # terminated
