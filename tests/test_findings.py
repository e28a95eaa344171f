"""Discussion sentences: planted tables give the expected statements and numbers."""

import pandas as pd
import pytest

from cielib import findings


def test_accuracy_finding():
    runs = pd.DataFrame({"stage": "train", "sparsity": [0.0, 0.0, 0.9, 0.9], "top1": [0.80, 0.82, 0.70, 0.72]})
    text = findings.accuracy_finding(runs, label="T")
    assert "81.0% dense" in text and "71.0% at sparsity 0.9" in text and "-10.0 points" in text


SINGLE = pd.DataFrame({"setting": ["sparsity 0.5", "sparsity 0.9", "float16", "dynamic_int8", "full_int8",
                                   "float32"],
                       "impacted_images": [50.0, 90.0, 3.0, 7.0, 40.0, 0.0]})


VERDICTS = pd.DataFrame({
    "setting": ["sparsity 0.9", "sparsity 0.9", "dynamic_int8", "sparsity 0.9"],
    "schema": ["single-model", "single-model", "single-model", "population"],
    "statistic": ["images", "classes", "images", "classes, BH"],
    "design": ["independent", "independent", "paired", "independent"],
    "null": ["permutation pairs", "permutation pairs", "reseeded dense", "permutation"],
    "n_base": [15, 15, 30, 15], "n_comp": [15, 15, 30, 15],
    "observed": [90.0, 2.5, 7.0, 3.0], "null_median": [60.0, 2.0, 55.0, 0.0],
    "null_low": [40.0, 1.0, 35.0, 0.0], "null_high": [85.0, 4.0, 80.0, 1.0],
    "p": [0.004, 0.31, 1.0, 0.0005], "percentile": [99.6, 69.0, 0.0, 99.9],
    "n_null": [1000, 1000, 1000, 1000], "exact": False,
})


def test_cie_finding_quotes_p_values_and_never_the_confounded_comparison():
    text = findings.cie_finding(SINGLE, label="T", paper_task="vgg19_cifar10", verdicts=VERDICTS)
    assert "sparsity 0.9 (90" in text
    assert "paper found" not in text and "as the paper" not in text
    assert "sparsity 0.9 90 (null median 60, 95% range 40–85; p = 0.004, 99.6th percentile)" in text
    assert "dynamic_int8 7 (null median 55" in text and "p = 1.000" in text
    assert "not compared with each other" in text


def test_cie_finding_labels_extensions():
    text = findings.cie_finding(SINGLE, label="T", paper_task="vgg19_cifar10")
    assert "full_int8 is an extension: the paper did not run full-integer int8" in text
    resnet = findings.cie_finding(SINGLE, label="T", paper_task="resnet50_cifar100")
    assert "float16 is an extension: the paper ran no quantization on its CIFAR-100 task" in resnet
    bare = findings.cie_finding(SINGLE, label="T")
    assert "paper found" not in bare and "no paper task to compare with" in bare


def test_agreement_finding_counts_and_agrees():
    agree = pd.DataFrame({"n_seeds": [3, 3], "mean_precision": [0.5, float("nan")], "mean_recall": [0.25, 0.0],
                          "n_population": [4, 1], "mean_n_single": [2, 0], "n_single_total": [6, 0],
                          "n_both_total": [3, 0], "n_population_total": [12, 3], "low_power": [True, True]})
    text = findings.agreement_finding(agree, label="T")
    assert "3 of 6 single-model class flags (50.0%) agree with the population schema" in text
    assert "they recover 3 of 15 population flags (20.0%)" in text
    assert "little power here (3 models per population, fewer than 10)" in text
    assert "confirm" not in text
    strong = agree.assign(low_power=False, n_seeds=30)
    assert "little power" not in findings.agreement_finding(strong, label="T")
    # a table from before the count columns still reads "agree", never "confirm"
    old = agree[["mean_precision", "mean_recall", "n_population", "mean_n_single"]]
    text = findings.agreement_finding(old, label="T")
    assert "agree with the population schema's with precision 50.0% and recall 12.5%" in text


def test_efficiency_finding_says_what_the_numbers_show():
    eff = pd.DataFrame({"time_vs_dense": [1.0, 1.2, 1.3]}, index=[0.0, 0.5, 0.9])
    text = findings.efficiency_finding(eff, label="T")
    assert "1.20x to 1.30x" in text and "every pruned setting (2) took longer" in text
    assert "as the paper reported" in text
    # a ratio below 1 is never "as the paper reported" -- not even 0.99
    eff = pd.DataFrame({"time_vs_dense": [1.0, 0.99, 1.3]}, index=[0.0, 0.5, 0.9])
    text = findings.efficiency_finding(eff, label="T")
    assert "as the paper reported" not in text
    assert "1 of 2 pruned settings took longer than dense training and 1 did not (sparsity 0.5)" in text
    # one pruned setting (the population profile): no "1.22x to 1.22x"
    eff = pd.DataFrame({"time_vs_dense": [1.0, 1.22]}, index=[0.0, 0.9])
    text = findings.efficiency_finding(eff, label="T")
    assert "took 1.22x the dense model's time; the pruned setting took longer" in text
    assert " to " not in text.split(";")[0]


QUANT = pd.DataFrame({"stage": "quantize", "sparsity": 0.0,
                      "technique": ["float32", "dynamic_int8", "full_int8"],
                      "tflite_bytes": [400, 100, 100], "latency_b1_ms": [2.0, 1.0, 0.5]})


def test_quantization_finding_labels_extensions():
    text = findings.quantization_finding(QUANT, label="T", paper_task="vgg19_cifar10")
    assert "dynamic_int8 4.00x smaller" in text and "dynamic_int8 2.00x" in text
    assert "full_int8 (an extension: the paper did not run full-integer int8) 4.00x smaller" in text
    resnet = findings.quantization_finding(QUANT, label="T", paper_task="resnet50_cifar100")
    assert "quantization is an extension on this task" in resnet
    assert "do not have any quantization comparatives" in resnet


def test_null_finding_quotes_every_count_with_its_null():
    text = findings.null_finding(VERDICTS, label="T")
    assert text.startswith("T: single-model schema, sparsity 0.9, independent, 15 pairs")
    assert "impacted images 90 (null median 60, 95% range 40–85; p = 0.004, 99.6th percentile)" in text
    assert "classes flagged 2.5 (null median 2" in text
    assert ("population schema, sparsity 0.9, independent, 15 models per side (Hooker et al.: 30), "
            "null by permutation") in text
    assert "after Benjamini-Hochberg (not in Hooker et al.'s code) 3 (" in text and "p = 0.0005" in text
    assert "no compressed model" in findings.null_finding(VERDICTS.iloc[:0], label="T")


def test_cie_finding_without_any_compressed_model():
    import pandas as pd

    from cielib import findings

    empty = pd.DataFrame(columns=["setting", "seed", "impacted_classes", "impacted_images"])
    assert "nothing for the CIE schemas to compare" in findings.cie_finding(empty, label="T")
