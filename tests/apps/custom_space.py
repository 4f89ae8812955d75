"""A Hydra app whose search space is extended in Python (as upstream's custom-search-space example): z is
searched within max_z_difference_from_x of the sampled x."""

import hydra
from omegaconf import DictConfig
from optuna.trial import Trial


def configure(cfg: DictConfig, trial: Trial) -> None:
    x = trial.params["x"]
    trial.suggest_float("z", x - cfg.max_z_difference_from_x, x + cfg.max_z_difference_from_x)


@hydra.main(version_base="1.3", config_path="conf", config_name="custom_space")
def main(cfg: DictConfig) -> float:
    assert abs(cfg.z - cfg.x) <= cfg.max_z_difference_from_x + 1e-9, (cfg.x, cfg.z)
    return cfg.x ** 2 + (cfg.z - 1) ** 2


if __name__ == "__main__":
    main()
