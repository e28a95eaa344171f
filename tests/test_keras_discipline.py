"""Importing cielib first must make tf.keras be Keras 2 (tf_keras), as tfmot needs.

Run in a fresh interpreter so that the import order is real (this test process has
long since imported TensorFlow) and without TF_USE_LEGACY_KERAS inherited from it.
"""

from __future__ import annotations

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
    same as with Keras 3 imported first, and Keras 3 stays importable afterwards."""
    code = (
        "import sys, cielib.keras as k\n"
        "{first}"
        "k.tfmot\n"
        "from tensorflow_model_optimization.python.core.sparsity.keras import prune_registry as r\n"
        "print('keras3' if 'keras' in sys.modules else 'no-keras3', r.base_layer is None,\n"
        "      sorted(c.__name__ for c in r.PruneRegistry._LAYERS_WEIGHTS_MAP))\n"
        "import keras\n"
        "print('importable', keras.__version__.split('.')[0])\n"
    )
    ours = fresh_python(code.format(first=""), without="TF_USE_LEGACY_KERAS")
    theirs = fresh_python(code.format(first="import keras\n"), without="TF_USE_LEGACY_KERAS")
    assert ours.returncode == 0 and theirs.returncode == 0, (ours.stderr + theirs.stderr)[-2000:]
    (ours_reg, ours_after), (theirs_reg, _) = (r.stdout.strip().splitlines()[-2:] for r in (ours, theirs))
    assert ours_reg.startswith("no-keras3 True") and theirs_reg.startswith("keras3 True")
    assert ours_reg.split(" ", 1)[1] == theirs_reg.split(" ", 1)[1]
    assert ours_after == "importable 3"
