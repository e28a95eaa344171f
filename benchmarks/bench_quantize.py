"""Size and CPU speed of float32 / float16 / dynamic int8 / full int8 TFLite models.

Not a test. Run ``python benchmarks/bench_quantize.py``; writes
benchmarks/results/quantize.json and prints a table. All models are converted and
timed side by side in one process on this machine, with the LiteRT interpreter
(XNNPACK delegate on, as by default) at 1 and 2 threads.

Models (untrained, seeded: speed and size do not depend on training; full int8 is
calibrated on uniform [0, 1) images, the range of unit-scaled pixels):

* ``vgg_small``: 28x28x1, 10 classes, default width 16, dense_units=[128].
* ``resnet_small``: 28x28x1, 10 classes, stem_stride=2.
* ``vgg_small_w32`` / ``vgg_small_w64``: as vgg_small with width=32 / 64, contrast
  points with 4x / 16x more conv work per image, to see whether int8 kernels pull
  ahead once the matmuls are larger.

Per model and technique: file bytes, gzip bytes and both ratios to float32 (with
TensorFlow's documented factor beside them), batch-1 latency and batch-256 throughput
(medians of invoke() after warm-up) and their speed-up over float32, and the share of
images whose top-1 class agrees with float32. A diagnostics section times single conv
layers of growing width and vgg_small with XNNPACK off, to explain the speed-ups.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np
from _common import ROOT, machine_info, write_result

from cielib import models, quantize
from cielib.sizes import compression_ratio, gzip_bytes

SEED = 0
N_CLASSES = 10
INPUT_SHAPE = (28, 28, 1)
THREADS = (1, 2)
N_IMAGES = 256           # timing/agreement images; also the throughput batch size
N_CALIBRATION = 100
ROUNDS = 5               # techniques take turns, ROUNDS times; medians over rounds
LATENCY = {"batch_size": 1, "warmup": 5, "repeats": 40}
THROUGHPUT = {"batch_size": N_IMAGES, "warmup": 1, "repeats": 2}

DIAG_LATENCY = {"batch_size": 1, "warmup": 10, "repeats": 200}
DIAG_CONVS = [(1, 16, 28), (16, 16, 28), (16, 32, 14), (32, 32, 14), (64, 64, 28),
              (128, 128, 14)]  # (in channels, out channels, height = width)

MODELS = {
    "vgg_small": {"name": "vgg_small", "dense_units": [128]},
    "resnet_small": {"name": "resnet_small", "stem_stride": 2},
    "vgg_small_w32": {"name": "vgg_small", "dense_units": [128], "width": 32},
    "vgg_small_w64": {"name": "vgg_small", "dense_units": [128], "width": 64},
}


#: CPU instruction sets that speed up int8 kernels (recorded with the results).
INT8_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "sse4_1")


def _median_of_rounds(rounds: list[dict]) -> dict:
    """Combine per-round latency() results: medians over rounds, extremes over all."""
    out = dict(rounds[0])
    for key in ("median_s", "cpu_median_s"):
        out[key] = statistics.median(r[key] for r in rounds)
    out["min_s"] = min(r["min_s"] for r in rounds)
    out["max_s"] = max(r["max_s"] for r in rounds)
    out["images_per_s"] = out["batch_size"] / out["median_s"]
    out["rounds"] = len(rounds)
    out["round_medians_s"] = [r["median_s"] for r in rounds]
    return out


def bench_model(key: str, spec: dict, rng: np.random.Generator) -> dict:
    opts = {k: v for k, v in spec.items() if k != "name"}
    net = models.build_model(spec["name"], input_shape=INPUT_SHAPE, n_classes=N_CLASSES,
                             seed=SEED, **opts)
    calib = rng.random((N_CALIBRATION, *INPUT_SHAPE), dtype=np.float32)
    x = rng.random((N_IMAGES, *INPUT_SHAPE), dtype=np.float32)
    result = {"model": spec["name"], "options": opts, "params": models.count_params(net)["total"],
              "techniques": {}}
    blobs = {}
    for tech in quantize.TECHNIQUES:
        t0 = time.perf_counter()
        blobs[tech] = quantize.convert(net, tech, representative_images=calib,
                                       num_calibration=N_CALIBRATION)
        convert_s = time.perf_counter() - t0
        summary = quantize.verify(blobs[tech], tech)
        result["techniques"][tech] = {
            "convert_s": convert_s,
            "bytes": len(blobs[tech]),
            "gzip_bytes": gzip_bytes(blobs[tech]),
            "weight_dtypes": summary["weight_dtypes"],
            "weight_bytes": summary["weight_bytes"],
            "input_dtype": summary["input_dtype"],
            "output_dtype": summary["output_dtype"],
            "documented": quantize.DOCUMENTED.get(tech),
            "timing": {},
        }
    rows = result["techniques"]
    ref = rows["float32"]
    preds = {}
    for tech, row in rows.items():
        row["size_ratio"] = compression_ratio(ref["bytes"], row["bytes"])
        row["gzip_ratio"] = compression_ratio(ref["gzip_bytes"], row["gzip_bytes"])
        row["weight_bytes_ratio"] = compression_ratio(ref["weight_bytes"], row["weight_bytes"])
        clf = quantize.TFLiteClassifier(blobs[tech], num_threads=1)
        preds[tech] = clf.predict_proba(x, batch_size=N_IMAGES).argmax(axis=1)
        row["top1_agreement_with_float32"] = float(np.mean(preds[tech] == preds["float32"]))
    for threads in THREADS:
        clfs = {t: quantize.TFLiteClassifier(b, num_threads=threads) for t, b in blobs.items()}
        # Techniques take turns within each round, so a burst of other work on the
        # machine hits all of them alike instead of one technique's whole series.
        lat = {t: [] for t in clfs}
        thr = {t: [] for t in clfs}
        for _ in range(ROUNDS):
            for tech, clf in clfs.items():
                lat[tech].append(quantize.latency(clf, x, **LATENCY))
                thr[tech].append(quantize.latency(clf, x, **THROUGHPUT))
        for tech in clfs:
            rows[tech]["timing"][str(threads)] = {
                "latency_b1": _median_of_rounds(lat[tech]),
                "throughput_b256": _median_of_rounds(thr[tech]),
            }
        base = ref["timing"][str(threads)]
        for tech in clfs:
            t = rows[tech]["timing"][str(threads)]
            t["latency_speedup"] = base["latency_b1"]["median_s"] / t["latency_b1"]["median_s"]
            t["throughput_speedup"] = (t["throughput_b256"]["images_per_s"]
                                       / base["throughput_b256"]["images_per_s"])
            t["cpu_latency_speedup"] = (base["latency_b1"]["cpu_median_s"]
                                        / t["latency_b1"]["cpu_median_s"])
    return result


def _single_invoke_us(blob: bytes, x: np.ndarray, *, xnnpack: bool = True) -> float:
    clf = quantize.TFLiteClassifier(blob, num_threads=1, xnnpack=xnnpack)
    return quantize.latency(clf, x, **DIAG_LATENCY)["median_s"] * 1e6


def diagnostics(rng: np.random.Generator) -> dict:
    """Why int8 is (not) faster here: one conv layer at a time, and XNNPACK off.

    Single Conv2D(3x3, same, ReLU) models with vgg_small's layer shapes and wider
    ones, each timed at batch 1 in float32 / dynamic int8 / full int8; then vgg_small
    itself with LiteRT's builtin kernels (XNNPACK delegate off).
    """
    from cielib.keras import keras

    convs = []
    for cin, cout, hw in DIAG_CONVS:
        inp = keras.Input((hw, hw, cin))
        net = keras.Model(inp, keras.layers.Conv2D(cout, 3, padding="same", activation="relu")(inp))
        x = rng.random((1, hw, hw, cin), dtype=np.float32)
        calib = rng.random((20, hw, hw, cin), dtype=np.float32)
        us = {t: _single_invoke_us(quantize.convert(net, t, representative_images=calib), x)
              for t in ("float32", "dynamic_int8", "full_int8")}
        convs.append({"in_channels": cin, "out_channels": cout, "size": hw,
                      "mmac": hw * hw * cin * cout * 9 / 1e6, "batch1_us": us,
                      "speedup": {t: us["float32"] / v for t, v in us.items()}})
    net = models.build_model("vgg_small", input_shape=INPUT_SHAPE, n_classes=N_CLASSES,
                             seed=SEED, dense_units=[128])
    x = rng.random((1, *INPUT_SHAPE), dtype=np.float32)
    calib = rng.random((N_CALIBRATION, *INPUT_SHAPE), dtype=np.float32)
    kernels = {}
    for tech in quantize.TECHNIQUES:
        blob = quantize.convert(net, tech, representative_images=calib)
        kernels[tech] = {"xnnpack_us": _single_invoke_us(blob, x),
                         "builtin_us": _single_invoke_us(blob, x, xnnpack=False)}
    for tech, k in kernels.items():
        k["xnnpack_speedup_vs_float32"] = kernels["float32"]["xnnpack_us"] / k["xnnpack_us"]
        k["builtin_speedup_vs_float32"] = kernels["float32"]["builtin_us"] / k["builtin_us"]
    return {"single_conv_batch1": convs, "vgg_small_batch1_xnnpack_vs_builtin": kernels,
            "latency": DIAG_LATENCY}


def _table(results: dict) -> str:
    lines = [f"{'model':<15}{'technique':<14}{'bytes':>10}{'ratio':>7}{'gz ratio':>9}"
             + "".join(f"{f'b1 ms t{n}':>11}{'x':>6}{f'img/s t{n}':>11}{'x':>6}" for n in THREADS)]
    for key, res in results.items():
        for tech, row in res["techniques"].items():
            line = f"{key:<15}{tech:<14}{row['bytes']:>10}{row['size_ratio']:>7.2f}{row['gzip_ratio']:>9.2f}"
            for n in THREADS:
                t = row["timing"][str(n)]
                line += (f"{t['latency_b1']['median_s'] * 1e3:>11.3f}{t.get('latency_speedup', 1.0):>6.2f}"
                         f"{t['throughput_b256']['images_per_s']:>11.0f}{t.get('throughput_speedup', 1.0):>6.2f}")
            lines.append(line)
    return "\n".join(lines)


def main() -> dict:
    start = time.perf_counter()
    load_before = os.getloadavg()
    rng = np.random.default_rng(SEED)
    results = {key: bench_model(key, spec, rng) for key, spec in MODELS.items()}
    diag = diagnostics(rng)
    out = {
        "description": "TFLite post-training quantization: file size and LiteRT CPU speed",
        "settings": {
            "seed": SEED, "input_shape": list(INPUT_SHAPE), "n_classes": N_CLASSES,
            "threads": list(THREADS), "n_calibration": N_CALIBRATION,
            "rounds": ROUNDS, "latency": LATENCY, "throughput": THROUGHPUT,
            "interpreter": "ai_edge_litert.interpreter.Interpreter (default XNNPACK delegate)",
            "timing": ("median of time.perf_counter() around invoke() only, input set "
                       "beforehand; techniques interleaved in rounds, median of round "
                       "medians; cpu_median_s is process CPU time per invoke"),
            "weights": "untrained (seeded); full_int8 calibrated on uniform [0, 1) images",
        },
        "documented": quantize.DOCUMENTED,
        "documented_source": quantize.DOCUMENTED_SOURCE,
        "models": results,
        "diagnostics": diag,
        # Other work on the machine skews timings (the 2-thread ones first): a
        # 1-minute load average well above 1 during the run is a warning sign.
        "loadavg_before": list(load_before),
        "machine": machine_info(packages=("tensorflow", "tf-keras", "ai-edge-litert", "numpy"),
                                cpu_flags=INT8_FLAGS),
        "total_seconds": None,
    }
    out["total_seconds"] = time.perf_counter() - start
    path = write_result("quantize", out)
    print(_table(results))
    print("single conv, batch 1, 1 thread (us):")
    for c in diag["single_conv_batch1"]:
        print(f"  {c['in_channels']:>3}->{c['out_channels']:<3} @{c['size']}x{c['size']} "
              f"{c['mmac']:6.2f} MMAC  " + "  ".join(f"{t} {v:7.1f}" for t, v in c["batch1_us"].items()))
    print("vgg_small batch 1, 1 thread, XNNPACK vs builtin kernels (us):")
    for t, k in diag["vgg_small_batch1_xnnpack_vs_builtin"].items():
        print(f"  {t:<13} xnnpack {k['xnnpack_us']:7.1f} ({k['xnnpack_speedup_vs_float32']:.2f}x)"
              f"  builtin {k['builtin_us']:7.1f} ({k['builtin_speedup_vs_float32']:.2f}x)")
    print(f"wrote {path.relative_to(ROOT)} in {out['total_seconds']:.0f} s")
    return out


if __name__ == "__main__":
    main()
