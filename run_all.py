#!/usr/bin/env python
"""Regenerate everything: plan the profile's grid, run what is not done, build the report.

    python run_all.py                      # quick profile, offline, CPU
    python run_all.py --dry-run            # what would run, and why
    python run_all.py --verify             # check every finished run's files
    python run_all.py --profile paper --data-dir ~/data
    python run_all.py --predictions my-models/   # CIE of your own models' predictions

Exit codes: 0 all runs done, 1 some run failed (or --verify found damage), 2 bad input
or an unusable run store (nothing was run). All the logic is in cielib.pipeline.
"""

from __future__ import annotations

import argparse
import os
import sys


def _number(kind: type):
    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    return parse


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", help="profile name in configs/ or a .toml path (default: quick)")
    p.add_argument("--predictions", metavar="DIR",
                   help="instead of a profile: the CIE analysis of predictions brought from any framework "
                        "(a directory of <setting>/<seed>.npz files; see the README, 'Your own models'); "
                        "report in report/predictions-<name>/")
    p.add_argument("--tasks", nargs="+", help="only these tasks of the profile")
    p.add_argument("--sparsities", nargs="+", type=_number(float), help="override the profile's sparsities")
    p.add_argument("--techniques", nargs="+", help="override the profile's quantization techniques")
    p.add_argument("--seeds", nargs="+", type=_number(int), help="override the profile's seeds")
    p.add_argument("--epochs", type=_number(int), help="override every task's epochs (smoke runs)")
    p.add_argument("--data-dir", default=os.environ.get("CIELIB_DATA_DIR"),
                   help="where CIFAR / full Fashion-MNIST live (default: $CIELIB_DATA_DIR)")
    p.add_argument("--download", action="store_true", help="allow downloading missing CIFAR archives")
    p.add_argument("--jobs", type=_number(int),
                   help="runs at once (default: cores / the profile's threads per run, at most 4)")
    from cielib.execute import executors

    p.add_argument("--executor", choices=executors.names(), default="local",
                   help="where runs execute: " + "; ".join(
                       f"{name} ({executors.help(name)})" for name in executors.names()))
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="with --executor dask: a running Dask scheduler, tcp://HOST:PORT or tls://HOST:PORT")
    p.add_argument("--cluster", metavar="FILE",
                   help="with --executor dask: a cluster file with a [cluster] table (SLURM, or a "
                        "scheduler with TLS); see configs/clusters/slurm.example.toml")
    p.add_argument("--fail-fast", action="store_true", help="stop starting runs after the first failure")
    p.add_argument("--dry-run", action="store_true", help="show the plan and why runs will run; run nothing")
    p.add_argument("--only", nargs="+", metavar="STAGE", help="run only these stages (their upstream runs must be done)")
    p.add_argument("--force", action="store_true",
                   help="rerun the selected runs even if done (the old run stays until the new one succeeds)")
    p.add_argument("--verify", action="store_true", help="check every finished run's files; exit 1 if any is damaged")
    p.add_argument("--clean", action="store_true", help="remove runs the current plan does not use (asks; see --yes)")
    p.add_argument("--yes", action="store_true", help="answer yes to --clean's question")
    p.add_argument("--no-report", action="store_true", help="skip building the report")
    p.add_argument("--quiet", action="store_true", help="only print failures and the summary")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from cielib import pipeline

    return pipeline.main(pipeline.Options(**vars(parse_args(argv))))


if __name__ == "__main__":
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        # Output piped into `head` and the like: end quietly, as command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 141
    sys.exit(code)
