"""The pipeline declared as data: one row per stage.

Each :class:`Stage` says what one run of it is *per* (a grid point, a trained model and
technique, a task, the profile), which stages it reads, which notebook it executes and
which profile fields become its notebook parameters. The planner (:mod:`cielib.plan`)
is a loop over :data:`STAGES`; adding a stage is a row here plus a notebook (and its
tests). The README's "What runs" table is checked against this table by a test.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from cielib import compression
from cielib.config import Profile, Task
from cielib.keras import ONEDNN
from cielib.models import MODELS
from cielib.runs import KEY_FIELDS

#: What one run of a stage is per. Each kind expands a profile into run keys.
PER = ("seed", "point", "model", "task", "profile")

Key = dict[str, Any]
Params = Callable[[Profile, "Task | None", Key], dict[str, Any]]
Condition = Callable[[Profile, "Task | None", Key], bool]
Resources = Callable[[Profile], dict[str, Any]]


def _always(profile: Profile, task: Task | None, key: Key) -> bool:
    return True


def _no_resources(profile: Profile) -> dict[str, Any]:
    return {}


def _gpu_when_profile_has_gpus(profile: Profile) -> dict[str, Any]:
    """One ``GPU`` (the Dask worker resource) per run when the profile asks for GPUs."""
    from cielib.cluster_file import GPU_RESOURCE

    return {GPU_RESOURCE: 1} if profile.gpus else {}


@dataclass(frozen=True)
class Read:
    """One upstream dependency of a stage.

    Attributes:
        stage: The stage whose runs are read.
        param: The notebook parameter that receives them: a list of run ids when
            ``many`` (the notebook looks them up in the store by key), else the path of
            the one matching run.
        many: Read every matching run (analyses) or exactly one (a model to quantize).
        key: Maps this run's key to the upstream key to match; by default a run matches
            when it agrees on every key field the two keys share.
        when: Whether this read applies to a given run (e.g. only pruned runs that
            fine-tune a dense baseline read it).
    """

    stage: str
    param: str
    many: bool = True
    key: Callable[[Key], Key] | None = None
    when: Condition = _always


@dataclass(frozen=True)
class Stage:
    """One row of the pipeline: a notebook executed once per ``per`` unit."""

    name: str
    notebook: str
    per: str
    params: Params
    reads: tuple[Read, ...] = ()
    when: Condition = _always
    what: str = ""  # what it adds (the README's "What runs" table)
    in_report: bool = False  # its executed notebook is part of the report
    title: str = ""  # its part's title in the report
    paper: dict[str, str] = field(default_factory=dict)  # the paper's sections, per paper task
    runtime: tuple[str, ...] = ()  # runtime options it receives (data_dir, runs_dir)
    #: What one run must reserve on a cluster executor, given the profile (the plan puts it
    #: into ``RunSpec.resources``, which the Dask executor passes to ``submit``).
    resources: Resources = _no_resources


# --- parameters: which profile fields each notebook receives -------------------------


def _train_params(profile: Profile, task: Task | None, key: Key) -> dict[str, Any]:
    assert task is not None
    params = {**task.train_params(), "sparsity": key["sparsity"], "seed": key["seed"],
              "threads": profile.threads}
    if key["sparsity"] > 0:
        params.update(task.prune_params())
    return params


def _features_params(profile: Profile, task: Task | None, key: Key) -> dict[str, Any]:
    assert task is not None
    params = {"task": task.name, "dataset": task.dataset, "model": task.model, "weights": task.weights,
              "model_options": dict(task.model_options), "input_size": task.input_size,
              "batch_size": task.batch_size,
              "threads": profile.threads, "onednn": ONEDNN}
    if task.weights == "none":
        params["seed"] = key["seed"]  # a randomly initialised base follows the seed
    return params


def _caches_features(profile: Profile, task: Task | None, key: Key) -> bool:
    """A task whose frozen base's activations are cached (and read by this run, for a
    training run: a pruned run reads them only when the base is not pruned)."""
    if task is None or not task.cache_features or not MODELS[task.model].frozen_base:
        return False
    sparsity = key.get("sparsity")
    if sparsity is None:  # the features runs themselves: needed by some training run of the seed
        return any(key["seed"] in profile.seeds_for(task, s) and (s == 0 or task.prune_layers == "trainable")
                   for s in sparsities_of(profile, task))
    return sparsity == 0 or task.prune_layers == "trainable"


def _quantize_params(profile: Profile, task: Task | None, key: Key) -> dict[str, Any]:
    assert task is not None
    return {"task": task.name, "dataset": task.dataset, "model": task.model,
            "sparsity": key["sparsity"], "seed": key["seed"],
            "techniques": [compression.reference().name, *profile.techniques],
            "representative_size": profile.representative_size, "threads": profile.threads,
            # speed is a property of architecture and technique: measured once per
            # (task, sparsity), on the first seed
            "measure_speed": key["seed"] == profile.seeds[0]}


def _analysis_params(profile: Profile, task: Task | None, key: Key) -> dict[str, Any]:
    assert task is not None
    return {"task": task.name, "task_label": task.label, "stand_in_for": task.stand_in_for,
            "paper_task": task.paper_task}


def _cie_params(profile: Profile, task: Task | None, key: Key) -> dict[str, Any]:
    return {**_analysis_params(profile, task, key), "correction": profile.cie_correction}


def _results_params(profile: Profile, task: Task | None, key: Key) -> dict[str, Any]:
    return {**_analysis_params(profile, task, key), "profile": profile.name}


def _discussion_params(profile: Profile, task: Task | None, key: Key) -> dict[str, Any]:
    return {"profile": profile.name,
            "tasks": [{"name": t.name, "label": t.label, "paper_task": t.paper_task,
                       "stand_in_for": t.stand_in_for} for t in profile.tasks]}


def _quantized(profile: Profile, task: Task | None, key: Key) -> bool:
    return bool(profile.techniques)


def _fine_tunes(profile: Profile, task: Task | None, key: Key) -> bool:
    return task is not None and key.get("sparsity", 0) > 0 and task.prune_from == "baseline"


def _dense(key: Key) -> Key:
    return {**key, "sparsity": 0.0}


STAGES: tuple[Stage, ...] = (
    Stage("features", "features", per="seed", params=_features_params, when=_caches_features,
          runtime=("data_dir",),
          what="a frozen base's activations for every training and test image, once per dataset, "
               "model, weights and preprocessing (per seed only for an untrained base)"),
    Stage("train", "train", per="point", params=_train_params,
          reads=(Read("features", "features_dir", many=False, when=_caches_features),
                 Read("train", "baseline_dir", many=False, key=_dense, when=_fine_tunes)),
          runtime=("data_dir",), resources=_gpu_when_profile_has_gpus,
          what="trains (and prunes, when sparsity > 0) one model; history, predictions, model, "
               "sparsity per layer, hardware trace"),
    Stage("quantize", "quantize", per="model", params=_quantize_params,
          reads=(Read("train", "source_dir", many=False),),
          when=_quantized, runtime=("data_dir",),
          what="float32 / float16 / dynamic-range int8 / full-integer int8 TFLite of one model, "
               "one folder per technique; checked flatbuffers, LiteRT predictions, sizes, speed"),
    Stage("results", "results", per="task", params=_results_params,
          reads=(Read("train", "inputs"),), runtime=("runs_dir",), in_report=True,
          title="Training and test performance under pruning",
          paper={"vgg19_cifar10": "§X.i, §X.ii.1 and §X.ii.3 (Tables 1-3, Figures 17-21, 23, 24)",
                 "resnet50_cifar100": "§XI.i, §XI.ii.1 and §XI.ii.3 (Tables 6-8, Figures 28, 29)"},
          what="training curves per sparsity, validation and test metrics, confusion matrices, "
               "classification reports, sizes"),
    Stage("profiling", "profiling", per="task", params=_analysis_params,
          reads=(Read("train", "inputs"),), runtime=("runs_dir",), in_report=True,
          title="Hardware use while training",
          paper={"vgg19_cifar10": "§X.ii.2, GPU utilization (Figure 22)",
                 "resnet50_cifar100": "§XI.ii.2, GPU utilization (Figure 30)"},
          what="training time, throughput and utilization per sparsity"),
    Stage("cie", "cie", per="task", params=_cie_params,
          reads=(Read("train", "inputs"), Read("quantize", "inputs")),
          runtime=("runs_dir", "data_dir"), in_report=True,
          title="Impacted classes and images",
          paper={"vgg19_cifar10": "§X.ii.4 and §X.iii.2 (Table 4, Figure 25)",
                 "resnet50_cifar100": "§XI.ii.4 (Table 9, Figure 31)"},
          what="both CIE schemas with their null and power, CIE gallery, agreement of the schemas"),
    Stage("quantization", "quantization", per="task", params=_analysis_params,
          reads=(Read("quantize", "inputs"),), when=_quantized, runtime=("runs_dir",),
          in_report=True, title="Quantization",
          paper={"vgg19_cifar10": "§X.iii.1 (Table 5, Figures 26, 27)",
                 "resnet50_cifar100": "none: the paper quantized VGG-19 only (an extension here)"},
          what="metrics, sizes and speeds per technique beside TensorFlow's documented benefits"),
    Stage("discussion", "discussion", per="profile", params=_discussion_params,
          reads=(Read("train", "inputs"), Read("quantize", "inputs"), Read("profiling", "inputs"),
                 Read("cie", "inputs")),
          runtime=("runs_dir",), in_report=True,
          what="the paper's Tables 1-9 beside this run; findings written from the numbers"),
)


def names(stages: tuple[Stage, ...] = STAGES) -> tuple[str, ...]:
    return tuple(s.name for s in stages)


def get(name: str, stages: tuple[Stage, ...] = STAGES) -> Stage:
    for s in stages:
        if s.name == name:
            return s
    raise KeyError(f"unknown stage {name!r}; allowed: {', '.join(names(stages))}")


# --- what one run is per: the keys of a stage's runs --------------------------------


def sparsities_of(profile: Profile, task: Task) -> list[float]:
    """A task's sparsities; fine-tuning from a baseline needs the dense runs too."""
    values = set(profile.sparsities)
    if task.prune_from == "baseline":
        values.add(0.0)
    return sorted(values)


def keys(per: str, profile: Profile) -> list[tuple[Task | None, Key]]:
    """Every (task, key) one run of a stage with this ``per`` is made for.

    Dense models train with the profile's seeds; models pruned from scratch with the
    independent seeds (:meth:`Profile.seeds_for`); a quantized model keeps the seed of
    the model it quantizes.
    """
    if per == "profile":
        return [(None, {})]
    if per not in PER:
        raise ValueError(f"unknown per {per!r}; allowed: {', '.join(PER)}")
    out: list[tuple[Task | None, Key]] = []
    for task in profile.tasks:
        if per == "task":
            out.append((task, {"task": task.name}))
            continue
        points = [(sparsity, seed) for sparsity in sparsities_of(profile, task)
                  for seed in profile.seeds_for(task, sparsity)]
        if per == "seed":
            seeds = dict.fromkeys(seed for _, seed in points)
            out.extend((task, {"task": task.name, "seed": seed}) for seed in seeds)
            continue
        for sparsity, seed in points:
            key = {"task": task.name, "sparsity": sparsity, "seed": seed}
            if per == "point":
                out.append((task, key))
            elif sparsity == 0 or profile.quantize_pruned:  # "model": the models quantized
                out.append((task, key))
    return out


def matches(key: Key, target: Key) -> bool:
    """Whether a run with ``key`` is read by a run whose (mapped) key is ``target``."""
    return all(key[f] == target[f] for f in KEY_FIELDS if f in key and f in target)
