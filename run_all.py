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
# One worker per core (each with one TensorFlow thread) uses small models best.
DEFAULT_JOBS = max(1, min(4, os.cpu_count() or 1))


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
    p.add_argument("--jobs", type=_int, default=DEFAULT_JOBS,
                   help=f"parallel worker processes (default {DEFAULT_JOBS}: the cores, at most 4)")
    p.add_argument("--fail-fast", action="store_true", help="stop starting runs after the first failure")
    p.add_argument("--dry-run", action="store_true", help="show the plan and why runs will run; run nothing")
    p.add_argument("--only", nargs="+", metavar="STAGE",
                   help="run only these stages (their upstream runs must be done)")
    p.add_argument("--force", action="store_true", help="rerun the selected runs even if done")
    p.add_argument("--clean", action="store_true",
                   help="remove runs the current plan does not use (asks first; see --yes)")
    p.add_argument("--yes", action="store_true", help="answer yes to --clean's question")
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
        selected = select(plan.specs, args.only, runs_dir)
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"run_all.py: error: {exc}", file=sys.stderr)
        return 2

    say = (lambda *a: None) if args.quiet else print
    for note in plan.notes:
        say(f"note: {note}")
    if args.clean:
        return clean(plan, runs_dir, assume_yes=args.yes, dry_run=args.dry_run)
    if args.dry_run:
        print(f"plan for profile {plan.profile.name!r}: {len(selected)} run(s)")
        for spec in selected:
            path = runs.run_path(runs_dir, spec.stage, spec.run_id)
            if args.force and runs.is_done(path):
                state = "will rerun: --force"
            elif runs.is_done(path):
                state = "done (cached)"
            else:
                state = f"will run: {why_rerun(spec, runs_dir)}"
            print(f"  {spec.run_id}  {spec.label():<45} {state}")
        return 0
    if args.download:
        fetch_missing_data(plan, data_dir=args.data_dir)
    if args.force:
        for spec in selected:
            runs.discard(runs.run_path(runs_dir, spec.stage, spec.run_id))

    from cielib import execute

    todo = sum(not runs.is_done(runs.run_path(runs_dir, s.stage, s.run_id)) for s in selected)
    say(f"profile {plan.profile.name!r}: {len(selected)} run(s), {todo} to run, "
        f"{args.jobs} job(s) x {threads} thread(s); store {runs_dir}")
    start = time.perf_counter()
    bar = progress_bar(todo, quiet=args.quiet)
    write = bar.write if bar else print
    finished: list[float] = []

    def eta() -> str:
        if not finished or len(finished) >= todo:
            return ""
        left = (todo - len(finished)) * (sum(finished) / len(finished)) / args.jobs
        return f" [{len(finished)}/{todo}, ETA {left // 60:.0f}m{left % 60:02.0f}s]"

    def on_result(res: execute.RunResult) -> None:
        if res.status == "failed":
            write(f"[failed] {res.label} ({res.seconds:.1f}s): {res.error}\n"
                  f"         executed notebook with the traceback: {res.path}")
        elif res.status == "skipped":
            if not args.quiet:
                write(f"[skipped] {res.label}: {res.error}")
        if res.status in ("ran", "failed"):
            finished.append(res.seconds)
        if res.status in ("ran", "cached") and not args.quiet:
            write(f"[{res.status}] {res.label} ({res.seconds:.1f}s) {res.run_id}"
                  + (eta() if res.status == "ran" else ""))
        if bar and res.status != "cached":
            bar.update(1)
        runs.write_index(runs_dir)

    executor = execute.LocalExecutor(jobs=args.jobs)
    try:
        results = execute.run_plan(selected, runs_dir=runs_dir, executor=executor,
                                   fail_fast=args.fail_fast, on_result=on_result)
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are kept and will be reused next time", file=sys.stderr)
        return 130
    finally:
        executor.shutdown()
        if bar:
            bar.close()
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


def fetch_missing_data(plan, *, data_dir: str | None) -> None:
    """--download: fetch the datasets the plan needs that are not present (CIFAR only)."""
    from cielib import data

    for name in sorted({t.dataset for t in plan.profile.tasks}):
        if data.locate_dataset(name, data_dir=data_dir) is None:
            print(f"downloading {name} ...")
            data.load_dataset(name, data_dir=data_dir, download=True)


def select(specs: list[runs.RunSpec], only: list[str] | None, runs_dir: Path) -> list[runs.RunSpec]:
    """The specs of the chosen stages; refuses one whose upstream is neither selected nor done."""
    if not only:
        return list(specs)
    from cielib.plan import STAGES

    bad = [s for s in only if s not in STAGES]
    if bad:
        raise ConfigError(f"unknown stage(s) {bad} for --only; allowed: {', '.join(STAGES)}")
    chosen = [s for s in specs if s.stage in only]
    ids = {s.run_id for s in chosen}
    by_id = {s.run_id: s for s in specs}
    missing = sorted({u for s in chosen for u in s.upstream
                      if u not in ids and not runs.is_done(runs.run_path(runs_dir, by_id[u].stage, u))})
    if missing:
        stages = sorted({by_id[u].stage for u in missing})
        raise ConfigError(f"--only {' '.join(only)} needs {len(missing)} upstream run(s) of stage "
                          f"{', '.join(stages)} that are not done; run those stages first")
    return chosen


def progress_bar(total: int, *, quiet: bool):
    """A bar over the runs to do, its ETA from the durations of the finished runs."""
    if quiet or total == 0 or not sys.stderr.isatty():
        return None  # logs get the per-run lines with their own ETA instead
    from tqdm import tqdm

    return tqdm(total=total, unit="run", dynamic_ncols=True, file=sys.stderr,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} runs [{elapsed}<{remaining}]")


def clean(plan, runs_dir: Path, *, assume_yes: bool, dry_run: bool) -> int:
    """Remove run directories the plan does not use (and leftovers of failed runs)."""
    keep = {(s.stage, s.run_id) for s in plan.specs}
    doomed = sorted(
        p for p in runs_dir.glob("*/*")
        if p.is_dir() and (p.parent.name, p.name) not in keep
    )
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
        runs.discard(p)
    runs.write_index(runs_dir)
    print(f"clean: removed {len(doomed)}")
    return 0


AIMS = """The paper asks what compression does to each class of a classifier, not only to
its headline accuracy, and whether pruning really makes training more efficient. This
report reruns that study end to end: it trains the models, prunes them to several
sparsities, quantizes them after training, records the hardware while they train, and
finds the classes and images that compression harms with two schemas.

**Method.** *Pruning*: magnitude pruning with tensorflow-model-optimization, the
smallest weights of every prunable layer zeroed along a schedule while the model trains
(Zhu and Gupta's cubic ramp unless the profile says otherwise), wrappers stripped before
saving, and the sparsity of the saved model measured. *Quantization*: post-training
conversion to TensorFlow Lite with float16 weights, dynamic-range int8 weights, or full
integer int8 (weights and activations, calibrated on training images), each checked in
the flatbuffer and evaluated with the LiteRT interpreter beside a float32 reference.
*Affected classes and images*: the paper's single-model schema (a class is impacted when
its deviation from the model's top-1 crosses the dense model's standard-deviation
boundary under compression) and Hooker et al.'s population schema (Welch's t-test on
normalized class recall across independently trained models; CIE images are those whose
most common prediction changes), and how far the two agree."""


def build_report(plan, runs_dir: Path, index) -> Path | None:
    from cielib import report
    from cielib.plan import ANALYSES

    def executed(stage: str, task: str | None) -> list[Path]:
        return [
            runs.run_path(runs_dir, s.stage, s.run_id) / runs.EXECUTED
            for s in plan.specs
            if s.stage == stage and (task is None or s.params.get("task") == task)
            and runs.is_done(runs.run_path(runs_dir, s.stage, s.run_id))
        ]

    lines = [AIMS, "", f"**Setup** (profile `{plan.profile.name}`): {plan.profile.description}", "",
             "| task | dataset | model | optimizer | learning rate | epochs | batch | stands in for |",
             "|---|---|---|---|---|---|---|---|"]
    for t in plan.profile.tasks:
        lines.append(f"| {t.label} | {t.dataset} | {t.model} | {t.optimizer} | {t.learning_rate:g} | "
                     f"{t.epochs} | {t.batch_size} | {t.stand_in_for or '(the paper itself)'} |")
    p = plan.profile
    lines += ["", f"Sparsities {', '.join(f'{s:g}' for s in p.sparsities)}; quantization "
              f"{', '.join(p.techniques) or 'none'}; seeds {', '.join(map(str, p.seeds))}. Pruning: "
              + "; ".join(f"{t.label}: {t.prune_schedule} schedule, from {t.prune_from}, layers {t.prune_layers}"
                          for t in p.tasks)
              + f". Generated by `python run_all.py --profile {p.name}` with cielib {cielib.__version__}."]
    sections = [report.Section("Aims and method", markdown="\n".join(lines))]
    for t in plan.profile.tasks:
        nbs = [nb for stage in ANALYSES for nb in executed(stage, t.name)]
        if nbs:
            title = f"{t.label}" + (f" (stand-in for {t.stand_in_for})" if t.stand_in_for else "")
            sections.append(report.Section(title, notebooks=nbs))
    disc = executed("discussion", None)
    if disc:
        sections.append(report.Section("The paper beside this run, and discussion", notebooks=disc))
    if len(sections) == 1:
        print("report: no finished analysis run to report", file=sys.stderr)
        return None
    out = paths.report_dir(runs_dir.parent) / "report.html"
    start = time.perf_counter()
    report.build_html(sections, out=out, index=index,
                      title="Rethinking compression: what pruning and quantization do to each class")
    try:
        pdf = report.build_pdf(out, out=out.with_suffix(".pdf"))
        print(f"report: {pdf}")
    except Exception as exc:  # noqa: BLE001 - the HTML report stands on its own
        print(f"report: PDF not written ({type(exc).__name__}: {exc})", file=sys.stderr)
    print(f"report: assembled in {time.perf_counter() - start:.1f}s")
    return out


if __name__ == "__main__":
    sys.exit(main())
