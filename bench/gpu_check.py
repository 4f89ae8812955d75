"""The checks that need a CUDA machine, as one prepared script whose plain lines can be quoted as they are.

    python bench/gpu_check.py                          # about 8 minutes on an H200 (8 search trials)
    python bench/gpu_check.py --parts resume,bf16      # only some parts, e.g. to rerun one
    python bench/gpu_check.py --budget-trials 4 --search-extra hydra.sweeper.n_jobs=4
    python bench/gpu_check.py --smoke                  # every part on the CPU with tiny fake data (seconds)

Parts, each printing lines that start with its name:
  resume      `python -m sweep.train` (model=cnn with dropout, Adam, shuffled Fashion-MNIST subset, 4 epochs,
              trainer.device=cuda) is SIGKILLed during epoch 2 (a shorter delay is tried when a kill comes
              too late), resumed with resume=true, and compared with the same config run without a kill:
              history.csv (every column but the wall-clock seconds) and best.pt's weights, bit for bit;
  bf16        the same config with trainer.precision=bf16 against that fp32 run: val accuracy, epoch time;
  throughput  bench/throughput.py's cases (mlp, cnn, loader, running) on the GPU: sweep's loop against a
              tight loop;
  search      `python -m sweep.train -m search=fashion_cnn` on full Fashion-MNIST with --budget-trials trials
              (8 by default, fewer than the search's own n_trials, so that the whole check fits in about
              8 minutes on an H200; stopped after --search-timeout seconds): wall time, the best trial's
              val and test accuracy from the trials' metrics.json.
Without Fashion-MNIST (--fashion; a bare device machine may lack Debian's package: carry a copy of the
four files and point --fashion at it), resume, bf16 and throughput use fake images and search is skipped.
On a machine without CUDA (and without --smoke) it prints one line saying so and exits 0.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
import yaml

import throughput
from common import FASHION_TRAIN_IMAGES, fashion_images, has_idx_files
from sweep.data.idx import DEBIAN_FASHION_MNIST

REPO = Path(__file__).resolve().parent.parent
PARTS = ("resume", "bf16", "throughput", "search")
SEARCH_CONF = REPO / "conf" / "search" / "fashion_cnn.yaml"
KILL_TRIES = 3


@dataclass
class Setup:
    """What every part uses: the device, the data of the single runs, and a scratch folder."""

    device: str
    smoke: bool
    root: Path  # the images of every part: Fashion-MNIST, or fake ones
    real: bool  # whether root holds the real Fashion-MNIST
    work: Path
    run_overrides: list[str]
    throughput_images: int
    budget_trials: int
    search_extra: list[str]
    search_timeout: float


def say(part: str, line: str) -> None:
    print(f"[{part}] {line}", flush=True)


def cli(args: list[str], log: Path, **popen: object) -> subprocess.Popen:
    """`python -m sweep.train ARGS` from the repository, its output into a log file (shown on failure)."""
    with open(log, "a") as out:
        return subprocess.Popen([sys.executable, "-m", "sweep.train", *args], cwd=REPO, stdout=out,
                                stderr=subprocess.STDOUT, **popen)


def finish(proc: subprocess.Popen, log: Path, timeout: Optional[float] = None) -> None:
    if proc.wait(timeout) != 0:
        tail = log.read_text()[-2000:]
        raise RuntimeError(f"{' '.join(map(str, proc.args[3:6]))} ... exited {proc.returncode}:\n{tail}")


def history(run_dir: Path) -> list[dict]:
    path = run_dir / "history.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_once(s: Setup, name: str, extra: list[str]) -> Path:
    """A whole single run of the resume config (kept in the scratch folder: bf16 reuses the fp32 one)."""
    run_dir = s.work / name
    if not (run_dir / "metrics.json").is_file():
        log = s.work / f"{name}.log"
        finish(cli([*s.run_overrides, *extra, f"hydra.run.dir={run_dir}"], log), log)
    return run_dir


def kill_during_epoch_2(s: Setup, run_dir: Path, fraction: float) -> tuple[str, list[dict]]:
    """Start a run, SIGKILL its process group `fraction` of epoch 1's time after epoch 1 is recorded;
    returns where the kill fell ("in epoch 2" when history.csv held one epoch and epoch_002.pt was absent)
    and the history rows written by then."""
    log = s.work / f"{run_dir.name}.log"
    proc = cli([*s.run_overrides, f"hydra.run.dir={run_dir}"], log, start_new_session=True)
    while not history(run_dir):
        if proc.poll() is not None:  # it failed (finish raises), or ended before we saw epoch 1
            finish(proc, log)
            return "after the end of the run", history(run_dir)
        time.sleep(0.01)
    delay = fraction * float(history(run_dir)[0]["seconds"])
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    rows = history(run_dir)
    if len(rows) == 1 and not (run_dir / "checkpoints" / "epoch_002.pt").exists():
        return f"in epoch 2 ({delay:.2f} s after epoch 1 was recorded)", rows
    return f"after epoch {len(rows)} ({delay:.2f} s after epoch 1 was recorded)", rows


def first_history_difference(a: list[dict], b: list[dict]) -> Optional[str]:
    if len(a) != len(b):
        return f"{len(a)} epochs against {len(b)}"
    for ra, rb in zip(a, b):
        for key in ra:
            if key != "seconds" and ra[key] != rb.get(key):
                return f"epoch {ra['epoch']}, {key}: {ra[key]} against {rb.get(key)}"
    return None


def first_weight_difference(a: Path, b: Path) -> tuple[Optional[str], int, int]:
    """(the first differing tensor, or None; how many tensors; the epoch) of two best.pt files."""
    sa, sb = (torch.load(p, map_location="cpu", weights_only=True) for p in (a, b))
    if sa["epoch"] != sb["epoch"]:
        return f"best epoch {sa['epoch']} against {sb['epoch']}", 0, sa["epoch"]
    ma, mb = sa["model"], sb["model"]
    if ma.keys() != mb.keys():
        return f"tensor names differ: {sorted(ma.keys() ^ mb.keys())}", 0, sa["epoch"]
    for key in ma:
        if not torch.equal(ma[key], mb[key]):
            diff = (ma[key].double() - mb[key].double()).abs().max()
            return f"{key} (max difference {float(diff):.3e})", len(ma), sa["epoch"]
    return None, len(ma), sa["epoch"]


def part_resume(s: Setup) -> bool:
    fraction = 0.3
    for attempt in range(1, KILL_TRIES + 1):
        killed = s.work / f"killed{attempt}"
        where, at_kill = kill_during_epoch_2(s, killed, fraction)
        say("resume", f"try {attempt}: SIGKILL fell {where}")
        landed = where.startswith("in epoch 2")
        if landed:
            break
        fraction /= 3
    if not landed:
        say("resume", f"no kill fell in epoch 2 in {KILL_TRIES} tries: resuming the last one anyway")
    finish(cli([f"hydra.run.dir={killed}", "resume=true"], s.work / "resumed.log"), s.work / "resumed.log")
    # A run that started over would match too: the rows written before the kill (wall seconds included) must stay.
    kept = history(killed)[: len(at_kill)] == at_kill
    say("resume", f"resume=true continued after epoch {len(at_kill)}: "
                  f"{'yes' if kept else 'NO, the rows written before the kill changed'}")
    whole = run_once(s, "whole", [])
    diff = first_history_difference(history(killed), history(whole))
    say("resume", f"history.csv (all columns but seconds), killed+resumed vs uninterrupted, {len(history(whole))} "
                  f"epochs: {'MATCH' if diff is None else 'DIFFER at ' + diff}")
    wdiff, n, epoch = first_weight_difference(killed / "checkpoints" / "best.pt", whole / "checkpoints" / "best.pt")
    say("resume", f"best.pt weights (epoch {epoch}, {n} tensors): {'MATCH' if wdiff is None else 'DIFFER at ' + wdiff}")
    return landed and kept and diff is None and wdiff is None


def epoch_seconds(run_dir: Path) -> list[float]:
    """Per-epoch compute time after the first epoch (which pays for warm-up), from the cumulative column."""
    cumulative = [float(r["seconds"]) for r in history(run_dir)]
    return [b - a for a, b in zip(cumulative, cumulative[1:])]


def part_bf16(s: Setup) -> bool:
    runs = {"fp32": run_once(s, "whole", []), "bf16": run_once(s, "bf16", ["trainer.precision=bf16"])}
    times = {}
    for name, run_dir in runs.items():
        metrics = json.loads((run_dir / "metrics.json").read_text())
        times[name] = statistics.median(epoch_seconds(run_dir))
        say("bf16", f"{name}: best val_acc {metrics['best_val_acc']:.4f} (epoch {metrics['best_epoch']}), "
                    f"median epoch {times[name]:.3f} s (epochs 2-{len(history(run_dir))}, training and evaluation)")
    say("bf16", f"epoch time bf16 / fp32: {times['bf16'] / times['fp32']:.3f}")
    return True


def part_throughput(s: Setup) -> bool:
    from sweep.device import setup

    images, labels = fashion_images(s.root, s.throughput_images)
    compute = setup(s.device, "32", deterministic=True, threads=None)
    names = ["mlp"] if s.smoke else list(throughput.CASES)
    for name in names:
        result = throughput.measure(name, images, labels, compute, 1 if s.smoke else throughput.CASES[name].rounds,
                                    warmup=not s.smoke)
        for line in throughput.summary(result):
            say("throughput", line)
    return True


def part_search(s: Setup) -> bool:
    if not SEARCH_CONF.is_file():
        say("search", f"skipped: {SEARCH_CONF.relative_to(REPO)} does not exist yet")
        return True
    if not s.real and not s.smoke:
        say("search", "skipped: no Fashion-MNIST (apt-get install dataset-fashion-mnist, or --fashion DIR)")
        return True
    sweep_dir = s.work / "search"
    smoke = ["data.train_size=256", "data.val_size=64", "data.test_size=64", "trainer.epochs=1"] if s.smoke else []
    args = ["-m", "search=fashion_cnn", f"trainer.device={s.device}", f"hydra.sweep.dir={sweep_dir}",
            f"hydra.sweeper.n_trials={s.budget_trials}", f"data.root={s.root}", *smoke, *s.search_extra]
    say("search", f"python -m sweep.train {' '.join(args)}")
    log = s.work / "search.log"
    start = time.perf_counter()
    proc = cli(args, log, start_new_session=True)
    try:
        finish(proc, log, timeout=s.search_timeout)
        ended = "finished"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        ended = f"STOPPED after --search-timeout {s.search_timeout:.0f} s"
    wall = time.perf_counter() - start
    trials = [(p.parent, json.loads(p.read_text())) for p in sorted(sweep_dir.rglob("metrics.json"))]
    statuses = Counter(m["status"] for _, m in trials)
    say("search", f"{ended}: wall time {wall:.1f} s ({wall / 60:.1f} min), {len(trials)} trial(s) with metrics.json: "
                  + ", ".join(f"{n} {st}" for st, n in sorted(statuses.items())))
    scored = [(d, m) for d, m in trials if m["status"] != "failed" and m.get("objective") is not None]
    if not scored:
        say("search", "no trial has an objective")
        return False
    sign = 1 if scored[0][1]["direction"] == "maximize" else -1
    best_dir, best = max(scored, key=lambda dm: sign * dm[1]["objective"])
    overrides = best_dir / ".hydra" / "overrides.yaml"
    given = {a.partition("=")[0] for a in args}
    params = [o for o in (yaml.safe_load(overrides.read_text()) if overrides.is_file() else [])
              if o.partition("=")[0] not in given]
    test = "none" if best.get("test_acc") is None else f"{best['test_acc']:.4f}"
    say("search", f"best trial {best_dir.name}: val_acc {best['best_val_acc']:.4f}, test_acc {test} "
                  f"(epoch {best['best_epoch']}, {best['status']})")
    say("search", f"best trial's overrides (beyond the command line): {' '.join(params)}")
    return ended == "finished"


PART_FUNCTIONS: dict[str, Callable[[Setup], bool]] = {
    "resume": part_resume, "bf16": part_bf16, "throughput": part_throughput, "search": part_search}


def make_setup(args: argparse.Namespace, work: Path) -> Setup:
    """Real Fashion-MNIST when it is there (never in smoke runs), else fake images written into `work`."""
    from sweep.fake_data import write_dataset

    real = not args.smoke and has_idx_files(args.fashion)
    n = 600 if args.smoke else FASHION_TRAIN_IMAGES if real else 20_000
    root = args.fashion if real else write_dataset(work / "fake", n, 100 if args.smoke else 2_000)
    sizes = (["model.channels=[8,16]", "data.train_size=256", "data.val_size=64", "data.test_size=100",
              "data.batch_size=32", "trainer.epochs=3"] if args.smoke else
             [f"data.train_size={n * 5 // 6}", f"data.val_size={n // 6}", "data.test_size=2000",
              "data.batch_size=64", "trainer.epochs=4"])
    device = "cpu" if args.smoke else "cuda"
    return Setup(device=device, smoke=args.smoke, root=root, real=real, work=work,
                 run_overrides=["model=cnn", "model.dropout=0.2", "optimizer=adam", "data=fashion_mnist",
                                f"data.root={root}", "data.download=false", "data.shuffle=true", *sizes,
                                f"trainer.device={device}", "seed=3"],
                 throughput_images=n, budget_trials=2 if args.smoke else args.budget_trials,
                 search_extra=args.search_extra, search_timeout=args.search_timeout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, from {', '.join(PARTS)}")
    parser.add_argument("--fashion", type=Path, default=DEBIAN_FASHION_MNIST,
                        help="folder with Fashion-MNIST IDX files")
    parser.add_argument("--budget-trials", type=int, default=8, help="trials of the search part (default 8)")
    parser.add_argument("--search-extra", nargs="*", default=[], help="extra overrides for the search part")
    parser.add_argument("--search-timeout", type=float, default=330.0, help="seconds before the search is stopped")
    parser.add_argument("--smoke", action="store_true", help="every part on the CPU with tiny fake data")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}: choose from {', '.join(PARTS)}")
    if not args.smoke and not torch.cuda.is_available():
        print("gpu_check: no CUDA device is available here: nothing measured (--smoke runs every part on the CPU)")
        return
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        s = make_setup(args, Path(tmp))
        if args.smoke:
            print("gpu_check: SMOKE RUN on the CPU with tiny fake data: it checks that the script runs; "
                  "its figures mean nothing")
        else:
            data = s.root if s.real else f"{s.throughput_images:,} fake images (no Fashion-MNIST in {args.fashion})"
            print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}; "
                  f"data: {data}")
        print(f"single runs: python -m sweep.train {' '.join(s.run_overrides)}", flush=True)
        failed = []
        for part in parts:
            start = time.perf_counter()
            try:
                ok = PART_FUNCTIONS[part](s)
            except Exception as e:  # one broken part must not hide the others' figures
                say(part, f"FAILED: {type(e).__name__}: {e}")
                traceback.print_exc(limit=3)
                ok = False
            if not ok:
                failed.append(part)
            say(part, f"{'ok' if ok else 'NOT OK'} ({time.perf_counter() - start:.0f} s)")
        print(f"gpu_check: {'all parts ok' if not failed else 'NOT OK: ' + ', '.join(failed)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
