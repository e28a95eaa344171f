"""Wrapping a model for magnitude pruning with tfmot, and stripping the wrappers again."""

from __future__ import annotations

from typing import Any

from cielib.checks import check_choice
from cielib.prune._tfmot import is_trainable_weight, is_wrapped, registry_weights, sparsity_api, walk
from cielib.prune.schedule import LAYERS, PruningPlan


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
    if is_wrapped(model):
        raise ValueError("model is already wrapped for pruning; strip() it first")
    sk = sparsity_api()[0]
    schedule = plan.schedule()
    if layers == "all":
        if not any(registry_weights(layer) for layer in walk(model)):
            raise ValueError(f"model {model.name!r} has no prunable (Conv/Dense) kernels")
        return sk.prune_low_magnitude(model, pruning_schedule=schedule)

    wrapped: list[str] = []

    def clone_fn(layer):
        if isinstance(layer, keras.Model):
            return keras.models.clone_model(layer, clone_function=clone_fn)
        weights = registry_weights(layer)
        if weights and all(is_trainable_weight(layer, w) for w in weights):
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
    return [sparsity_api()[0].UpdatePruningStep()]


def strip(model: Any) -> Any:
    """Remove the pruning wrappers, keeping the (sparse) weights; save this model.

    A model without wrappers is returned unchanged. The result has no optimizer.
    """
    from cielib.keras import keras

    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a tf_keras Model, got {type(model)!r}")
    if not is_wrapped(model):
        return model
    return sparsity_api()[0].strip_pruning(model)


