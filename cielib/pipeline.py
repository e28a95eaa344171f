"""The whole command, behind ``run_all.py``: plan, check the store, execute, report.

Exit codes: 0 every run done, 1 some run failed (or ``--verify`` found damage), 2 bad
input or an unusable store (nothing was run or written).

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from cielib import config, paths, plan as planning, runs, store
from cielib.config import ConfigError


@dataclass(frozen=True)
class Options(planning.Overrides):
    """Everything run_all.py's command line says (see its ``--help``): the profile's
    overrides, and how to run the plan."""

    profile: str | None = None  # None: quick (or nothing, with predictions)
    predictions: str | None = None
    jobs: int | None = None
    executor: str = "local"
    scheduler: str | None = None
    cluster: str | None = None
    fail_fast: bool = False
    dry_run: bool = False
    only: Sequence[str] | None = None
    force: bool = False
    clean: bool = False
    yes: bool = False
    verify: bool = False
    no_report: bool = False
    quiet: bool = False


def default_jobs(threads: int) -> int:
    """One run per ``threads`` cores (at most 4: memory, and small models gain little more)."""
    return max(1, min(4, (os.cpu_count() or 1) // max(1, threads)))


def main(opts: Options) -> int:
    runs_dir = paths.runs_dir()
    if opts.verify:
        return verify(runs_dir)
    try:
        if opts.jobs is not None and opts.jobs < 1:
            raise ConfigError(f"--jobs must be >= 1, got {opts.jobs}")
        plan = make_plan(opts, runs_dir=runs_dir)
        selected = planning.select(plan, opts.only, runs_dir, force=opts.force)
        if not opts.dry_run:
            store.check_writable(runs_dir)
    except (ConfigError, ValueError, FileNotFoundError, store.StoreError) as exc:
        print(f"run_all.py: error: {exc}", file=sys.stderr)
        return 2
    jobs = opts.jobs or default_jobs(plan.profile.threads)
    say = (lambda *a: None) if opts.quiet else print
    for note in plan.notes:
        say(f"note: {note}")
    if opts.clean:
        return clean(plan, runs_dir, assume_yes=opts.yes, dry_run=opts.dry_run)
    if opts.dry_run:
        return dry_run(plan, selected, runs_dir)
    if opts.download:
        fetch_missing_data(plan, data_dir=opts.data_dir)
    try:
        executor = make_executor(opts, jobs=jobs, runs_dir=runs_dir, profile=plan.profile)
    except (ConfigError, ValueError, OSError, RuntimeError) as exc:
        print(f"run_all.py: error: {exc}", file=sys.stderr)
        return 2
    from cielib import progress

    todo = sum(store.will_run(s, runs_dir) for s in selected)
    say(f"{plan.title()}: {len(selected)} run(s), {todo} to run, {jobs} job(s) x "
        f"{plan.profile.threads} thread(s), {opts.executor} executor; store {runs_dir}")
    start = time.perf_counter()
    try:
        results = progress.run_with_progress(selected, runs_dir=runs_dir, executor=executor,
                                             todo=todo, jobs=executor.capacity, fail_fast=opts.fail_fast,
                                             quiet=opts.quiet)
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are kept and will be reused next time", file=sys.stderr)
        return 130
    finally:
        executor.shutdown()
    index = store.write_index(runs_dir)
    counts = {s: sum(r.status == s for r in results) for s in ("ran", "cached", "failed", "skipped")}
    if counts["ran"] == 0 and counts["failed"] == 0:
        say("nothing to do: every run was already done (cached)")
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    print(f"runs: {summary} in {time.perf_counter() - start:.1f}s; index: {runs_dir / runs.INDEX}")
    if not opts.no_report:
        report_path = build_report(plan, runs_dir, index)
        if report_path:
            print(f"report: {report_path}")
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        print(f"FAILED {r.label}: {r.error} (see {r.path})", file=sys.stderr)
    return 1 if failed else 0


#: Options that shape a profile's grid or its store; with --predictions they mean nothing.
NOT_WITH_PREDICTIONS = ("profile", "tasks", "sparsities", "techniques", "seeds", "epochs", "data_dir",
                        "download", "clean")


def make_plan(opts: Options, *, runs_dir: Path) -> planning.Plan:
    """The plan the options ask for: a profile's grid, or one CIE run on a predictions
    directory (``--predictions``). Raises ConfigError (exit 2) for options that do not
    go together."""
    if opts.predictions is not None:
        given = [f"--{name.replace('_', '-')}" for name in NOT_WITH_PREDICTIONS
                 if getattr(opts, name) not in (None, False)]
        if given:
            raise ConfigError(f"{', '.join(given)} cannot be combined with --predictions (one CIE run on "
                              "the directory; --clean would remove every profile run from the store); "
                              "allowed with it: --dry-run, --verify, --jobs, --executor, --scheduler, "
                              "--cluster, --only cie, --force, --no-report, --quiet, --fail-fast")
        return planning.predictions_plan(opts.predictions, runs_dir=runs_dir)
    profile = config.load_profile(opts.profile or "quick")
    overrides = planning.Overrides(**{f.name: getattr(opts, f.name)
                                      for f in dataclasses.fields(planning.Overrides)})
    return planning.build_plan(profile, overrides, runs_dir=runs_dir)


def build_report(plan: planning.Plan, runs_dir: Path, index) -> Path | None:
    """Build the report unless the one on disk was built from the same inputs.

    The report is keyed by what it reads (:func:`cielib.report_key.report_key`): the
    analysis runs it shows, the run table, the code that renders it and the profile's
    setup text. A rerun that changed none of them says so and rebuilds nothing.
    """
    from cielib import report_contents, report_key

    target = report_contents.TARGETS[plan.kind](plan, runs_dir, index)
    key = report_key.report_key(target.parts, title=target.title, index=target.index)
    if target.has_content() and report_key.is_up_to_date(target.out, key):
        print(f"report: up to date (nothing it reads changed): {target.out}")
        return target.out
    built = report_contents.render(target)
    if built is not None:
        files = [f.name for f in (built, built.with_suffix(".pdf")) if f.is_file()]
        report_key.remember_key(built, key, files=files)
    return built


def make_executor(opts: Options, *, jobs: int, runs_dir: Path, profile: config.Profile):
    """The executor the options name, from :data:`cielib.execute.executors` (Dask is
    imported only when asked for)."""
    from cielib import execute

    return execute.make_executor(opts.executor, jobs=jobs, scheduler=opts.scheduler,
                                 cluster_file=opts.cluster, gpus=profile.gpus,
                                 runs_dir=runs_dir, say=print)


def dry_run(plan: planning.Plan, selected: list[runs.RunSpec], runs_dir: Path) -> int:
    """Print the plan: each run's id, label and whether (and why) it will run."""
    print(f"plan for {plan.title()}: {len(selected)} run(s)")
    for spec in selected:
        state = "done (cached)" if not store.will_run(spec, runs_dir) else f"will run: {store.why_rerun(spec, runs_dir)}"
        print(f"  {spec.run_id}  {spec.label():<45} {state}")
    return 0


def verify(runs_dir: Path) -> int:
    """``--verify``: full integrity check of the store; exit 1 listing every bad run."""
    bad = store.verify(runs_dir)
    n = len(runs.done_runs(runs_dir))
    if not bad:
        print(f"verify: {n} finished run(s) in {runs_dir}, all intact")
        return 0
    print(f"verify: {len(bad)} damaged or incomplete run(s) in {runs_dir}:")
    for path, found in bad.items():
        print(f"  {path}: {'; '.join(found)}")
    return 1


def fetch_missing_data(plan: planning.Plan, *, data_dir: str | None) -> None:
    """--download: fetch the datasets the plan needs that are not present (CIFAR only)."""
    from cielib import data

    for name in sorted({t.dataset for t in plan.profile.tasks}):
        if data.locate_dataset(name, data_dir=data_dir) is None:
            print(f"downloading {name} ...")
            data.load_dataset(name, data_dir=data_dir, download=True)


def clean(plan: planning.Plan, runs_dir: Path, *, assume_yes: bool, dry_run: bool) -> int:
    """Remove run directories the plan does not use (and leftovers of failed runs)."""
    doomed = store.unused(plan.specs, runs_dir)
    if not doomed:
        print("clean: nothing to remove")
        return 0
    print(f"clean: {len(doomed)} run director{'y' if len(doomed) == 1 else 'ies'} not in the "
          f"plan for profile {plan.profile.name!r}:")
    for p in doomed:
        print(f"  {p.relative_to(runs_dir)}")
    if dry_run:
        return 0
    if not assume_yes:
        if not sys.stdin.isatty():
            print("clean: not removing anything without --yes (no terminal to ask)", file=sys.stderr)
            return 2
        if input("remove them? [y/N] ").strip().lower() not in ("y", "yes"):
            print("clean: kept everything")
            return 0
    for p in doomed:
        store.discard(p)
    store.write_index(runs_dir)
    print(f"clean: removed {len(doomed)}")
    return 0
