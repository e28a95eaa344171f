"""Discussion sentences: planted tables give the expected statements and numbers."""

import pandas as pd

from cielib import findings


def test_accuracy_and_cie_findings():
    runs = pd.DataFrame({"stage": "train", "sparsity": [0.0, 0.0, 0.9, 0.9], "top1": [0.80, 0.82, 0.70, 0.72]})
    text = findings.accuracy_finding(runs, label="T")
    assert "81.0% dense" in text and "71.0% at sparsity 0.9" in text and "-10.0 points" in text
    single = pd.DataFrame({"setting": ["sparsity 0.5", "sparsity 0.9", "float16", "float32"],
                           "impacted_images": [50.0, 90.0, 3.0, 0.0]})
    text = findings.cie_finding(single, label="T")
    assert "sparsity 0.9 (90" in text and "fewer images (at most 3)" in text
    single.loc[2, "impacted_images"] = 60.0
    assert "did not uniformly" in findings.cie_finding(single, label="T")


def test_agreement_efficiency_quantization():
    agree = pd.DataFrame({"mean_precision": [0.5, float("nan")], "mean_recall": [0.25, 0.0],
                          "n_population": [4, 1], "mean_n_single": [2, 0]})
    assert "precision 50.0% and recall 12.5%" in findings.agreement_finding(agree, label="T")
    eff = pd.DataFrame({"time_vs_dense": [1.0, 1.2, 1.3]}, index=[0.0, 0.5, 0.9])
    assert "1.20x to 1.30x" in findings.efficiency_finding(eff, label="T")
    assert "longer than dense" in findings.efficiency_finding(eff, label="T")
    q = pd.DataFrame({"stage": "quantize", "sparsity": 0.0, "technique": ["float32", "dynamic_int8"],
                      "tflite_bytes": [400, 100], "latency_b1_ms": [2.0, 1.0]})
    text = findings.quantization_finding(q, label="T")
    assert "dynamic_int8 4.00x smaller" in text and "dynamic_int8 2.00x" in text
