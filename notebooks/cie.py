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
# - **Hooker et al.'s population schema**: several independently trained dense models
#   and their compressed versions. A class is impacted when Welch's t-test finds its
#   *normalized* recall differs between the two populations; as in their released code,
#   each population's class recalls are normalized by subtracting one constant, the
#   population's mean top-1 (`normalize="population"`; `"model"` subtracts each model's
#   own top-1 instead). An image is a CIE when the most common prediction of the two
#   populations differs.
#
# Then we ask what neither paper did: how many classes and images does each schema flag
# when *nothing* was compressed (dense models that differ only in their seed)? And does
# the cheap schema agree with the expensive one?

# %% tags=["parameters"]
task = None  # None (opened by hand): the first task found in the store
task_label = ""
stand_in_for = ""
paper_task = ""
inputs = None  # run ids of the task's training and quantize runs (every setting and seed); None: the newest in the store
alpha = 0.05  # significance level of the t-tests
correction = "none"  # "none" or "fdr_bh" (Benjamini-Hochberg over classes)
normalize = "population"  # "population" (Hooker et al.'s code) or "model"
boundary = "uncompressed"  # the paper's step 2: the dense model's std; or "own"
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
import pandas as pd
from IPython.display import Markdown, display

from cielib import cie, data, figures, findings, paths, predictions, results, runs, tables

runs_dir = runs_dir or str(paths.runs_dir())
out = Path(run_dir)
images = None  # the test images for the gallery (None: the dataset's, loaded when needed)
if predictions_dir is not None:  # predictions brought from outside, checked before use
    brought = predictions.load(predictions_dir, expect_sha256=predictions_sha256 or None)
    y_true, base, preds, designs = brought.y_true, brought.base, brought.settings, brought.designs
    class_names, images, task = brought.class_names, brought.images, task or brought.name
else:  # this project's runs
    if inputs is None:  # opened by hand: the newest finished runs of one task in the store
        inputs, task = results.latest_inputs(runs_dir, stages=["train", "quantize"], task=task)
    table = results.with_settings(runs.table(runs_dir, inputs))  # every training and quantize run
    y_true, preds = results.predictions_by_setting(table)
    class_names = runs.read_json(Path(table["path"].iloc[0]) / runs.METRICS)["class_names"]
    base = preds.pop("dense")
    designs = dict(zip(table["setting"], table["design"]))
corr = None if correction == "none" else correction
title = task_label or task
seeds = sorted(base)
settings, pairs = results.pair_with_dense(
    base, dict(sorted(preds.items(), key=lambda kv: results.setting_order(kv[0]))), designs)
pairs.to_csv(out / "pairs.csv", index=False)
intro = (f"**{title}**: {len(seeds)} dense model(s) "
         f"(seeds {', '.join(map(str, seeds))}) against {len(settings)} compression setting(s); "
         f"{len(y_true)} test images. Population tests at alpha = {alpha}"
         f"{', Benjamini-Hochberg corrected' if corr else ', uncorrected'}, normalization `{normalize}`; "
         f"single-model boundary `{boundary}`.")
display(Markdown(intro + results.stand_in_note(stand_in_for)))
display(tables.present(pairs.groupby(["setting", "design"], sort=False)
                       .agg(models=("dense_seed", "size"),
                            compressed_seeds=("compressed_seed", lambda s: ", ".join(map(str, s))))
                       .reset_index(),
                       caption="Which models are compared: independent settings were trained with "
                               "their own seeds (the i-th compressed seed beside the i-th dense "
                               "seed); paired ones derive from the dense model of their seed",
                       kind="cie"))

# %% [markdown]
# ### The paper's schema: impacted classes and images per setting
#
# For each setting, the first seed alone (what the paper reports in its Tables 4 and 9,
# from one model), then the mean and spread over seeds, which the paper could not show.
# The boundary (the standard deviation of the class accuracies, in points) is given
# before and after compression: the paper quotes 7.79 and 7.49 for VGG-19 at 0.7.

# %%
single = cie.single_model_table(y_true, base, settings, boundary=boundary)
single.to_csv(out / "single_model_cie.csv", index=False)
first = single[single["seed"] == seeds[0]].set_index("setting")[
    ["impacted_classes", "classes", "impacted_images", "boundary_before", "boundary_after"]]
spread = single.groupby("setting")[["impacted_classes", "impacted_images"]].agg(["mean", "std"])
spread.columns = [f"{a}_{b}" for a, b in spread.columns]
paper_table = first.add_suffix(f" (seed {seeds[0]})").join(spread)
tables.present(paper_table, caption="Impacted classes and images per setting by the paper's single-model schema (first seed, then mean and std over seeds) and the boundary before and after compression", kind="cie", paper_task=paper_task)

# %%
sparsity_rows = single[single["setting"].str.fullmatch(r"sparsity [\d.]+")].assign(
    sparsity=lambda d: d["setting"].str.split(" ").str[1].astype(float), task=title)
if len(sparsity_rows):
    fig = figures.metric_by_sparsity(sparsity_rows, metric="impacted_images",
                                     title=f"{title}: impacted images (paper's schema)",
                                     ylabel="impacted images")
    fig.savefig(out / "impacted_images_by_sparsity.png", dpi=110)
    plt.show()

# %% [markdown]
# ### The null: the paper's schema when nothing was compressed
#
# The same schema applied to every ordered pair of dense models that differ only in
# their seed. Whatever it flags here is the schema's noise floor; neither the paper nor
# Hooker et al. report this calibration.

# %%
single_null = cie.single_model_null(y_true, base, boundary=boundary) if len(seeds) > 1 else None
if single_null is not None:
    single_null.to_csv(out / "single_model_null.csv", index=False)
    display(tables.present(single_null[["impacted_classes", "impacted_images"]]
                           .describe().loc[["count", "mean", "min", "max"]],
                           caption="The single-model schema on pairs of dense models (the null)", kind="cie"))
else:
    display(Markdown("*One dense seed: no null pair to compare.*"))

# %% [markdown]
# ### Hooker et al.'s schema: significant classes and CIE images
#
# Needs at least two seeds per population. Beside every count: the number of classes
# expected to be flagged by chance alone (alpha × classes uncorrected; under
# Benjamini-Hochberg, slightly above alpha in total), and whether the populations are
# too small to have power (Hooker et al. used 30 models; fewer than 10 is marked).

# %%
pops = {}
for name, by_seed in settings.items():
    common = [s for s in seeds if s in by_seed]
    if len(common) >= 2:
        pops[name] = cie.population_cie(y_true, results.stack_seeds(base, common),
                                        results.stack_seeds(by_seed, common), alpha=alpha,
                                        correction=corr, normalize=normalize)
population = cie.population_summary(pops) if pops else None
if population is not None:
    population.to_csv(out / "population_cie.csv")
    display(tables.present(population.drop(columns=["power_note"]), caption="Hooker et al.'s population schema per setting, with the flags expected by chance", kind="population_cie", paper_task=paper_task))
    display(Markdown(population["power_note"].iloc[0]))
else:
    display(Markdown("*Fewer than two seeds: the population schema cannot run.*"))

# %% [markdown]
# The population null: two disjoint halves of the dense models tested against each
# other (needs at least four dense seeds).

# %%
population_null = None
if pops and len(seeds) >= 4:
    population_null = cie.population_null(y_true, base, alpha=alpha, correction=corr, normalize=normalize)
    population_null.to_csv(out / "population_null.csv", index=False)
    display(tables.present(population_null[["n_models_a", "n_models_b", "significant_classes", "cie_images",
                                            "expected_false_flags"]].describe().loc[["count", "mean", "max"]],
                           caption="The population schema on disjoint halves of the dense models (the null)",
                           kind="population_cie"))
else:
    display(Markdown(f"*{len(seeds)} dense seed(s): too few to split into two populations of at least "
                     "two; the population schema's null needs the `population` profile.*"))

# %% [markdown]
# ### Which classes moved, for the strongest compression
#
# Bars: change in mean recall (highlighted when the population test is significant);
# points: the normalized change, which discounts a drop shared by every class.

# %%
if pops:
    pruned = [n for n in pops if n.startswith("sparsity") and "+" not in n]
    strongest = pruned[-1] if pruned else list(pops)[-1]
    pop = pops[strongest]
    fig = figures.class_recall_change(pop.table, class_names=class_names,
                                      title=f"{title}: {strongest} vs dense")
    fig.savefig(out / "class_recall_change.png", dpi=110)
    plt.show()
    display(tables.present(pop.table.assign(name=[class_names[i] for i in pop.table.index])
                           .sort_values("p").head(10),
                           caption=f"The ten classes with the smallest p-values under {strongest}",
                           kind="class_recall_change"))

# %% [markdown]
# ### A gallery of CIE images
#
# Test images on which the two populations' most common predictions differ, with the
# true label and both modal predictions. Many are hard or ambiguous images: the
# population schema points a human auditor at them.

# %%
if pops and pops[strongest].cie_images.size and (images is not None or predictions_dir is None):
    if images is None:
        images = data.load_dataset(table["dataset"].iloc[0], data_dir=data_dir).x_test
    cie_rows = pops[strongest].images.loc[pops[strongest].cie_images]
    fig = figures.cie_gallery(images, cie_rows, class_names=class_names, max_images=12,
                              title=f"{title}: CIE images under {strongest}")
    fig.savefig(out / "cie_gallery.png", dpi=110)
    plt.show()

# %% [markdown]
# ### Does the single-model schema find what the population schema finds?
#
# For every setting with at least two seeds: each seed's single-model flags are compared
# with the population's flags, counts beside rates. The population schema is a
# reference, not the truth: with few models it has little power. Precision: the share
# of single-model flags that agree with the population's; recall: the share of the
# population's flags a single model also finds.

# %%
agree = None
if pops:
    pairs = {name: (results.stack_seeds(base, [s for s in seeds if s in settings[name]]),
                    results.stack_seeds(settings[name], [s for s in seeds if s in settings[name]]))
             for name in pops}
    agree = cie.agreement_table(y_true, pairs, alpha=alpha, correction=corr, normalize=normalize,
                                boundary=boundary)
    agree.to_csv(out / "agreement.csv")
    display(tables.present(agree.drop(columns=["power_note"]), caption="Agreement of the single-model schema with the population schema", kind="agreement"))

# %% [markdown]
# ### Both schemas against their null
#
# Per setting: what each schema flags, beside what it flags between dense models alone.
# `*_share_null_ge` is the share of null comparisons that flag at least as much (small:
# beyond chance); `*_seeds_beyond_null_max` counts the seeds that flag more than any
# null pair.

# %%
vs_null = None
if single_null is not None and len(single):  # needs compressed settings and two dense seeds
    with_population = population_null is not None  # a population count needs its null beside it
    vs_null = cie.schemas_vs_null(single, single_null, population=population if with_population else None,
                                  population_null=population_null, agreement=agree)
    vs_null.to_csv(out / "schemas_vs_null.csv")
    display(tables.present(vs_null, caption="Both schemas beside their null", kind="agreement"))
    display(Markdown(findings.null_finding(vs_null, label=title)))
if agree is not None and len(agree):
    display(Markdown(findings.agreement_finding(agree, label=title)))

# %% tags=["assert"]
assert len(single) == sum(len([s for s in v if s in base]) for v in settings.values())
assert (single["impacted_images"] >= 0).all()
assert population is None or population["cie_images"].between(0, len(y_true)).all()
assert population is None or (population["normalize"] == normalize).all()
assert single_null is None or len(single_null) == len(seeds) * (len(seeds) - 1)
