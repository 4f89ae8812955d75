"""Compare the jobs of one or more sweep directories: a terminal report, report files and plots.

    sweep-report [SWEEP_DIR ...] [--out DIR] [--top N]      (or python -m sweep.report ...)

With no SWEEP_DIR, the newest sweep under ./outputs/ is read. Rows are ranked on the monitored validation
metric (val_acc, val_loss, val_rmse, ...) in its direction: test numbers are shown, never used to rank or
to pick the best job.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

import pandas as pd

from sweep.atomic import atomic_write_with
from sweep.errors import UserError
from sweep.report.runs import as_dirs, load_histories, load_runs, load_trials, newest_sweep, param_columns, \
    sweep_direction
from sweep.report.summary import markdown_table, ranking_title, report_sections, summary_table

if TYPE_CHECKING:
    import optuna


def _opened(sweep_dir: Path) -> Union[optuna.Study, UserError]:
    """The Optuna study the sweep folder recorded, or the UserError that says why it cannot be read."""
    from sweep.report.study import open_study

    try:
        return open_study(sweep_dir)
    except UserError as e:
        return e


def _numbered(out_dir: Path, stem: str, d: Path, several: bool) -> Path:
    return out_dir / (f"{stem}_{d.name}.png" if several else f"{stem}.png")


def write_plots(runs: pd.DataFrame, sweep_dirs: list[Path], out_dir: Path) -> tuple[list[Path], list[str]]:
    """The report's PNGs in out_dir, and one line for each figure left out and why: every job's curve of the
    monitored metric, the monitored column per swept parameter (on the scales the sweeps recorded), and
    each Optuna sweep's history and parameter importances (read from its study)."""
    from sweep.report.plots import plot_curves, plot_importance, plot_optuna_history, plot_params
    from sweep.report.scales import param_scales
    from sweep.report.study import is_optuna_sweep, param_importances, searched_space

    written, skipped = [], []
    optuna_dirs = [d for d in sweep_dirs if is_optuna_sweep(d)]
    studies = {d: _opened(d) for d in optuna_dirs}  # each study, or why it cannot be read
    path = out_dir / "report_curves.png"
    atomic_write_with(path, lambda p: plot_curves(runs, load_histories(runs), p))
    written.append(path)
    if param_columns(runs):
        spaces = {d: searched_space(d, s if not isinstance(s, UserError) else None) for d, s in studies.items()}
        scales = param_scales(runs, sweep_dirs, spaces)
        path = out_dir / "report_params.png"
        atomic_write_with(path, lambda p: plot_params(runs, p, scales))
        written.append(path)
    monitor, direction = runs.attrs.get("monitor"), runs.attrs.get("direction", "maximize")
    histories = [(d, t) for d in sweep_dirs if (t := load_trials(d)) is not None]
    for d, trials in histories:
        path = _numbered(out_dir, "report_optuna_history", d, len(histories) > 1)
        atomic_write_with(path, lambda p: plot_optuna_history(trials, p, direction=sweep_direction(d, direction),
                                                              title=str(d), monitor=monitor))
        written.append(path)
    for d in optuna_dirs:
        path = _numbered(out_dir, "report_importance", d, len(optuna_dirs) > 1)
        try:
            importances, title = param_importances(studies[d])
        except UserError as e:
            skipped.append(f"{path.name} not drawn: {e}")
            continue
        atomic_write_with(path, lambda p: plot_importance(importances, p, title=title))
        written.append(path)
    return written, skipped


def write_report(runs: pd.DataFrame, sweep_dirs: list[Path], out_dir: Path,
                 sections: Optional[list[tuple[str, str]]] = None) -> tuple[list[Path], list[str]]:
    """report.csv (every column), report.md (the terminal report, with the plots) and the PNGs, in out_dir;
    returns the files written and a line for each figure left out.

    `sections` are report_sections(runs), when the caller has them already.
    """
    sections = report_sections(runs) if sections is None else sections
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        plots, skipped = write_plots(runs, sweep_dirs, out_dir)
        csv_path, md_path = out_dir / "report.csv", out_dir / "report.md"
        atomic_write_with(csv_path, lambda p: runs.to_csv(p, index=False))
        md = [f"# Sweep report\n\nSweeps: {', '.join(f'`{d}`' for d in sweep_dirs)}\n",
              f"## {ranking_title(runs)}\n\n{markdown_table(runs.drop(columns=['path', 'error']))}\n"]
        md += [f"## {title}\n\n```\n{text}\n```\n" for title, text in sections]
        md.append("## Plots\n\n" + "\n".join([*(f"![{p.stem}]({p.name})" for p in plots), *skipped]) + "\n")
        atomic_write_with(md_path, lambda p: p.write_text("\n".join(md)))
    except OSError as e:
        raise UserError(f"cannot write the report into {out_dir} ({e.strerror or e}): pass --out DIR") from None
    return [csv_path, md_path, *plots], skipped


def main(argv: Optional[list[str]] = None) -> int:
    """The CLI: print the report, write its files; a user error is one line on stderr and exit status 2."""
    prog = "sweep-report" if Path(sys.argv[0]).name == "sweep-report" else "python -m sweep.report"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dirs", nargs="*", type=Path, metavar="SWEEP_DIR",
                        help="sweep directories (default: the newest sweep under ./outputs/)")
    parser.add_argument("--out", type=Path, help="folder for report.csv, report.md and the PNGs "
                        "(default: the first SWEEP_DIR)")
    parser.add_argument("--top", type=int, default=30, help="rows shown in the terminal (default 30; 0: all); "
                        "report.csv and report.md hold every job")
    args = parser.parse_args(argv)
    try:
        dirs = as_dirs(args.sweep_dirs) if args.sweep_dirs else [newest_sweep()]
        runs = load_runs(dirs)
        sections = report_sections(runs)
        files, skipped = write_report(runs, dirs, args.out or dirs[0], sections)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        print(f"{ranking_title(runs)}\n{summary_table(runs, top=args.top or None)}\n")
        for title, text in sections:
            print(f"{title}\n{text}\n")
        for line in skipped:
            print(line)
        print("wrote:\n" + "\n".join(f"  {p}" for p in files), flush=True)
    except BrokenPipeError:  # `python -m sweep.report | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
