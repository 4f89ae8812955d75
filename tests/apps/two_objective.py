"""A two-objective Hydra app (as upstream's multi-objective example): minimise x^2 + y and (x - 2)^2 + y^2."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="two_objective")
def main(cfg: DictConfig) -> tuple[float, float]:
    return cfg.x ** 2 + cfg.y, (cfg.x - 2) ** 2 + cfg.y ** 2


if __name__ == "__main__":
    main()
