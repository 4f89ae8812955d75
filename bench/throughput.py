"""Images per second of one training epoch: sweep's training loop against a tight hand-written loop.

    python bench/throughput.py            # full Fashion-MNIST (Debian's dataset-fashion-mnist), 60,000 images
    python bench/throughput.py --smoke    # 2,000 fake images, one round: checks the bench still runs

Both sides train the same model (a 256-unit MLP, 10 classes), batch 128, SGD, over the same in-memory
tensors. Rounds alternate (ours, tight, ours, tight, ...) and each round starts from the same weights;
medians and the pair-by-pair ratio are printed.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from sweep.config import compose
from sweep.data import DEBIAN_FASHION_MNIST, load_raw, to_split
from sweep.model import Pigeon
from sweep.train import build_optimizer, train_epoch

BATCH = 128


def tight_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    """What a careful person writes by hand: slice, forward, loss, backward, step."""
    model.train()
    for start in range(0, len(y), BATCH):
        loss = F.cross_entropy(model(x[start : start + BATCH]), y[start : start + BATCH])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=DEBIAN_FASHION_MNIST, help="folder with Fashion-MNIST IDX files")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root
        if args.smoke:
            from sweep.fake_data import write_dataset

            root = write_dataset(Path(tmp), 2000, 10)
        elif not (root / "train-images-idx3-ubyte.gz").is_file():
            raise SystemExit(f"error: no Fashion-MNIST in {root}: apt-get install dataset-fashion-mnist, or --root DIR")
        cfg = compose(["data=fashion_mnist", f"data.root={root}", "data.download=false", "model.num_hidden=256",
                       f"data.batch_size={BATCH}", "optimizer.lr=0.01"])
        images, labels = load_raw("fashion_mnist", str(root), True, False)
        split = to_split(images, labels, cfg.data)
    torch.manual_seed(0)
    initial = Pigeon(num_hidden=256, num_outputs=10)
    rounds = 1 if args.smoke else args.rounds + 1  # the first pair warms up
    ours, tight = [], []
    for i in range(rounds):
        for fn, out in ((lambda m, o: train_epoch(m, o, split, BATCH, "multiclass"), ours),
                        (lambda m, o: tight_epoch(m, o, split.images, split.targets), tight)):
            model = copy.deepcopy(initial)
            optimizer = build_optimizer(cfg.optimizer, model.parameters())
            start = time.perf_counter()
            fn(model, optimizer)
            out.append(len(split) / (time.perf_counter() - start))
        print(f"round {i}{' (warm-up)' if i == 0 and not args.smoke else ''}: "
              f"sweep {ours[-1]:,.0f} img/s, tight loop {tight[-1]:,.0f} img/s", flush=True)
    if not args.smoke:
        ours, tight = ours[1:], tight[1:]
    ratios = [a / b for a, b in zip(ours, tight)]
    print(f"\none training epoch, {len(split):,} images, 256-unit MLP, batch {BATCH}, {torch.get_num_threads()} threads:")
    print(f"  sweep.train.train_epoch   median {statistics.median(ours):10,.0f} img/s")
    print(f"  tight hand-written loop   median {statistics.median(tight):10,.0f} img/s")
    print(f"  ratio sweep / tight       median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})")


if __name__ == "__main__":
    main()
