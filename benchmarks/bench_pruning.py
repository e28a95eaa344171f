"""Training step time of pruned vs dense models, and what the mask-update frequency costs.

Not a test. Run ``python benchmarks/bench_pruning.py``; writes
benchmarks/results/pruning.json and prints it (about 2.5 minutes on 2 cores).
Run it on an otherwise idle machine: other processes on the same cores make
steps alternate between fast and slow phases (the JSON records the load average).

For ``vgg_small`` and ``resnet_small`` (``stem_stride=2``) on 28x28x1 inputs, 10
classes, batch 64, random data (speed does not depend on the values), it trains a
dense model and the same model wrapped by :func:`cielib.prune.prune_model` with a
polynomial schedule (target 0.5) at mask-update frequency 1, 10 and 100. A callback
times every training batch (``on_train_batch_begin`` to ``on_train_batch_end``); the
first ``WARMUP`` batches (tracing, allocation) are dropped. Each run is ``STEPS``
batches long so that even frequency 100 has one update step inside it; every
configuration runs ``REPEATS`` times, interleaved, and the step times are pooled.

Reported per configuration: the median step (the steady cost of a step without a
mask update when frequency > 1), the mean step (what an epoch costs, update steps
included), and for pruned runs the mean time of the update steps. Ratios are
pruned / dense.

Why pruned training is slower, never faster:

* every wrapped layer multiplies its kernel by a dense 0/1 mask tensor and assigns
  the result on every step (plus a step counter and a condition per layer), so a
  pruned step does all the dense work and then some;
* on update steps each kernel's magnitudes are sorted (``tf.math.top_k`` over all
  its weights) to find the threshold, an O(n log n) pass per kernel, which is why
  frequency 1 costs the most and the cost amortises with larger frequencies;
* there are no sparse kernels in this path: the zeros are multiplied like any
  other value, so 90% sparsity saves no FLOPs at training (or Keras inference) time.
  The saving only appears in compressed file size (``cielib.prune.save_model``).
"""

from __future__ import annotations

import json
import os
import statistics
import time

import numpy as np
from _common import machine_info, write_result

from cielib import models, prune, train
from cielib.keras import keras, tf

INPUT_SHAPE = (28, 28, 1)
N_CLASSES = 10
BATCH = 64
STEPS = 130  # batches per run: frequency 100 updates once, at step 100
WARMUP = 10  # first batches dropped (tracing, allocation)
REPEATS = 3
TARGET = 0.5
FREQUENCIES = (1, 10, 100)
MODELS = {"vgg_small": {}, "resnet_small": {"stem_stride": 2}}
SEED = 0


class BatchTimer(keras.callbacks.Callback):
    """Wall time of every training batch, in seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._t0 = 0.0

    def on_train_batch_begin(self, batch, logs=None):
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self._t0)


def run_once(name: str, options: dict, frequency: int | None, x, y) -> list[float]:
    """Per-step times (after warm-up) of one fit; step k (from 1) is index k - 1 - WARMUP."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(SEED)
    net = models.build_model(name, input_shape=INPUT_SHAPE, n_classes=N_CLASSES, seed=SEED,
                             **options)
    callbacks = []
    if frequency is not None:
        plan = prune.plan_schedule(target_sparsity=TARGET, steps_per_epoch=STEPS, epochs=1,
                                   frequency=frequency, ramp_fraction=1.0)
        net = prune.prune_model(net, plan)
        callbacks = prune.callbacks()
    train.compile_model(net, optimizer="sgd", learning_rate=0.01, momentum=0.9)
    timer = BatchTimer()
    net.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, callbacks=[*callbacks, timer],
            verbose=0)
    if frequency is not None:  # sanity: the schedule really pruned
        prune.check_sparsity(prune.strip(net), TARGET, tolerance=0.02)
    return timer.seconds[WARMUP:]


def summarise(times: list[list[float]], frequency: int | None) -> dict:
    pooled = [t for run in times for t in run]
    out = {
        "median_step_ms": 1e3 * statistics.median(pooled),
        "mean_step_ms": 1e3 * statistics.fmean(pooled),
        "measured_steps": len(pooled),
    }
    if frequency is not None:
        plan = prune.plan_schedule(target_sparsity=TARGET, steps_per_epoch=STEPS, epochs=1,
                                   frequency=frequency, ramp_fraction=1.0)
        update_steps = set(range(plan.first_update_step, plan.end_step + 1, plan.frequency))
        upd, other = [], []
        for run in times:
            for i, t in enumerate(run):
                (upd if WARMUP + i + 1 in update_steps else other).append(t)
        out.update({
            "frequency": frequency,
            "plan": plan.to_dict(),
            "update_steps_measured": len(upd),
            "update_step_ms_mean": 1e3 * statistics.fmean(upd) if upd else None,
            "other_step_ms_median": 1e3 * statistics.median(other) if other else None,
        })
    return out


def main() -> dict:
    started = time.perf_counter()
    load_before = os.getloadavg()
    rng = np.random.default_rng(SEED)
    x = rng.random((STEPS * BATCH, *INPUT_SHAPE), dtype=np.float32)
    y = rng.integers(0, N_CLASSES, size=STEPS * BATCH)
    configs = [None, *FREQUENCIES]
    results: dict = {}
    ratios: dict = {}
    for name, options in MODELS.items():
        times: dict = {c: [] for c in configs}
        for r in range(REPEATS):
            order = configs if r % 2 == 0 else configs[::-1]  # interleave against drift
            for c in order:
                times[c].append(run_once(name, options, c, x, y))
        dense = summarise(times[None], None)
        res = {"dense": dense}
        rat = {}
        for f in FREQUENCIES:
            s = summarise(times[f], f)
            res[f"polynomial_frequency_{f}"] = s
            rat[f"frequency_{f}"] = {
                "median_step": s["median_step_ms"] / dense["median_step_ms"],
                "mean_step": s["mean_step_ms"] / dense["mean_step_ms"],
            }
        net = models.build_model(name, input_shape=INPUT_SHAPE, n_classes=N_CLASSES, **options)
        res["params"] = models.count_params(net)["total"]
        res["options"] = options
        results[name] = res
        ratios[name] = rat
    result = {
        "what": "training step time, pruned (tfmot, polynomial to 0.5) / dense",
        "ratios_pruned_over_dense": ratios,
        "results": results,
        "settings": {
            "input_shape": list(INPUT_SHAPE), "n_classes": N_CLASSES, "batch_size": BATCH,
            "steps_per_run": STEPS, "warmup_steps_dropped": WARMUP, "repeats": REPEATS,
            "target_sparsity": TARGET, "schedule": "polynomial", "ramp_fraction": 1.0,
            "frequencies": list(FREQUENCIES), "optimizer": "sgd momentum 0.9",
            "data": "random uniform images, random labels", "seed": SEED,
        },
        # Other processes on the same cores distort step times: compare the load
        # average before with the machine's (taken at the end).
        "loadavg_1_5_15_before": list(load_before),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "machine": machine_info(
            packages=("tensorflow", "tf-keras", "tensorflow-model-optimization", "numpy")
        ),
        "wall_seconds": time.perf_counter() - started,
    }
    write_result("pruning", result)
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
