"""Pruning: schedules reach their target, unreachable ones are refused, sizes shrink.

Tiny VGG-style models (width 4) on scikit-learn digits (8x8x1): 2 epochs of 23 steps
each train in about a second. Trained models are cached per (kind, target) so the
other tests reuse them.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from cielib import data, models, prune, train
from cielib.keras import keras, tfmot

BATCH = 64
EPOCHS = 2


@functools.lru_cache(maxsize=1)
def digits():
    ds = data.load_dataset("digits")
    x = data.preprocess(ds.x_train, input_shape=(8, 8, 1))
    return x, ds.y_train


def tiny_model(seed: int = 0):
    keras.utils.set_random_seed(seed)
    return models.build_model("vgg_small", input_shape=(8, 8, 1), n_classes=10, width=4, seed=seed)


def steps_per_epoch() -> int:
    return -(-len(digits()[0]) // BATCH)


def fit(net, *, epochs: int = EPOCHS, callbacks=()):
    x, y = digits()
    train.compile_model(net, optimizer="sgd", learning_rate=0.05, momentum=0.9)
    net.fit(x, y, batch_size=BATCH, epochs=epochs, callbacks=list(callbacks), verbose=0)
    return net


def pruned(kind: str, target: float, *, layers: str = "all", model=None):
    """(wrapped, stripped, plan) after a short fit."""
    plan = prune.plan_schedule(
        target_sparsity=target, steps_per_epoch=steps_per_epoch(), epochs=EPOCHS, kind=kind
    )
    wrapped = prune.prune_model(model or tiny_model(), plan, layers=layers)
    fit(wrapped, callbacks=prune.callbacks())
    return wrapped, prune.strip(wrapped), plan


@functools.lru_cache(maxsize=None)
def trained(kind: str, target: float):
    return pruned(kind, target)


def kernel_rows(report):
    return report[report["layer"] != prune.OVERALL]


# ------------------------------------------------------------------ reaching the target


@pytest.mark.parametrize("kind", prune.SCHEDULES)
@pytest.mark.parametrize("target", [0.5, 0.9])
def test_schedule_reaches_target_per_layer_and_overall(kind, target):
    _, stripped, plan = trained(kind, target)
    assert plan.kind == kind
    report = prune.sparsity_report(stripped)
    rows = kernel_rows(report)
    assert list(rows["layer"]) == [
        "block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "fc1", "predictions"
    ]
    assert set(rows["weight"]) == {"kernel"}
    # tfmot keeps round(size * (1 - target)) weights per kernel: a 36-weight kernel can
    # only be 8/9 sparse, not 0.9, so allow half a weight on top of the tolerance.
    for r in rows.itertuples():
        assert abs(r.sparsity - target) <= 0.01 + 0.5 / r.size, (r.layer, r.sparsity)
    overall = report.iloc[-1]
    assert overall["layer"] == prune.OVERALL
    assert overall["size"] == rows["size"].sum() and overall["zeros"] == rows["zeros"].sum()
    assert report.attrs["overall"] == pytest.approx(overall["sparsity"])
    assert abs(prune.measured_sparsity(stripped) - target) <= 0.01
    assert prune.check_sparsity(stripped, target) == pytest.approx(report.attrs["overall"])


def test_wrapped_report_matches_stripped():
    wrapped, stripped, _ = trained("polynomial", 0.5)
    a, b = prune.sparsity_report(wrapped), prune.sparsity_report(stripped)
    assert a[["layer", "size", "zeros"]].equals(b[["layer", "size", "zeros"]])


def test_stripped_and_wrapped_give_same_outputs():
    wrapped, stripped, _ = trained("constant", 0.9)
    x = digits()[0][:128]
    a = wrapped.predict(x, verbose=0)
    b = stripped.predict(x, verbose=0)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not any("prune_low_magnitude" in layer.name for layer in stripped.layers)
    # A model with no wrappers is returned as is.
    assert prune.strip(stripped) is stripped


# ------------------------------------------------------------------------- refusing


def test_frequency_beyond_training_is_refused():
    # 10 steps: with frequency 10 the first update would be at step 10, the last step.
    with pytest.raises(ValueError, match=r"frequency 10 .* first would be at step 10.* 10 steps"):
        prune.plan_schedule(target_sparsity=0.5, steps_per_epoch=5, epochs=2, frequency=10)
    with pytest.raises(ValueError, match="frequency 50"):
        prune.plan_schedule(target_sparsity=0.5, steps_per_epoch=5, epochs=2, frequency=50,
                            kind="constant")
    with pytest.raises(ValueError, match="frequency must be an int >= 1, got 0"):
        prune.plan_schedule(target_sparsity=0.5, steps_per_epoch=5, epochs=2, frequency=0)


def test_end_step_beyond_training_is_refused():
    with pytest.raises(ValueError, match=r"end_step 10 is beyond training: 10 steps.*<= 9"):
        prune.PruningPlan(kind="polynomial", target_sparsity=0.5, initial_sparsity=0.0,
                          begin_step=0, end_step=10, frequency=2, power=3, total_steps=10)
    with pytest.raises(ValueError, match=r"end_step 8 must be begin_step 0 \+ k \* frequency 3"):
        prune.PruningPlan(kind="polynomial", target_sparsity=0.5, initial_sparsity=0.0,
                          begin_step=0, end_step=8, frequency=3, power=3, total_steps=10)
    with pytest.raises(ValueError, match="begin_step 9 leaves no step"):
        prune.plan_schedule(target_sparsity=0.5, steps_per_epoch=10, epochs=1, begin_step=9)
    with pytest.raises(ValueError, match="begin_step 10 leaves no step"):
        prune.plan_schedule(target_sparsity=0.5, steps_per_epoch=10, epochs=1, begin_step=10,
                            kind="constant")
    with pytest.raises(ValueError, match="1 training step"):
        prune.plan_schedule(target_sparsity=0.5, steps_per_epoch=1, epochs=1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "cubic"}, "unknown kind 'cubic'; allowed: polynomial, constant"),
        ({"target_sparsity": 0.0}, "target_sparsity 0 means no pruning"),
        ({"target_sparsity": 1.0}, r"target_sparsity must be in \(0, 1\), got 1.0"),
        ({"target_sparsity": -0.1}, r"target_sparsity must be in \(0, 1\)"),
        ({"target_sparsity": True}, "target_sparsity must be a float"),
        ({"ramp_fraction": 0.0}, r"ramp_fraction must be in \(0, 1\], got 0.0"),
        ({"ramp_fraction": 1.5}, r"ramp_fraction must be in \(0, 1\], got 1.5"),
        ({"steps_per_epoch": 0}, "steps_per_epoch must be an int >= 1, got 0"),
        ({"epochs": 2.5}, "epochs must be an int >= 1, got 2.5"),
        ({"begin_step": -1}, "begin_step must be an int >= 0, got -1"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    args = {"target_sparsity": 0.5, "steps_per_epoch": 20, "epochs": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        prune.plan_schedule(**args)


def test_bad_layers_and_plan_are_refused():
    plan = prune.plan_schedule(target_sparsity=0.5, steps_per_epoch=20, epochs=2)
    net = tiny_model()
    with pytest.raises(ValueError, match="unknown layers 'some'; allowed: all, trainable"):
        prune.prune_model(net, plan, layers="some")
    with pytest.raises(ValueError, match="plan must be a PruningPlan"):
        prune.prune_model(net, plan.to_dict())
    wrapped = prune.prune_model(net, plan)
    with pytest.raises(ValueError, match="already wrapped"):
        prune.prune_model(wrapped, plan)
    frozen = tiny_model()
    frozen.trainable = False
    with pytest.raises(ValueError, match="found no trainable prunable kernel"):
        prune.prune_model(frozen, plan, layers="trainable")


# ---------------------------------------------------------------- arithmetic of plans


@pytest.mark.parametrize("kind", prune.SCHEDULES)
@pytest.mark.parametrize("steps_per_epoch, epochs", [(2, 1), (5, 1), (23, 2), (79, 5), (391, 30)])
@pytest.mark.parametrize("frequency", [None, 1, 3])
@pytest.mark.parametrize("ramp_fraction", [0.3, 0.7, 1.0])
def test_plan_arithmetic(kind, steps_per_epoch, epochs, frequency, ramp_fraction):
    total = steps_per_epoch * epochs
    args = dict(target_sparsity=0.7, steps_per_epoch=steps_per_epoch, epochs=epochs, kind=kind,
                ramp_fraction=ramp_fraction, frequency=frequency)
    if frequency is not None and frequency > total - 1:
        with pytest.raises(ValueError, match=f"frequency {frequency} leaves no mask update"):
            prune.plan_schedule(**args)
        return
    plan = prune.plan_schedule(**args)
    assert plan.total_steps == total
    assert (plan.end_step - plan.begin_step) % plan.frequency == 0
    assert plan.end_step <= total - 1
    assert 1 <= plan.first_update_step <= plan.end_step
    assert plan.n_updates >= 1
    if frequency is not None:
        assert plan.frequency == frequency
    if kind == "polynomial":
        assert plan.initial_sparsity == 0.0 and plan.power == 3
        # The ramp ends near ramp_fraction of training (within one update interval).
        assert abs(plan.end_step - ramp_fraction * total) <= plan.frequency or plan.end_step == (
            (total - 1) // plan.frequency * plan.frequency
        )
    else:
        assert plan.initial_sparsity == plan.target_sparsity and plan.power == 0
        # Constant keeps updating until the last possible update step.
        assert plan.end_step + plan.frequency > total - 1
    d = plan.to_dict()
    assert d["first_update_step"] == plan.first_update_step and d["n_updates"] == plan.n_updates
    assert prune.PruningPlan(**{k: v for k, v in d.items()
                                if k not in ("first_update_step", "n_updates")}) == plan


def test_default_frequency_gives_about_twenty_ramp_updates():
    plan = prune.plan_schedule(target_sparsity=0.9, steps_per_epoch=79, epochs=5)
    assert (plan.frequency, plan.end_step, plan.n_updates) == (14, 280, 20)
    short = prune.plan_schedule(target_sparsity=0.9, steps_per_epoch=5, epochs=1)
    assert (short.frequency, short.end_step, short.n_updates) == (1, 4, 4)


def test_begin_step_is_the_first_update_when_positive():
    plan = prune.plan_schedule(target_sparsity=0.5, steps_per_epoch=10, epochs=2, begin_step=4,
                               frequency=5)
    assert plan.first_update_step == 4
    assert (plan.end_step - 4) % 5 == 0 and plan.end_step <= 19


def test_schedule_object_matches_plan():
    plan = prune.plan_schedule(target_sparsity=0.8, steps_per_epoch=10, epochs=1, frequency=3)
    cfg = plan.schedule().get_config()
    assert cfg["class_name"] == "PolynomialDecay"
    assert cfg["config"]["end_step"] == plan.end_step == 6  # 0.7 * 10 = 7 -> 2 * 3
    assert cfg["config"]["final_sparsity"] == 0.8


# ---------------------------------------------------------------------- tfmot steps


def test_first_mask_update_is_at_begin_step_plus_frequency():
    """Verifies the pitfall the plans guard against, on tfmot itself."""
    sk = tfmot.sparsity.keras
    x, y = digits()
    x, y = x[:10 * 16], y[:10 * 16]  # 10 steps of 16

    class Record(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.sparsity = []

        def on_train_batch_end(self, batch, logs=None):
            mask = next(layer for layer in self.model.layers if getattr(layer, "pruning_vars", None))
            self.sparsity.append(1 - float(mask.pruning_vars[0][1].numpy().mean()))

    def run(frequency):
        net = sk.prune_low_magnitude(
            tiny_model(), pruning_schedule=sk.ConstantSparsity(0.5, 0, frequency=frequency)
        )
        rec = Record()
        train.compile_model(net, optimizer="sgd", learning_rate=0.01)
        net.fit(x, y, batch_size=16, epochs=1, callbacks=[*prune.callbacks(), rec], verbose=0)
        return rec.sparsity, prune.measured_sparsity(prune.strip(net))

    masks, final = run(3)
    assert masks[:2] == [0.0, 0.0] and masks[2] == pytest.approx(0.5, abs=0.02)  # step 3
    assert final == pytest.approx(0.5, abs=0.02)
    masks, final = run(11)  # beyond the 10 steps: silently dense
    assert max(masks) == 0.0 and final == 0.0


# ----------------------------------------------------------------------- checking


def test_check_sparsity_raises_when_missed():
    dense = tiny_model()
    with pytest.raises(prune.SparsityError) as err:
        prune.check_sparsity(dense, 0.5)
    msg = str(err.value)
    assert "measured sparsity 0.0000 misses target 0.5" in msg
    assert "worst layers: " in msg and "block1_conv1/kernel 0.000 (36 weights)" in msg
    assert "were the masks ever updated?" in msg
    # An untrained wrapped model has all-ones masks: also 0.
    plan = prune.plan_schedule(target_sparsity=0.5, steps_per_epoch=20, epochs=2)
    with pytest.raises(prune.SparsityError, match="measured sparsity 0.0000"):
        prune.check_sparsity(prune.prune_model(tiny_model(), plan), 0.5)
    assert prune.check_sparsity(dense, 0.0) == 0.0
    with pytest.raises(ValueError, match=r"target must be in \[0, 1\), got 1.2"):
        prune.check_sparsity(dense, 1.2)
    with pytest.raises(ValueError, match="tolerance must be"):
        prune.check_sparsity(dense, 0.5, tolerance=-1)


def test_report_of_model_without_kernels_is_refused():
    net = keras.Sequential([keras.Input((4,)), keras.layers.Activation("relu")])
    with pytest.raises(ValueError, match="no prunable"):
        prune.sparsity_report(net)


def test_trainable_layers_leave_frozen_kernels_dense():
    net = tiny_model(seed=1)
    frozen = ("block1_conv1", "block1_conv2")
    for name in frozen:
        net.get_layer(name).trainable = False
    before = {name: net.get_layer(name).kernel.numpy().copy() for name in frozen}
    wrapped, stripped, _ = pruned("polynomial", 0.7, layers="trainable", model=net)
    assert not any("prune_low_magnitude_block1" in layer.name for layer in wrapped.layers)
    for name in frozen:
        np.testing.assert_array_equal(stripped.get_layer(name).kernel.numpy(), before[name])
    report = prune.sparsity_report(stripped)
    rows = kernel_rows(report).set_index("layer")
    assert (rows.loc[list(frozen), "zeros"] == 0).all()
    assert not rows.loc[list(frozen), "trainable"].any()
    assert abs(prune.check_sparsity(stripped, 0.7, layers="trainable") - 0.7) <= 0.01
    t = prune.sparsity_report(stripped, layers="trainable")
    assert frozen[0] not in set(t["layer"])
    # Measured over all kernels it misses, and the error says what to do.
    with pytest.raises(prune.SparsityError, match="measure with layers='trainable'"):
        prune.check_sparsity(stripped, 0.7)


def test_all_layers_masks_frozen_kernels_too():
    net = tiny_model(seed=2)
    net.get_layer("block1_conv2").trainable = False
    _, stripped, _ = pruned("constant", 0.5, model=net)
    rows = kernel_rows(prune.sparsity_report(stripped)).set_index("layer")
    assert rows.loc["block1_conv2", "sparsity"] == pytest.approx(0.5, abs=0.01)
    assert not stripped.get_layer("block1_conv2").trainable


# -------------------------------------------------------------------------- sizes


def test_sparse_model_compresses_far_better_than_dense_twin(tmp_path):
    wrapped, stripped, _ = trained("polynomial", 0.9)
    dense = fit(tiny_model())  # compiled: its optimizer state must not be saved
    s = prune.save_model(wrapped, tmp_path / "sparse")  # stripped on the way
    d = prune.save_model(dense, tmp_path / "dense")
    assert (tmp_path / "sparse" / "model.keras").is_file()
    # Zeros are stored like any float: raw files are about the same size ...
    assert s["model_bytes"] == pytest.approx(d["model_bytes"], rel=0.1)
    # ... but compress far better.
    assert s["gzip_bytes"] < 0.6 * d["gzip_bytes"], (s, d)
    loaded = keras.models.load_model(tmp_path / "sparse" / "model.keras")
    assert prune.measured_sparsity(loaded) == pytest.approx(prune.measured_sparsity(stripped))
