"""sweep: Hydra-configured hyper-parameter sweeps for small PyTorch models."""
