"""Experiment profiles: TOML files in ``configs/`` parsed into validated dataclasses.

A profile names its tasks (dataset + model + optimizer + epochs + batch size + ...),
the sparsities, quantization techniques and seeds of the grid. Everything is checked
when the profile is loaded, so a typo fails in a second with a message that names
the bad value and what is allowed, never half-way through a run.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cielib import compression, paths
from cielib.keras import ONEDNN
from cielib.data import DATASETS
from cielib.models import MODELS
from cielib.paper_tables import PAPER_TASKS
from cielib.prune import LAYERS as PRUNE_LAYERS
from cielib.prune import SCHEDULES as PRUNE_SCHEDULES
from cielib.train import OPTIMIZERS
PRUNE_FROM = ("scratch", "baseline")
CIE_CORRECTIONS = ("none", "fdr_bh")  # none, or Benjamini-Hochberg over classes


class ConfigError(ValueError):
    """A profile (or an override of it) is malformed; the message says what and where."""


@dataclass(frozen=True)
class Task:
    """One classification task: a dataset, a model and how to train it."""

    name: str
    label: str
    dataset: str
    model: str
    optimizer: str
    learning_rate: float
    epochs: int
    batch_size: int
    momentum: float = 0.0
    weights: str = "none"
    validation_fraction: float = 0.1
    model_options: dict[str, Any] = field(default_factory=dict)
    # The resolution the pretrained base sees (paper models): 0 feeds the images at their
    # own size (CIFAR's 32x32); 224 upsamples them inside the model (README, "Input
    # resolution").
    input_size: int = 0
    stand_in_for: str = ""
    paper_task: str = ""  # the paper's task this one reproduces or stands in for
    # Pruning (used by runs with sparsity > 0 only, so changing them never reruns a
    # dense baseline).
    prune_schedule: str = "polynomial"
    prune_from: str = "scratch"
    prune_epochs: int = 0  # 0: same as epochs; with prune_from="baseline", fine-tuning epochs
    prune_ramp_fraction: float = 0.7
    prune_frequency: int = 0  # 0: derived from the number of steps
    prune_layers: str = "all"
    # Train the head on the frozen base's cached activations (exact; only for models
    # with a frozen base, and only for runs that leave the base unpruned).
    cache_features: bool = True

    def prune_params(self) -> dict[str, Any]:
        """Pruning parameters as the training notebook declares them."""
        return {
            "prune_schedule": self.prune_schedule,
            "prune_from": self.prune_from,
            "prune_epochs": self.prune_epochs,
            "prune_ramp_fraction": self.prune_ramp_fraction,
            "prune_frequency": self.prune_frequency,
            "prune_layers": self.prune_layers,
        }

    def train_params(self) -> dict[str, Any]:
        """The task's parameters as the training notebook declares them."""
        return {
            "task": self.name,
            "dataset": self.dataset,
            "model": self.model,
            "optimizer": self.optimizer,
            "learning_rate": self.learning_rate,
            "momentum": self.momentum,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "weights": self.weights,
            "validation_fraction": self.validation_fraction,
            "model_options": dict(self.model_options),
            "input_size": self.input_size,
            "onednn": ONEDNN,  # one kernel choice for every run (cielib.keras)
        }


@dataclass(frozen=True)
class Profile:
    """A whole experiment grid."""

    name: str
    description: str
    tasks: tuple[Task, ...]
    sparsities: tuple[float, ...]
    techniques: tuple[str, ...]
    seeds: tuple[int, ...]
    source: str = ""
    quantize_pruned: bool = False  # also quantize every pruned model (pruned + int8 + gzip)
    representative_size: int = 200  # calibration images for full-integer int8
    # TensorFlow intra- and inter-op threads (and LiteRT threads) of every run. They change
    # results on a CPU (reduction order), so they are part of each run's identity; --jobs
    # only decides how many runs execute at once.
    threads: int = 1
    # Multiple-testing correction of the population schema's per-class tests.
    cie_correction: str = "none"
    # GPUs the profile asks for: on a Dask cluster each training run reserves one.
    gpus: int = 0
    # Seeds of the models compressed from scratch (pruned while training): disjoint from
    # the dense seeds, so a compressed population is independent of the dense one, as
    # the paper's "independent VGG-19 models" and Hooker et al.'s populations are. Empty:
    # each dense seed plus ``compressed_seed_offset``. The i-th compressed seed is
    # compared with the i-th dense seed (both sorted) by the single-model schema.
    # Quantized models and models fine-tuned from a dense baseline keep that baseline's
    # seed: they are derived from it, so those comparisons are paired.
    compressed_seeds: tuple[int, ...] = ()
    compressed_seed_offset: int = 1000

    def independent_seeds(self) -> tuple[int, ...]:
        """The seeds of the models compressed from scratch (disjoint from ``seeds``)."""
        return self.compressed_seeds or tuple(s + self.compressed_seed_offset for s in self.seeds)

    def seeds_for(self, task: "Task", sparsity: float) -> tuple[int, ...]:
        """The seeds a task trains at a sparsity: the dense seeds for the dense models and
        for pruning that fine-tunes them (paired); independent seeds for pruning from
        scratch."""
        if sparsity == 0 or task.prune_from == "baseline":
            return self.seeds
        return self.independent_seeds()

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise ConfigError(
            f"unknown task {name!r} in profile {self.name!r}; "
            f"allowed: {', '.join(t.name for t in self.tasks)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_TASK_FIELDS = {f.name: f for f in dataclasses.fields(Task) if f.name != "name"}
_REQUIRED_TASK = {"dataset", "model", "optimizer", "learning_rate", "epochs", "batch_size"}
_PROFILE_KEYS = {"name", "description", "sparsities", "techniques", "seeds", "quantize_pruned",
                 "representative_size", "threads", "cie_correction", "gpus", "compressed_seeds",
                 "compressed_seed_offset"}


def available_profiles() -> list[str]:
    """Names of the profiles shipped in ``configs/``."""
    return sorted(p.stem for p in paths.configs_dir().glob("*.toml"))


def profile_path(name_or_path: str | Path) -> Path:
    """Resolve a profile name (``quick``) or a path to a ``.toml`` file."""
    p = Path(name_or_path)
    if p.suffix == ".toml":
        if not p.is_file():
            raise ConfigError(f"profile file {str(p)!r} does not exist")
        return p
    candidate = paths.configs_dir() / f"{name_or_path}.toml"
    if not candidate.is_file():
        raise ConfigError(
            f"unknown profile {str(name_or_path)!r}; allowed: "
            f"{', '.join(available_profiles())} (or a path to a .toml file)"
        )
    return candidate


def load_profile(name_or_path: str | Path = "quick") -> Profile:
    """Load and validate a profile by name or path.

    Raises:
        ConfigError: the file is missing, is not valid TOML, or any value is invalid.
    """
    path = profile_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"profile {str(path)!r} is not valid TOML: {exc}") from exc
    return parse_profile(raw, source=str(path))


def parse_profile(raw: dict[str, Any], *, source: str = "<dict>") -> Profile:
    """Validate a profile given as the dict a TOML file parses to."""
    where = f"profile {source!r}"
    unknown = set(raw) - {"profile", "tasks"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown top-level section(s) {sorted(unknown)}; allowed: profile, tasks"
        )
    prof = raw.get("profile")
    if not isinstance(prof, dict):
        raise ConfigError(f"{where}: missing [profile] table")
    bad = set(prof) - _PROFILE_KEYS
    if bad:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(bad)} in [profile]; allowed: {sorted(_PROFILE_KEYS)}"
        )
    for key in ("name", "sparsities", "seeds"):
        if key not in prof:
            raise ConfigError(f"{where}: [profile] needs {key!r}")
    tasks_raw = raw.get("tasks")
    if not isinstance(tasks_raw, dict) or not tasks_raw:
        raise ConfigError(f"{where}: needs at least one [tasks.<name>] table")
    tasks = tuple(_parse_task(n, t, where) for n, t in tasks_raw.items())
    return check_seed_design(Profile(
        name=_typed(prof["name"], str, "profile.name", where),
        description=_typed(prof.get("description", ""), str, "profile.description", where),
        tasks=tasks,
        sparsities=validate_sparsities(prof["sparsities"], where=where),
        techniques=validate_techniques(prof.get("techniques", []), where=where),
        seeds=validate_seeds(prof["seeds"], where=where),
        source=source,
        quantize_pruned=_typed(prof.get("quantize_pruned", False), bool, "profile.quantize_pruned", where),
        representative_size=_positive(prof.get("representative_size", 200), "profile.representative_size", where),
        threads=_positive(prof.get("threads", 1), "profile.threads", where),
        cie_correction=_choice(prof.get("cie_correction", "none"), CIE_CORRECTIONS,
                               "profile.cie_correction", where),
        gpus=_count(prof.get("gpus", 0), "profile.gpus", where),
        compressed_seeds=(validate_seeds(prof["compressed_seeds"], where=f"{where}: compressed_seeds")
                          if "compressed_seeds" in prof else ()),
        compressed_seed_offset=_positive(prof.get("compressed_seed_offset", 1000),
                                         "profile.compressed_seed_offset", where),
    ), where=where)


def check_seed_design(profile: Profile, *, where: str = "profile") -> Profile:
    """Refuse compressed-from-scratch seeds that overlap the dense seeds.

    Why: a compressed model trained with a dense model's seed starts from the same
    weights and holds out the same validation images, so the two are not independent
    and every comparison between the populations is biased toward "no change".
    """
    shared = sorted(set(profile.seeds) & set(profile.independent_seeds()))
    if shared:
        source = ("compressed_seeds" if profile.compressed_seeds
                  else f"seeds + compressed_seed_offset ({profile.compressed_seed_offset})")
        raise ConfigError(f"{where}: the seeds of models compressed from scratch ({source}) must be "
                          f"disjoint from the dense seeds; shared: {shared}")
    return profile


def _count(value: Any, key: str, where: str) -> int:
    value = _typed(value, int, key, where)
    if value < 0:
        raise ConfigError(f"{where}: {key} must be >= 0, got {value}")
    return value


def _choice(value: Any, allowed: tuple[str, ...], key: str, where: str) -> str:
    value = _typed(value, str, key, where)
    if value not in allowed:
        raise ConfigError(f"{where}: unknown {key} {value!r}; allowed: {', '.join(allowed)}")
    return value


def _positive(value: Any, key: str, where: str) -> int:
    value = _typed(value, int, key, where)
    if value < 1:
        raise ConfigError(f"{where}: {key} must be >= 1, got {value}")
    return value


def _typed(value: Any, kind: type | tuple[type, ...], key: str, where: str) -> Any:
    # bool is an int in Python; never accept it where a number is meant.
    if isinstance(value, bool) and kind is not bool:
        ok = False
    else:
        ok = isinstance(value, kind)
    if not ok:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ConfigError(f"{where}: {key} must be {names}, got {value!r}")
    return value


def _parse_task(name: str, raw: Any, where: str) -> Task:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [tasks.{name}] must be a table")
    if "onednn" in raw:
        raise ConfigError(f"{where}: [tasks.{name}] onednn: every run uses oneDNN's kernels "
                          "(one choice for every profile, cielib.keras.ONEDNN); remove the key")
    bad = set(raw) - set(_TASK_FIELDS)
    if bad:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(bad)} in [tasks.{name}]; "
            f"allowed: {sorted(_TASK_FIELDS)}"
        )
    missing = _REQUIRED_TASK - set(raw)
    if missing:
        raise ConfigError(f"{where}: [tasks.{name}] is missing {sorted(missing)}")
    k = f"tasks.{name}"
    dataset = _typed(raw["dataset"], str, f"{k}.dataset", where)
    if dataset not in DATASETS:
        raise ConfigError(
            f"{where}: unknown dataset {dataset!r} in [{k}]; allowed: {', '.join(DATASETS)}"
        )
    model = _typed(raw["model"], str, f"{k}.model", where)
    if model not in MODELS:
        raise ConfigError(
            f"{where}: unknown model {model!r} in [{k}]; allowed: {', '.join(MODELS)}"
        )
    optimizer = _typed(raw["optimizer"], str, f"{k}.optimizer", where)
    if optimizer not in OPTIMIZERS:
        raise ConfigError(
            f"{where}: unknown optimizer {optimizer!r} in [{k}]; allowed: {', '.join(OPTIMIZERS)}"
        )
    lr = float(_typed(raw["learning_rate"], (int, float), f"{k}.learning_rate", where))
    if not lr > 0:
        raise ConfigError(f"{where}: {k}.learning_rate must be > 0, got {lr}")
    epochs = validate_epochs(_typed(raw["epochs"], int, f"{k}.epochs", where), where=where)
    batch = _typed(raw["batch_size"], int, f"{k}.batch_size", where)
    if batch < 1:
        raise ConfigError(f"{where}: {k}.batch_size must be >= 1, got {batch}")
    momentum = float(_typed(raw.get("momentum", 0.0), (int, float), f"{k}.momentum", where))
    if not 0 <= momentum < 1:
        raise ConfigError(f"{where}: {k}.momentum must be in [0, 1), got {momentum}")
    vf = float(
        _typed(raw.get("validation_fraction", 0.1), (int, float), f"{k}.validation_fraction", where)
    )
    if not 0 < vf < 1:
        raise ConfigError(f"{where}: {k}.validation_fraction must be in (0, 1), got {vf}")
    weights = _typed(raw.get("weights", "none"), str, f"{k}.weights", where)
    options = _typed(raw.get("model_options", {}), dict, f"{k}.model_options", where)
    input_size = _typed(raw.get("input_size", 0), int, f"{k}.input_size", where)
    spec = MODELS[model]
    if input_size and (not spec.supports_imagenet or input_size < spec.min_input_size):
        raise ConfigError(
            f"{where}: {k}.input_size {input_size} is not allowed for {model!r}: 0 (the images' "
            f"own size), or >= {spec.min_input_size} for a model with a pretrained base "
            f"({', '.join(n for n, s in MODELS.items() if s.supports_imagenet)})")
    prune = _parse_prune(raw, k, where)
    return Task(
        name=name,
        label=_typed(raw.get("label", name), str, f"{k}.label", where),
        dataset=dataset,
        model=model,
        optimizer=optimizer,
        learning_rate=lr,
        epochs=epochs,
        batch_size=batch,
        momentum=momentum,
        weights=weights,
        validation_fraction=vf,
        model_options=dict(options),
        input_size=input_size,
        stand_in_for=_typed(raw.get("stand_in_for", ""), str, f"{k}.stand_in_for", where),
        cache_features=_typed(raw.get("cache_features", True), bool, f"{k}.cache_features", where),
        paper_task=_paper_task(raw.get("paper_task", ""), k, where),
        **prune,
    )


def _paper_task(value: Any, k: str, where: str) -> str:
    value = _typed(value, str, f"{k}.paper_task", where)
    if value and value not in PAPER_TASKS:
        raise ConfigError(f"{where}: unknown paper_task {value!r} in [{k}]; allowed: {', '.join(PAPER_TASKS)}")
    return value


def _parse_prune(raw: dict[str, Any], k: str, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, allowed in (("prune_schedule", PRUNE_SCHEDULES), ("prune_from", PRUNE_FROM),
                         ("prune_layers", PRUNE_LAYERS)):
        if key in raw:
            value = _typed(raw[key], str, f"{k}.{key}", where)
            if value not in allowed:
                raise ConfigError(
                    f"{where}: unknown {key} {value!r} in [{k}]; allowed: {', '.join(allowed)}"
                )
            out[key] = value
    for key in ("prune_epochs", "prune_frequency"):
        if key in raw:
            value = _typed(raw[key], int, f"{k}.{key}", where)
            if value < 0:
                raise ConfigError(f"{where}: {k}.{key} must be >= 0 (0: default), got {value}")
            out[key] = value
    if "prune_ramp_fraction" in raw:
        value = float(_typed(raw["prune_ramp_fraction"], (int, float), f"{k}.prune_ramp_fraction", where))
        if not 0 < value <= 1:
            raise ConfigError(f"{where}: {k}.prune_ramp_fraction must be in (0, 1], got {value}")
        out["prune_ramp_fraction"] = value
    return out


def validate_sparsities(values: Any, *, where: str = "sparsities") -> tuple[float, ...]:
    """Sparsities are floats in [0, 1), no duplicates; 0.0 is the dense baseline."""
    if not isinstance(values, (list, tuple)) or not values:
        raise ConfigError(f"{where}: sparsities must be a non-empty list, got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
            raise ConfigError(f"{where}: sparsity {v!r} is outside [0, 1)")
        out.append(float(v))
    if len(set(out)) != len(out):
        raise ConfigError(f"{where}: duplicate sparsities in {out}")
    return tuple(out)


def validate_seeds(values: Any, *, where: str = "seeds") -> tuple[int, ...]:
    """Seeds are distinct non-negative integers."""
    if not isinstance(values, (list, tuple)) or not values:
        raise ConfigError(f"{where}: seeds must be a non-empty list, got {values!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ConfigError(f"{where}: seed {v!r} must be a non-negative integer")
    if len(set(values)) != len(values):
        dup = sorted({v for v in values if list(values).count(v) > 1})
        raise ConfigError(f"{where}: duplicate seed(s) {dup}")
    return tuple(values)


def validate_techniques(values: Any, *, where: str = "techniques") -> tuple[str, ...]:
    """Quantization techniques, each a registered one (:mod:`cielib.compression`) other
    than the reference (which is always converted too), no duplicates."""
    if not isinstance(values, (list, tuple)):
        raise ConfigError(f"{where}: techniques must be a list, got {values!r}")
    allowed = [t.name for t in compression.techniques() if not t.reference]
    for v in values:
        if v not in allowed:
            raise ConfigError(
                f"{where}: unknown technique {v!r}; allowed: {', '.join(allowed)}"
            )
    if len(set(values)) != len(values):
        raise ConfigError(f"{where}: duplicate techniques in {list(values)}")
    return tuple(values)


def validate_epochs(value: Any, *, where: str = "epochs") -> int:
    """Epochs are an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: epochs must be an integer >= 1, got {value!r}")
    return value
