"""Images per second of one training epoch: sweep's loop (`sweep.loop.train_epoch` over a `Loader`)
against a tight hand-written loop doing the same work, on full Fashion-MNIST (60,000 images), batch 128.

    python bench/throughput.py                  # every case, Debian's dataset-fashion-mnist
    python bench/throughput.py --case cnn --rounds 3 --device cuda
    python bench/throughput.py --smoke          # 2,000 fake images, one round: checks the bench still runs

Cases:
  mlp     the 256-unit MLP, SGD, over in-memory tensors (sweep's fast path: slices of one tensor);
  cnn     SmallCNN with its default (32, 64) channels, Adam, over the same in-memory tensors;
  loader  the MLP over a map-style Dataset of the same images (a per-item normalisation), through a
          DataLoader with 2 workers, shuffled: the tight loop builds the same DataLoader (same dataset,
          batch size, workers, shuffle and generator), so both see the same batches;
  running the mlp case with running train metrics, as trainer.eval_train=false trains (search=fashion_cnn
          does): sweep's Accumulator against a tight loop that sums loss and correct answers on the device.

Both sides start every round from the same initial weights with the same optimizer settings, run on
the same device with the run's defaults (trainer.deterministic=true) and do the same steps, so their
final weights agree (printed, as a check that the work is the same). Rounds alternate (sweep, tight,
sweep, tight, ...) after one untimed warm-up pair (cnn: over the first 20 batches only); medians, the
pair-by-pair ratio and the ratio of each side's best round (on a shared machine, the rounds least
disturbed by other processes) are printed. Timing covers the epoch only (on CUDA, up to a synchronize),
the DataLoader's worker start-up included on both sides, not the one-off copy of the tensors to the device.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from common import FASHION_TRAIN_IMAGES, fashion_images, has_idx_files, ratio_line
from sweep.config import compose
from sweep.data.idx import DEBIAN_FASHION_MNIST
from sweep.device import Compute, setup
from sweep.loop import Loader, epoch_generator, train_epoch
from sweep.tasks import Accumulator, get_task
from sweep.build import build_model, build_optimizer

BATCH = 128
WORKERS = 2
EPOCH = 1  # every round trains the same epoch: the same batches, from the same weights
SMOKE_IMAGES = 600
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530
MLP = ("model=pigeon", "model.num_hidden=256", "optimizer=sgd", "optimizer.lr=0.01", "optimizer.momentum=0.9")


def _sgd(params: Iterable[torch.Tensor]) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.01, momentum=0.9)


def _adam(params: Iterable[torch.Tensor]) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=0.001)


@dataclass(frozen=True)
class Case:
    """One comparison: sweep's config overrides, and what the hand-written side builds for itself."""

    title: str
    overrides: tuple[str, ...]
    tight_optimizer: Callable[[Iterable[torch.Tensor]], torch.optim.Optimizer]
    rounds: int  # the default of --rounds
    warmup_images: int | None = None  # the untimed first pair: None, a whole epoch
    dataloader: bool = False
    running: bool = False  # running train metrics (trainer.eval_train=false)


CASES = {
    "mlp": Case("256-unit MLP, SGD, in-memory tensors", MLP, _sgd, rounds=5),
    "cnn": Case("SmallCNN (32, 64), Adam, in-memory tensors", ("model=cnn", "optimizer=adam", "optimizer.lr=0.001"),
                _adam, rounds=3, warmup_images=20 * BATCH),  # a CPU epoch takes minutes: warm up on 20 batches
    "loader": Case(f"256-unit MLP, SGD, map-style Dataset, DataLoader with {WORKERS} workers, shuffled",
                   (*MLP, f"data.num_workers={WORKERS}", "data.shuffle=true"), _sgd, rounds=5, dataloader=True),
    "running": Case("256-unit MLP, SGD, in-memory tensors, running train metrics (trainer.eval_train=false)",
                    MLP, _sgd, rounds=5, running=True),
}


class NormalizedImages(Dataset):
    """A user's typical map-style dataset: one (image, label) per index, with a cheap per-item transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return (self.images[i] - FASHION_MEAN) / FASHION_STD, int(self.labels[i])


@dataclass
class Result:
    """Images per second of each timed round, and how far apart the two sides' final weights ended."""

    case: str
    images: int
    threads: int
    device: str
    ours: list[float] = field(default_factory=list)
    tight: list[float] = field(default_factory=list)
    weight_diff: float = 0.0


def tight_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """What a careful person writes by hand: forward, loss, backward, step."""
    model.train()
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def tight_running_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                        batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, float]:
    """The tight loop that also reports the epoch's mean loss and accuracy, summed on the device (no sync)."""
    model.train()
    loss_sum, correct, n = 0.0, 0, 0  # become tensors on the model's device at the first batch
    for x, y in batches:
        out = model(x)
        loss = F.cross_entropy(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum = loss_sum + loss.detach() * len(y)
        correct = correct + (out.detach().argmax(dim=1) == y).sum()
        n += len(y)
    return float(loss_sum) / n, float(correct) / n


def head(data: Any, n: int) -> Any:
    """The first n examples of in-memory tensors or of a Dataset."""
    if isinstance(data, Dataset):
        return torch.utils.data.Subset(data, range(min(n, len(data))))
    return data[0][:n], data[1][:n]


def slices(x: torch.Tensor, y: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for start in range(0, len(y), BATCH):
        yield x[start : start + BATCH], y[start : start + BATCH]


def dataloader_batches(dataset: Dataset, seed: int,
                       device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The hand-written DataLoader loop, built as sweep's Loader builds it, so that both see the same batches."""
    cuda = device.type == "cuda"
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=WORKERS,
                        generator=epoch_generator(seed, EPOCH), pin_memory=cuda)
    for x, y in loader:
        yield x.to(device, non_blocking=cuda), y.to(device, non_blocking=cuda)


def _timed(epoch: Callable[[], Any], device: torch.device) -> float:
    """Seconds of one epoch; on CUDA, up to the end of its last kernel."""
    start = time.perf_counter()
    epoch()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def _check_same_settings(ours: torch.optim.Optimizer, tight: torch.optim.Optimizer, case: str) -> None:
    """The comparison is void if sweep's optimizer and the hand-built one differ in any setting."""
    a, b = ({k: v for k, v in o.param_groups[0].items() if k != "params"} for o in (ours, tight))
    if a != b:
        diff = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        sys.exit(f"error: case {case}: sweep's optimizer and the tight loop's differ in {', '.join(diff)}")


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    pairs = zip(a.state_dict().values(), b.state_dict().values())
    return max(float((p.double() - q.double()).abs().max()) for p, q in pairs if p.is_floating_point())


def measure(name: str, images: torch.Tensor, labels: torch.Tensor, compute: Compute, rounds: int,
            warmup: bool = True) -> Result:
    """Alternate sweep's epoch and the tight loop's, `rounds` timed pairs after an untimed warm-up pair."""
    case = CASES[name]
    cfg = compose(["data=fashion_mnist", f"data.batch_size={BATCH}", *case.overrides])
    task = get_task("multiclass")
    device = compute.device
    if case.dataloader:
        data: Any = NormalizedImages(images, labels)
    else:
        data = (images.to(device), labels.to(device))
    warm_data = data if case.warmup_images is None else head(data, case.warmup_images)

    def loader(split: Any) -> Loader:
        return Loader(split, task, BATCH, bool(cfg.data.shuffle), cfg.data.num_workers, cfg.seed, compute)

    def batches(split: Any) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return dataloader_batches(split, cfg.seed, device) if case.dataloader else slices(*split)

    def sweep_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, split_loader: Loader) -> None:
        """As sweep.train trains one epoch (with trainer.eval_train=false: and reads the running metrics)."""
        running = Accumulator(task) if case.running else None
        train_epoch(model, optimizer, split_loader, compute, EPOCH, running=running)
        if running is not None:
            running.compute()

    tight_loop = tight_running_epoch if case.running else tight_epoch
    torch.manual_seed(0)
    initial = build_model(cfg, tuple(images.shape[1:]), 10).to(device)
    result = Result(name, len(labels), torch.get_num_threads(), str(device))
    for i in range(-1 if warmup else 0, rounds):
        split = warm_data if i < 0 else data
        ours_loader = loader(split)  # built outside the timing: on CUDA it copies the tensors once
        ours, tight = copy.deepcopy(initial), copy.deepcopy(initial)
        ours_opt, tight_opt = build_optimizer(cfg, ours.parameters()), case.tight_optimizer(tight.parameters())
        _check_same_settings(ours_opt, tight_opt, name)
        ours_rate = ours_loader.n / _timed(lambda: sweep_epoch(ours, ours_opt, ours_loader), device)
        tight_rate = ours_loader.n / _timed(lambda: tight_loop(tight, tight_opt, batches(split)), device)
        if i < 0:
            print(f"{name} warm-up ({ours_loader.n:,} images): sweep {ours_rate:,.0f} img/s, "
                  f"tight loop {tight_rate:,.0f} img/s", flush=True)
            continue
        result.ours.append(ours_rate)
        result.tight.append(tight_rate)
        result.weight_diff = max(result.weight_diff, _max_diff(ours, tight))
        print(f"{name} round {i}: sweep {ours_rate:,.0f} img/s, tight loop {tight_rate:,.0f} img/s "
              f"(ratio {ours_rate / tight_rate:.3f})", flush=True)
    return result


def summary(r: Result) -> list[str]:
    """The lines to quote: medians, the pair-by-pair ratio, and whether both sides did the same steps."""
    same = "identical" if r.weight_diff == 0 else f"differ by at most {r.weight_diff:.2e}"
    return [
        f"{r.case}: {CASES[r.case].title}; one epoch of {r.images:,} images, batch {BATCH}, {r.device}, "
        f"{r.threads} threads, {len(r.ours)} timed pair(s):",
        f"  sweep.loop.train_epoch (Loader)     median {statistics.median(r.ours):10,.0f} img/s",
        f"  tight hand-written loop             median {statistics.median(r.tight):10,.0f} img/s",
        ratio_line("ratio sweep / tight", r.ours, r.tight),
        f"  best round of each side (least disturbed on a busy machine): ratio {max(r.ours) / max(r.tight):.3f}",
        f"  final weights of the two sides      {same}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=[*CASES, "all"], default="all")
    parser.add_argument("--rounds", type=int, help="timed pairs per case (default: 5; cnn 3)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (as trainer.device)")
    parser.add_argument("--threads", type=int, help="torch's CPU threads (as trainer.threads; default: torch's)")
    parser.add_argument("--root", type=Path, default=DEBIAN_FASHION_MNIST, help="folder with Fashion-MNIST IDX files")
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_IMAGES:,} fake images, one round, no warm-up")
    args = parser.parse_args()
    names = list(CASES) if args.case == "all" else [args.case]
    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        if args.smoke:
            from sweep.fake_data import write_dataset

            images, labels = fashion_images(write_dataset(Path(tmp), SMOKE_IMAGES, 10), SMOKE_IMAGES)
        elif not has_idx_files(args.root):
            sys.exit(f"error: no Fashion-MNIST in {args.root}: apt-get install dataset-fashion-mnist, or --root DIR")
        else:
            images, labels = fashion_images(args.root, FASHION_TRAIN_IMAGES)
    compute = setup(args.device, "32", deterministic=True, threads=args.threads)
    results = [measure(name, images, labels, compute, 1 if args.smoke else args.rounds or CASES[name].rounds,
                       warmup=not args.smoke) for name in names]
    print()
    for r in results:
        print("\n".join(summary(r)))


if __name__ == "__main__":
    main()
