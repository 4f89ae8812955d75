"""The Fashion-MNIST budget search (conf/search/fashion_budget.yaml) as a plain Optuna script: what a
competent user writes without sweep, and the other side of bench/peer_optuna.py.

    python bench/optuna_plain.py                                  # 30 trials, 10 epochs, 50,000 / 10,000 images
    python bench/optuna_plain.py --n-trials 3 --epochs 2 --train-size 400 --val-size 200 --test-size 200

The same data as sweep (its own IDX reader and split: the first 50,000 training images to train, the
next 10,000 to validate, the official test split), the same MLP (sweep.models.Pigeon), Adam with a cosine
schedule stepped every iteration down to 0 over the run, per-epoch shuffling, the same space, TPE(seed=1,
n_startup_trials=8) and MedianPruner(n_startup_trials=4, n_warmup_steps=2). The study is in memory and
`study.optimize(n_jobs=2)` runs two trials at a time in threads. Each trial keeps its best epoch's weights
in memory (no checkpoints) and evaluates the test split once on them, as sweep does per trial; selection
reads validation accuracy only.

Torch threads: 1 (--threads). Two trials run at once in one process, so with torch's default of one
thread per core each trial's ops would compete with the other's for both cores; one thread per trial is
what a user tuning for 2 cores would set, and it matches sweep's side (trainer.threads=1 per trial).
--threads 2 shows what torch's default would cost or gain.

Prints one JSON line at the end: wall seconds, epochs trained, trials complete/pruned, the best trial's
(by validation) val and test accuracy and params.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

import optuna
import torch
import torch.nn.functional as F
from torch import nn

from sweep.data.idx import FashionMNIST
from sweep.errors import UserError
from sweep.models import Pigeon

EVAL_BATCH = 1024
SEED = 1

Split = tuple[torch.Tensor, torch.Tensor]


@torch.no_grad()
def accuracy(model: nn.Module, split: Split) -> float:
    """The share of a split classified right, in eval mode (no dropout)."""
    model.eval()
    x, y = split
    correct = sum(int((model(x[i : i + EVAL_BATCH]).argmax(1) == y[i : i + EVAL_BATCH]).sum())
                  for i in range(0, len(y), EVAL_BATCH))
    return correct / len(y)


def make_objective(train: Split, val: Split, test: Split, epochs: int) -> Callable[[optuna.Trial], float]:
    """The objective: one trial's training, pruned on validation accuracy after every epoch."""
    x, y = train

    def objective(trial: optuna.Trial) -> float:
        model = Pigeon(num_hidden=trial.suggest_categorical("model.num_hidden", [256, 512, 1024]),
                       num_layers=trial.suggest_int("model.num_layers", 1, 2),
                       dropout=trial.suggest_float("model.dropout", 0.0, 0.5), num_outputs=10)
        optimizer = torch.optim.Adam(model.parameters(), lr=trial.suggest_float("optimizer.lr", 3e-4, 3e-3, log=True))
        batch_size = trial.suggest_categorical("data.batch_size", [64, 128, 256])
        iterations = -(-len(y) // batch_size)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * iterations)
        shuffle = torch.Generator().manual_seed(SEED * 1000 + trial.number)  # one per thread: not torch's global
        best_acc, best_state = -1.0, None
        pruned = False
        for epoch in range(1, epochs + 1):
            model.train()
            for idx in torch.randperm(len(y), generator=shuffle).split(batch_size):
                loss = F.cross_entropy(model(x[idx]), y[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
            acc = accuracy(model, val)
            if acc > best_acc:
                best_acc, best_state = acc, {k: v.clone() for k, v in model.state_dict().items()}
            trial.report(acc, epoch)
            if trial.should_prune():
                pruned = True
                break
        model.load_state_dict(best_state)
        trial.set_user_attr("epochs", epoch)
        trial.set_user_attr("test_acc", accuracy(model, test))
        if pruned:
            raise optuna.TrialPruned()
        return best_acc

    return objective


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-trials", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-size", type=int, default=50_000)
    parser.add_argument("--val-size", type=int, default=10_000)
    parser.add_argument("--test-size", type=int, help="default: the whole official test split")
    parser.add_argument("--data", help="a folder of Fashion-MNIST IDX files; default: where sweep looks "
                        "($SWEEP_DATA_DIR/fashion_mnist, /usr/share/datasets/fashion-mnist, ./data/fashion_mnist)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the process (see above)")
    args = parser.parse_args()
    if min(args.n_trials, args.epochs, args.threads) < 1:
        parser.error("--n-trials, --epochs and --threads must be at least 1")
    start = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)  # initial weights and dropout: torch's global generator, shared by the two threads
    try:
        data = FashionMNIST(args.data, download=False, train_size=args.train_size, val_size=args.val_size,
                            test_size=args.test_size)
        train, val, test = data.train_dataset(), data.val_dataset(), data.test_dataset()
    except UserError as e:  # no data there, or too few images for the split: one line, as sweep says it
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=SEED, n_startup_trials=8),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=2))
    study.optimize(make_objective(train, val, test, args.epochs), n_trials=args.n_trials, n_jobs=2)
    trials = study.trials
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = study.best_trial if complete else None
    print(json.dumps({
        "wall_s": round(time.perf_counter() - start, 3),
        "epochs": sum(t.user_attrs.get("epochs", 0) for t in trials),
        "complete": len(complete),
        "pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in trials),
        "best_val_acc": best.value if best else None,
        "test_acc": best.user_attrs["test_acc"] if best else None,
        "params": best.params if best else None,
        "threads": args.threads,
        "trials": [{"params": t.params, "epochs": t.user_attrs.get("epochs", 0)} for t in trials],
    }))


if __name__ == "__main__":
    main()
