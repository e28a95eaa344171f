"""Magnitude pruning with tensorflow-model-optimization (tfmot), made hard to get wrong.

The paper prunes by weight magnitude to 30/50/70/90% sparsity with tfmot. tfmot does
the masking, but its schedule is easy to misconfigure *silently*: a run can finish
with far fewer zeros than asked for and nothing complains. This module derives the
schedule from the number of training steps, refuses one that cannot reach its
target, and measures the sparsity that was actually reached.

How tfmot counts steps (checked against tensorflow-model-optimization 0.8.1):

* Each wrapper keeps its own ``pruning_step``. ``UpdatePruningStep`` sets it to 0 at
  the start of training and every training batch increments it *before* the mask
  update, so the k-th training batch (counted from 1, across epochs and ``fit``
  calls) runs as step k. Step 0 is never a training step. Validation, ``evaluate``
  and ``predict`` do not advance it.
* A mask update happens at steps ``s`` with ``begin_step <= s <= end_step`` and
  ``(s - begin_step) % frequency == 0``. With ``begin_step=0`` (the default) the
  first update is therefore at step ``frequency``: a frequency larger than the
  number of training steps leaves every weight in place and sparsity at 0. With
  ``begin_step >= 1`` the first update is at ``begin_step`` itself.
* ``PolynomialDecay`` only applies its final sparsity at ``end_step``; if
  ``end_step`` is not ``begin_step + k * frequency`` the last update happens
  earlier, at a lower sparsity (e.g. end 8, frequency 3: updates at 3 and 6 only).
* Masked weights still receive gradient updates; they are re-masked at the next
  forward pass and at every epoch end, so weights saved after ``fit`` are sparse.

Two ways to choose the layers (``prune_model(..., layers=...)``):

* ``"all"``: tfmot's whole-model pruning; every Conv/Dense kernel is masked
  (BatchNorm, biases and depthwise kernels are not pruned). For the paper's
  frozen-base transfer models this also masks the frozen convolution kernels,
  which are never retrained to compensate: the closest match to "prune the whole
  network", but much harsher on a frozen base.
* ``"trainable"``: only layers whose prunable weights are trainable (e.g. the new
  dense head of a frozen-base model); the frozen kernels stay dense. Measure such a
  model with ``layers="trainable"`` too.

Wrapped (unstripped) models only load inside
``tfmot.sparsity.keras.prune_scope()``; :func:`strip` before saving.

Why a pruned model is slower to train, not faster (see
``benchmarks/bench_pruning.py``): the masks are dense tensors multiplied into the
weights on every step, the mask update sorts each kernel's magnitudes (``top_k``
over all weights) on update steps, and there are no sparse kernels, so zeros cost
as much compute as any other value. Pruning pays off in size only once the file is
compressed (:func:`saved_sizes`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cielib import sizes
from cielib.checks import check_choice, check_int, is_real

__all__ = [
    "LAYERS",
    "SCHEDULES",
    "PruningPlan",
    "SparsityError",
    "callbacks",
    "check_sparsity",
    "measured_sparsity",
    "plan_schedule",
    "prune_model",
    "saved_sizes",
    "sparsity_report",
    "strip",
]

#: Pruning schedules: Zhu & Gupta's cubic ramp, or the target from the first update.
SCHEDULES = ("polynomial", "constant")
#: Which layers :func:`prune_model` wraps (and the reports measure).
LAYERS = ("all", "trainable")
#: Mask updates over the ramp when ``frequency`` is not given.
DEFAULT_RAMP_UPDATES = 20
#: Exponent of the polynomial ramp (Zhu & Gupta 2017; tfmot's default).
POLYNOMIAL_POWER = 3
#: Name of the size-weighted summary row of :func:`sparsity_report`.
OVERALL = "overall"

_REPORT_COLUMNS = ["layer", "weight", "shape", "size", "zeros", "sparsity", "trainable"]


class SparsityError(RuntimeError):
    """The measured sparsity of a pruned model missed its target."""


# ----------------------------------------------------------------------------- helpers


def _check_target(value: Any) -> float:
    if not is_real(value) or not np.isfinite(value):
        raise ValueError(f"target_sparsity must be a float in (0, 1), got {value!r}")
    if value == 0:
        raise ValueError(
            "target_sparsity 0 means no pruning: train the dense baseline without "
            "plan_schedule/prune_model (allowed: 0 < target_sparsity < 1)"
        )
    if not 0 < value < 1:
        raise ValueError(f"target_sparsity must be in (0, 1), got {value!r}")
    return float(value)


def _tfmot_sparsity():
    """``tfmot.sparsity.keras`` plus the internals needed to find prunable weights.

    Imported lazily (through :mod:`cielib.keras`, which pins Keras 2 first) so that
    importing this module stays cheap. The registry and wrapper class are tfmot
    internals (not in its public API); the pinned tfmot 0.8.1 is what was checked.
    """
    from cielib.keras import tfmot

    from tensorflow_model_optimization.python.core.sparsity.keras import (
        prunable_layer,
        prune_registry,
        pruning_wrapper,
    )

    return tfmot.sparsity.keras, prune_registry.PruneRegistry, pruning_wrapper, prunable_layer


# ------------------------------------------------------------------------------ plans


@dataclass(frozen=True)
class PruningPlan:
    """A complete, checked tfmot schedule; ``to_dict()`` goes into ``metrics.json``.

    Steps are tfmot's ``pruning_step``: the k-th training batch is step k (from 1).
    Build plans with :func:`plan_schedule`; constructing one by hand is checked the
    same way, so an unreachable plan cannot exist.

    Attributes:
        kind: One of :data:`SCHEDULES`.
        target_sparsity: Share of zeros the last mask update applies, in (0, 1).
        initial_sparsity: Sparsity of the first update: 0 for ``polynomial`` (the
            ramp starts dense), ``target_sparsity`` for ``constant``.
        begin_step: Step the schedule starts counting from.
        end_step: Last mask update; always ``begin_step + k * frequency`` and at most
            ``total_steps - 1``.
        frequency: Steps between mask updates.
        power: Exponent of the polynomial ramp (3); 0 for ``constant``.
        total_steps: Training steps the plan was made for (steps per epoch x epochs).
    """

    kind: str
    target_sparsity: float
    initial_sparsity: float
    begin_step: int
    end_step: int
    frequency: int
    power: int
    total_steps: int

    def __post_init__(self) -> None:
        check_choice(self.kind, SCHEDULES, what="kind")
        _check_target(self.target_sparsity)
        for name, minimum in (("begin_step", 0), ("end_step", 0), ("frequency", 1),
                              ("total_steps", 2), ("power", 0)):
            check_int(name, getattr(self, name), minimum=minimum)
        if self.kind == "polynomial":
            if not (is_real(self.initial_sparsity)
                    and 0 <= self.initial_sparsity < self.target_sparsity):
                raise ValueError(
                    f"initial_sparsity must be in [0, target_sparsity={self.target_sparsity}) "
                    f"for a polynomial ramp, got {self.initial_sparsity!r}"
                )
            if self.power < 1:
                raise ValueError(f"power must be >= 1 for a polynomial ramp, got {self.power}")
            if self.end_step <= self.begin_step:
                raise ValueError(
                    f"end_step {self.end_step} must be after begin_step {self.begin_step} "
                    "for a polynomial ramp"
                )
        elif self.initial_sparsity != self.target_sparsity:
            raise ValueError(
                f"a constant schedule applies target_sparsity={self.target_sparsity} at every "
                f"update, so initial_sparsity must equal it, got {self.initial_sparsity!r}"
            )
        if self.end_step < self.begin_step or (self.end_step - self.begin_step) % self.frequency:
            raise ValueError(
                f"end_step {self.end_step} must be begin_step {self.begin_step} + k * frequency "
                f"{self.frequency}, or tfmot's last update misses it and the target"
            )
        last = self.total_steps - 1
        if self.end_step > last:
            raise ValueError(
                f"end_step {self.end_step} is beyond training: {self.total_steps} steps, so "
                f"the last mask update must be at step <= {last}"
            )
        if self.n_updates < 1:
            raise ValueError(
                f"no mask update would happen: the first is at step {self.first_update_step} "
                f"but the last allowed is end_step {self.end_step} (frequency "
                f"{self.frequency}, begin_step {self.begin_step}, {self.total_steps} steps)"
            )

    @property
    def first_update_step(self) -> int:
        """Step of the first mask update (step 0 never trains, so not ``begin_step=0``)."""
        return self.begin_step if self.begin_step >= 1 else self.frequency

    @property
    def n_updates(self) -> int:
        """Number of mask updates during training."""
        first = self.first_update_step
        if first > self.end_step:
            return 0
        return (self.end_step - first) // self.frequency + 1

    def to_dict(self) -> dict[str, Any]:
        """Every field plus ``first_update_step`` and ``n_updates``, JSON-ready."""
        out = dataclasses.asdict(self)
        out["first_update_step"] = self.first_update_step
        out["n_updates"] = self.n_updates
        return out

    def schedule(self) -> Any:
        """The tfmot ``PruningSchedule`` this plan describes."""
        sk = _tfmot_sparsity()[0]
        if self.kind == "polynomial":
            return sk.PolynomialDecay(
                initial_sparsity=self.initial_sparsity,
                final_sparsity=self.target_sparsity,
                begin_step=self.begin_step,
                end_step=self.end_step,
                power=self.power,
                frequency=self.frequency,
            )
        return sk.ConstantSparsity(
            target_sparsity=self.target_sparsity,
            begin_step=self.begin_step,
            end_step=self.end_step,
            frequency=self.frequency,
        )


def plan_schedule(
    *,
    target_sparsity: float,
    steps_per_epoch: int,
    epochs: int,
    kind: str = "polynomial",
    ramp_fraction: float = 0.7,
    frequency: int | None = None,
    begin_step: int = 0,
) -> PruningPlan:
    """Derive a schedule that reaches ``target_sparsity`` within the training run.

    ``polynomial``: Zhu & Gupta's cubic ramp (tfmot ``PolynomialDecay``, power 3)
    from 0 to the target over ``ramp_fraction`` of the steps after ``begin_step``,
    then held (masks frozen, weights keep training). ``end_step`` is rounded to the
    nearest ``begin_step + k * frequency`` so the last update applies exactly the
    target. ``constant``: tfmot ``ConstantSparsity``: every update, from the first,
    applies the target, re-selecting the mask each time until the last update before
    training ends; ``ramp_fraction`` is not used.

    The default ``frequency`` gives about :data:`DEFAULT_RAMP_UPDATES` (20) updates
    over the ramp (over all steps for ``constant``), and 1 when there are fewer
    steps than that, so short quick-profile runs still prune gradually instead of
    in one shot. The last update must fall at a step <= ``total_steps - 1`` (one
    step of margin: tfmot would also update at the very last step).

    Args:
        target_sparsity: Share of zeros to reach, in (0, 1). 0 is refused: dense runs
            don't prune.
        steps_per_epoch: Training batches per epoch (``ceil(n_train / batch_size)``).
        epochs: Epochs the pruned model trains.
        kind: One of :data:`SCHEDULES`.
        ramp_fraction: Share of the steps after ``begin_step`` that the polynomial
            ramp takes, in (0, 1].
        frequency: Steps between mask updates; ``None`` derives it (see above).
        begin_step: Step at which the schedule starts (0: from the start).

    Returns:
        A checked :class:`PruningPlan`.

    Raises:
        ValueError: a bad argument, or a schedule that cannot reach the target (no
            mask update within training); the message names the numbers.
    """
    target = _check_target(target_sparsity)
    steps_per_epoch = check_int("steps_per_epoch", steps_per_epoch, minimum=1)
    epochs = check_int("epochs", epochs, minimum=1)
    check_choice(kind, SCHEDULES, what="kind")
    if not is_real(ramp_fraction) or not 0 < ramp_fraction <= 1:
        raise ValueError(f"ramp_fraction must be in (0, 1], got {ramp_fraction!r}")
    if frequency is not None:
        frequency = check_int("frequency", frequency, minimum=1)
    begin_step = check_int("begin_step", begin_step, minimum=0)

    total = steps_per_epoch * epochs
    last = total - 1  # latest step allowed for the final mask update
    if total < 2:
        raise ValueError(
            f"{total} training step ({steps_per_epoch} per epoch x {epochs} epochs) is too "
            "few to prune: the last mask update must come before the last step"
        )
    if begin_step > last:
        raise ValueError(
            f"begin_step {begin_step} leaves no step for a mask update: training has "
            f"{total} steps ({steps_per_epoch} per epoch x {epochs} epochs), last usable "
            f"update step {last}"
        )
    span = total - begin_step
    ramp = ramp_fraction * span if kind == "polynomial" else span
    freq = frequency if frequency is not None else max(1, round(ramp / DEFAULT_RAMP_UPDATES))
    max_k = (last - begin_step) // freq
    if kind == "polynomial" or begin_step == 0:
        # A polynomial update at begin_step applies sparsity 0; step 0 never trains.
        if last - begin_step < 1:
            raise ValueError(
                f"begin_step {begin_step} leaves no step after it for a mask update: "
                f"training has {total} steps ({steps_per_epoch} per epoch x {epochs} "
                f"epochs) and the last update must be at step <= {last}"
            )
        if max_k < 1:
            raise ValueError(
                f"frequency {freq} leaves no mask update to reach target_sparsity {target}: "
                f"the first would be at step {begin_step + freq}, but training has {total} "
                f"steps ({steps_per_epoch} per epoch x {epochs} epochs) and the last update "
                f"must be at step <= {last}; use frequency <= {last - begin_step}"
            )
    if kind == "polynomial":
        k = min(max_k, max(1, round(ramp / freq)))
        return PruningPlan(
            kind=kind, target_sparsity=target, initial_sparsity=0.0,
            begin_step=begin_step, end_step=begin_step + k * freq, frequency=freq,
            power=POLYNOMIAL_POWER, total_steps=total,
        )
    return PruningPlan(
        kind=kind, target_sparsity=target, initial_sparsity=target,
        begin_step=begin_step, end_step=begin_step + max_k * freq, frequency=freq,
        power=0, total_steps=total,
    )


# ---------------------------------------------------------------------------- wrapping


def _walk(model: Any):
    """Every layer of ``model``, descending into nested models, in order."""
    from cielib.keras import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _walk(layer)
        else:
            yield layer


def _is_wrapped(model: Any) -> bool:
    wrapper = _tfmot_sparsity()[2].PruneLowMagnitude
    return any(isinstance(layer, wrapper) for layer in _walk(model))


def _registry_weights(layer: Any) -> list:
    """The weights tfmot would prune in an unwrapped layer, without modifying it.

    Mirrors ``PruneRegistry.make_prunable`` (which would attach a method to the
    layer): custom ``get_prunable_weights`` first, then the registry's names.
    """
    _, registry, _, prunable_layer = _tfmot_sparsity()
    if isinstance(layer, prunable_layer.PrunableLayer) or hasattr(layer, "get_prunable_weights"):
        return list(layer.get_prunable_weights())
    if not registry.supports(layer):
        return []
    if registry._is_rnn_layer(layer):  # noqa: SLF001 (pinned tfmot internals)
        out = []
        for cell in registry._get_rnn_cells(layer):  # noqa: SLF001
            if isinstance(cell, prunable_layer.PrunableLayer):
                out.extend(cell.get_prunable_weights())
            else:
                out.extend(getattr(cell, n) for n in registry._RNN_CELLS_WEIGHTS_MAP[cell.__class__])  # noqa: SLF001
        return out
    weights = []
    for name in registry._weight_names(layer):  # noqa: SLF001
        obj = layer
        for part in name.split("."):
            obj = getattr(obj, part)
        weights.append(obj)
    return weights


def _is_trainable_weight(layer: Any, weight: Any) -> bool:
    return layer.trainable and any(weight is w for w in layer.trainable_weights)


def prune_model(model: Any, plan: PruningPlan, *, layers: str = "all") -> Any:
    """Wrap ``model`` for magnitude pruning along ``plan``.

    The returned model shares its layers (and weights) with ``model`` and has no
    optimizer: compile it, and train it with :func:`callbacks`.

    Args:
        model: A functional or Sequential ``tf_keras`` model, not yet wrapped.
        plan: From :func:`plan_schedule`.
        layers: ``"all"`` wraps every prunable layer (tfmot's whole-model pruning;
            on a frozen-base model this masks the frozen conv kernels too, which are
            never retrained); ``"trainable"`` only layers whose prunable weights are
            trainable (e.g. the new dense head), leaving frozen kernels dense.

    Returns:
        The wrapped model.

    Raises:
        ValueError: bad ``plan``/``layers``, an already wrapped model, or nothing to
            prune (e.g. ``layers="trainable"`` on a fully frozen model).
    """
    from cielib.keras import keras

    if not isinstance(plan, PruningPlan):
        raise ValueError(f"plan must be a PruningPlan (from plan_schedule), got {type(plan).__name__}")
    layers = check_choice(layers, LAYERS, what="layers")
    if not isinstance(model, keras.Model):
        raise ValueError(
            f"model must be a tf_keras Model (build it with cielib.models), got {type(model)!r}"
        )
    if _is_wrapped(model):
        raise ValueError("model is already wrapped for pruning; strip() it first")
    sk = _tfmot_sparsity()[0]
    schedule = plan.schedule()
    if layers == "all":
        if not any(_registry_weights(layer) for layer in _walk(model)):
            raise ValueError(f"model {model.name!r} has no prunable (Conv/Dense) kernels")
        return sk.prune_low_magnitude(model, pruning_schedule=schedule)

    wrapped: list[str] = []

    def clone_fn(layer):
        if isinstance(layer, keras.Model):
            return keras.models.clone_model(layer, clone_function=clone_fn)
        weights = _registry_weights(layer)
        if weights and all(_is_trainable_weight(layer, w) for w in weights):
            wrapped.append(layer.name)
            return sk.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer  # shared as is, so its (frozen) weights are kept

    pruned = keras.models.clone_model(model, clone_function=clone_fn)
    if not wrapped:
        raise ValueError(
            f"layers='trainable' found no trainable prunable kernel in {model.name!r}; "
            "use layers='all' to prune frozen layers"
        )
    return pruned


def callbacks() -> list:
    """``[UpdatePruningStep()]``: advances the step counter and re-masks at epoch ends.

    Without it tfmot fails at the first training step; nothing else is needed
    (``PruningSummaries`` would add TensorBoard logging).
    """
    return [_tfmot_sparsity()[0].UpdatePruningStep()]


def strip(model: Any) -> Any:
    """Remove the pruning wrappers, keeping the (sparse) weights; save this model.

    A model without wrappers is returned unchanged. The result has no optimizer.
    """
    from cielib.keras import keras

    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a tf_keras Model, got {type(model)!r}")
    if not _is_wrapped(model):
        return model
    return _tfmot_sparsity()[0].strip_pruning(model)


# --------------------------------------------------------------------------- measuring


def _kernel_rows(model: Any) -> list[dict[str, Any]]:
    wrapper = _tfmot_sparsity()[2].PruneLowMagnitude
    rows = []
    for layer in _walk(model):
        if isinstance(layer, wrapper):
            inner = layer.layer
            # What the forward pass uses: weight * mask.
            pairs = [(w, w.numpy() * m.numpy()) for w, m, _ in layer.pruning_vars]
        else:
            inner = layer
            pairs = [(w, w.numpy()) for w in _registry_weights(layer)]
        for weight, values in pairs:
            size = int(values.size)
            zeros = int(np.count_nonzero(values == 0))
            rows.append({
                "layer": inner.name,
                "weight": weight.name.split("/")[-1].split(":")[0],
                "shape": "x".join(str(d) for d in values.shape),
                "size": size,
                "zeros": zeros,
                "sparsity": zeros / size if size else float("nan"),
                "trainable": _is_trainable_weight(inner, weight),
            })
    return rows


def sparsity_report(model: Any, *, layers: str = "all") -> pd.DataFrame:
    """Zeros per prunable kernel, and overall, of a stripped (or wrapped) model.

    "Prunable" is what tfmot would prune (Conv/Dense kernels, found with tfmot's own
    registry), so a dense model can be reported the same way. For a wrapped model
    the effective weights (weight x mask) are counted.

    Args:
        model: Any ``tf_keras`` model.
        layers: ``"all"`` prunable kernels, or only ``"trainable"`` ones (measure a
            model pruned with ``layers="trainable"`` this way).

    Returns:
        One row per kernel with columns ``layer``, ``weight``, ``shape``, ``size``,
        ``zeros``, ``sparsity``, ``trainable``, then a final row with ``layer ==
        "overall"`` (size-weighted: total zeros / total size; ``weight`` and
        ``shape`` empty, ``trainable`` None) so the summary survives ``to_csv``. The
        overall value is also in ``df.attrs["overall"]``.

    Raises:
        ValueError: bad ``layers``, or no prunable kernel selected.
    """
    layers = check_choice(layers, LAYERS, what="layers")
    rows = _kernel_rows(model)
    if layers == "trainable":
        rows = [r for r in rows if r["trainable"]]
    if not rows:
        raise ValueError(
            f"model {getattr(model, 'name', model)!r} has no "
            f"{'trainable ' if layers == 'trainable' else ''}prunable (Conv/Dense) kernels"
        )
    size = sum(r["size"] for r in rows)
    zeros = sum(r["zeros"] for r in rows)
    overall = zeros / size
    rows.append({"layer": OVERALL, "weight": "", "shape": "", "size": size, "zeros": zeros,
                 "sparsity": overall, "trainable": None})
    df = pd.DataFrame(rows, columns=_REPORT_COLUMNS)
    df.attrs["overall"] = overall
    return df


def measured_sparsity(model: Any, *, layers: str = "all") -> float:
    """Overall share of zeros over the kernels pruning targets (size-weighted)."""
    return float(sparsity_report(model, layers=layers).attrs["overall"])


def check_sparsity(
    model: Any, target: float, *, tolerance: float = 0.01, layers: str = "all"
) -> float:
    """Measure the overall sparsity and fail loudly when it misses ``target``.

    Args:
        model: The stripped (or wrapped) model after training.
        target: Planned sparsity, in [0, 1).
        tolerance: Largest allowed ``|measured - target|``.
        layers: As in :func:`sparsity_report`; must match ``prune_model``'s.

    Returns:
        The measured overall sparsity.

    Raises:
        SparsityError: missed; names target, measured and the worst layers.
        ValueError: bad ``target``/``tolerance``/``layers``.
    """
    if not is_real(target) or not 0 <= target < 1:
        raise ValueError(f"target must be in [0, 1), got {target!r}")
    if not is_real(tolerance) or not 0 <= tolerance < 1:
        raise ValueError(f"tolerance must be in [0, 1), got {tolerance!r}")
    report = sparsity_report(model, layers=layers)
    measured = float(report.attrs["overall"])
    if abs(measured - target) <= tolerance:
        return measured
    per_layer = report[report["layer"] != OVERALL].copy()
    per_layer["miss"] = (per_layer["sparsity"] - target).abs()
    worst = per_layer.sort_values("miss", ascending=False).head(3)
    listing = ", ".join(
        f"{r.layer}/{r.weight} {r.sparsity:.3f} ({r.size} weights)" for r in worst.itertuples()
    )
    hints = []
    if measured < 0.5 * target:
        hints.append(
            "were the masks ever updated? (a frequency larger than the training steps, "
            "a model that was not trained, or a missing UpdatePruningStep callback)"
        )
    if layers == "all":
        trainable = per_layer[per_layer["trainable"].astype(bool)]
        if len(trainable) and len(trainable) < len(per_layer):
            t = trainable["zeros"].sum() / trainable["size"].sum()
            if abs(t - target) <= tolerance:
                hints.append(
                    f"the trainable kernels alone are at {t:.3f}: if the model was pruned "
                    "with layers='trainable', measure with layers='trainable' too"
                )
    raise SparsityError(
        f"measured sparsity {measured:.4f} misses target {target} by more than "
        f"{tolerance} (layers={layers!r}); worst layers: {listing}"
        + ("; " + "; ".join(hints) if hints else "")
    )


def _without_optimizer(model: Any) -> Any:
    """A copy with the same architecture and weights but no optimizer state."""
    from cielib.keras import keras

    if getattr(model, "optimizer", None) is None:
        return model
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def saved_sizes(model: Any, directory: str | Path) -> dict[str, int]:
    """Save the stripped model as ``directory/model.keras`` and report its size.

    Pruning leaves tensors dense (zeros are stored like any float), so the raw file
    is as big as the dense model's; only compression cashes the zeros in, hence the
    gzip (level 9) size too. Wrappers are stripped and the optimizer state is left
    out (Adam's or momentum's slots are dense even for pruned weights and would
    swamp the comparison), so dense and pruned models compare like for like.

    Args:
        model: A wrapped, stripped or dense ``tf_keras`` model.
        directory: Existing or new directory; ``model.keras`` is (over)written there.

    Returns:
        ``{"model_bytes": raw size, "gzip_bytes": gzip -9 size}``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "model.keras"
    _without_optimizer(strip(model)).save(path)
    s = sizes.file_sizes(path, level=9)
    return {"model_bytes": s["bytes"], "gzip_bytes": s["gzip_bytes"]}
