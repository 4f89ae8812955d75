"""Hydra plugin `hydra/sweeper=sweep_optuna`: upstream's Optuna sweeper, resumable and asynchronous."""
