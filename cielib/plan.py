"""Planning: a profile plus command-line overrides becomes a list of complete RunSpecs.

The planner is a loop over the stage table (:data:`cielib.stages.STAGES`): for each
stage, one spec per unit it is made *per*, its parameters from the stage's row, its
upstream runs from the rows it reads. Everything is validated here, once, before any
run starts: the profile, the overrides, every notebook parameter (undeclared ones are
refused), and the presence of the data the plan needs. Run ids come out of the specs,
so the plan also tells which runs are already done.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cielib
from cielib import config, notebook_source, paths, predictions, runs, stages, store
from cielib.config import ConfigError, Profile


@dataclass(frozen=True)
class Overrides:
    """Command-line overrides of a profile (None keeps the profile's value)."""

    tasks: Sequence[str] | None = None
    sparsities: Sequence[float] | None = None
    techniques: Sequence[str] | None = None
    seeds: Sequence[int] | None = None
    epochs: int | None = None
    data_dir: str | None = None
    download: bool = False


@dataclass
class Plan:
    """The runs to execute. ``kind`` says where they came from: ``"profile"`` (a grid
    to train and analyse) or ``"predictions"`` (one CIE run on a predictions directory,
    whose :class:`cielib.predictions.Predictions` is ``predictions``); the report and
    the messages follow it."""

    profile: Profile
    specs: list[runs.RunSpec]
    notes: list[str] = field(default_factory=list)
    kind: str = "profile"
    predictions: Any = None

    def title(self) -> str:
        """How messages name the plan: ``profile 'quick'``, ``predictions 'my-models'``."""
        return f"{self.kind} {self.profile.name!r}"

    def by_stage(self, stage: str) -> list[runs.RunSpec]:
        return [s for s in self.specs if s.stage == stage]


def apply_overrides(profile: Profile, ov: Overrides) -> Profile:
    """A new profile with the overrides applied and validated."""
    tasks = profile.tasks
    if ov.tasks is not None:
        if not ov.tasks:
            raise ConfigError("--tasks needs at least one task")
        tasks = tuple(profile.task(name) for name in ov.tasks)
    if ov.epochs is not None:
        epochs = config.validate_epochs(ov.epochs, where="--epochs")
        tasks = tuple(dataclasses.replace(t, epochs=epochs) for t in tasks)
    sparsities = (config.validate_sparsities(list(ov.sparsities), where="--sparsities")
                  if ov.sparsities is not None else profile.sparsities)
    techniques = (config.validate_techniques(list(ov.techniques), where="--techniques")
                  if ov.techniques is not None else profile.techniques)
    seeds = (config.validate_seeds(list(ov.seeds), where="--seeds")
             if ov.seeds is not None else profile.seeds)
    return config.check_seed_design(
        dataclasses.replace(profile, tasks=tasks, sparsities=sparsities, techniques=techniques,
                            seeds=seeds), where="--seeds")


def seed_note(profile: Profile) -> str:
    """Which seeds the plan trains, and which comparisons are independent or paired."""
    dense = ", ".join(map(str, profile.seeds))
    note = f"seeds: dense {dense}"
    scratch = [t.name for t in profile.tasks if t.prune_from == "scratch"]
    if any(s > 0 for s in profile.sparsities) and scratch:
        note += (f"; pruned from scratch {', '.join(map(str, profile.independent_seeds()))} "
                 "(disjoint: independent models)")
    baseline = [t.name for t in profile.tasks if t.prune_from == "baseline"]
    if baseline and any(s > 0 for s in profile.sparsities):
        note += f"; pruned by fine-tuning ({', '.join(baseline)}) and quantized: their dense model's seed (paired)"
    elif profile.techniques:
        note += "; quantized: their dense model's seed (paired)"
    return note


def check_data(profile: Profile, *, data_dir: str | None, download: bool) -> None:
    """Fail before any run if a dataset or ImageNet weights file the plan needs cannot be
    found; the message says, for each, every place searched and where to put it."""
    from cielib import data, models

    problems = []
    for name in sorted({t.dataset for t in profile.tasks}):
        try:
            data.require_dataset(name, data_dir=data_dir, download=download)
        except data.DataNotFoundError as exc:
            problems.append(str(exc))
    for name in sorted({t.model for t in profile.tasks if t.weights == "imagenet"}):
        try:
            models.imagenet_weights_path(name)
        except FileNotFoundError as exc:
            problems.append(str(exc))
    if problems:
        raise FileNotFoundError("\n".join(problems))


def build_plan(profile: Profile, overrides: Overrides = Overrides(), *, runs_dir: Path,
               table: tuple[stages.Stage, ...] = stages.STAGES) -> Plan:
    """Resolve the grid into complete RunSpecs, stage by stage (validated; nothing written)."""
    prof = apply_overrides(profile, overrides)
    check_data(prof, data_dir=overrides.data_dir, download=overrides.download)
    runtime_values = {"data_dir": overrides.data_dir, "runs_dir": str(runs_dir)}
    by_stage: dict[str, list[runs.RunSpec]] = {}
    specs: dict[str, runs.RunSpec] = {}  # by run id: equal runs are planned once
    notes = [seed_note(prof)]
    notes += [f"{t.name}: prune_from=baseline adds the dense runs it fine-tunes"
              for t in prof.tasks if t.prune_from == "baseline" and 0.0 not in prof.sparsities]
    notebooks_dir = paths.notebooks_dir()
    for stage in table:
        path = notebook_source.notebook_path(stage.notebook)
        source_hash = notebook_source.source_hash(path)
        declared = notebook_source.declared_parameters(path)
        for task, key in stages.keys(stage.per, prof):
            if not stage.when(prof, task, key):
                continue
            upstream: list[str] = []
            runtime = {name: runtime_values[name] for name in stage.runtime}
            for read in stage.reads:
                if not read.when(prof, task, key):
                    continue
                target = read.key(key) if read.key else key
                found = [s for s in by_stage.get(read.stage, []) if stages.matches(s.key, target)]
                if read.many:
                    runtime.setdefault(read.param, []).extend(s.run_id for s in found)
                elif len(found) == 1:
                    runtime[read.param] = str(found[0].path(runs_dir))
                else:
                    raise ConfigError(f"stage {stage.name} {key}: {len(found)} {read.stage} runs "
                                      f"match {target}, expected exactly one")
                upstream += [s.run_id for s in found]
            spec = runs.RunSpec(stage=stage.name, notebook=path.name if path.parent == notebooks_dir
                                else str(path),
                                params=stage.params(prof, task, key), upstream=tuple(upstream),
                                notebook_hash=source_hash, version=cielib.__version__,
                                runtime=runtime, resources=stage.resources(prof))
            notebook_source.check_parameters(declared, spec.notebook_parameters("."), name=path.name)
            if spec.run_id not in specs:
                specs[spec.run_id] = spec
                by_stage.setdefault(stage.name, []).append(spec)
    # Task by task (each task's analyses can start while the next task trains), then
    # the runs of the whole profile.
    order = {t.name: i for i, t in enumerate(prof.tasks)}
    ordered = sorted(specs.values(), key=lambda s: order.get(s.params.get("task"), len(order)))
    return Plan(profile=prof, specs=ordered, notes=notes)


#: The stage that analyses a predictions directory, and the notebook parameter that
#: receives the directory (a runtime option: the content hash is the identity).
PREDICTIONS_STAGE = "cie"
PREDICTIONS_PARAM = "predictions_dir"


def predictions_plan(directory: str | Path, *, runs_dir: Path) -> Plan:
    """One CIE run on a predictions directory (checked first: bad input raises
    :class:`cielib.predictions.PredictionsError` before anything is written).

    The run's identity is the directory's content hash, its name and the analysis
    options its design.toml sets, not its path: the same files give the same run id
    wherever they lie, so nothing is recomputed.
    """
    pred = predictions.load(directory)
    stage = stages.get(PREDICTIONS_STAGE)
    path = notebook_source.notebook_path(stage.notebook)
    params = {"task": f"predictions-{pred.name}", "task_label": pred.name, "stand_in_for": "",
              "paper_task": "", "predictions_sha256": pred.sha256, **pred.analysis}
    runtime = {"runs_dir": str(runs_dir), "data_dir": None,
               PREDICTIONS_PARAM: str(Path(directory).resolve())}
    spec = runs.RunSpec(stage=stage.name, notebook=path.name, params=params,
                        notebook_hash=notebook_source.source_hash(path), version=cielib.__version__,
                        runtime=runtime)
    notebook_source.check_parameters(notebook_source.declared_parameters(path), spec.notebook_parameters("."),
                               name=path.name)
    profile = Profile(name=pred.name, description=f"predictions brought from {directory}", tasks=(),
                      sparsities=(), techniques=(), seeds=tuple(pred.base))
    settings = "; ".join(f"{name} {pred.designs[name]} ({len(by_seed)} models)"
                         for name, by_seed in pred.settings.items())
    note = (f"predictions {pred.name}: baseline {pred.baseline} ({len(pred.base)} models), "
            f"{settings}; {len(pred.y_true)} test images; content sha256 {pred.sha256[:12]}")
    return Plan(profile=profile, specs=[spec], notes=[note], kind="predictions", predictions=pred)


def select(plan: Plan, only: Sequence[str] | None, runs_dir: Path, *,
           force: bool = False) -> list[runs.RunSpec]:
    """The specs of the chosen stages (all by default), marked for rerun with ``force``.

    Refuses a stage name that does not exist, and a chosen run whose upstream is
    neither chosen nor done.
    """
    specs = plan.specs
    if only:
        allowed = stages.names()
        bad = [s for s in only if s not in allowed]
        if bad:
            raise ConfigError(f"unknown stage(s) {bad} for --only; allowed: {', '.join(allowed)}")
        specs = [s for s in specs if s.stage in only]
        chosen = {s.run_id for s in specs}
        by_id = {s.run_id: s for s in plan.specs}
        missing = sorted({u for s in specs for u in s.upstream if u not in chosen
                          and not store.is_spec_done(by_id[u], runs_dir)})
        if missing:
            names = sorted({by_id[u].stage for u in missing})
            raise ConfigError(f"--only {' '.join(only)} needs {len(missing)} upstream run(s) of stage "
                              f"{', '.join(names)} that are not done; run those stages first")
    return [dataclasses.replace(s, force=True) for s in specs] if force else list(specs)
