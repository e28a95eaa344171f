"""Planning: a profile plus command-line overrides becomes a list of RunSpecs.

Everything is validated here, before any run starts: the profile, the overrides,
the notebooks' declared parameters and the presence of the data the plan needs.
Run ids come out of the specs, so the plan also tells which runs are already done.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cielib
from cielib import config, notebooks, runs
from cielib.config import ConfigError, Profile

STAGES = ("train", "quantize", "results", "profiling", "quantization", "cie", "discussion")
# Analysis stages: one run per task, reading every training (and quantize) run of it.
ANALYSES = ("results", "profiling", "quantization", "cie")
# float32 TFLite is always converted too: the reference every quantized size and speed
# is compared with.
REFERENCE_TECHNIQUE = "float32"


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
    profile: Profile
    specs: list[runs.RunSpec]
    notes: list[str] = field(default_factory=list)

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
    sparsities = (
        config.validate_sparsities(list(ov.sparsities), where="--sparsities")
        if ov.sparsities is not None
        else profile.sparsities
    )
    techniques = (
        config.validate_techniques(list(ov.techniques), where="--techniques")
        if ov.techniques is not None
        else profile.techniques
    )
    seeds = (
        config.validate_seeds(list(ov.seeds), where="--seeds")
        if ov.seeds is not None
        else profile.seeds
    )
    return dataclasses.replace(
        profile, tasks=tasks, sparsities=sparsities, techniques=techniques, seeds=seeds
    )


def check_data(profile: Profile, *, data_dir: str | None, download: bool) -> None:
    """Fail before any run if a dataset the plan needs cannot be found."""
    from cielib import data

    for name in sorted({t.dataset for t in profile.tasks}):
        data.require_dataset(name, data_dir=data_dir, download=download)


def build_plan(
    profile: Profile,
    overrides: Overrides = Overrides(),
    *,
    runs_dir: Path,
    threads: int = 0,
) -> Plan:
    """Resolve the grid into RunSpecs (validated; nothing is written)."""
    prof = apply_overrides(profile, overrides)
    check_data(prof, data_dir=overrides.data_dir, download=overrides.download)
    version = cielib.__version__
    nb_train = notebooks.notebook_path("train")
    h_train = notebooks.source_hash(nb_train)
    analysis_nb = {name: notebooks.notebook_path(name) for name in ANALYSES}
    notes: list[str] = []
    nb_quant = notebooks.notebook_path("quantize")
    h_quant = notebooks.source_hash(nb_quant)

    specs: list[runs.RunSpec] = []
    def train_spec(task, sparsity: float, seed: int) -> runs.RunSpec:
        params = {**task.train_params(), "sparsity": sparsity, "seed": seed}
        upstream: tuple[str, ...] = ()
        runtime = {"data_dir": overrides.data_dir, "threads": threads}
        if sparsity > 0:
            params.update(task.prune_params())
            if task.prune_from == "baseline":
                dense = train_spec(task, 0.0, seed)
                upstream = (dense.run_id,)
                runtime["baseline_dir"] = str(runs.run_path(runs_dir, "train", dense.run_id))
        return runs.RunSpec(
            stage="train", notebook=str(nb_train.name), params=params, upstream=upstream,
            notebook_hash=h_train, version=version, runtime=runtime,
        )

    specs: list[runs.RunSpec] = []
    for task in prof.tasks:
        sparsities = prof.sparsities
        if task.prune_from == "baseline" and 0.0 not in sparsities:
            sparsities = (0.0, *sparsities)  # fine-tuning needs its dense baseline
            notes.append(f"{task.name}: prune_from=baseline adds the dense runs it fine-tunes")
        train_ids = []
        quant_ids = []
        techniques = (REFERENCE_TECHNIQUE, *prof.techniques) if prof.techniques else ()
        for sparsity in sorted(sparsities):
            for seed in prof.seeds:
                spec = train_spec(task, sparsity, seed)
                specs.append(spec)
                train_ids.append(spec.run_id)
                if sparsity > 0 and not prof.quantize_pruned:
                    continue
                for technique in techniques:
                    q = runs.RunSpec(
                        stage="quantize", notebook=str(nb_quant.name),
                        params={"task": task.name, "dataset": task.dataset, "model": task.model,
                                "sparsity": sparsity, "seed": seed, "technique": technique,
                                "representative_size": prof.representative_size,
                                # speed is a property of architecture and technique:
                                # measure it once per (task, sparsity, technique)
                                "measure_speed": seed == prof.seeds[0]},
                        upstream=(spec.run_id,), notebook_hash=h_quant, version=version,
                        runtime={"source_dir": str(runs.run_path(runs_dir, "train", spec.run_id)),
                                 "data_dir": overrides.data_dir, "threads": threads},
                    )
                    specs.append(q)
                    quant_ids.append(q.run_id)
        for name, nb in analysis_nb.items():
            if name == "quantization" and not quant_ids:
                continue
            runtime = {"runs_dir": str(runs_dir)}
            if name == "cie":
                runtime["data_dir"] = overrides.data_dir
            upstream = {"results": train_ids, "profiling": train_ids, "quantization": quant_ids,
                        "cie": train_ids + quant_ids}[name]
            specs.append(
                runs.RunSpec(
                    stage=name,
                    notebook=str(nb.name),
                    params={
                        "task": task.name,
                        "task_label": task.label,
                        "stand_in_for": task.stand_in_for,
                        "profile": prof.name,
                    },
                    upstream=tuple(upstream),
                    notebook_hash=notebooks.source_hash(nb),
                    version=version,
                    runtime=runtime,
                )
            )
    nb_disc = notebooks.notebook_path("discussion")
    specs.append(
        runs.RunSpec(
            stage="discussion",
            notebook=str(nb_disc.name),
            params={
                "profile": prof.name,
                "tasks": [{"name": t.name, "label": t.label, "paper_task": t.paper_task,
                           "stand_in_for": t.stand_in_for} for t in prof.tasks],
            },
            upstream=tuple(s.run_id for s in specs if s.stage in ("train", "quantize", "profiling", "cie")),
            notebook_hash=notebooks.source_hash(nb_disc),
            version=version,
            runtime={"runs_dir": str(runs_dir)},
        )
    )
    for spec in specs:
        notebooks.check_parameters(
            notebooks.notebook_path(Path(spec.notebook).stem), notebook_parameters(spec, Path("x"))
        )
    return Plan(profile=prof, specs=specs, notes=notes)


def notebook_parameters(spec: runs.RunSpec, run_dir: Path) -> dict[str, Any]:
    """Everything papermill injects: identity params, runtime options, output dir."""
    params = dict(spec.params)
    params.update({k: v for k, v in spec.runtime.items()})
    params["run_dir"] = str(run_dir)
    if spec.stage in (*ANALYSES, "discussion"):
        params["inputs"] = list(spec.upstream)  # run ids; the notebook finds their stages
    return params
