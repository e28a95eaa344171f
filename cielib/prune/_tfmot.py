"""tfmot's pruning internals, in one place: its API, its layer registry, its wrapper class.

The underscore is on the module: these helpers are shared by :mod:`cielib.prune.wrap`
(putting the wrappers on and off) and :mod:`cielib.prune.measure` (counting zeros),
and by nothing outside the package. The schedule (:mod:`cielib.prune.schedule`) needs
none of it: like tensorflow-model-optimization's own ``pruning_schedule.py``, it only
needs tfmot's public schedule classes, and the wrapper imports the schedule, never the
other way round.
"""

from __future__ import annotations

from typing import Any


def sparsity_api():
    """``(tfmot.sparsity.keras, PruneRegistry, pruning_wrapper, prunable_layer)``.

    Imported lazily (through :mod:`cielib.keras`, which pins Keras 2 first) so that
    importing the package stays cheap. The registry and wrapper class are tfmot
    internals (not in its public API); the pinned tfmot 0.8.1 is what was checked.
    """
    from cielib.keras import tfmot

    from tensorflow_model_optimization.python.core.sparsity.keras import (
        prunable_layer,
        prune_registry,
        pruning_wrapper,
    )

    return tfmot.sparsity.keras, prune_registry.PruneRegistry, pruning_wrapper, prunable_layer


def walk(model: Any):
    """Every layer of ``model``, descending into nested models, in order."""
    from cielib.keras import keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from walk(layer)
        else:
            yield layer


def is_wrapped(model: Any) -> bool:
    """Whether any layer of ``model`` carries a pruning wrapper."""
    wrapper = sparsity_api()[2].PruneLowMagnitude
    return any(isinstance(layer, wrapper) for layer in walk(model))


def registry_weights(layer: Any) -> list:
    """The weights tfmot would prune in an unwrapped layer, without modifying it.

    Mirrors ``PruneRegistry.make_prunable`` (which would attach a method to the
    layer): custom ``get_prunable_weights`` first, then the registry's names.
    """
    _, registry, _, prunable_layer = sparsity_api()
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


def is_trainable_weight(layer: Any, weight: Any) -> bool:
    """Whether ``weight`` is one of ``layer``'s trainable weights (and the layer trains)."""
    return layer.trainable and any(weight is w for w in layer.trainable_weights)
