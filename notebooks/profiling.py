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
# # Hardware use while training, per sparsity
#
# The paper judged pruning's training efficiency from GPU-utilization traces recorded
# while each sparsity trained (its Figures 22 and 30) and from total training time: the
# dense model used the GPU most, and every pruned model took longer. Each training run
# here recorded the same kind of trace, with NVML on a GPU or with psutil on the CPU,
# and timed every epoch and training step. This notebook puts them side by side.
#
# **What this measurement can and cannot show.** tensorflow-model-optimization prunes by
# multiplying every prunable kernel by a mask: the mask is a dense tensor, the zeros are
# stored and multiplied like any other value, and on mask-update steps each kernel's
# weights are sorted to find the cut-off. No sparse kernels are used, in training or in
# the saved Keras model. So pruned training is expected to be a little *slower* than
# dense training, whatever the sparsity, and utilization cannot reveal a saving that the
# arithmetic never makes. Utilization also says how busy the device was, not how useful
# the work was: throughput (images per second) and total time are the fairer measures.
# Speed-ups from sparsity need sparse kernels or structured pruning, and post-training
# quantization (see its section) is where this stack actually gets faster.

# %% tags=["parameters"]
task = None  # None (opened by hand): the first task found in the store
task_label = ""
stand_in_for = ""
paper_task = ""
inputs = None  # run ids of the task's training runs; None: the newest in the store
runs_dir = None  # None: the project's runs/ ($CIELIB_ROOT honoured)
run_dir = "."

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from cielib import figures, hardware, paths, runs, runsets, tables

runs_dir = runs_dir or str(paths.runs_dir())
if inputs is None:  # opened by hand: the newest finished runs of one task in the store
    inputs, task = runsets.latest_inputs(runs_dir, stages=["train"], task=task)
out = Path(run_dir)
table = runs.table(runs_dir, inputs)  # one row per training run: key, path, metrics
title = task_label or task
backend = table["hw_backend"].iloc[0]
intro = (f"**{title}**: Sampler backend: **{backend}** "
         f"({table['hw_backend_reason'].iloc[0]}); {len(table)} training runs.")
display(Markdown(intro + runsets.stand_in_note(stand_in_for)))

# %% [markdown]
# ### Time and throughput per sparsity
#
# Mean over seeds; the ratio columns compare with the dense model (1.0 = the same).

# %%
cols = ["train_seconds", "images_per_s", "step_ms_median"]
util = "hw_utilization_mean_pct" if backend == "nvml" else "hw_process_cpu_mean_pct"
extra = [c for c in (util, "hw_energy_j", "hw_cpu_seconds") if c in table and table[c].notna().any()]
per_sparsity = table.groupby("sparsity")[cols + extra].mean()
dense = per_sparsity.iloc[0]
per_sparsity["time_vs_dense"] = per_sparsity["train_seconds"] / dense["train_seconds"]
per_sparsity["throughput_vs_dense"] = per_sparsity["images_per_s"] / dense["images_per_s"]
per_sparsity.to_csv(out / "efficiency.csv")
tables.present(per_sparsity, caption="Training time, throughput and hardware use per sparsity, mean over seeds", kind="efficiency", paper_task=paper_task)

# %%
fig = figures.metric_by_sparsity(table.assign(task=title), metric="images_per_s",
                                 title=f"{title}: training throughput", ylabel="images / s")
fig.savefig(out / "throughput_by_sparsity.png", dpi=110)
plt.show()

# %% [markdown]
# On a GPU the sampler also reads NVML's energy counter (or integrates power where the
# GPU has none): energy per training run, per sparsity.

# %%
if backend == "nvml" and "hw_energy_j" in table and table["hw_energy_j"].notna().any():
    fig = figures.metric_by_sparsity(table.assign(task=title), metric="hw_energy_j",
                                     title=f"{title}: GPU energy per training run", ylabel="energy (J)")
    fig.savefig(out / "energy_by_sparsity.png", dpi=110)
    plt.show()
else:
    display(Markdown(f"*No GPU energy counter with the {backend} backend: CPU-seconds are in the table.*"))

# %% [markdown]
# ### Utilization over time
#
# The first seed of every sparsity, smoothed with a 2 s moving window (our choice: the
# paper's traces look smoothed but it does not say how).
# The legend gives each run's total training time.

# %%
column = "utilization_pct" if backend == "nvml" else "process_cpu_pct"
frames = []
for row in runsets.first_seed_per_setting(table).to_dict("records"):
    trace = pd.read_csv(Path(row["path"]) / "utilization.csv")
    trace = hardware.smooth(trace, column=column, window_s=2.0)
    frames.append(trace.assign(sparsity=row["sparsity"], train_seconds=row["train_seconds"]))
traces = pd.concat(frames, ignore_index=True)
fig = figures.utilization_traces(traces, column=f"{column}_smooth",
                                 title=f"{title}: {'GPU' if backend == 'nvml' else 'process CPU'} "
                                       f"utilization while training",
                                 ylabel="utilization (%)" if backend == "nvml" else "CPU (% of one core)")
fig.savefig(out / "utilization.png", dpi=110)
plt.show()

# %%
slowest = per_sparsity["time_vs_dense"].idxmax()
display(Markdown(
    f"The slowest setting was sparsity {slowest:g}, at {per_sparsity.loc[slowest, 'time_vs_dense']:.2f}x "
    f"the dense model's training time; the median training step of the pruned runs took "
    f"{per_sparsity['step_ms_median'].iloc[1:].mean():.1f} ms against "
    f"{dense['step_ms_median']:.1f} ms dense." if len(per_sparsity) > 1 else
    "Only the dense model was trained: nothing to compare."))

# %% tags=["assert"]
assert len(table) == len(inputs)
assert (table["train_seconds"] > 0).all() and (table["images_per_s"] > 0).all()
assert (table["hw_n_samples"] >= 1).all(), "a run recorded no hardware samples"
