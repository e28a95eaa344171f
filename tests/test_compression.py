"""The technique registry and the setting value type; a toy technique runs end to end.

The toy technique is a plugin module written into a temporary directory and named in
``CIELIB_PLUGINS``: ``run_all.py`` and every notebook kernel it starts import it, so it
goes through plan -> quantize -> analyses with no edit anywhere else.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import pandas as pd
import pytest

from cielib import compression, config, plan, quantize, runsets, stages
from cielib.compression import Setting, Technique
from conftest import TINY_PROFILE, run_all

#: A plugin module: a half-precision technique under another name. Importing it registers it.
TOY_PLUGIN = '''
from cielib import compression


def configure(converter, tf, calibration):
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


compression.register(compression.Technique("toy_half", configure, weights="float16",
                                           label="toy half precision"))
'''


@pytest.fixture
def toy_plugin(tmp_path, monkeypatch):
    """The toy technique's module on PYTHONPATH and in CIELIB_PLUGINS (here and in children)."""
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "toy_technique.py").write_text(TOY_PLUGIN)
    monkeypatch.syspath_prepend(str(plugins))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(plugins), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv(compression.PLUGINS_ENV, "toy_technique")
    yield plugins
    compression.reset()
    sys.modules.pop("toy_technique", None)


@pytest.fixture(autouse=True)
def _clean_registry():
    yield
    compression.reset()


def _noop(converter, tf, calibration):
    pass


def test_builtin_registry_in_table_order_with_one_reference():
    assert compression.names() == ("float32", "float16", "dynamic_int8", "full_int8")
    assert compression.reference().name == "float32" == quantize.REFERENCE_TECHNIQUE
    assert quantize.TECHNIQUES == compression.names()
    assert [t.name for t in compression.techniques() if t.calibrates] == ["full_int8"]
    assert set(quantize.DOCUMENTED) == {"float16", "dynamic_int8", "full_int8"}


def test_register_is_checked_and_new_techniques_reach_every_reader():
    with pytest.raises(ValueError, match="already registered"):
        compression.register(Technique("float16", _noop, weights="float16"))
    with pytest.raises(ValueError, match="there is only one"):
        compression.register(Technique("other_ref", _noop, weights="float32", reference=True))
    with pytest.raises(ValueError, match="identifier-like"):
        Technique("two words", _noop, weights="float32")
    with pytest.raises(ValueError, match="configure must be callable"):
        Technique("x", None, weights="float32")
    with pytest.raises(ValueError, match="unknown technique 'int4'; allowed: float32, float16"):
        compression.get("int4")
    with pytest.raises(config.ConfigError, match="unknown technique 'toy'"):
        config.validate_techniques(["toy"])
    compression.register(Technique("toy", _noop, weights="float32"))
    assert compression.names()[-1] == "toy" and "toy" in quantize.TECHNIQUES
    assert config.validate_techniques(["toy", "float16"]) == ("toy", "float16")
    with pytest.raises(config.ConfigError, match="unknown technique 'float32'"):
        config.validate_techniques(["float32"])  # the reference is always converted, never asked for
    compression.unregister("toy")
    assert "toy" not in compression.names()
    with pytest.raises(ValueError, match="built in"):
        compression.unregister("float32")


def test_setting_labels_and_order_without_parsing():
    assert Setting().label == "dense"
    assert Setting(0.5).label == "sparsity 0.5"
    assert Setting(0.0, "float16").label == "float16"
    assert Setting(0.9, "full_int8").label == "sparsity 0.9 + full_int8"
    row = {"sparsity": 0.5, "technique": float("nan"), "seed": 3}  # a DataFrame row
    assert Setting.from_params(row) == Setting(0.5)
    assert Setting.from_params({"sparsity": 0.0, "technique": "dynamic_int8"}) == Setting(0.0, "dynamic_int8")
    label = Setting(0.3, "full_int8").label
    assert isinstance(label, str) and label.setting == Setting(0.3, "full_int8")
    order = [Setting(0.9, "float16"), Setting(0.0, "full_int8"), Setting(0.9), Setting(), Setting(0.0, "float32")]
    assert [s.label for s in sorted(order, key=lambda s: s.sort_key)] == [
        "dense", "sparsity 0.9", "float32", "full_int8", "sparsity 0.9 + float16"]
    with pytest.raises(ValueError, match="unknown technique 'int4'"):
        Setting(0.0, "int4")
    with pytest.raises(ValueError, match=r"sparsity must be a number in \[0, 1\), got 1.5"):
        Setting(1.5)


def test_a_registered_technique_sorts_after_the_builtins():
    compression.register(Technique("toy", _noop, weights="float32"))
    names = [runsets.setting_name(p) for p in ({"sparsity": 0.0, "technique": "toy"},
                                               {"sparsity": 0.0, "technique": "full_int8"}, {"sparsity": 0.0})]
    assert sorted(names, key=runsets.setting_order) == ["dense", "full_int8", "toy"]


def test_plugins_named_in_the_environment_are_imported_once(toy_plugin):
    assert compression.names()[-1] == "toy_half"
    assert compression.get("toy_half").label == "toy half precision"
    assert compression.names().count("toy_half") == 1  # asked again: not imported twice


def test_a_missing_plugin_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(compression.PLUGINS_ENV, "no_such_plugin_module")
    with pytest.raises(ImportError, match="CIELIB_PLUGINS names module 'no_such_plugin_module'"):
        compression.names()


def test_verify_follows_the_registry_entry():
    """A technique whose rules the flatbuffer breaks is refused; the rules are data."""
    from cielib import models

    net = models.build_model("vgg_small", input_shape=(8, 8, 1), n_classes=10, width=4, seed=0)
    blob = quantize.convert(net, "float16")
    compression.register(Technique("claims_int8", compression.get("float16").configure, weights="int8"))
    with pytest.raises(quantize.QuantizationError, match="not int8"):
        quantize.verify(blob, "claims_int8")
    compression.register(Technique("half_again", compression.get("float16").configure, weights="float16"))
    assert quantize.verify(quantize.convert(net, "half_again"), "half_again")["weight_dtypes"] == \
        quantize.verify(blob, "float16")["weight_dtypes"]


def test_the_toy_technique_is_planned_into_the_quantize_runs(toy_plugin, tmp_path):
    prof = config.parse_profile(_toy_profile_raw(), source="toy")
    assert prof.techniques == ("toy_half",)
    p = plan.build_plan(prof, runs_dir=tmp_path / "runs")
    quantize_runs = p.by_stage("quantize")
    assert len(quantize_runs) == 2  # one per dense model
    assert all(q.params["techniques"] == ["float32", "toy_half"] for q in quantize_runs)
    assert {s.stage for s in p.specs} >= {"train", "quantize", "quantization", "cie"}
    assert stages.get("quantization").when(prof, None, {})


def _toy_profile_raw() -> dict:
    import tomllib

    raw = tomllib.loads(TINY_PROFILE)
    raw["profile"].update(name="toy", techniques=["toy_half"], seeds=[0, 1])
    return raw


def _toml(raw: dict) -> str:
    lines = ["[profile]"] + [f"{k} = {json.dumps(v)}" for k, v in raw["profile"].items()]
    for name, task in raw["tasks"].items():
        lines += ["", f"[tasks.{name}]"] + [f"{k} = {json.dumps(v)}" for k, v in task.items()]
    return "\n".join(lines) + "\n"


@pytest.mark.slow
def test_a_toy_technique_runs_through_quantize_and_the_analyses(toy_plugin, tmp_path):
    """Registry entry + converter in a plugin module, no other edit: every stage runs."""
    prof = tmp_path / "toy.toml"
    prof.write_text(_toml(_toy_profile_raw()))
    root = tmp_path / "project"
    root.mkdir()
    res = run_all("--profile", str(prof), "--no-report", root=root, timeout=1200)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    index = pd.read_csv(root / "runs" / "index.csv")
    quant = index[index["stage"] == "quantize"]
    assert sorted(quant["technique"].unique()) == ["float32", "toy_half"]
    toy = quant[quant["technique"] == "toy_half"]
    assert (toy["size_ratio_vs_float32"] > 1.5).all()  # half precision: about half the bytes
    assert (toy["agreement_with_keras"] > 0.8).all()
    assert set(index["stage"]) >= {"quantization", "cie", "discussion"}
    (cie_dir,) = (root / "runs" / "cie").glob("*/DONE")
    single = pd.read_csv(cie_dir.parent / "single_model_cie.csv")
    assert "toy_half" in set(single["setting"])
    assert np.isfinite(single.loc[single["setting"] == "toy_half", "impacted_images"]).all()
