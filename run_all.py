#!/usr/bin/env python
"""Regenerate everything: plan the profile's grid, run what is not done, build the report.

    python run_all.py                      # quick profile, offline, CPU
    python run_all.py --dry-run            # what would run, and why
    python run_all.py --profile paper --data-dir ~/data

Exit codes: 0 all runs done, 1 some run failed, 2 bad input (nothing was written).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cielib
from cielib import config, paths, runs
from cielib.config import ConfigError

SLOT_KEYS = ("task", "sparsity", "technique", "seed")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="quick", help="profile name in configs/ or a .toml path (default: quick)")
    p.add_argument("--tasks", nargs="+", help="only these tasks of the profile")
    p.add_argument("--sparsities", nargs="+", type=_float, help="override the profile's sparsities")
    p.add_argument("--techniques", nargs="+", help="override the profile's quantization techniques")
    p.add_argument("--seeds", nargs="+", type=_int, help="override the profile's seeds")
    p.add_argument("--epochs", type=_int, help="override every task's epochs (smoke runs)")
    p.add_argument("--data-dir", default=os.environ.get("CIELIB_DATA_DIR"),
                   help="where CIFAR / full Fashion-MNIST live (default: $CIELIB_DATA_DIR)")
    p.add_argument("--download", action="store_true", help="allow downloading missing CIFAR archives")
    p.add_argument("--jobs", type=_int, default=1, help="parallel worker processes (default 1)")
    p.add_argument("--fail-fast", action="store_true", help="stop starting runs after the first failure")
    p.add_argument("--dry-run", action="store_true", help="show the plan and why runs will run; run nothing")
    p.add_argument("--no-report", action="store_true", help="skip building the report")
    p.add_argument("--quiet", action="store_true", help="only print failures and the summary")
    return p.parse_args(argv)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def why_rerun(spec: runs.RunSpec, runs_dir: Path) -> str:
    """Why a run that is not done will run: new, or what changed since the last one."""
    stage_dir = runs_dir / spec.stage
    slot = {k: spec.params.get(k) for k in SLOT_KEYS}
    ident = spec.identity()
    best = None
    for done in runs.done_runs(runs_dir):
        if done.parent != stage_dir:
            continue
        old = runs.read_json(done / runs.PARAMS)
        if {k: old["params"].get(k) for k in SLOT_KEYS} == slot:
            best = old
            break
    if best is None:
        return "new run"
    changes = []
    for key in sorted(set(ident["params"]) | set(best["params"])):
        if ident["params"].get(key) != best["params"].get(key):
            changes.append(f"{key}: {best['params'].get(key)!r} -> {ident['params'].get(key)!r}")
    if ident["upstream"] != best["upstream"]:
        changes.append("upstream runs changed")
    if ident["notebook_hash"] != best["notebook_hash"]:
        changes.append(f"notebook {spec.notebook} changed")
    if ident["version"] != best["version"]:
        changes.append(f"cielib {best['version']} -> {ident['version']}")
    return "; ".join(changes) or "previous run incomplete"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from cielib import plan as planning

    root = paths.root()
    runs_dir = paths.runs_dir(root)
    threads = max(1, (os.cpu_count() or 1) // max(1, args.jobs))
    try:
        if args.jobs < 1:
            raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
        profile = config.load_profile(args.profile)
        overrides = planning.Overrides(
            tasks=args.tasks, sparsities=args.sparsities, techniques=args.techniques,
            seeds=args.seeds, epochs=args.epochs, data_dir=args.data_dir, download=args.download,
        )
        plan = planning.build_plan(profile, overrides, runs_dir=runs_dir, threads=threads)
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"run_all.py: error: {exc}", file=sys.stderr)
        return 2

    say = (lambda *a: None) if args.quiet else print
    for note in plan.notes:
        say(f"note: {note}")
    if args.dry_run:
        print(f"plan for profile {plan.profile.name!r}: {len(plan.specs)} run(s)")
        for spec in plan.specs:
            path = runs.run_path(runs_dir, spec.stage, spec.run_id)
            state = "done (cached)" if runs.is_done(path) else f"will run: {why_rerun(spec, runs_dir)}"
            print(f"  {spec.run_id}  {spec.label():<45} {state}")
        return 0

    from cielib import execute

    todo = sum(not runs.is_done(runs.run_path(runs_dir, s.stage, s.run_id)) for s in plan.specs)
    say(f"profile {plan.profile.name!r}: {len(plan.specs)} run(s), {todo} to run, "
        f"{args.jobs} job(s) x {threads} thread(s); store {runs_dir}")
    start = time.perf_counter()

    def on_result(res: execute.RunResult) -> None:
        if res.status == "failed":
            print(f"[failed] {res.label} ({res.seconds:.1f}s): {res.error}\n"
                  f"         executed notebook with the traceback: {res.path}")
        elif res.status == "skipped":
            say(f"[skipped] {res.label}: {res.error}")
        else:
            say(f"[{res.status}] {res.label} ({res.seconds:.1f}s) {res.run_id}")
        runs.write_index(runs_dir)

    executor = execute.LocalExecutor(jobs=args.jobs)
    try:
        results = execute.run_plan(plan.specs, runs_dir=runs_dir, executor=executor,
                                   fail_fast=args.fail_fast, on_result=on_result)
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are kept and will be reused next time", file=sys.stderr)
        return 130
    finally:
        executor.shutdown()
    index = runs.write_index(runs_dir)
    counts = {s: sum(r.status == s for r in results) for s in ("ran", "cached", "failed", "skipped")}
    elapsed = time.perf_counter() - start
    if counts["ran"] == 0 and counts["failed"] == 0:
        say("nothing to do: every run was already done (cached)")
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    print(f"runs: {summary} in {elapsed:.1f}s; index: {runs_dir / runs.INDEX}")

    if not args.no_report:
        report_path = build_report(plan, runs_dir, index)
        if report_path:
            print(f"report: {report_path}")
    if counts["failed"]:
        for r in results:
            if r.status == "failed":
                print(f"FAILED {r.label}: {r.error} (see {r.path})", file=sys.stderr)
        return 1
    return 0


def build_report(plan, runs_dir: Path, index) -> Path | None:
    from cielib import report

    executed = [
        runs.run_path(runs_dir, s.stage, s.run_id) / runs.EXECUTED
        for s in plan.by_stage("results")
        if runs.is_done(runs.run_path(runs_dir, s.stage, s.run_id))
    ]
    if not executed:
        print("report: no finished analysis run to report", file=sys.stderr)
        return None
    lines = [plan.profile.description, "", "| task | dataset | model | optimizer | epochs | stands in for |",
             "|---|---|---|---|---|---|"]
    for t in plan.profile.tasks:
        lines.append(f"| {t.label} | {t.dataset} | {t.model} | {t.optimizer} | {t.epochs} | "
                     f"{t.stand_in_for or '(direct)'} |")
    lines += ["", f"Seeds: {', '.join(map(str, plan.profile.seeds))}. "
              f"Generated by `python run_all.py --profile {plan.profile.name}` with cielib {cielib.__version__}."]
    out = paths.report_dir(runs_dir.parent) / "report.html"
    return report.build_html(
        executed, out=out, title="Rethinking compression: per-class effects of pruning and quantization",
        intro_markdown="\n".join(lines), index=index,
    )


if __name__ == "__main__":
    sys.exit(main())
