"""Graph surgery on a frozen-base classifier: cut it into base and head, put them back.

The paper froze its pretrained convolutional base and trained only new dense layers on
top (Section IX). A frozen base maps each image to the same activations at every step,
so :mod:`cielib.features` caches them and the head trains on the cache; what is saved,
evaluated and quantized afterwards is still the whole network, which :func:`assemble`
rebuilds layer for layer from the base and the trained head.

Where the cut goes: the base is everything before the first layer (walking back from
the output along a chain of single-input layers) that has trainable weights;
weightless layers such as ``Flatten`` or ``GlobalAveragePooling2D`` right before it
belong to the base, so the cache holds what the first trainable layer reads. A base is
only split off when caching cannot change the result: :func:`split_frozen_base`
refuses a base with trainable weights, pruning wrappers (masks change the weights
while training) or random layers (dropout, noise: they act differently in training
and inference).

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from typing import Any

from cielib import keras as lazy

__all__ = ["assemble", "is_pruning_wrapper", "is_random_layer", "split_frozen_base"]



def is_pruning_wrapper(layer: Any) -> bool:
    """Whether ``layer`` is tfmot's pruning wrapper (checked by class name, so that
    tfmot is only imported when it is already in use)."""
    return type(layer).__name__ == "PruneLowMagnitude"


def is_random_layer(layer: Any) -> bool:
    """Dropout, noise and random augmentation layers (tf_keras' ``BaseRandomLayer``
    gives each its own ``_random_generator``)."""
    return hasattr(layer, "_random_generator")


def _chain(model: Any, *, stop: Any = None) -> tuple[list[tuple[Any, dict, Any]], Any]:
    """Walk back from the single output along single-input layers.

    Returns ``(steps, start)``: ``steps`` in forward order as ``(layer, call_kwargs,
    input tensor)``, and ``start``, the tensor the first step reads (``stop`` if given
    and reached, else where the chain ends: a model input or a layer with several
    inputs).
    """
    if len(model.outputs) != 1:
        raise ValueError(
            f"model {model.name!r} has {len(model.outputs)} outputs; only single-output "
            "classifiers can be split"
        )
    tensor = model.outputs[0]
    steps: list[tuple[Any, dict, Any]] = []
    while stop is None or tensor is not stop:
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            raise ValueError(f"model {model.name!r} is not a functional tf_keras model")
        layer, node_index, _ = history
        node = layer._inbound_nodes[node_index]  # noqa: SLF001 (tf_keras graph API)
        if node.is_input:
            break
        inputs = node.keras_inputs
        if len(inputs) != 1 or len(node.call_args) != 1:
            break
        steps.append((layer, dict(node.call_kwargs), inputs[0]))
        tensor = inputs[0]
    steps.reverse()
    return steps, tensor


def _replay(steps: list[tuple[Any, dict, Any]], x: Any) -> Any:
    for layer, kwargs, _ in steps:
        x = layer(x, **kwargs)
    return x


def split_frozen_base(model: Any) -> tuple[Any, Any]:
    """Split a frozen-base classifier into ``(base, head)`` that share its layers.

    The base maps images to the activations the first trainable layer reads; the head
    maps those activations to the model's output. ``head(base(x))`` is ``model(x)``,
    and training ``head`` trains ``model``'s own layers (they are the same objects).

    Args:
        model: A single-input, single-output functional ``tf_keras`` model whose
            frozen part comes first (e.g. ``cielib.models.build_model("vgg19", ...)``).

    Returns:
        ``(base, head)``: two uncompiled ``keras.Model`` s, named
        ``"<name>_base"`` and ``"<name>_head"``; the head's input is a new
        ``keras.Input`` of the base's output shape.

    Raises:
        ValueError: the model has no frozen base (its first layers train, or nothing
            with weights precedes the first trainable layer), its base is wrapped for
            pruning (``prune_layers="all"``: the base's weights would change), its base
            holds a random layer (dropout/noise: training and inference differ), it has
            no trainable layer, or it is not a single-input, single-output model.
    """
    keras = lazy.keras
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a tf_keras Model, got {type(model)!r}")
    if len(model.inputs) != 1:
        raise ValueError(
            f"model {model.name!r} has {len(model.inputs)} inputs; only single-input "
            "classifiers can be split"
        )
    steps, _ = _chain(model)
    first = next(
        (i for i, (layer, _, _) in enumerate(steps) if layer.trainable_weights), None
    )
    if first is None:
        raise ValueError(
            f"model {model.name!r} has no trainable layer at its end to train on cached "
            "features (is the whole model frozen?)"
        )
    head_steps = steps[first:]
    cut = head_steps[0][2]
    base = keras.Model(model.inputs, cut, name=f"{model.name}_base")
    wrapped = [layer.name for layer in base.layers if is_pruning_wrapper(layer)]
    if wrapped:
        raise ValueError(
            f"model {model.name!r} has a pruned base ({', '.join(wrapped[:3])}"
            f"{', ...' if len(wrapped) > 3 else ''} wrapped for pruning): its weights change "
            "while it trains, so its activations cannot be cached; prune the head only "
            "(prune_layers='trainable') or train the whole model"
        )
    trainable = [layer.name for layer in base.layers if layer.trainable_weights]
    frozen = [layer for layer in base.layers if layer.weights]
    if trainable or not frozen:
        where = (
            f"the first layer(s) {', '.join(trainable[:3])} have trainable weights"
            if trainable
            else "no layer with weights precedes the first trainable layer "
            f"{head_steps[0][0].name!r}"
        )
        raise ValueError(
            f"model {model.name!r} has no frozen base to cache: {where}; only models whose "
            "first layers are frozen (e.g. vgg19/resnet50) can train on cached features"
        )
    random = [layer.name for layer in base.layers if is_random_layer(layer)]
    if random:
        raise ValueError(
            f"model {model.name!r} has random layer(s) in its frozen base ({', '.join(random)}): "
            "they act differently while training, so cached activations would differ"
        )
    features = keras.Input(
        shape=tuple(cut.shape[1:]), dtype=cut.dtype, name=f"{model.name}_features"
    )
    head = keras.Model(features, _replay(head_steps, features), name=f"{model.name}_head")
    return base, head


def assemble(base: Any, head: Any, *, name: str | None = None) -> Any:
    """The whole classifier again: ``head``'s layers called on ``base``'s output.

    The result is flat (the base's and the head's layers sit directly in it, named as
    in the original model), so it saves, loads, prunes-reports and quantizes like a
    model built by :func:`cielib.models.build_model`. Weights are shared, not copied.

    Args:
        base: The base from :func:`split_frozen_base`.
        head: The trained head: the one from :func:`split_frozen_base`, or
            ``cielib.prune.strip`` of its pruned version.
        name: Model name; default: the head's name without ``"_head"``.

    Raises:
        ValueError: ``head`` is still wrapped for pruning (strip it first), is not a
            chain of single-input layers from its input, or its input shape is not the
            base's output shape.
    """
    keras = lazy.keras
    for what, m in (("base", base), ("head", head)):
        if not isinstance(m, keras.Model):
            raise ValueError(f"{what} must be a tf_keras Model, got {type(m)!r}")
    wrapped = [layer.name for layer in head.layers if is_pruning_wrapper(layer)]
    if wrapped:
        raise ValueError(
            f"head {head.name!r} is still wrapped for pruning ({', '.join(wrapped)}); "
            "assemble cielib.prune.strip(head)"
        )
    if len(base.outputs) != 1 or len(head.inputs) != 1:
        raise ValueError("base must have one output and head one input")
    b_shape = tuple(base.outputs[0].shape[1:])
    h_shape = tuple(head.inputs[0].shape[1:])
    if b_shape != h_shape:
        raise ValueError(
            f"head {head.name!r} reads features of shape {h_shape}, but base "
            f"{base.name!r} outputs {b_shape}"
        )
    steps, start = _chain(head, stop=head.inputs[0])
    if start is not head.inputs[0]:
        raise ValueError(
            f"head {head.name!r} is not a chain of single-input layers from its input"
        )
    if name is None:
        name = head.name[: -len("_head")] if head.name.endswith("_head") else head.name
    return keras.Model(base.inputs, _replay(steps, base.outputs[0]), name=name)


