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
# # A frozen base's activations, computed once
#
# The paper keeps its pretrained convolutional layers fixed: "I will obtain all of the
# pre-trained convolutional layers with the parameters fixed (i.e. there will be no
# changes to the weights and activation's)" ("Rethinking Compression within Deep
# Neural Networks", 2020, Section IX). Only the new dense layers on top train. A fixed
# base maps every image to the same activations at every step, epoch, seed and
# sparsity, so this notebook computes them **once** per dataset, model, weights and
# preprocessing, and every training run of the task trains the head on them instead
# of pushing each image through the base again. The training run then puts base and
# trained head back together: the whole network is what is saved, evaluated and
# quantized.
#
# What is stored, and why not per seed: the features of **every** training image (in
# the dataset's order) and every test image. Each training run draws its own
# validation split from them with its own seed (`cielib.features.split_features`, the
# same stratified split the images would get), so one features run serves all seeds
# and sparsities. The one exception is a base without pretrained weights
# (`weights = "none"`): its random initial weights follow the seed, so its features do
# too, and `seed` must then be the training runs' seed. A training run checks the
# fingerprint of its own base against the one stored here and refuses features that
# came from other weights.
#
# Run by hand with the defaults, this computes ResNet-50's (randomly initialised) base
# activations for scikit-learn's digits in well under a minute.

# %% tags=["parameters"]
task = "demo"  # name of the task in the profile
dataset = "digits"  # a name from cielib.data.available_datasets()
model = "resnet50"  # a model with a frozen base: resnet50 or vgg19
weights = "none"  # "none", "imagenet" (Keras cache) or a path to an .h5 file
model_options = {}  # as the training runs pass them (the head's options do not matter)
input_size = 0  # as the training runs: upsample the images to this size in the model (0: no)
batch_size = 32  # the training runs' batch size
seed = 0  # matters only without pretrained weights: a random base follows the seed
run_dir = "runs/scratch/features-demo"  # where this run's outputs go
data_dir = None  # where to look for CIFAR / full Fashion-MNIST (None: defaults)
threads = 1  # TensorFlow intra- and inter-op threads, as the training runs (part of the run id)
onednn = True  # TensorFlow's oneDNN kernels, as the training runs (the cache is exact with them)

# %%
import os
import resource

import numpy as np
import pandas as pd

import cielib
from cielib.run_setup import start_run

out = start_run(run_dir, threads=threads, seed=seed, onednn=onednn)  # before TensorFlow loads
from cielib import data, features, models, runs  # noqa: E402

# %% [markdown]
# ## The model, split into base and head
#
# The model is built exactly as a training run builds it (same seed, same call), then
# cut right before its first trainable layer: the base is everything before (for the
# paper's models, the upsampling to `input_size` if any, the frozen
# `keras.applications` network and its flattening or pooling), the head the new dense
# layers.

# %%
ds = data.load_dataset(dataset, data_dir=data_dir)
net, prep = models.build_for(model, ds, weights=weights, input_size=input_size,
                             model_options=model_options)
base, head = models.split_frozen_base(net)
base_params = models.count_params(base)
print(f"{model}: base {base_params['total']:,} weights (all frozen) -> features "
      f"{base.output_shape[1:]}; head {models.count_params(head)['trainable']:,} trainable")

# %% [markdown]
# ## The activations
#
# Computed at the training batch size, a chunk of images at a time, and streamed to
# disk: the cache can be larger than memory (VGG-19's activations of CIFAR upsampled to
# 224x224 are 6.0 GB), and training runs read it memory-mapped. Whether the activations
# are bit-for-bit what the whole model computes while it trains depends on the CPU
# kernels: an image meets the base at a different position of a different shuffled
# batch every epoch, and some kernels round its activations differently there. The
# check below computes a few batches in two orders and reports whether anything
# changed (with oneDNN, `TF_ENABLE_ONEDNN_OPTS=1`, nothing did on the machine this was
# developed on).

# %%
sample = prep(ds.x_train[: 3 * batch_size + 2])
invariance = features.batch_invariance(base, sample, batch_size=batch_size, seed=seed)
meta = {
    "dataset": dataset,
    "model": model,
    "weights": weights,
    "model_options": model_options,
    "input_shape": list(net.input_shape[1:]),
    "input_size": input_size,
    "scaling": models.get_spec(model).preprocessing,
    "batch_size": batch_size,
    "seed": seed,
    "base_fingerprint": features.fingerprint(base),
    "base_name": base.name,
    "data_source": ds.source,
    "cielib_version": cielib.__version__,
}
stats = features.write_features(out, base=base, prep=prep, x_train=ds.x_train,
                                y_train=ds.y_train, x_test=ds.x_test, y_test=ds.y_test,
                                batch_size=batch_size, meta=meta)
print(invariance)
pd.DataFrame(stats).T

# %%
back = features.load_features(out, base=base, expect={"batch_size": batch_size})
seconds = sum(s["seconds"] for s in stats.values())
metrics = {
    "n_train": int(len(back.x_train)),
    "n_test": int(len(back.x_test)),
    "feature_shape": list(back.shape),
    "feature_dtype": str(back.x_train.dtype),
    "input_shape": meta["input_shape"],
    "input_size": input_size,
    "scaling": meta["scaling"],
    "batch_size": batch_size,
    "base_params": int(base_params["total"]),
    "base_fingerprint": meta["base_fingerprint"],
    "train_seconds": stats["train"]["seconds"],
    "test_seconds": stats["test"]["seconds"],
    "seconds": seconds,
    "images_per_s": (len(back.x_train) + len(back.x_test)) / seconds,
    "array_bytes": back.nbytes,
    "file_bytes": sum((out / f).stat().st_size for f in features.FEATURE_FILES.values()),
    # the kernel's peak resident memory: the cache is streamed, so it stays bounded
    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "batch_invariant": invariance["invariant"],
    "batch_invariance_max_abs_diff": invariance["max_abs_diff"],
    "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
    "data_source": ds.source,
    "cielib_version": cielib.__version__,
}
runs.write_json(out / runs.METRICS, metrics)
metrics

# %% tags=["assert"]
# Sanity checks: a run that fails them is not marked done.
assert back.x_train.shape == (len(ds.y_train), *base.output_shape[1:])
assert back.x_test.shape == (len(ds.y_test), *base.output_shape[1:])
assert back.x_train.dtype == np.float32 and back.x_test.dtype == np.float32
assert np.array_equal(back.y_train, ds.y_train) and np.array_equal(back.y_test, ds.y_test)
assert stats["train"]["std"] > 0, "every activation is the same: a dead base"
