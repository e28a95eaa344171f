"""What every run that computes with TensorFlow does first, in one call.

A training or features run's result depends on its kernels (oneDNN), its thread counts
and its seed, which are all part of its run id; they must be set in this order, the
first before TensorFlow is imported. :func:`start_run` does it, so a notebook's
setup is one line.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path

from cielib import keras as lazy

__all__ = ["start_run"]


def start_run(run_dir: str | os.PathLike, *, threads: int, seed: int, onednn: bool = lazy.ONEDNN
              ) -> Path:
    """Set oneDNN, threads and seeds (in that order) and create the run directory.

    Args:
        run_dir: Where the run writes its outputs (created).
        threads: TensorFlow intra-op threads (:func:`cielib.keras.configure_threads`).
        seed: Seeds Python, NumPy and TensorFlow, with op determinism on
            (:func:`cielib.keras.seed_everything`).
        onednn: TensorFlow's oneDNN kernels (:func:`cielib.keras.use_onednn`); must
            be called before anything imports TensorFlow.

    Returns:
        The run directory.
    """
    lazy.use_onednn(onednn)  # before TensorFlow is imported
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    lazy.configure_threads(threads)
    lazy.seed_everything(seed)
    return out
