"""sweep's YAML config groups, installed as the package sweep.conf so that Hydra reads them through
pkg://sweep.conf from any folder (pyproject.toml maps this folder there)."""
