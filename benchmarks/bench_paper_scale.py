"""The paper's training at CIFAR-10 scale on this CPU, with and without the feature cache.

Not a test. Run ``nice -n 19 python benchmarks/bench_paper_scale.py``; writes
benchmarks/results/paper_scale.json and prints a summary (a few minutes on 2 cores;
``--smoke`` runs a tiny version to check the script and writes nothing unless
``--out`` is given).

Data: CIFAR-10-sized synthetic images (50,000 train + 10,000 test, seeded random
32x32x3 uint8, 10 classes; speed does not depend on the values), preprocessed once as
the paper models expect ("caffe" scaling). Models: VGG-19 and ResNet-50 from
``keras.applications`` through :func:`cielib.models.build_model` (``weights=None``,
frozen base, the three new dense layers), batch size and epochs from
``configs/paper.toml``. TensorFlow and the LiteRT interpreter run one thread each, as
under ``run_all.py --jobs 2`` on 2 cores, with oneDNN (``TF_ENABLE_ONEDNN_OPTS=1``,
which the exact cache needs on this kind of CPU; see :mod:`cielib.features`).

Clocks: every timed section records wall time and this process's CPU time. With one
thread, CPU time is what the section takes alone on one core, even when other work
shares the machine (wall time is then inflated); the summary's estimates use it, and
the same estimates by wall clock are kept under ``estimates.wall``. The profile estimate
sums every run's time and divides by ``--jobs`` (default: the number of cores), i.e.
assumes that many runs in parallel, packed evenly.

Measured per model, in one process, side by side:

* **uncached** (today's path): the whole model trains with its frozen base, dense and
  with the head pruned (``prune_layers="trainable"``). Training a full epoch
  (45,000 images) would take minutes, so ``--steps`` batches are timed after a short
  warm-up (tracing) and the epoch is extrapolated: steps per epoch x mean step time,
  plus the validation images (5,000) at the base's forward rate.
* **the feature stage**: the base's forward pass over a sample of images at the
  training batch size, extrapolated to all 60,000 images, plus preprocessing (timed on
  all images), plus writing and reading back the ``.npz`` at full size.
* **cached**: the head trains on features for a **full** epoch (45,000 train + 5,000
  validation; the features of the sample are tiled to that size, since the values do
  not change the speed), dense and pruned, through :func:`cielib.train.fit`; the
  second epoch is reported (the first includes tracing).
* **quantization** (the same both ways): conversion time of every technique and the
  LiteRT interpreter's rate on a sample of test images, extrapolated to the test set.

Extrapolated: the whole paper profile (every task, sparsity and seed of
``configs/paper.toml``, the quantize runs of its dense models) both ways, per task and
in total, including the per-run notebook overhead measured by
``benchmarks/bench_notebook_overhead.py`` (read from its JSON) and each run's test
predictions (10,000 images through the whole model). Not included: model saving and
its gzip size, the analysis notebooks and the report (the same both ways).
Ratios uncached / cached are named ``*_speedup``.

Run it on an otherwise idle machine; the JSON records the load average before and
after and the process CPU time of every timed section, so contention shows.

``--upsampled`` measures the paper profile's reading (``input_size = 224``: the images
upsampled to 224x224 in the model) briefly, one model at a time, and adds it to the
JSON under ``upsampled_224`` (the 32x32 numbers above stay): each base's forward rate
at 224x224 on a few images, the head's training steps read memory-mapped through
``cielib.rows.Rows`` (VGG-19's head reads 7x7x512 = 25,088 activations per image;
ResNet-50's pooled 2,048 are the same as at 32x32), and from these and the 32x32
measurements the features stage, head epochs, quantize runs and the whole
``paper``/``paper-fidelity`` profiles on 2 CPU cores, and on one GPU from stated
assumptions (derived, not measured: ``scripts/gpu_check.sh`` measures a GPU).
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cielib import config, data, features, models, prune, quantize, train  # noqa: E402
from cielib.keras import configure_threads, keras, seed_everything, tf  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "paper_scale.json"
OVERHEAD_JSON = ROOT / "benchmarks" / "results" / "notebook_overhead.json"
SEED = 0
N_TRAIN, N_TEST, N_CLASSES = 50_000, 10_000, 10
INPUT_SHAPE = (32, 32, 3)
TASKS = {"vgg19": "vgg19_cifar10", "resnet50": "resnet50_cifar100"}
# What one quantize run does besides converting and predicting the test set (see
# notebooks/quantize.py): on the first seed, batch-1 latency (5 warm-up + 50 timed
# invocations) and batch-256 throughput (2 + 10 invocations).
LATENCY_IMAGES = (5 + 50) * 1 + (2 + 10) * 256


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(t: tuple[float, float]) -> dict[str, float]:
    wall, cpu = _now()
    return {"wall_s": wall - t[0], "cpu_s": cpu - t[1]}


def _peak_rss_bytes() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _timed_steps(net, x, y, *, batch_size: int, warmup: int, steps: int, callbacks=()):
    """Mean seconds per training step over ``steps`` batches after ``warmup`` ones."""
    w = warmup * batch_size
    net.fit(x[:w], y[:w], batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
            callbacks=list(callbacks))
    n = steps * batch_size
    t = _now()
    net.fit(x[w:w + n], y[w:w + n], batch_size=batch_size, epochs=1, shuffle=False,
            verbose=0, callbacks=list(callbacks))
    s = _since(t)
    return {"steps": steps, "images": n, **s}


def _features_timed(base, x, *, batch_size: int) -> tuple[np.ndarray, dict]:
    """The base's features for ``x`` and the rate they came at (after one warm-up batch)."""
    features.compute_features(base, x[:batch_size], batch_size=batch_size)
    t = _now()
    f = features.compute_features(base, x, batch_size=batch_size)
    s = _since(t)
    return f, {"images": len(x), **s}


def _rate(section: dict, clock: str) -> float:
    """Images per second of a timed section by ``clock`` ("cpu" or "wall")."""
    return section["images"] / section[f"{clock}_s"]


def bench_model(name: str, task: config.Task, prof: config.Profile, x_all: np.ndarray,
                y_all: np.ndarray, args: argparse.Namespace, tmp: Path) -> dict:
    bs = task.batch_size
    n_val = int(round(task.validation_fraction * args.n_train))
    n_fit = args.n_train - n_val
    steps_per_epoch = -(-n_fit // bs)
    out: dict = {"task": task.name, "epochs": task.epochs, "batch_size": bs,
                 "n_fit": n_fit, "n_val": n_val, "n_test": args.n_test,
                 "steps_per_epoch": steps_per_epoch}

    seed_everything(SEED)
    t = _now()
    net = models.build_model(name, input_shape=INPUT_SHAPE, n_classes=N_CLASSES, weights=None)
    out["build"] = _since(t)
    out["params"] = models.count_params(net)
    x_tr, y_tr = x_all[:args.n_train], y_all[:args.n_train]

    # --- uncached: the whole model trains, dense and with the head pruned
    need = (args.warmup + args.steps) * bs
    train.compile_model(net, optimizer=task.optimizer, learning_rate=task.learning_rate,
                        momentum=task.momentum)
    out["uncached_dense_step"] = _timed_steps(net, x_tr[:need], y_tr[:need], batch_size=bs,
                                              warmup=args.warmup, steps=args.steps)
    plan = prune.plan_schedule(target_sparsity=0.5, steps_per_epoch=steps_per_epoch,
                               epochs=task.epochs, kind=task.prune_schedule)
    pruned = prune.prune_model(net, plan, layers="trainable")
    train.compile_model(pruned, optimizer=task.optimizer, learning_rate=task.learning_rate,
                        momentum=task.momentum)
    out["uncached_pruned_step"] = _timed_steps(
        pruned, x_tr[:need], y_tr[:need], batch_size=bs, warmup=args.warmup,
        steps=args.steps_pruned, callbacks=prune.callbacks())
    del pruned

    # --- the feature stage: the base's forward pass
    base, head = models.split_frozen_base(net)
    sample = x_tr[:args.feature_images]
    f_sample, out["base_forward"] = _features_timed(base, sample, batch_size=bs)
    out["feature_shape"] = list(f_sample.shape[1:])
    out["batch_invariance"] = features.batch_invariance(base, sample[: 3 * bs + 2],
                                                        batch_size=bs)

    def tiled(n: int) -> np.ndarray:
        reps = -(-n // len(f_sample))
        return np.tile(f_sample, (reps,) + (1,) * (f_sample.ndim - 1))[:n]

    f_train, f_test = tiled(args.n_train), tiled(args.n_test)
    t = _now()
    path = features.save_features(tmp / name, features.Features(
        x_train=f_train, y_train=y_tr.astype(np.int64), x_test=f_test,
        y_test=y_all[args.n_train:args.n_train + args.n_test].astype(np.int64),
        meta={"model": name}))
    out["features_save"] = {**_since(t), "file_bytes": sum(
        f.stat().st_size for f in path.iterdir())}
    t = _now()
    back = features.load_features(path)
    out["features_load"] = _since(t)
    del back

    # --- cached: the head trains on features, full epochs, dense and pruned
    f_fit, fy_fit, f_val, fy_val = f_train[:n_fit], y_tr[:n_fit], f_train[n_fit:], y_tr[n_fit:]
    for label, layers in (("dense", None), ("pruned", "trainable")):
        seed_everything(SEED)
        _, h = models.split_frozen_base(
            models.build_model(name, input_shape=INPUT_SHAPE, n_classes=N_CLASSES, weights=None))
        cbs = []
        if layers:
            h = prune.prune_model(h, plan, layers=layers)
            cbs = prune.callbacks()
        train.compile_model(h, optimizer=task.optimizer, learning_rate=task.learning_rate,
                            momentum=task.momentum)
        w = args.warmup * bs  # traces the training and validation functions
        train.fit(h, f_fit[:w], fy_fit[:w], x_val=f_val[:w], y_val=fy_val[:w], epochs=1,
                  batch_size=bs, callbacks=cbs)
        t = _now()
        hist = train.fit(h, f_fit, fy_fit, x_val=f_val, y_val=fy_val, epochs=1,
                         batch_size=bs, callbacks=cbs)
        out[f"cached_{label}_epoch"] = {"fit_seconds": float(hist["seconds"].iloc[0]),
                                        "images": n_fit, **_since(t)}

    # --- quantization of the whole model (the same both ways)
    whole = models.assemble(base, head, name=name)
    calib = x_tr[: prof.representative_size]
    q = {}
    for technique in ("float32", *prof.techniques):
        t = _now()
        flat = quantize.convert(whole, technique, representative_images=calib,
                                num_calibration=prof.representative_size)
        conv = _since(t)
        clf = quantize.TFLiteClassifier(flat, num_threads=1)
        xs = x_all[args.n_train:args.n_train + args.quantize_images]
        clf.predict_proba(xs[:8], batch_size=256)
        t = _now()
        clf.predict_proba(xs, batch_size=256)
        pred = _since(t)
        q[technique] = {"convert": conv, "bytes": len(flat), "predict": pred,
                        "images": len(xs), "images_per_s": len(xs) / pred["wall_s"]}
    out["quantize"] = q
    out["peak_rss_bytes_after"] = _peak_rss_bytes()
    return out


def extrapolate(r: dict, prof: config.Profile, overhead_s: float, clock: str) -> dict:
    """Seconds per epoch, per run and for the task's grid, both ways, by ``clock``.

    ``clock="cpu"`` takes process CPU seconds as the time a section would take alone
    on one core (TensorFlow runs one thread here), ``"wall"`` the wall time as
    measured (inflated by whatever else ran; see the load averages).
    """
    epochs = r["epochs"]
    fwd = _rate(r["base_forward"], clock)
    val_s = r["n_val"] / fwd                      # uncached validation: base + head
    test_s = r["n_test"] / fwd                    # every run predicts the test set
    un = {k: r["steps_per_epoch"] * r[f"uncached_{k}_step"][f"{clock}_s"]
          / r[f"uncached_{k}_step"]["steps"] + val_s for k in ("dense", "pruned")}
    ca = {k: r[f"cached_{k}_epoch"][f"{clock}_s"] for k in ("dense", "pruned")}
    n_dense = len(prof.seeds) * sum(1 for s in prof.sparsities if s == 0)
    n_pruned = len(prof.seeds) * sum(1 for s in prof.sparsities if s > 0)
    per_run_un = {k: epochs * un[k] + test_s + overhead_s for k in un}
    load = r["features_load"][f"{clock}_s"]
    per_run_ca = {k: epochs * ca[k] + load + test_s + overhead_s for k in ca}
    feature_stage = (
        (r["n_fit"] + r["n_val"] + r["n_test"]) / fwd
        + r["features_save"][f"{clock}_s"] + overhead_s
    )
    # Quantize runs: dense models only unless quantize_pruned, every seed, float32
    # plus every technique; a non-float32 run converts float32 too (its reference).
    q = r["quantize"]
    quant = 0.0
    if prof.techniques:
        for i, _seed in enumerate(prof.seeds):
            for technique in ("float32", *prof.techniques):
                t = q[technique]
                quant += t["convert"][f"{clock}_s"] + overhead_s
                quant += (r["n_test"] + (LATENCY_IMAGES if i == 0 else 0)) / _rate(
                    {"images": t["images"], **t["predict"]}, clock)
                if technique != "float32":
                    quant += q["float32"]["convert"][f"{clock}_s"]
        quant *= len(prof.sparsities) if prof.quantize_pruned else \
            sum(1 for s in prof.sparsities if s == 0)
    train_un = n_dense * per_run_un["dense"] + n_pruned * per_run_un["pruned"]
    train_ca = n_dense * per_run_ca["dense"] + n_pruned * per_run_ca["pruned"]
    # If a cached run predicted the test set from the cached test features (head only,
    # at about the head's training rate, an upper bound) instead of through the base:
    head_test_s = r["n_test"] * ca["dense"] / r["n_fit"]
    saving = (n_dense + n_pruned) * (test_s - head_test_s)
    return {
        "epoch_s": {"uncached_dense": un["dense"], "uncached_pruned": un["pruned"],
                    "cached_dense": ca["dense"], "cached_pruned": ca["pruned"]},
        "train_run_s": {"uncached_dense": per_run_un["dense"],
                        "uncached_pruned": per_run_un["pruned"],
                        "cached_dense": per_run_ca["dense"],
                        "cached_pruned": per_run_ca["pruned"]},
        "n_train_runs": n_dense + n_pruned,
        "feature_stage_s": feature_stage,
        "training_runs_uncached_s": train_un,
        "training_runs_cached_s": train_ca,
        "quantize_runs_s": quant,
        "task_uncached_s": train_un + quant,
        "task_cached_s": feature_stage + train_ca + quant,
        "task_cached_head_predicts_test_s": feature_stage + train_ca + quant - saving,
        "train_epoch_speedup": un["dense"] / ca["dense"],
        "pruned_train_epoch_speedup": un["pruned"] / ca["pruned"],
        "training_runs_speedup": train_un / (feature_stage + train_ca),
    }


UPSAMPLED = 224
#: GPU assumptions of the upsampled estimate (labelled as such in the JSON): effective
#: TF32 throughput of a frozen base's forward pass on one H100-class GPU (well below its
#: peak), and Keras' per-step cost of a small dense head (launch-bound at batch 32).
GPU_EFFECTIVE_TFLOPS = 40.0
GPU_HEAD_STEP_S = 0.004
#: Multiply-adds per image of each base at 224x224 (the Keras applications' published
#: figures: VGG-19 19.6 G, ResNet-50 3.9 G); a FLOP count is twice that.
GMACS_224 = {"vgg19": 19.6, "resnet50": 3.9}


def bench_upsampled(name: str, task: config.Task, args: argparse.Namespace, tmp: Path) -> dict:
    """A base's forward rate at 224x224 and its head's training steps on a memory-mapped cache."""
    from cielib.rows import Rows

    bs = task.batch_size
    seed_everything(SEED)
    net = models.build_model(name, input_shape=INPUT_SHAPE, n_classes=N_CLASSES, weights=None,
                             input_size=UPSAMPLED)
    base, head = models.split_frozen_base(net)
    rng = np.random.default_rng(SEED)
    raw = rng.integers(0, 256, (args.up_images + 4, *INPUT_SHAPE), dtype=np.uint8)
    x = data.preprocess(raw, input_shape=INPUT_SHAPE, scaling="caffe")
    features.compute_features(base, x[:4], batch_size=4)  # traces
    t = _now()
    f = features.compute_features(base, x[4:], batch_size=bs)
    forward = {"images": len(f), **_since(t)}
    n_rows = (args.warmup + args.up_head_steps) * bs + bs
    reps = -(-n_rows // len(f))
    np.save(tmp / "x.npy", np.tile(f, (reps,) + (1,) * (f.ndim - 1))[:n_rows])
    rows = Rows(np.load(tmp / "x.npy", mmap_mode="r"))
    y = rng.integers(0, N_CLASSES, n_rows).astype(np.int64)
    train.compile_model(head, optimizer=task.optimizer, learning_rate=task.learning_rate,
                        momentum=task.momentum)
    w = args.warmup * bs
    val = rows.select(np.arange(n_rows - bs, n_rows))
    train.fit(head, rows.select(np.arange(w)), y[:w], x_val=val, y_val=y[-bs:], epochs=1,
              batch_size=bs)
    fit_rows = rows.select(np.arange(w, w + args.up_head_steps * bs))
    t = _now()
    train.fit(head, fit_rows, y[w:w + len(fit_rows)], x_val=val, y_val=y[-bs:], epochs=1,
              batch_size=bs)
    steps = {"steps": args.up_head_steps, "images": len(fit_rows), **_since(t)}
    return {"input_size": UPSAMPLED, "feature_shape": list(f.shape[1:]),
            "feature_bytes_per_image": int(f[0].nbytes), "base_forward": forward,
            "head_steps": steps, "params": models.count_params(net),
            "peak_rss_bytes_after": _peak_rss_bytes()}


def gpu_minutes(name: str, at32: dict, prof: config.Profile, *, size: int, overhead_s: float
                ) -> dict:
    """Features and training runs of one task on one GPU, from the stated assumptions."""
    gpu_fwd = GPU_EFFECTIVE_TFLOPS * 1e12 / (2 * GMACS_224[name] * 1e9 * (size / 224) ** 2)
    n_fit, n_val, n_test, bs = at32["n_fit"], at32["n_val"], at32["n_test"], at32["batch_size"]
    epoch = GPU_HEAD_STEP_S * (at32["steps_per_epoch"] + n_val / bs)
    run = at32["epochs"] * epoch + GPU_HEAD_STEP_S * n_test / bs + overhead_s
    feats = (n_fit + n_val + n_test) / gpu_fwd + overhead_s
    n_runs = len(prof.seeds) * len(prof.sparsities)
    n_features = 1 if prof.task(at32["task"]).weights != "none" else len(prof.seeds)
    return {"forward_images_per_s": gpu_fwd, "head_epoch_s": epoch, "training_run_s": run,
            "feature_stage_s": feats,
            "training_and_features_minutes": (n_features * feats + n_runs * run) / 60}


def extrapolate_upsampled(name: str, up: dict, at32: dict, prof: config.Profile, *, jobs: int,
                          overhead_s: float, clock: str = "cpu") -> dict:
    """One task of a profile at 224x224 on ``jobs`` CPU cores, and on one GPU (assumed rates).

    CPU: the features stage = every image at the measured 224x224 forward rate; a head
    epoch = steps per epoch x the measured step time, validation images at the same
    rate; a training run = epochs x that + the test set predicted by the head (at its
    training rate, an upper bound) + one check batch through the whole network + the
    per-run overhead; a quantize run = the 32x32 run's conversions (scaled by the
    weights' count) + its interpreter passes slowed by the forward-rate ratio 224/32.
    """
    fwd = _rate(up["base_forward"], clock)
    step = up["head_steps"][f"{clock}_s"] / up["head_steps"]["steps"]
    n_fit, n_val, n_test = at32["n_fit"], at32["n_val"], at32["n_test"]
    spe = at32["steps_per_epoch"]
    epoch = step * (spe + n_val / at32["batch_size"] / 3)  # validation: forward only
    test = n_test / at32["batch_size"] * step / 3 + at32["batch_size"] / fwd
    run = at32["epochs"] * epoch + test + overhead_s
    features_s = (n_fit + n_val + n_test) / fwd + overhead_s
    slow = _rate(at32["base_forward"], clock) / fwd
    weights_ratio = up["params"]["total"] / at32["params"]["total"]
    q = at32["quantize"]
    quant = 0.0
    for i, _seed in enumerate(prof.seeds):
        for technique in ("float32", *prof.techniques):
            t = q[technique]
            convert = t["convert"][f"{clock}_s"] * weights_ratio
            if technique == "full_int8":  # calibration passes at 224x224
                convert += prof.representative_size / fwd
            quant += convert + overhead_s + (n_test + (LATENCY_IMAGES if i == 0 else 0)) * slow / _rate(
                {"images": t["images"], **t["predict"]}, clock)
            if technique != "float32":
                quant += q["float32"]["convert"][f"{clock}_s"] * weights_ratio
    n_runs = len(prof.seeds) * len(prof.sparsities)
    n_features = 1 if prof.task(at32["task"]).weights != "none" else len(prof.seeds)
    cpu_one_core = n_features * features_s + n_runs * run + (quant if prof.techniques else 0.0)
    return {
        "forward_images_per_s": fwd, "forward_slowdown_vs_32": slow,
        "head_step_s": step, "head_epoch_s": epoch, "training_run_s": run,
        "feature_stage_s": features_s, "feature_cache_bytes": (n_fit + n_val + n_test)
        * up["feature_bytes_per_image"], "quantize_runs_s": quant if prof.techniques else 0.0,
        "n_training_runs": n_runs, "n_features_runs": n_features,
        "cpu_one_core_s": cpu_one_core, "cpu_hours": cpu_one_core / jobs / 3600,
        "gpu_estimate": {**gpu_minutes(name, at32, prof, size=UPSAMPLED, overhead_s=overhead_s),
                         "quantize_runs_cpu_hours": (quant if prof.techniques else 0.0) / jobs / 3600},
    }


def upsampled(args: argparse.Namespace) -> dict:
    """``--upsampled``: measure both bases at 224x224 and add the reading to the JSON."""
    configure_threads(1)
    prof = config.load_profile("paper")
    out_path = args.out if args.out is not None else OUT
    previous = json.loads(out_path.read_text()) if out_path.is_file() else {}
    if "measurements" not in previous:
        raise SystemExit(f"{out_path} has no 32x32 measurements to extrapolate from: run "
                         "the benchmark without --upsampled first")
    overhead = json.loads(OVERHEAD_JSON.read_text()) if OVERHEAD_JSON.is_file() else {}
    overhead_s = float(overhead.get("median_seconds", {}).get("tf_import", 0.0))
    load_before = os.getloadavg()
    t_all = _now()
    measured = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            measured[name] = bench_upsampled(name, prof.task(TASKS[name]), args, Path(tmp))
            print(f"{name} at {UPSAMPLED}x{UPSAMPLED} measured", flush=True)
    profiles = {}
    for profile_name in ("paper", "paper-fidelity"):
        p = config.load_profile(profile_name)
        per = {}
        for t in p.tasks:
            name = t.model
            at32 = dict(previous["measurements"][name])
            at32.update(task=t.name, epochs=t.epochs)
            if t.input_size == UPSAMPLED:
                per[t.name] = extrapolate_upsampled(name, measured[name], at32, p, jobs=args.jobs,
                                                    overhead_s=overhead_s)
            else:  # the images' own size: the 32x32 measurements
                est = extrapolate(at32, p, overhead_s, "cpu")
                per[t.name] = {"cpu_one_core_s": est["feature_stage_s"] + est["training_runs_cached_s"]
                               + est["quantize_runs_s"], "from": "32x32 measurements",
                               "gpu_estimate": gpu_minutes(name, at32, p, size=32,
                                                           overhead_s=overhead_s)}
        total = sum(e["cpu_one_core_s"] for e in per.values())
        gpu = sum(e["gpu_estimate"]["training_and_features_minutes"] for e in per.values())
        profiles[profile_name] = {"tasks": per, "cpu_hours_estimate": total / args.jobs / 3600,
                                  "gpu_minutes_estimate": gpu}
    result = {
        "description": f"The upsampled reading (input_size = {UPSAMPLED}): measured forward "
                       "rates and head steps on this CPU, everything else derived (estimates)",
        "measurements": measured,
        "estimates": profiles,
        "assumptions": {
            "gpu_effective_tflops": GPU_EFFECTIVE_TFLOPS, "gpu_head_step_s": GPU_HEAD_STEP_S,
            "gmacs_per_image_224": GMACS_224, "jobs": args.jobs,
            "gpu_note": "not measured: forward rate = assumed effective TFLOP/s / (2 x GMACs); "
                        "head step = assumed Keras per-step cost; the GPU's per-run overhead as "
                        "the CPU's TensorFlow import; quantization stays on the CPU",
            "quantize_note": "conversion times of the 32x32 models scaled by the weights' count; "
                             "interpreter passes slowed by the Keras forward-rate ratio 224/32",
            "head_note": "validation and test images counted at a third of a training step "
                         "(forward only); the test set is predicted by the head from the cache",
        },
        "settings": {"images_timed_per_base": args.up_images, "head_steps_timed": args.up_head_steps,
                     "warmup_steps": args.warmup, "tensorflow_threads": 1},
        "total_wall_s": _since(t_all)["wall_s"],
        "load_average_before": list(load_before), "load_average_after": list(os.getloadavg()),
    }
    previous[f"upsampled_{UPSAMPLED}"] = result
    out_path.write_text(json.dumps(previous, indent=1) + "\n")
    print(json.dumps({k: {"cpu_hours_estimate": v["cpu_hours_estimate"],
                          "gpu_minutes_estimate": v["gpu_minutes_estimate"]}
                      for k, v in profiles.items()}, indent=1))
    return result


def _worker(args: argparse.Namespace, prof: config.Profile) -> dict:
    """Measure one model in this process (one thread) and write its JSON."""
    configure_threads(1)
    rng = np.random.default_rng(SEED)
    n = args.n_train + args.n_test
    raw = rng.integers(0, 256, (n, *INPUT_SHAPE), dtype=np.uint8)
    labels = rng.integers(0, N_CLASSES, n).astype(np.int64)
    t = _now()
    x_all = data.preprocess(raw, input_shape=INPUT_SHAPE, scaling="caffe")
    preprocess = {**_since(t), "images": n}
    del raw
    with tempfile.TemporaryDirectory() as tmp:
        result = bench_model(args.worker, prof.task(TASKS[args.worker]), prof, x_all, labels,
                             args, Path(tmp))
    out = {"result": result, "preprocess": preprocess}
    args.worker_out.write_text(json.dumps(out))
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40, help="timed uncached dense steps")
    p.add_argument("--steps-pruned", type=int, default=24, help="timed uncached pruned steps")
    p.add_argument("--warmup", type=int, default=4)
    p.add_argument("--feature-images", type=int, default=640,
                   help="images timed through the base (the feature stage's rate)")
    p.add_argument("--quantize-images", type=int, default=128)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="runs in parallel in the estimate, one TensorFlow thread each")
    p.add_argument("--models", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--smoke", action="store_true", help="tiny sizes, to check the script")
    p.add_argument("--serial", action="store_true",
                   help="measure the models one after the other (default: at the same "
                        "time, one process each, as two runs share the cores under --jobs 2)")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--upsampled", action="store_true",
                   help=f"measure the {UPSAMPLED}x{UPSAMPLED} reading briefly and add it to the JSON")
    p.add_argument("--up-images", type=int, default=32, help="images timed through each base at 224")
    p.add_argument("--up-head-steps", type=int, default=60, help="head steps timed at 224")
    p.add_argument("--worker", choices=list(TASKS), help=argparse.SUPPRESS)
    p.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.n_train, args.n_test = N_TRAIN, N_TEST
    if args.smoke:
        args.n_train, args.n_test = 2_000, 400
        args.steps, args.steps_pruned, args.warmup = 4, 3, 1
        args.feature_images, args.quantize_images = 128, 16
    if args.upsampled:
        return upsampled(args)
    prof = config.load_profile("paper")
    if args.worker:
        return _worker(args, prof)
    out_path = args.out if args.out is not None else (None if args.smoke else OUT)

    load_before = os.getloadavg()
    t_all = _now()
    overhead = json.loads(OVERHEAD_JSON.read_text()) if OVERHEAD_JSON.is_file() else {}
    overhead_s = float(overhead.get("median_seconds", {}).get("tf_import", 0.0))
    flags = [f"--steps={args.steps}", f"--steps-pruned={args.steps_pruned}",
             f"--warmup={args.warmup}", f"--feature-images={args.feature_images}",
             f"--quantize-images={args.quantize_images}", *(["--smoke"] if args.smoke else [])]
    results, preprocess = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        procs = []
        for name in args.models:
            cmd = [sys.executable, str(Path(__file__).resolve()), *flags, "--worker", name,
                   "--worker-out", str(Path(tmp) / f"{name}.json")]
            procs.append((name, subprocess.Popen(cmd)))
            if args.serial:
                procs[-1][1].wait()
        for name, proc in procs:
            if proc.wait() != 0:
                raise SystemExit(f"the {name} worker failed with status {proc.returncode}")
            got = json.loads((Path(tmp) / f"{name}.json").read_text())
            results[name], preprocess[name] = got["result"], got["preprocess"]
            print(f"{name} measured", flush=True)

    estimates: dict = {}
    for clock in ("cpu", "wall"):
        per = {}
        for name, r in results.items():
            est = extrapolate(r, prof, overhead_s, clock)
            prep_s = preprocess[name][f"{clock}_s"]  # the features notebook preprocesses too
            est["feature_stage_s"] += prep_s
            est["task_cached_s"] += prep_s
            est["task_cached_head_predicts_test_s"] += prep_s
            est["training_runs_speedup"] = est["training_runs_uncached_s"] / (
                est["feature_stage_s"] + est["training_runs_cached_s"])
            per[name] = est
        one_core_un = sum(e["task_uncached_s"] for e in per.values())
        one_core_ca = sum(e["task_cached_s"] for e in per.values())
        one_core_ca_head = sum(e["task_cached_head_predicts_test_s"] for e in per.values())
        estimates[clock] = {
            "tasks": per,
            "one_core_uncached_s": one_core_un,
            "one_core_cached_s": one_core_ca,
            # --jobs N: N runs at a time, one thread each; assumes the runs pack evenly.
            "profile_uncached_hours": one_core_un / args.jobs / 3600,
            "profile_cached_hours": one_core_ca / args.jobs / 3600,
            "profile_cached_minutes": one_core_ca / args.jobs / 60,
            "profile_cached_minutes_head_predicts_test": one_core_ca_head / args.jobs / 60,
            "profile_speedup": one_core_un / one_core_ca,
        }
    main_est = estimates["cpu"]
    summary = {
        "clock": "cpu (process CPU seconds of one-thread sections: what they take alone on "
                 "one core); estimates by wall clock as measured are under estimates.wall",
        **{f"{m}_train_epoch_speedup": e["train_epoch_speedup"]
           for m, e in main_est["tasks"].items()},
        **{f"{m}_pruned_train_epoch_speedup": e["pruned_train_epoch_speedup"]
           for m, e in main_est["tasks"].items()},
        **{f"{m}_training_runs_speedup": e["training_runs_speedup"]
           for m, e in main_est["tasks"].items()},
        **{f"{m}_epoch_s": e["epoch_s"] for m, e in main_est["tasks"].items()},
        **{f"{m}_feature_stage_s": e["feature_stage_s"] for m, e in main_est["tasks"].items()},
        "paper_profile_speedup": main_est["profile_speedup"],
        "paper_profile_uncached_hours": main_est["profile_uncached_hours"],
        "paper_profile_cached_hours": main_est["profile_cached_hours"],
        "paper_profile_cached_minutes": main_est["profile_cached_minutes"],
        "paper_profile_cached_minutes_head_predicts_test":
            main_est["profile_cached_minutes_head_predicts_test"],
        **{f"{m}_quantize_runs_s": e["quantize_runs_s"] for m, e in main_est["tasks"].items()},
        "jobs": args.jobs,
        "targets": {
            "train_epoch_speedup_at_least": 15,
            "cached_paper_profile_minutes_at_most": 90,
        },
    }
    summary["targets_met"] = {
        "train_epoch_speedup": all(e["train_epoch_speedup"] >= 15
                                   for e in main_est["tasks"].values()),
        "cached_paper_profile_minutes": summary["paper_profile_cached_minutes"] <= 90,
    }
    result = {
        "description": "Paper profile at CIFAR-10 scale on this CPU: whole-model training "
                       "vs the frozen-base feature cache (synthetic data, weights=None)",
        "summary": summary,
        "estimates": estimates,
        "measurements": results,
        "preprocess": preprocess,
        "settings": {
            "n_train": args.n_train, "n_test": args.n_test, "n_classes": N_CLASSES,
            "input_shape": list(INPUT_SHAPE), "seed": SEED, "tensorflow_threads": 1,
            "tflite_threads": 1, "jobs_in_estimate": args.jobs,
            "models_measured": "one after the other" if args.serial else "at the same time, one process each",
            "uncached_steps": args.steps, "uncached_pruned_steps": args.steps_pruned,
            "warmup_steps": args.warmup, "feature_images": args.feature_images,
            "quantize_images": args.quantize_images, "smoke": args.smoke,
            "profile": {"sparsities": list(prof.sparsities), "seeds": list(prof.seeds),
                        "techniques": list(prof.techniques),
                        "quantize_pruned": prof.quantize_pruned,
                        "representative_size": prof.representative_size,
                        "tasks": {m: {"epochs": prof.task(t).epochs,
                                      "batch_size": prof.task(t).batch_size,
                                      "prune_layers": prof.task(t).prune_layers}
                                  for m, t in TASKS.items()}},
            "per_run_overhead_s": overhead_s,
            "per_run_overhead_source": (f"{OVERHEAD_JSON.relative_to(ROOT)} median_seconds.tf_import"
                                        if overhead_s else "not found: 0"),
            "method": "one TensorFlow (and LiteRT) thread, timed by process CPU time and wall "
                      "time; uncached epochs extrapolated from timed steps (mean over "
                      "--steps after --warmup) x steps per epoch + validation at the base's "
                      "forward rate; cached epochs are full epochs (after a traced warm-up) "
                      "on tiled features; feature stage = all images at the base's forward "
                      "rate + preprocessing + saving; profile = features + every training "
                      "run (epochs, test predictions at the base's forward rate, per-run "
                      "overhead) + quantize runs (conversions, float32 reference conversion, "
                      "test predictions and first-seed speed measurement at the measured "
                      "interpreter rate), summed, divided by --jobs (runs in parallel, one "
                      "thread each, assumed to pack evenly)",
            "not_included": "model saving and gzip sizes, analysis notebooks, report",
        },
        "total_wall_s": _since(t_all)["wall_s"],
        "peak_rss_bytes": {name: r["peak_rss_bytes_after"] for name, r in results.items()},
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "machine": {
            "python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "tensorflow": tf.__version__, "tf_keras": keras.__version__,
            "tensorflow_model_optimization": md.version("tensorflow-model-optimization"),
            "ai_edge_litert": md.version("ai-edge-litert"), "numpy": np.__version__,
            "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        },
    }
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return result


if __name__ == "__main__":
    main()
