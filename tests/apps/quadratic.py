"""A Hydra app that is not sweep.train (as in upstream's sphere example): f(x, y) = (x - 2)^2 + (y + 1)^2.

With `steps` > 0 it reports a value per step through sweep.report_value (so that pruning and stop requests
can be tested) and sleeps `sleep` seconds a step. Each call appends its config to `calls.jsonl` in its job
folder, so tests see what every job was given.
"""

import json
import os
import time
from pathlib import Path

import hydra
import optuna
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from sweep import report_value


@hydra.main(version_base="1.3", config_path="conf", config_name="quadratic")
def main(cfg: DictConfig) -> float:
    job_dir = Path(HydraConfig.get().runtime.output_dir)
    record = {**OmegaConf.to_container(cfg), "pid": os.getpid(), "start": time.time(),
              "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    value = (cfg.x - 2) ** 2 + (cfg.y + 1) ** 2
    for step in range(cfg.steps):
        time.sleep(cfg.sleep)
        if report_value(value + cfg.steps - step, step):
            raise optuna.TrialPruned()
    with open(job_dir / "calls.jsonl", "a") as f:
        f.write(json.dumps({**record, "end": time.time()}) + "\n")
    if cfg.fail_above is not None and value > cfg.fail_above:
        raise ValueError(f"value {value} is above fail_above")
    return value


if __name__ == "__main__":
    main()
