"""A torch-free helper process for figures and tables, so the training process never imports matplotlib
or pandas.

Matplotlib costs about 0.3 s to import and 0.07 s a figure, pandas about 0.2 s: in a sweep of small
jobs that is a large share of each job. `python -m sweep.train` starts this sidecar before it imports
torch, so the sidecar's own imports run on the other core meanwhile. Jobs then hand it their
curves.png (`draw_curves`), and the end-of-sweep table comes from it (`summary`).

Requests are JSON lines on the sidecar's stdin, answered (summaries only) by JSON lines on its stdout.
Without a sidecar (library use, or jobs in joblib's worker processes) the same work runs in-process.
The sidecar ignores Ctrl-C and finishes every figure it was handed, even after its parent is gone.
"""

from __future__ import annotations

import atexit
import gc
import json
import logging
import os
import select
import signal
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any, Optional

from sweep.atomic import atomic_write_with

log = logging.getLogger(__name__)

_process: Optional[subprocess.Popen] = None
# Figures handed to the sidecar and not yet seen on disk, oldest first (it works through them in order).
# Whatever it leaves unwritten (it died, or hung) is drawn here instead: no curves.png is lost.
_figures: deque[dict[str, Any]] = deque()
REPLY_TIMEOUT_S = 60.0


def wanted(argv: list[str]) -> bool:
    """A training command line (run or multirun); Hydra's informational flags (--help, --cfg, ...) are not."""
    return all(a in ("-m", "--multirun") for a in argv if a.startswith("-"))


def start() -> None:
    """Start the sidecar (once per process); on failure, everything simply runs in-process."""
    global _process
    if _process is not None:
        return
    try:
        _process = subprocess.Popen([sys.executable, "-m", "sweep.sidecar"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)
    except OSError as e:
        log.warning("cannot start the sidecar process (%s); drawing figures in this process", e)
        return
    atexit.register(stop)


def _send(request: dict[str, Any]) -> bool:
    """Hand a request to the sidecar; False when there is none (or it died) and the caller must do the work."""
    global _process
    if _process is None:
        return False
    try:
        _process.stdin.write(json.dumps(request) + "\n")
        _process.stdin.flush()
    except OSError as e:
        log.warning("the sidecar process is gone (%s); continuing in this process", e)
        _process = None
        _draw_unfinished()
        return False
    if request["op"] == "curves":
        _figures.append(request)
    return True


def _outstanding() -> int:
    while _figures and Path(_figures[0]["path"]).exists():
        _figures.popleft()
    return len(_figures)


def _draw_unfinished() -> None:
    """Draw here every figure the sidecar was given but did not write."""
    missing = [r for r in _figures if not Path(r["path"]).exists()]
    _figures.clear()
    if missing:
        log.warning("the sidecar left %d figure(s) unwritten; drawing them in this process", len(missing))
    for r in missing:
        if (error := _draw_request(r)) is not None:
            log.warning("%s", error)


def draw_curves(history: list[dict], best_epoch: int, path: Path, title: str = "") -> None:
    """Write a run's curves.png atomically: on the sidecar when there is one, else here."""
    _outstanding()  # forget the figures already written
    if not _send({"op": "curves", "history": history, "best_epoch": best_epoch, "path": str(path), "title": title}):
        _draw_curves(history, best_epoch, path, title)


def summary(sweep_dir: Path, top: int) -> str:
    """The end-of-sweep comparison (sweep.report's table, `top` rows), built by the sidecar when there is one.

    The sidecar answers after the figures queued before it, so every curves.png is written by then.
    """
    if _send({"op": "summary", "sweep_dir": str(sweep_dir), "top": top}):
        ready, _, _ = select.select([_process.stdout], [], [], REPLY_TIMEOUT_S)
        line = _process.stdout.readline() if ready else ""
        if line:
            reply = json.loads(line)
            if "error" in reply:
                raise RuntimeError(reply["error"])
            return reply["text"]
        log.warning("the sidecar process did not answer; building the summary in this process")
    return _summary(sweep_dir, top)


def stop(timeout: float = 120.0) -> None:
    """Return once every figure handed to the sidecar is written, then end it. An idle sidecar, or one
    that is done (after a config error, or once the end-of-sweep table came back), is ended at once."""
    global _process
    process, _process = _process, None
    if process is None:
        return
    if not _outstanding():
        process.terminate()
        process.wait()
        return
    try:
        process.stdin.close()
    except OSError:
        pass
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    _draw_unfinished()


def _draw_curves(history: list[dict], best_epoch: int, path: Path, title: str) -> None:
    from sweep.plots import plot_run_curves

    atomic_write_with(path, lambda p: plot_run_curves(history, best_epoch, p, title))


def _draw_request(r: dict[str, Any]) -> Optional[str]:
    """Draw a figure handed to the sidecar; on failure, say why instead of raising: one bad figure must
    not stop the others, nor the sweep."""
    try:
        _draw_curves(r["history"], r["best_epoch"], Path(r["path"]), r["title"])
    except Exception as e:
        return f"cannot draw {r['path']}: {type(e).__name__}: {e}"
    return None


def _summary(sweep_dir: Path, top: int) -> str:
    from sweep.report import load_runs, summary_table

    runs = load_runs(sweep_dir)
    return (f"{len(runs)} jobs in {sweep_dir} (python -m sweep.report {sweep_dir} for the full report)\n"
            + summary_table(runs, top=top))


def _serve() -> int:
    """The sidecar's loop: import what the requests need while the parent imports torch, then serve."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import matplotlib.figure  # noqa: F401  (warm-up imports, off the training process's path)

    import sweep.report  # noqa: F401

    failed = 0
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "curves":
            if (error := _draw_request(req)) is not None:
                failed += 1
                print(f"error: {error}", file=sys.stderr)
        elif req["op"] == "summary":
            try:
                reply = {"text": _summary(Path(req["sweep_dir"]), req["top"])}
            except Exception as e:  # the parent logs it; the sidecar keeps serving
                reply = {"error": f"{type(e).__name__}: {e}"}
            print(json.dumps(reply), flush=True)
    gc.freeze()  # skip the final collections over matplotlib's and pandas' objects: a faster exit
    return 1 if failed else 0


if __name__ == "__main__":
    os.nice(5)  # figures can wait a little; the training next door should not
    sys.exit(_serve())
