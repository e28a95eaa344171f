"""cielib: per-class analysis of compressed classifiers (pruning, quantization, CIE).

Importing the package is cheap: it only makes sure that, whenever TensorFlow is
imported later, ``tf.keras`` resolves to Keras 2 (``tf_keras``), which
tensorflow-model-optimization requires. TensorFlow itself is imported lazily by
:mod:`cielib.keras`; the analysis modules never import it.
"""

from cielib import keras as _keras  # noqa: F401  (sets TF_USE_LEGACY_KERAS, no TF import)

__version__ = "0.1.0"

__all__ = ["__version__"]
