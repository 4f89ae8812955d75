"""Hydra plugin `hydra/sweeper=sweep_optuna`: an Optuna sweeper on Hydra's and Optuna's public APIs, with
upstream hydra-optuna-sweeper's config schema and override syntax (config.py; implementation: sweep.search)."""
