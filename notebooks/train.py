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
# # Training one model
#
# This notebook trains **one** classifier for one task, one sparsity and one seed, and
# writes everything the later analyses need into its run directory: the resolved
# parameters, the per-epoch history, the test-set predictions (`predictions.npz`), the
# model itself and a `metrics.json` summary. `run_all.py` executes it once per grid
# point with [papermill](https://papermill.readthedocs.io); you can also run it by hand
# with the defaults below, which train a tiny model on scikit-learn's digits in seconds.
#
# The paper trained VGG-19 on CIFAR-10 with SGD and ResNet-50 on CIFAR-100 with Adam,
# using a cross-entropy loss, and recorded validation accuracy and loss at every epoch.
# We do the same for whichever task the profile names. With `sparsity > 0` the model is
# pruned while it trains: tensorflow-model-optimization's magnitude pruning zeroes the
# smallest weights of every prunable layer along a schedule until the target sparsity is
# reached (Zhu & Gupta's cubic ramp by default), and the pruning wrappers are stripped
# before the model is saved.

# %% tags=["parameters"]
task = "demo"  # name of the task in the profile
dataset = "digits"  # a name from cielib.data.available_datasets()
model = "vgg_small"  # a name from cielib.models.available_models()
optimizer = "sgd"  # "sgd" (the paper's choice for VGG-19) or "adam" (ResNet-50)
learning_rate = 0.05
momentum = 0.9
epochs = 3
batch_size = 64
weights = "none"  # "none", "imagenet" (Keras cache) or a path to an .h5 file
validation_fraction = 0.1  # share of the training images held out, stratified
model_options = {}  # extra keyword arguments for the model builder (e.g. width)
input_size = 0  # paper models: upsample the images to this size in the model (0: as they are)
sparsity = 0.0  # 0.0 trains the dense baseline; > 0 prunes to that share of zeros
prune_schedule = "polynomial"  # "polynomial" (cubic ramp) or "constant"
prune_from = "scratch"  # "scratch": prune while training; "baseline": fine-tune the dense one
prune_epochs = 0  # epochs of pruning (0: same as epochs)
prune_ramp_fraction = 0.7  # share of the pruning steps over which sparsity ramps up
prune_frequency = 0  # steps between mask updates (0: derived from the number of steps)
prune_layers = "all"  # "all" prunable layers, or only "trainable" ones
baseline_dir = None  # the dense run to fine-tune from, when prune_from is baseline
features_dir = None  # a features run: train the head on the base's cached activations
seed = 0
run_dir = "runs/scratch/train-demo"  # where this run's outputs go
data_dir = None  # where to look for CIFAR / full Fashion-MNIST (None: defaults)
threads = 1  # TensorFlow intra- and inter-op threads: they change results (part of the run id)
onednn = True  # TensorFlow's oneDNN kernels: on in every profile (they change results)
sample_interval = 0.5  # seconds between hardware samples (GPU via NVML, else CPU)

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import cielib
from cielib.run_setup import start_run

out = start_run(run_dir, threads=threads, seed=seed, onednn=onednn)  # before TensorFlow loads
from cielib import data, evaluate, figures, hardware, models, prune, runs, train  # noqa: E402
from cielib.keras import keras  # noqa: E402

# %% [markdown]
# ## Data and model
#
# Images arrive as `uint8` arrays in NHWC layout; the model's preprocessing
# (`cielib.models.preprocessor`: padding or resizing, channels, scaling) turns them into
# its input in one place. A paper model with `input_size` upsamples them itself, as its
# first layer. A stratified validation split is drawn from the training images with
# this run's seed. With a features run, the frozen base's activations are cached, and
# only the head (the model's own dense layers) trains on them: the same training, at a
# fraction of the cost.

# %%
ds = data.load_dataset(dataset, data_dir=data_dir)
if sparsity > 0 and prune_from == "baseline":
    net = keras.models.load_model(Path(baseline_dir) / runs.MODEL)
    prep = models.preprocessor(model, net.input_shape[1:])
else:
    net, prep = models.build_for(model, ds, weights=weights, input_size=input_size,
                                 model_options=model_options)
n_params = models.count_params(net)
fitting = train.inputs(net, ds, prep, validation_fraction=validation_fraction, seed=seed,
                       batch_size=batch_size, features_dir=features_dir)
print(f"{ds.name}: {len(fitting.y_train)} train / {len(fitting.y_val)} validation / "
      f"{len(ds.x_test)} test images, {ds.n_classes} classes, model input "
      f"{net.input_shape[1:]}; source: {ds.source}; training on {fitting.source}")

# %% [markdown]
# ## Training
#
# A pruned run derives its schedule from the number of training steps (so the mask
# updates really happen, and the last one lands on the target) and refuses one that
# could not reach it. While the model trains, a background sampler records GPU
# utilization, memory and power through NVML, or CPU load and memory where there is no
# GPU, and every epoch and step is timed: the paper's efficiency evidence.

# %%
net = fitting.net
fit_epochs = (prune_epochs or epochs) if sparsity > 0 else epochs
pruning = None
if sparsity > 0:
    pruning = prune.plan_schedule(
        target_sparsity=sparsity, steps_per_epoch=-(-len(fitting.y_train) // batch_size),
        epochs=fit_epochs, kind=prune_schedule, ramp_fraction=prune_ramp_fraction,
        frequency=prune_frequency or None)
    net = prune.prune_model(net, pruning, layers=prune_layers)
    print(pruning)
train.compile_model(net, optimizer=optimizer, learning_rate=learning_rate, momentum=momentum)
sampler = hardware.Sampler(interval=sample_interval)
timing = hardware.keras_callback(sampler, batch_size=batch_size)
with sampler:
    history = train.fit(
        net, fitting.x_train, fitting.y_train, x_val=fitting.x_val, y_val=fitting.y_val,
        epochs=fit_epochs, batch_size=batch_size,
        callbacks=[*(prune.callbacks() if pruning else []), timing])
hw_summary = hardware.save(sampler, out)
epochs_table = timing.epoch_table()
epochs_table.to_csv(out / "epochs.csv", index=False)
history.to_csv(out / "history.csv", index=False)
history.round(4)

# %% [markdown]
# The pruning wrappers are stripped and the whole network is put back together (with
# the cache: the frozen base under the trained head); it is what is saved, evaluated
# and quantized. Its sparsity is measured layer by layer: a run that misses its target
# by more than 0.01 fails here.

# %%
net = fitting.whole(prune.strip(net) if pruning else net)
measured_sparsity = 0.0
if pruning is not None:
    measured_sparsity = prune.check_sparsity(net, sparsity, tolerance=0.01, layers=prune_layers)
layer_sparsity = prune.sparsity_report(net, layers=prune_layers)
layer_sparsity.to_csv(out / "sparsity.csv", index=False)
layer_sparsity.round(4)

# %%
fig = figures.training_curves(history, title=f"{task}: {model} on {dataset}, seed {seed}")
fig.savefig(out / "training_curves.png", dpi=110)
plt.show()

# %% [markdown]
# ## Test-set predictions
#
# The predictions are saved in the one schema every analysis reads
# (`y_true`, `y_pred`, `probs`), so Keras and TFLite models are treated alike later.
# With cached features the head predicts from the base's cached test activations, and
# the whole network must give bit-identical probabilities on the first batch of test
# images (otherwise it predicts them all): the predictions are the saved model's.

# %%
probs, predicted = fitting.predict_test(net, ds.x_test, ds.y_test)
print(predicted)
y_pred = probs.argmax(axis=1)
runs.save_predictions(out / runs.PREDICTIONS, y_true=ds.y_test, y_pred=y_pred, probs=probs)
size = prune.save_model(net, out)  # runs.MODEL, without optimizer state; and its gzip size
test_metrics = evaluate.summary_metrics(ds.y_test, y_pred, probs=probs, n_classes=ds.n_classes)
metrics = {
    **test_metrics,
    "measured_sparsity": float(measured_sparsity),
    **predicted,
    "model_bytes": size["model_bytes"],
    "gzip_bytes": size["gzip_bytes"],
    "pruning": pruning.to_dict() if pruning is not None else None,
    "final_val_accuracy": float(history["val_accuracy"].iloc[-1]),
    "final_val_loss": float(history["val_loss"].iloc[-1]),
    "train_seconds": float(history["seconds"].sum()),
    "epoch_seconds_median": float(history["seconds"].median()),
    "step_ms_median": float(np.median(timing.step_times[1:]) * 1e3),  # first step traces
    "images_per_s": float(epochs_table["images_per_s"].median()),
    **{f"hw_{k}": v for k, v in hw_summary.items()},
    "epochs_run": int(len(history)),
    "n_train": int(len(fitting.y_train)),
    "n_val": int(len(fitting.y_val)),
    "n_test": int(len(ds.x_test)),
    "n_classes": int(ds.n_classes),
    "class_names": list(ds.class_names),
    "params_total": int(n_params["total"]),
    "params_trainable": int(n_params["trainable"]),
    "data_source": ds.source,
    "cielib_version": cielib.__version__,
}
runs.write_json(out / runs.METRICS, metrics)
metrics

# %% tags=["assert"]
# Sanity checks: a run that fails them is not marked done.
assert len(history) == fit_epochs, "training stopped early"
assert history[["loss", "val_loss"]].notna().all().all(), "loss became NaN"
assert probs.shape == (len(ds.y_test), ds.n_classes)
assert abs(float(probs.sum(axis=1).mean()) - 1.0) < 1e-3, "outputs are not probabilities"
assert metrics["top1"] > 1.5 / ds.n_classes, f"top-1 {metrics['top1']:.3f} is near chance"
assert abs(measured_sparsity - sparsity) <= 0.01, f"sparsity {measured_sparsity:.3f} != {sparsity}"
