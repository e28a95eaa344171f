"""pyproject.toml and environment.yml pin the same versions; the import discipline holds."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pins_pyproject() -> dict[str, str]:
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = proj["dependencies"] + proj["optional-dependencies"]["test"]
    return dict(d.split("==") for d in deps)


def test_every_dependency_is_pinned_and_mirrored_in_environment_yml():
    pins = _pins_pyproject()
    assert all(v for v in pins.values())
    yml = (ROOT / "environment.yml").read_text()
    conda = dict(re.findall(r"^\s+- ([A-Za-z0-9_.\-]+)==([^\s#]+)", yml, flags=re.M))
    assert conda == pins


def test_tf_keras_is_keras_2_after_import_cielib():
    code = (
        "import cielib, tensorflow as tf, tf_keras; "
        "assert tf.keras.Model is tf_keras.Model, tf.keras.Model; print('ok')"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-2000:]


def test_importing_analysis_modules_does_not_import_tensorflow():
    code = (
        "import sys, cielib, cielib.config, cielib.runs, cielib.plan, cielib.report, "
        "cielib.notebook_source, cielib.execute, cielib.runsets, cielib.figures, cielib.evaluate, cielib.data, cielib.sizes, "
        "cielib.models, cielib.prune, cielib.train, cielib.stages, cielib.quantize, cielib.tflite_file, cielib.hardware, cielib.checks; "
        "bad = [m for m in ('tensorflow', 'tf_keras') if m in sys.modules]; "
        "assert not bad, bad; print('ok')"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-2000:]


def test_tensorflow_imported_first_is_detected():
    code = (
        "import os; os.environ.pop('TF_USE_LEGACY_KERAS', None)\n"
        "import tensorflow as tf\n"
        "tf.keras.Model  # binds tf.keras to Keras 3 before cielib could say otherwise\n"
        "import cielib.keras as k\n"
        "try:\n    k.keras\nexcept k.KerasVersionError as e:\n    print('refused:', e)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "refused:" in res.stdout and "imported before cielib" in res.stdout, res.stdout + res.stderr[-2000:]


def test_no_module_imports_keras_3_or_tensorflow_directly():
    offenders = []
    for path in (ROOT / "cielib").rglob("*.py"):
        if path == ROOT / "cielib" / "keras.py":
            continue
        for line in path.read_text().splitlines():
            if re.match(r"\s*(import keras\b|from keras\b|import tensorflow\b|from tensorflow\b)", line):
                offenders.append(f"{path.name}: {line.strip()}")
    assert offenders == []
