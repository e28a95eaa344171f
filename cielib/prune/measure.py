"""The sparsity a pruned model actually reached, and its size on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cielib import runs, sizes
from cielib.checks import check_choice, is_real
from cielib.prune.schedule import LAYERS
from cielib.prune._tfmot import is_trainable_weight, registry_weights, sparsity_api, walk
from cielib.prune.wrap import strip

#: Name of the size-weighted summary row of :func:`sparsity_report`.
OVERALL = "overall"

_REPORT_COLUMNS = ["layer", "weight", "shape", "size", "zeros", "sparsity", "trainable"]


class SparsityError(RuntimeError):
    """The measured sparsity of a pruned model missed its target."""


def _kernel_rows(model: Any) -> list[dict[str, Any]]:
    wrapper = sparsity_api()[2].PruneLowMagnitude
    rows = []
    for layer in walk(model):
        if isinstance(layer, wrapper):
            inner = layer.layer
            # What the forward pass uses: weight * mask.
            pairs = [(w, w.numpy() * m.numpy()) for w, m, _ in layer.pruning_vars]
        else:
            inner = layer
            pairs = [(w, w.numpy()) for w in registry_weights(layer)]
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
                "trainable": is_trainable_weight(inner, weight),
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


def save_model(model: Any, directory: str | Path) -> dict[str, int]:
    """Save the trained model as ``directory/model.keras`` (``runs.MODEL``); its sizes.

    This writes a training run's main artifact, the model that is quantized later.

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
    path = directory / runs.MODEL
    _without_optimizer(strip(model)).save(path)
    s = sizes.file_sizes(path, level=9)
    return {"model_bytes": s["bytes"], "gzip_bytes": s["gzip_bytes"]}
