"""sweep.device where CUDA is absent: device resolution, precision, threads, and RNG states."""

import io
import random

import numpy as np
import pytest
import torch

from conftest import tiny
from sweep import device
from sweep.config import compose
from sweep.errors import ConfigError
from sweep.train import train

no_gpu = pytest.mark.skipif(torch.cuda.is_available() or device._has_mps(),
                            reason="checks a machine without a GPU; this one has one")


@no_gpu
def test_auto_is_the_cpu_and_a_missing_gpu_is_one_line():
    assert device.resolve_device("auto") == torch.device("cpu")
    assert device.resolve_device("cpu") == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        with pytest.raises(ConfigError, match=f"trainer.device={name} but this machine has no CUDA device.*"
                                              "trainer.device=cpu"):
            device.resolve_device(name)
    with pytest.raises(ConfigError, match="trainer.device=mps but MPS is not available"):
        device.resolve_device("mps")


@no_gpu
def test_precision_on_the_cpu():
    with pytest.raises(ConfigError, match="trainer.precision=16 needs a CUDA device, not cpu: use .*bf16"):
        device.setup("auto", "16", deterministic=True, threads=None)
    compute = device.setup("cpu", "bf16", deterministic=True, threads=None)
    with compute.autocast():
        assert (torch.ones(2, 3) @ torch.ones(3, 2)).dtype == torch.bfloat16
    with device.setup("cpu", "32", deterministic=True, threads=None).autocast():
        assert (torch.ones(2, 3) @ torch.ones(3, 2)).dtype == torch.float32


def _draws() -> tuple:
    """Numbers from every RNG a run (or a user's transform) draws from, gaussian caches included."""
    return (torch.rand(4).tolist(), random.random(), random.gauss(0, 1), np.random.rand(2).tolist(),
            np.random.standard_normal(3).tolist())


def test_rng_state_round_trip_through_a_checkpoint_file():
    # Leave a cached gaussian in Python's and NumPy's generators: the next draw uses it.
    random.gauss(0, 1)
    np.random.standard_normal()
    cpu = torch.device("cpu")
    buffer = io.BytesIO()
    torch.save(device.rng_state(cpu), buffer)
    expected = _draws()
    device.seed_everything(123)
    assert _draws() != expected
    buffer.seek(0)
    device.set_rng_state(torch.load(buffer, weights_only=True), cpu)  # plain data: loads with weights_only
    assert _draws() == expected


def test_seed_everything_seeds_torch_python_and_numpy():
    device.seed_everything(7)
    first = _draws()
    device.seed_everything(7)
    assert _draws() == first


def test_threads_are_set_and_restored(idx_root, tmp_path):
    default = device.DEFAULT_THREADS
    try:
        device.setup("cpu", "32", deterministic=True, threads=1)
        assert torch.get_num_threads() == 1
        device.setup("cpu", "32", deterministic=True, threads=None)  # the next job of a multirun: torch's default
        assert torch.get_num_threads() == default
        train(compose(tiny(idx_root, "trainer.threads=1", "trainer.epochs=1")), tmp_path)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(default)


def test_bf16_trains_on_the_cpu(idx_root, tmp_path):
    full = train(compose(tiny(idx_root, "optimizer.lr=0.05", "trainer.epochs=6")), tmp_path / "32")
    half = train(compose(tiny(idx_root, "optimizer.lr=0.05", "trainer.epochs=6", "trainer.precision=bf16")),
                 tmp_path / "bf16")
    assert half.status == "completed" and half.best_val_acc > 0.85
    history = [(tmp_path / run / "history.csv").read_text() for run in ("32", "bf16")]
    assert history[0] != history[1]  # autocast took effect: bf16 matmuls round differently
    assert abs(half.best_val_acc - full.best_val_acc) < 0.1
