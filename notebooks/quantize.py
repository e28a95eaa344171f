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
# # Quantizing one trained model
#
# Post-training quantization needs no retraining: the trained (and, if pruned,
# stripped) Keras model is converted to a TensorFlow Lite flatbuffer with lower-precision
# weights. This notebook converts one model with one technique, checks that the
# flatbuffer really holds the types asked for, evaluates it with the LiteRT interpreter
# on the same test set as the Keras model, and saves its predictions in the same schema
# as the training runs, so every analysis treats Keras and TFLite models alike.
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
technique = "dynamic_int8"  # float32, float16, dynamic_int8 or full_int8
representative_size = 200  # calibration images for full_int8
measure_speed = True  # time batch-1 latency and batch throughput on this CPU
source_dir = "runs/scratch/train-demo"  # the training run whose model is converted
data_dir = None
threads = 1  # TensorFlow and LiteRT interpreter threads (part of the run id)
run_dir = "runs/scratch/quantize-demo"

# %%
from pathlib import Path

import numpy as np
from IPython.display import Markdown, display

from cielib import data, evaluate, models, quantize, runs, sizes
from cielib.keras import configure_threads, keras

out = Path(run_dir)
out.mkdir(parents=True, exist_ok=True)
configure_threads(threads)
source = Path(source_dir)
net = keras.models.load_model(source / "model.keras")
ds = data.load_dataset(dataset, data_dir=data_dir)
spec = models.get_spec(model)
input_shape = tuple(net.input_shape[1:])


def prep(x):
    return data.preprocess(x, input_shape=input_shape, scaling=spec.preprocessing)


display(Markdown(f"**{technique}** from `{source.name}` ({model}, sparsity {sparsity:g}, seed {seed})"))

# %% [markdown]
# ## Convert and check the flatbuffer

# %%
calibration = prep(ds.x_train[:representative_size]) if technique == "full_int8" else None
tflite = quantize.convert(net, technique, representative_images=calibration,
                          num_calibration=representative_size)
(out / "model.tflite").write_bytes(tflite)
check = quantize.verify(tflite, technique)
size = sizes.file_sizes(out / "model.tflite")
# The float32 conversion of the same model is the reference for the compression ratio.
reference_bytes = len(tflite) if technique == "float32" else len(quantize.convert(net, "float32"))
size["ratio_vs_float32"] = sizes.compression_ratio(reference_bytes, size["bytes"])
check

# %%
quantize.inspect(tflite).query("role == 'weights'")[["name", "op", "dtype", "shape", "nbytes"]]

# %% [markdown]
# ## Evaluate with the LiteRT interpreter

# %%
clf = quantize.TFLiteClassifier(tflite, num_threads=threads)
x_test = prep(ds.x_test)
probs = clf.predict_proba(x_test, batch_size=256)
y_pred = probs.argmax(axis=1)
runs.save_predictions(out / runs.PREDICTIONS, y_true=ds.y_test, y_pred=y_pred, probs=probs)
keras_pred = runs.load_predictions(source)["y_pred"]
test_metrics = evaluate.summary_metrics(ds.y_test, y_pred, probs=probs, n_classes=ds.n_classes)
agreement = float(np.mean(keras_pred == y_pred))
print(f"top-1 {test_metrics['top1']:.4f}; same top-1 prediction as the Keras model on "
      f"{agreement:.2%} of test images")

# %% [markdown]
# ## Speed on this CPU
#
# Median time of one `invoke()` for a batch of 1 (latency) and a batch of 256
# (throughput), after warm-up. Only measured once per architecture and technique
# (the first seed): speed does not depend on the seed.

# %%
speed = {}
if measure_speed:
    b1 = quantize.latency(clf, x_test, batch_size=1, warmup=5, repeats=50)
    bn = quantize.latency(clf, x_test, batch_size=256, warmup=2, repeats=10)
    speed = {"latency_b1_ms": b1["median_s"] * 1e3, "throughput_ips": bn["images_per_s"],
             "speed_threads": b1["num_threads"]}
speed

# %%
metrics = {
    **test_metrics,
    "technique": technique,
    "tflite_bytes": size["bytes"],
    "tflite_gzip_bytes": size["gzip_bytes"],
    "size_ratio_vs_float32": size["ratio_vs_float32"],
    "weight_bytes": int(check["weight_bytes"]),
    "input_dtype": str(check["input_dtype"]),
    "output_dtype": str(check["output_dtype"]),
    "agreement_with_keras": agreement,
    "source_run": source.name,
    "n_classes": int(ds.n_classes),
    "class_names": list(ds.class_names),
    **speed,
}
runs.write_json(out / runs.METRICS, metrics)

# %% tags=["assert"]
assert probs.shape == (len(ds.y_test), ds.n_classes)
assert np.allclose(probs.sum(axis=1), 1, atol=1e-2)
assert metrics["top1"] > 1.5 / ds.n_classes, "quantized model is near chance"
assert agreement > 0.8, f"only {agreement:.0%} agreement with the Keras model"
