"""Compare the jobs of sweep directories: `python -m sweep.report`, or from a notebook:

    from sweep.report import load_runs, load_histories, seed_summary, best_run, rerun_command
    from sweep.report.plots import plot_curves, plot_params, plot_importance

- sweep.report.runs: sweep directories into a DataFrame (load_runs, load_trials, load_histories, ...);
- sweep.report.summary: the best configuration (the best mean over seeds) and its best seed's job, its
  rerun command, seeds and noise, the text tables;
- sweep.report.plots: the figures (matplotlib, imported when a figure is drawn), with
  sweep.report.scales (each parameter's axis, from what the sweep recorded) and sweep.report.ticks
  (tick labels that never overlap);
- sweep.report.study: an Optuna sweep's study, its searched space and parameter importances;
- sweep.report.__main__: the CLI (main), write_report, write_plots.

Everything ranks on the monitored validation metric, in its direction; test numbers are never used to rank.
"""

from __future__ import annotations

from typing import Any

from sweep.report.runs import (load_histories, load_runs, load_trials, metric_columns, monitored_column, newest_sweep,
                               param_columns, ranked_metric)
from sweep.report.summary import (best_configuration, best_run, noise_verdict, pooled_seed_std, ranking_title,
                                  report_sections, rerun_command, rerun_path, seed_summary, summary_table)

# The CLI's module is imported on first use, not here: `python -m sweep.report` runs it as __main__,
# and importing it under its own name first would run it twice (and make runpy warn).
_CLI = ("main", "write_report", "write_plots")

__all__ = ["best_configuration", "best_run", "load_histories", "load_runs", "load_trials", "metric_columns",
           "monitored_column", "newest_sweep", "noise_verdict", "param_columns", "pooled_seed_std", "ranked_metric",
           "ranking_title", "report_sections", "rerun_command", "rerun_path", "seed_summary", "summary_table", *_CLI]


def __getattr__(name: str) -> Any:
    if name in _CLI:
        import importlib

        return getattr(importlib.import_module("sweep.report.__main__"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_CLI))
