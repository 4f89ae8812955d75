"""The floor under the per-iteration seed comparison: a process that only imports torch and runs the
seed chapter's 2,880 per-iteration evaluations (accuracy on 1,024 training and 1,024 validation images
after each of the 3 x 480 iterations, with the chapter's get_accuracy), with no data loading, no
training and no output. No tool that evaluates as often can take less than this.

    python bench/seed_eval_floor.py                 # what bench/seed_protocol.py --floor times
    python bench/seed_eval_floor.py --iterations 4  # a quick check
"""

import argparse

import torch
import torch.nn as nn
import torch.nn.functional as F


class Pigeon(nn.Module):
    def __init__(self, num_hidden: int) -> None:
        super().__init__()
        self.layer1 = nn.Linear(28 * 28, num_hidden)
        self.layer2 = nn.Linear(num_hidden, 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.layer2(F.relu(self.layer1(img.view(-1, 28 * 28))))


def get_accuracy(model: nn.Module, input: torch.Tensor, actual: torch.Tensor) -> float:
    """The seed's, line for line."""
    prob = torch.sigmoid(model(input))
    pred = (prob > 0.5).type(torch.FloatTensor)
    correct = (pred == actual).type(torch.FloatTensor)
    return float(torch.mean(correct))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=480, help="iterations per model (the seed: 15 x 32)")
    args = parser.parse_args()
    torch.manual_seed(1)
    images = {split: torch.rand(1024, 1, 28, 28) for split in ("train", "val")}
    actual = {split: (torch.rand(1024, 1) < 0.3).type(torch.FloatTensor) for split in ("train", "val")}
    with torch.no_grad():  # the seed evaluates with autograd on; this is the cheaper floor
        for num_hidden in (60, 15, 30):
            model = Pigeon(num_hidden)
            for _ in range(args.iterations):
                for split in ("train", "val"):
                    get_accuracy(model, images[split], actual[split])


if __name__ == "__main__":
    main()
