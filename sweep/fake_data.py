"""Small, learnable MNIST-format data sets in real IDX files, for tests, benchmarks' smoke mode and demos."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    """The IDX format: zero, zero, type 0x08 (ubyte), ndim; big-endian int32 dims; then the data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def make_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fake digits: label k lights a 6x6 block at a k-dependent place, over mild noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        r, c = 2 + (k // 5) * 12, 1 + (k % 5) * 5
        images[i, r : r + 6, c : c + 6] = 230
    return images, labels


def write_dataset(root: Path, n_train: int, n_test: int, compress: bool = True) -> Path:
    """A flat folder with the four IDX files of a training and a test split."""
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = make_digits(n, seed)
        write_idx(root / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels, compress)
    return root
