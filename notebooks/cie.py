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
# # Which classes and images does compression hurt? (CIE)
#
# Two ways to find *Compression Identified Exemplars* are compared here on the same
# predictions:
#
# - **The paper's single-model schema** (Section IX, "CIE detection schema"): one dense
#   and one compressed model. A class is *outside the boundary* when its accuracy
#   deviates from the model's top-1 by more than the standard deviation of the dense
#   model's class accuracies; classes that cross that boundary under compression (in
#   either direction) are impacted, and the impacted images are the summed absolute
#   changes of those deviations times the class sizes.
# - **Hooker et al.'s population schema**: populations of dense and compressed models.
#   A class is impacted when a t-test finds its *normalized* recall (recall minus the
#   population's mean top-1, as in their code) differs between the populations; an
#   image is a CIE when the most common prediction of the two populations differs.
#
# **Design.** Models pruned from scratch are trained with their own seeds, independent
# of the dense models, as the paper and Hooker et al. compared them; the population
# schema tests them with Welch's test, as Hooker et al. did. A quantized model (or one
# pruned by fine-tuning a dense model) *is* its dense model changed, so those settings
# are **paired**: a paired t-test on the within-pair differences of class recall.
#
# **Every count against a null of the same design and size.** Neither paper asks how
# much each schema flags when nothing was compressed. Here every count (classes
# flagged, images) is set against the same count computed where compression cannot
# matter: for independent settings, the observed models relabelled at random (a
# permutation test); for paired ones, the two models of each pair swapped at random;
# for the single-model schema on paired settings, each compressed model replaced by
# another dense model. Each count gets an empirical p-value and its percentile in the
# null.

# %% tags=["parameters"]
task = None  # None (opened by hand): the first task found in the store
task_label = ""
stand_in_for = ""
paper_task = ""
inputs = None  # run ids of the task's train and quantize runs; None: the newest in the store
alpha = 0.05  # significance level of the t-tests
correction = "none"  # class flags shown: "none" (Hooker et al.) or "fdr_bh" (Benjamini-Hochberg)
normalize = "population"  # "population" (Hooker et al.'s code) or "model"
boundary = "uncompressed"  # the paper's step 2: the dense model's std; or "own"
n_null = 1000  # null draws per setting and schema (fewer when all can be enumerated)
rng_seed = 0  # seed of the null draws
runs_dir = None  # None: the project's runs/ ($CIELIB_ROOT honoured)
data_dir = None
run_dir = "."
predictions_dir = None  # your own models: a directory of <setting>/<seed>.npz files
predictions_sha256 = ""  # its content hash as planned by run_all.py ("": not checked)

# %% [markdown]
# **Your own models.** This notebook also analyses predictions made by any framework
# (PyTorch, JAX, Keras, ONNX...): set `predictions_dir` above to a directory with one
# sub-directory per setting (`dense/` for the uncompressed models), each holding one
# `<seed>.npz` per independently trained model with `y_pred` and `y_true`; then run all
# cells. `python run_all.py --predictions DIR` does the same and writes its own report.

# %%
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from cielib import cie, data, figures, findings, paths, predictions, runs, runsets, tables

runs_dir = runs_dir or str(paths.runs_dir())
out = Path(run_dir)
images = None  # the test images for the gallery (None: the dataset's, loaded when needed)
if predictions_dir is not None:  # predictions brought from outside, checked before use
    brought = predictions.load(predictions_dir, expect_sha256=predictions_sha256 or None)
    y_true, base, preds, designs = brought.y_true, brought.base, brought.settings, brought.designs
    class_names, images, task = brought.class_names, brought.images, task or brought.name
else:  # this project's runs
    if inputs is None:  # opened by hand: the newest finished runs of one task in the store
        inputs, task = runsets.latest_inputs(runs_dir, stages=["train", "quantize"], task=task)
    table = runsets.with_settings(runs.table(runs_dir, inputs))  # every training and quantize run
    y_true, preds = runsets.predictions_by_setting(table)
    class_names = runs.read_json(Path(table["path"].iloc[0]) / runs.METRICS)["class_names"]
    base = preds.pop("dense")  # {dense seed: predictions}
    designs = dict(zip(table["setting"], table["design"]))
title = task_label or task
settings = dict(sorted(preds.items(), key=lambda kv: runsets.setting_order(kv[0])))  # own seeds
_, pairs = runsets.pair_with_dense(base, settings, designs)

# %% [markdown]
# ## The analysis, in one call
#
# `cie.analyse` runs both schemas on every setting, draws each count's null and places
# the count in it. Everything below reads its result.

# %%
corr = None if correction == "none" else correction
analysis = cie.analyse(y_true, base, settings, designs, alpha=alpha, correction=corr,
                       normalize=normalize, boundary=boundary, n_null=n_null, rng_seed=rng_seed,
                       n_classes=len(class_names))
for name in ("single", "single_null", "population_null", "verdicts", "pairs"):
    getattr(analysis, name).to_csv(out / f"{name}.csv", index=False)
analysis.single.to_csv(out / "single_model_cie.csv", index=False)
analysis.population.to_csv(out / "population_cie.csv")
analysis.agreement.to_csv(out / "agreement.csv")
n_pairs = analysis.pairs.groupby("setting", sort=False).size()
sizes = ", ".join(f"{s} {n}" for s, n in n_pairs.items())
display(Markdown(
    f"**{title}**: {len(base)} dense model(s) against {len(settings)} compression setting(s) "
    f"({sizes} pair(s)); {len(y_true)} test images. Population schema, "
    f"{analysis.population['n_models_base'].max() if len(analysis.population) else 0} models "
    f"per side at most (Hooker et al.: 30); class flags at alpha = {alpha}, counted uncorrected "
    f"(as Hooker et al.) and after Benjamini-Hochberg (a departure from their code, shown "
    f"alongside); normalization `{normalize}`; single-model boundary `{boundary}`. "
    "Whole tables: [verdicts.csv](verdicts.csv), [single.csv](single.csv), "
    "[population_cie.csv](population_cie.csv), [agreement.csv](agreement.csv), "
    "[pairs.csv](pairs.csv)." + runsets.stand_in_note(stand_in_for)))

# %% [markdown]
# ## Verdicts: each count against its null
#
# Red diamond: the observed count; grey points: the null draws; bar: their 95% range.
# The p-value is the share of null draws at least as large (with the +1 correction):
# small means more flags than chance gives with this design and these sizes.

# %%
for key, schema in cie.SCHEMAS.items():
    rows = analysis.verdicts[analysis.verdicts["schema"] == schema]
    if len(rows):
        fig = figures.null_verdicts(rows, getattr(analysis, f"{key}_null"),
                                    title=f"{title}: {schema} schema against its null")
        fig.savefig(out / f"null_verdicts_{key}.png", dpi=110)
        tables.show_figure(fig, caption=f"The {schema} schema's counts per setting (red) over "
                                        "their null draws (grey), p-values annotated")
display(tables.present(cie.verdict_table(analysis.verdicts), index=False,
                       kinds={"observed": "count", "percentile": "pct"},
                       caption="Every CIE count with its null (median and 95% range), p-value, "
                               "null percentile and the null used (kind, models per side, draws); "
                               "'classes, BH': after Benjamini-Hochberg, not in Hooker et "
                               "al.'s code"))
display(Markdown(findings.null_finding(analysis.verdicts, label=title)))

# %% [markdown]
# ## The paper's table: impacted classes and images per setting
#
# The first dense seed's pair, what the paper reports from its one model (Tables 4 and
# 9), beside the boundary before and after compression (the paper quotes 7.79 and 7.49
# points for VGG-19 at 0.7).

# %%
first = analysis.single.sort_values("seed").groupby("setting", sort=False).head(1)
shown = ["seed", "compressed_seed", "impacted_classes", "classes", "impacted_images",
         "boundary_before", "boundary_after"]
tables.present(first.set_index("setting")[shown],
               caption="The paper's single-model schema on each setting's first pair",
               kind="cie", paper_task=paper_task)

# %%
pruned_rows = analysis.single["setting"].str.fullmatch(r"sparsity [\d.]+")
sparsity_rows = analysis.single[pruned_rows].assign(
    sparsity=lambda d: d["setting"].str.split(" ").str[1].astype(float), task=title)
if len(sparsity_rows):
    fig = figures.metric_by_sparsity(sparsity_rows, metric="impacted_images",
                                     title=f"{title}: impacted images (paper's schema)",
                                     ylabel="impacted images")
    fig.savefig(out / "impacted_images_by_sparsity.png", dpi=110)
    plt.show()

# %% [markdown]
# ## Which classes moved, for the strongest compression
#
# Bars: change in mean recall (highlighted when the population test flags the class);
# points: the normalized change, which discounts a drop shared by every class.

# %%
pops = analysis.pops
strongest = None
if pops:
    pruned = [n for n in pops if n.startswith("sparsity") and "+" not in n]
    strongest = pruned[-1] if pruned else list(pops)[-1]
    pop = pops[strongest]
    fig = figures.class_recall_change(pop.table, class_names=class_names,
                                      title=f"{title}: {strongest} vs dense ({pop.test} test)")
    fig.savefig(out / "class_recall_change.png", dpi=110)
    plt.show()
    shown = ["name", "n_images", "recall_base", "recall_comp", "difference", "p", "p_adjusted",
             "significant"]
    display(tables.present(pop.table.assign(name=[class_names[i] for i in pop.table.index])
                           .sort_values("p").head(10)[shown],
                           caption=f"The ten classes with the smallest p-values under {strongest}",
                           kind="class_recall_change"))
else:
    display(Markdown("*Fewer than two models per side: the population schema cannot run.*"))

# %% [markdown]
# ## A gallery of CIE images
#
# Test images on which the two populations' most common predictions differ, with the
# true label and both modal predictions: where a human auditor would look first.

# %%
if strongest is not None and pops[strongest].cie_images.size and (
        images is not None or predictions_dir is None):
    if images is None:
        images = data.load_dataset(table["dataset"].iloc[0], data_dir=data_dir).x_test
    cie_rows = pops[strongest].images.loc[pops[strongest].cie_images]
    fig = figures.cie_gallery(images, cie_rows, class_names=class_names, max_images=12,
                              title=f"{title}: CIE images under {strongest}")
    fig.savefig(out / "cie_gallery.png", dpi=110)
    plt.show()

# %% [markdown]
# ## Does the single-model schema find what the population schema finds?
#
# Each pair's single-model flags against the population's flags, counts beside rates.
# The population schema is a reference, not the truth. Precision: the share of
# single-model flags the population schema also makes; recall: the share of the
# population's flags a single pair also finds.

# %%
if len(analysis.agreement):
    display(tables.present(analysis.agreement, kind="agreement",
                           caption="Agreement of the single-model schema with the population "
                                   "schema"))
    display(Markdown(findings.agreement_finding(analysis.agreement, label=title)))

# %% tags=["assert"]
assert len(analysis.single) == len(pairs)
assert (analysis.single["impacted_images"] >= 0).all()
assert analysis.verdicts["p"].dropna().between(0, 1).all()
assert len(base) < 2 or (analysis.verdicts["n_null"] > 0).all(), "every count has a null"
assert analysis.population["cie_images"].between(0, len(y_true)).all()
assert set(analysis.pops) <= set(settings)
