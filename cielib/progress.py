"""Running a plan with progress: a bar on a terminal, per-run lines with an ETA in logs.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cielib import execute, runs, store


def progress_bar(total: int, *, quiet: bool):
    """A bar over the runs to do, its ETA from the durations of the finished runs."""
    if quiet or total == 0 or not sys.stderr.isatty():
        return None  # logs get the per-run lines with their own ETA instead
    from tqdm import tqdm

    return tqdm(total=total, unit="run", dynamic_ncols=True, file=sys.stderr,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} runs [{elapsed}<{remaining}]")


def run_with_progress(specs: list[runs.RunSpec], *, runs_dir: Path, executor, todo: int, jobs: int,
                      fail_fast: bool, quiet: bool) -> list[execute.RunResult]:
    """:func:`cielib.execute.run_plan`, reporting each result as it arrives."""
    bar = progress_bar(todo, quiet=quiet)
    write = bar.write if bar else print
    finished: list[float] = []

    def eta() -> str:
        if not finished or len(finished) >= todo:
            return ""
        left = (todo - len(finished)) * (sum(finished) / len(finished)) / jobs
        return f" [{len(finished)}/{todo}, ETA {left // 60:.0f}m{left % 60:02.0f}s]"

    def on_result(res: execute.RunResult) -> None:
        if res.status == "failed":
            write(f"[failed] {res.label} ({res.seconds:.1f}s): {res.error}\n"
                  f"         executed notebook with the traceback: {res.path}")
        elif res.status == "skipped" and not quiet:
            write(f"[skipped] {res.label}: {res.error}")
        if res.status in ("ran", "failed"):
            finished.append(res.seconds)
        if res.status in ("ran", "cached") and not quiet:
            write(f"[{res.status}] {res.label} ({res.seconds:.1f}s) {res.run_id}"
                  + (eta() if res.status == "ran" else ""))
        if bar and res.status != "cached":
            bar.update(1)
        if res.status == "ran":
            store.write_index(runs_dir)

    try:
        return execute.run_plan(specs, runs_dir=runs_dir, executor=executor, fail_fast=fail_fast,
                                on_result=on_result)
    finally:
        if bar:
            bar.close()
