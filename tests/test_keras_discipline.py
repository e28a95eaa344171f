"""Importing cielib first must make tf.keras be Keras 2 (tf_keras), as tfmot needs.

Run in a fresh interpreter so that the import order is real (this test process has
long since imported TensorFlow) and without TF_USE_LEGACY_KERAS inherited from it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fresh_python(code: str, *, without: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that imports this checkout's cielib, with the
    environment variable ``without`` removed (as if never set)."""
    env = {k: v for k, v in os.environ.items() if k != without}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_tf_keras_is_keras2_after_importing_cielib():
    code = (
        "import cielib\n"
        "import tensorflow as tf\n"
        "import tf_keras\n"
        "assert tf.keras.Model is tf_keras.Model, tf.keras.Model\n"
        "print('ok')\n"
    )
    result = fresh_python(code, without="TF_USE_LEGACY_KERAS")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


def test_importing_cielib_turns_onednn_on_before_tensorflow():
    """The kernel choice is made when cielib.keras is imported, before TensorFlow, on
    every CPU type (TensorFlow's own default differs between AMD and Intel machines);
    a notebook that asks for the other choice after TensorFlow is imported is refused."""
    code = (
        "import os, cielib.keras as k\n"
        "assert os.environ['TF_ENABLE_ONEDNN_OPTS'] == '1'\n"
        "k.use_onednn(True)\n"
        "import tensorflow\n"
        "try:\n"
        "    k.use_onednn(False)\n"
        "except RuntimeError as e:\n"
        "    print('refused', e)\n"
    )
    result = fresh_python(code, without="TF_ENABLE_ONEDNN_OPTS")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "refused" in result.stdout and "TF_ENABLE_ONEDNN_OPTS=0" in result.stdout


def test_tfmot_is_imported_without_keras3_and_prunes_the_same_layers():
    """tfmot's pruning registry tries Keras 3 and falls back when that fails; cielib makes
    it fail at once (no second spent importing Keras 3). The registry must come out the
    same as when Keras 3 is imported (the registry module re-run with Keras 3 loaded),
    and Keras 3 stays importable afterwards."""
    code = (
        "import importlib, json, sys, cielib.keras as k\n"
        "k.tfmot\n"
        "from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry as r\n"
        "def registry():\n"
        "    return {'keras3': 'keras' in sys.modules, 'base_layer': r.base_layer is not None,\n"
        "            'layers': sorted(c.__name__ for c in r.PruneRegistry._LAYERS_WEIGHTS_MAP)}\n"
        "ours = registry()\n"
        "import keras\n"
        "importlib.reload(r)\n"
        "print(json.dumps({'ours': ours, 'theirs': registry(), 'keras': keras.__version__}))\n"
    )
    result = fresh_python(code, without="TF_USE_LEGACY_KERAS")
    assert result.returncode == 0, result.stderr[-2000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    ours, theirs = got["ours"], got["theirs"]
    assert not ours["keras3"] and theirs["keras3"] and got["keras"].startswith("3.")
    assert ours["base_layer"] == theirs["base_layer"] and ours["layers"] == theirs["layers"]
    assert len(ours["layers"]) > 20
