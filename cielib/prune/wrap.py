"""Wrapping a model for magnitude pruning with tfmot, and stripping the wrappers again."""

from __future__ import annotations

from typing import Any

from cielib.checks import check_choice
from cielib.prune.schedule import LAYERS, PruningPlan


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


