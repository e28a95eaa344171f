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


def test_cie_finding_compares_only_what_the_paper_ran():
    text = findings.cie_finding(SINGLE, label="T", paper_task="vgg19_cifar10")
    assert "sparsity 0.9 (90" in text
    assert "(float16, dynamic_int8) each impacted fewer images (at most 7)" in text
    assert "as the paper found" in text
    # full-integer int8 is reported, as an extension, and never "as the paper found"
    assert "full_int8 (an extension: the paper did not run full-integer int8) impacted 40 images on average, fewer than" in text
    assert text.count("as the paper found") == 1
    assert text.index("as the paper found") < text.index("full_int8")


def test_cie_finding_when_the_papers_techniques_do_worse():
    worse = SINGLE.assign(impacted_images=[50.0, 90.0, 3.0, 60.0, 40.0, 0.0])
    text = findings.cie_finding(worse, label="T", paper_task="vgg19_cifar10")
    assert "as the paper found" not in text
    assert "Unlike the paper's Table 4" in text and "dynamic_int8 (60)" in text


def test_cie_finding_resnet_quantization_is_an_extension():
    text = findings.cie_finding(SINGLE, label="T", paper_task="resnet50_cifar100")
    assert "as the paper found" not in text
    assert "float16 and dynamic_int8 (an extension: the paper ran no quantization on its CIFAR-100 task)" in text
    assert "impacted 3 and 7 images on average, 2 of 2 fewer than the mildest pruning (sparsity 0.5, 50)" in text
    # without a paper task, nothing is compared with the paper
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


@pytest.mark.parametrize("beyond, expected", [(0, "in 0 of 3 settings"), (2, "in 2 of 3 settings")])
def test_null_finding(beyond, expected):
    vs = pd.DataFrame({"n_seeds": [3, 3, 3], "single_classes_seeds_beyond_null_max": [2, 0, 1],
                       "single_images_seeds_beyond_null_max": [3, 0, 0],
                       "single_null_classes_mean": 1.25, "single_null_images_mean": 30.0,
                       "population_classes": [3.0, 0.0, 1.0][:3],
                       "population_null_classes_max": [1.0, 1.0, 1.0],
                       "population_null_classes_mean": 0.5, "population_null_splits": 3},
                      index=["a", "b", "c"])
    vs["population_classes"] = [2.0, 2.0, 0.0] if beyond == 2 else [0.0, 1.0, 1.0]
    text = findings.null_finding(vs, label="T")
    assert "flags 1.2 classes and 30 images on average" in text
    assert "more classes than every such pair in 3 of 9 (setting, seed) runs" in text
    assert "more images in 3 of 9" in text
    assert expected in text and "null mean 0.5 classes over 3 splits" in text


def test_cie_finding_without_any_compressed_model():
    import pandas as pd

    from cielib import findings

    empty = pd.DataFrame(columns=["setting", "seed", "impacted_classes", "impacted_images"])
    assert "nothing for the CIE schemas to compare" in findings.cie_finding(empty, label="T")
