"""Where and how a run computes: the device, mixed precision, determinism, CPU threads, RNG states.

Everything here is set up once per run, before the model is built, and the RNG states go into every
checkpoint so that a resumed run continues bit for bit.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
from dataclasses import dataclass
from typing import Any, ContextManager, Optional

import torch

from sweep.errors import ConfigError

log = logging.getLogger(__name__)

AMP_DTYPES = {"bf16": torch.bfloat16, "16": torch.float16}
# torch's own thread count, restored for a run with trainer.threads=null after one that set it (multiruns
# share a process).
DEFAULT_THREADS = torch.get_num_threads()


def _has_mps() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def resolve_device(name: str) -> torch.device:
    """trainer.device as a torch.device: auto is CUDA, then MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _has_mps() else torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"trainer.device={name} but this machine has no CUDA device torch can use: "
                              "use trainer.device=cpu (or auto)")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ConfigError(f"trainer.device={name} but this machine has {torch.cuda.device_count()} CUDA "
                              f"device(s): use cuda:0 to cuda:{torch.cuda.device_count() - 1}")
        return torch.device("cuda", index)
    if name == "mps" and not _has_mps():
        raise ConfigError("trainer.device=mps but MPS is not available here: use trainer.device=cpu (or auto)")
    return torch.device(name)


@dataclass
class Compute:
    """A run's device and precision: autocast for the forward pass, a GradScaler for fp16 on CUDA."""

    device: torch.device
    precision: str
    scaler: Optional[Any] = None

    def autocast(self) -> ContextManager:
        if self.precision == "32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=AMP_DTYPES[self.precision])


def setup(device: str, precision: str, deterministic: bool, threads: Optional[int]) -> Compute:
    """Resolve the device and apply the run's settings. CUBLAS_WORKSPACE_CONFIG is set before CUDA starts."""
    torch.set_num_threads(DEFAULT_THREADS if threads is None else threads)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    dev = resolve_device(device)
    if precision == "16" and dev.type != "cuda":
        raise ConfigError(f"trainer.precision=16 needs a CUDA device, not {dev.type}: use trainer.precision=bf16 "
                          "or 32 on this device")
    if precision == "bf16" and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"trainer.precision=bf16 is not supported by {torch.cuda.get_device_name(dev)}: "
                          "use trainer.precision=16 or 32")
    if dev.type == "cuda":  # set both ways: the jobs of a multirun share a process
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cudnn.deterministic = deterministic
        # Ops of a user's model without a deterministic kernel warn instead of failing.
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
    scaler = torch.amp.GradScaler("cuda") if precision == "16" else None
    return Compute(dev, precision, scaler)


def seed_everything(seed: int) -> None:
    """Seed every RNG a run draws from: torch's (CPU and every GPU), Python's and NumPy's (a user's
    transforms may use those)."""
    import numpy as np

    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def rng_state(device: torch.device) -> dict[str, Any]:
    """Every RNG a run draws from, as tensors and numbers (a checkpoint loads with weights_only=True)."""
    import numpy as np

    _, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    version, py_state, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": torch.tensor(py_state, dtype=torch.int64),  # 624 words and the position
        "python_version": version,
        "python_gauss": gauss_next,  # random.gauss() draws its numbers in pairs: the unused one
        "numpy": torch.from_numpy(keys.astype("int64")),
        "numpy_pos": int(pos),
        "numpy_has_gauss": int(has_gauss),  # likewise for numpy.random.standard_normal()
        "numpy_gauss": float(cached_gaussian),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    if device.type == "mps":
        state["mps"] = torch.mps.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore what rng_state saved. A GPU's state is skipped on a machine without that GPU (the run goes
    on, though no longer bit for bit the same as an uninterrupted run there)."""
    import numpy as np

    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(int(v) for v in state["python"]), state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype("uint32"), state["numpy_pos"],
                         state["numpy_has_gauss"], state["numpy_gauss"]))
    written_on = next((kind for kind in ("cuda", "mps") if kind in state), "cpu")
    if written_on == "cpu" and device.type != "cpu":
        log.warning("this checkpoint was written on the CPU: resuming on %s, so the rest of the run is not "
                    "bit-identical to an uninterrupted CPU run", device.type)
    for kind in ("cuda", "mps"):
        if kind not in state:
            continue
        if device.type != kind:
            log.warning("this checkpoint was written on %s: resuming on %s, so the rest of the run is not "
                        "bit-identical to an uninterrupted %s run", kind, device.type, kind)
        elif kind == "cuda":
            torch.cuda.set_rng_state_all(state["cuda"])
        else:
            torch.mps.set_rng_state(state["mps"])
