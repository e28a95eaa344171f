"""VGG-19 dense vs pruned on a GPU, with the NVML sampler: the paper's efficiency claim.

The paper judged pruning's training efficiency from GPU utilization while each
sparsity trained. This trains the paper's VGG-19 (Keras architecture, frozen base,
three new dense layers; random weights, so nothing is downloaded) on synthetic
CIFAR-shaped images for ``--steps`` timed steps after ``--warmup`` untimed ones, three
ways: dense, pruned with the new dense layers masked (``prune_layers="trainable"``,
paper.toml) and pruned with every kernel masked (``"all"``, paper-whole-model.toml).
The whole model trains each time (no feature cache: the point is the GPU's load).
Per run it prints and returns throughput, GPU utilization, memory, power and energy
(NVML's energy counter where the GPU has one).

Run through ``scripts/gpu_check.sh``. Exits with status 2, having measured nothing,
when NVML or TensorFlow sees no GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The hardware sampler's module: imported here and only here (it may become
# cielib.hardware; change this one line then).
from cielib import hardware  # noqa: E402

NO_GPU = 2
RUNS = (("dense", None), ("pruned_trainable", "trainable"), ("pruned_all", "all"))
INPUT_SHAPE = (32, 32, 3)
N_CLASSES = 10


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=400, help="timed training steps per run")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps first (tracing)")
    p.add_argument("--batch-size", type=int, default=32, help="the paper's Keras default, 32")
    p.add_argument("--sparsity", type=float, default=0.5, help="target of the pruned runs")
    p.add_argument("--interval", type=float, default=0.2, help="seconds between NVML samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = p.parse_args(argv)
    for name in ("steps", "warmup", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 0 < args.sparsity < 1:
        p.error(f"--sparsity must be in (0, 1), got {args.sparsity}")
    return args


def _fail(message: str) -> None:
    print(f"gpu_check: {message}; nothing measured.", file=sys.stderr)
    raise SystemExit(NO_GPU)


def nvml_devices() -> list[int]:
    """The GPUs NVML can sample, or exit 2 saying why (before TensorFlow loads)."""
    probe = hardware.Sampler(backend="nvml", interval=1.0)
    try:
        probe.start()
    except RuntimeError as exc:
        _fail(str(exc))
    probe.stop()
    return list(probe.devices)


def tensorflow_gpus() -> list[str]:
    """Names of the GPUs TensorFlow sees (memory growth on), or exit 2."""
    from cielib.keras import tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        _fail(
            "NVML sees a GPU but TensorFlow does not (a CPU-only TensorFlow build, or "
            "CUDA libraries missing: pip install 'tensorflow[and-cuda]')"
        )
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    return [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]


def one_run(x: np.ndarray, y: np.ndarray, *, layers: str | None, args: argparse.Namespace) -> dict:
    """Build, (prune,) warm up, then train ``args.steps`` steps under the sampler."""
    from cielib import models, prune, train

    bs, warm = args.batch_size, args.warmup * args.batch_size
    net = models.build_model("vgg19", input_shape=INPUT_SHAPE, n_classes=N_CLASSES, weights=None)
    callbacks = []
    if layers is not None:
        plan = prune.plan_schedule(target_sparsity=args.sparsity,
                                   steps_per_epoch=args.warmup + args.steps, epochs=1)
        net = prune.prune_model(net, plan, layers=layers)
        callbacks = prune.callbacks()
    train.compile_model(net, optimizer="sgd", learning_rate=0.01)
    net.fit(x[:warm], y[:warm], batch_size=bs, epochs=1, shuffle=False, verbose=0,
            callbacks=callbacks)
    timing = hardware.keras_callback(None, batch_size=bs)
    sampler = hardware.Sampler(backend="nvml", interval=args.interval)
    with sampler:
        net.fit(x[warm:], y[warm:], batch_size=bs, epochs=1, shuffle=False, verbose=0,
                callbacks=[*callbacks, timing])
    s = sampler.summary()
    step_s = timing.step_times
    train_s = float(timing.epoch_table()["train_seconds"].iloc[0])
    images = len(step_s) * bs
    out = {
        "prune_layers": layers,
        "steps": int(len(step_s)),
        "images_per_s": images / train_s,
        "median_step_ms": float(np.median(step_s) * 1e3),
        "train_seconds": train_s,
        "utilization_mean_pct": s.get("utilization_mean_pct"),
        "utilization_max_pct": s.get("utilization_max_pct"),
        "memory_utilization_mean_pct": s.get("memory_utilization_mean_pct"),
        "memory_used_max_bytes": s.get("memory_used_max_bytes"),
        "power_mean_w": s.get("power_mean_w"),
        "energy_j": s.get("energy_j"),
        "energy_source": s.get("energy_source"),
        "sampled_seconds": s.get("duration_s"),
        "n_samples": s.get("n_samples"),
        "sampler_errors": s.get("errors"),
    }
    energy = s.get("energy_j")
    out["joules_per_image"] = energy / images if energy is not None else None
    if layers is not None:
        out["measured_sparsity"] = prune.measured_sparsity(prune.strip(net), layers=layers)
    return out


def main(argv: list[str] | None = None) -> dict:
    args = _parse(argv)
    devices = nvml_devices()
    names = tensorflow_gpus()
    from cielib import data
    from cielib.keras import keras, tf

    keras.utils.set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    n = (args.warmup + args.steps) * args.batch_size
    x = data.preprocess(rng.integers(0, 256, (n, *INPUT_SHAPE), dtype=np.uint8),
                        input_shape=INPUT_SHAPE, scaling="caffe")
    y = rng.integers(0, N_CLASSES, n)
    t0 = time.perf_counter()
    runs = {label: one_run(x, y, layers=layers, args=args) for label, layers in RUNS}
    dense = runs["dense"]
    for r in runs.values():
        for key in ("images_per_s", "utilization_mean_pct", "power_mean_w", "joules_per_image"):
            a, b = r.get(key), dense.get(key)
            r[f"{key}_vs_dense"] = a / b if a is not None and b else None
    result = {
        "description": "VGG-19 (Keras, frozen base, random weights) on synthetic 32x32x3 "
                       "images: whole-model training, dense vs pruned, NVML sampled",
        "nvml_devices": devices,
        "tensorflow_gpus": names,
        "tensorflow": tf.__version__,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "total_seconds": time.perf_counter() - t0,
        "runs": runs,
    }
    _print(result)
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


def _print(result: dict) -> None:
    rows = [
        ("images/s", "images_per_s", "{:.0f}"),
        ("median step ms", "median_step_ms", "{:.2f}"),
        ("GPU util mean %", "utilization_mean_pct", "{:.1f}"),
        ("GPU util max %", "utilization_max_pct", "{:.0f}"),
        ("memory max GiB", "memory_used_max_bytes", "{:.2f}"),
        ("power mean W", "power_mean_w", "{:.0f}"),
        ("energy J", "energy_j", "{:.0f}"),
        ("mJ per image", "joules_per_image", "{:.2f}"),
        ("sparsity", "measured_sparsity", "{:.3f}"),
        ("images/s vs dense", "images_per_s_vs_dense", "{:.2f}"),
        ("J/image vs dense", "joules_per_image_vs_dense", "{:.2f}"),
    ]
    labels = list(result["runs"])
    print(f"GPU: {', '.join(result['tensorflow_gpus'])}; TensorFlow {result['tensorflow']}")
    print(f"{'':20}" + "".join(f"{lab:>18}" for lab in labels))
    for title, key, fmt in rows:
        cells = []
        for lab in labels:
            v = result["runs"][lab].get(key)
            if v is not None and key == "memory_used_max_bytes":
                v = v / 2**30
            if v is not None and key == "joules_per_image":
                v = v * 1e3
            cells.append(fmt.format(v) if v is not None else "-")
        print(f"{title:20}" + "".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
