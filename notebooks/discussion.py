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
# # The paper beside this run, and what we found
#
# Each of the paper's Tables 1-9 is shown beside the reproduced numbers of the same
# setting. The paper trained one model per setting; here metrics are means over seeds,
# and the single-model CIE counts (Tables 4 and 9) are the first seed's, like the
# paper's one model. In the quick profile the tasks are **stand-ins** (small CNNs on
# Fashion-MNIST), so the columns are labelled as a different setting: compare trends,
# not values. In the paper profile they are the same models and datasets, yet still not
# a like-for-like comparison: the paper's test set is not the official CIFAR-10 test
# batch (its Figure 17 shows 952 to 1,025 images per class, where the official batch has
# 1,000 of each), its learning rates and batch size are not stated (we use Keras'
# defaults), and it trained one model per setting.
#
# Source of the paper's numbers: `cielib/data_files/paper_results.csv`.

# %% tags=["parameters"]
profile = "quick"
tasks = None  # [{"name", "label", "paper_task", "stand_in_for"}] of the profile; None: the store's
inputs = None  # run ids: every train, quantize, profiling and cie run; None: the newest in the store
runs_dir = None  # None: the project's runs/ ($CIELIB_ROOT honoured)
run_dir = "."

# %%
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from cielib import fidelity, findings, paper_tables, paths, runs, runsets, tables

runs_dir = runs_dir or str(paths.runs_dir())
if tasks is None:  # opened by hand: the tasks and newest runs found in the store
    tasks = runsets.latest_tasks(runs_dir)
if inputs is None:
    inputs = [rid for t in tasks for rid in runsets.latest_inputs(
        runs_dir, stages=["train", "quantize", "profiling", "cie"], task=t["name"])[0]]
index = runsets.with_settings(runs.table(runs_dir, inputs))  # every run this discussion reads


def stage_dir(stage, task):
    """The output directory of a task's analysis run of one stage (None if absent)."""
    rows = index[(index["stage"] == stage) & (index["task"] == task)]
    return Path(runs.lookup(rows, stage=stage).path) if len(rows) else None


display(Markdown(f"Citation: {paper_tables.CITATION}."))

# %% [markdown]
# ## Paper vs this run

# %%
for t in tasks:
    if not t["paper_task"]:
        continue
    cie_dir = stage_dir("cie", t["name"])
    single = pd.read_csv(cie_dir / "single_model_cie.csv") if cie_dir else None
    ours = paper_tables.reproduced_tables(index[index["task"] == t["name"]], single, paper_task=t["paper_task"])
    stand_in = bool(t["stand_in_for"])
    display(Markdown(f"### {t['label']}" + (f" (stand-in for {t['stand_in_for']})" if stand_in else "")))
    for number, table in sorted(ours.items()):
        display(Markdown(f"**Table {number}**: {paper_tables.TABLES[number]}"))
        display(tables.present(paper_tables.compare(number, table, stand_in=stand_in), caption=f"The paper's Table {number} beside this run", paper_task=t["paper_task"]))

# %% [markdown]
# ## Input resolution: which reading reproduces the paper's dense models
#
# The paper does not state the resolution its frozen ImageNet bases saw. Each task's
# dense top-1 (mean over seeds) beside the paper's Tables 1 and 6, per input resolution
# (`configs/paper-fidelity.toml` trains both readings of both tasks).

# %%
resolution = fidelity.resolution_check(index, tasks)
if len(resolution):
    display(resolution)
    display(Markdown(fidelity.resolution_finding(resolution)))

# %% [markdown]
# ## Discussion
#
# The statements below are generated from this run's numbers.

# %%
lines = []
for t in tasks:
    label = t["label"]
    task_runs = index[index["task"] == t["name"]]
    lines.append(findings.accuracy_finding(task_runs, label=label))
    cie_dir = stage_dir("cie", t["name"])
    if cie_dir is not None:  # every CIE count is quoted with its null, p-value and percentile
        verdicts = pd.read_csv(cie_dir / "verdicts.csv")
        lines.append(findings.cie_finding(pd.read_csv(cie_dir / "single_model_cie.csv"), label=label,
                                          paper_task=t["paper_task"], verdicts=verdicts))
        lines.append(findings.null_finding(verdicts, label=label))
        if (cie_dir / "agreement.csv").is_file():
            lines.append(findings.agreement_finding(pd.read_csv(cie_dir / "agreement.csv"), label=label))
    prof_dir = stage_dir("profiling", t["name"])
    if prof_dir is not None:
        eff = pd.read_csv(prof_dir / "efficiency.csv", index_col="sparsity")
        lines.append(findings.efficiency_finding(eff, label=label))
    lines.append(findings.quantization_finding(task_runs, label=label, paper_task=t["paper_task"]))
display(Markdown("\n".join(f"- {line}" for line in lines)))

# %% tags=["assert"]
assert lines, "no findings"
assert all("nan" not in line.lower() for line in lines), lines
