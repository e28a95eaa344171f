# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Quantizing one trained model, every technique
#
# Post-training quantization needs no retraining: the trained (and, if pruned,
# stripped) Keras model is converted to a TensorFlow Lite flatbuffer with lower-precision
# weights. This notebook converts one trained model with every technique of the profile
# (and the float32 reference), checks that each flatbuffer really holds the types asked
# for, evaluates each with the LiteRT interpreter on the same test set as the Keras
# model, and saves the predictions of each technique in its own folder of the run
# (`<technique>/predictions.npz`, listed in `parts.json`) in the same schema as the
# training runs, so every analysis treats Keras and TFLite models alike.
#
# The built-in techniques (each is an entry of the registry in `cielib.compression`):
#
# | technique | weights | activations | calibration |
# |---|---|---|---|
# | `float32` | float32 | float32 | none (the reference) |
# | `float16` | float16 | float32 | none |
# | `dynamic_int8` | int8 | float32, quantized on the fly | none |
# | `full_int8` | int8 | int8 (input and output too) | representative training images |

# %% tags=["parameters"]
task = "demo"
dataset = "digits"
model = "vgg_small"  # the architecture (for its preprocessing)
sparsity = 0.0  # of the source model
seed = 0
techniques = ["float32", "float16", "dynamic_int8", "full_int8"]  # float32 is the reference
representative_size = 200  # calibration images for full_int8
measure_speed = True  # time batch-1 latency and batch throughput on this CPU
source_dir = "runs/scratch/train-demo"  # the training run whose model is converted
data_dir = None
threads = 1  # TensorFlow and LiteRT interpreter threads (part of the run id)
run_dir = "runs/scratch/quantize-demo"

# %%
import resource
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import Markdown, display

from cielib import compression, data, evaluate, models, quantize, runs, sizes
from cielib.keras import configure_threads, keras

out = Path(run_dir)
out.mkdir(parents=True, exist_ok=True)
configure_threads(threads)
source = Path(source_dir)
net = keras.models.load_model(source / runs.MODEL)
ds = data.load_dataset(dataset, data_dir=data_dir)
prep = models.preprocessor(model, net.input_shape[1:])
display(Markdown(f"{', '.join(techniques)} from `{source.name}` ({model}, sparsity {sparsity:g}, seed {seed})"))

# %% [markdown]
# ## Convert and check the flatbuffers
#
# Each conversion is checked in the flatbuffer itself: the weights' types, and for
# full-integer int8 the input and output types too. `convert_all` converts the model
# with every technique, writing it as a TensorFlow SavedModel once for all of them
# (the same bytes as one `convert` per technique, in less than half the time).

# %%
reference = compression.reference().name  # float32: every ratio is taken against it
calibrating = [t for t in techniques if compression.get(t).calibrates]  # full_int8
calibration = prep(ds.x_train[:representative_size]) if calibrating else None
blobs = quantize.convert_all(net, techniques, num_calibration=representative_size,
                             representative_images=calibration)
checks = {t: quantize.verify(blob, t) for t, blob in blobs.items()}
pd.DataFrame(checks).T

# %%
quantize.inspect(blobs[techniques[-1]]).query("role == 'weights'")[["name", "op", "dtype", "shape", "nbytes"]]

# %% [markdown]
# ## Evaluate each with the LiteRT interpreter, and time it
#
# Speed: median time of one `invoke()` for a batch of 1 (latency) and a batch of 256
# (throughput), after warm-up. Only measured on the first seed: speed does not depend
# on the seed.

# %%
x_test = prep(ds.x_test)
keras_pred = runs.load_predictions(source)["y_pred"]
summary = {}
for technique, blob in blobs.items():
    part = out / technique
    part.mkdir(exist_ok=True)
    (part / runs.TFLITE_MODEL).write_bytes(blob)
    clf = quantize.TFLiteClassifier(blob, num_threads=threads)
    probs = clf.predict_proba(x_test, batch_size=256)
    runs.save_predictions(part / runs.PREDICTIONS, y_true=ds.y_test, y_pred=probs.argmax(axis=1), probs=probs)
    size = sizes.file_sizes(part / runs.TFLITE_MODEL)
    metrics = {
        **evaluate.summary_metrics(ds.y_test, probs.argmax(axis=1), probs=probs, n_classes=ds.n_classes),
        "technique": technique, "tflite_bytes": size["bytes"], "tflite_gzip_bytes": size["gzip_bytes"],
        # the float32 conversion of the same model is the reference for the compression ratio
        "size_ratio_vs_float32": sizes.compression_ratio(len(blobs[reference]), size["bytes"]),
        "weight_bytes": int(checks[technique]["weight_bytes"]),
        "input_dtype": str(checks[technique]["input_dtype"]),
        "output_dtype": str(checks[technique]["output_dtype"]),
        "agreement_with_keras": float(np.mean(keras_pred == probs.argmax(axis=1))),
        "source_run": source.name, "n_classes": int(ds.n_classes), "class_names": list(ds.class_names),
        **(quantize.speed(clf, x_test) if measure_speed else {}),
    }
    runs.write_json(part / runs.METRICS, metrics)
    summary[technique] = metrics
runs.write_parts(out, key="technique", values=list(blobs))
# the kernel's peak resident memory: converting VGG-19 or ResNet-50 must fit the machine
peak_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
runs.write_json(out / runs.METRICS, {"techniques": list(blobs), "peak_rss_bytes": peak_rss_bytes,
                                     "source_run": source.name})
print(f"peak memory of this run: {peak_rss_bytes / 2**30:.2f} GiB")
table = pd.DataFrame(summary).T
table[[c for c in ("top1", "agreement_with_keras", "tflite_bytes", "size_ratio_vs_float32",
                   "latency_b1_ms", "throughput_ips") if c in table]]

# %% tags=["assert"]
assert list(blobs) == list(techniques) and techniques[0] == reference
for technique, m in summary.items():
    assert m["top1"] > 1.5 / ds.n_classes, f"{technique} is near chance"
    assert m["agreement_with_keras"] > 0.8, f"{technique}: only {m['agreement_with_keras']:.0%} agreement"
    assert np.allclose(runs.load_predictions(out / technique)["probs"].sum(axis=1), 1, atol=1e-2)
