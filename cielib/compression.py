"""Compression techniques and settings: the one home of "what a technique is".

A **technique** is a post-training conversion of a trained Keras model to a TensorFlow
Lite flatbuffer. Each is one :class:`Technique` entry in a registry (papermill's
engine registry is the model): its name, how it sets up TensorFlow's converter, what
its flatbuffer must hold (checked by :func:`cielib.quantize.verify`), whether it is the
reference every ratio is taken against, whether it calibrates on training images, and
TensorFlow's documented benefits. Registration order is table order: the reference
first, then by strength. Adding a technique is one :func:`register` call (and its
tests); the profile checker, the planner, the quantize notebook, the analyses and the
setting labels all read the registry.

A **setting** is how one model was compressed: a sparsity and, for a converted model, a
technique. :class:`Setting` names it in tables (``dense``, ``sparsity 0.5``,
``float16``, ``sparsity 0.5 + float16``) and sorts it in the paper's table order, so no
code parses those names back.

Techniques outside cielib (a plugin, or a test's toy technique) are registered by a
module that calls :func:`register` when imported. Name such modules in the environment
variable :data:`PLUGINS_ENV` (comma-separated, importable from ``PYTHONPATH``): the
registry imports them the first time it is read, in ``run_all.py`` and in every
notebook kernel it starts, which inherit the environment. A plugin's code is not part of
any run id (like cielib's own code): force a rerun after changing it.

Importing this module does not import TensorFlow; a converter gets ``tf`` as an argument.
"""

from __future__ import annotations

import importlib
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from cielib.checks import check_choice

__all__ = ["PLUGINS_ENV", "Setting", "SettingLabel", "Technique", "get", "names", "reference",
           "register", "reset", "techniques", "unregister"]

#: Environment variable naming modules that register techniques when imported.
PLUGINS_ENV = "CIELIB_PLUGINS"

#: Sets up a ``tf.lite.TFLiteConverter`` for one technique: ``configure(converter, tf,
#: calibration)``; ``calibration`` is the checked float32 images of a calibrating
#: technique, else None.
Configure = Callable[[Any, Any, "np.ndarray | None"], None]


@dataclass(frozen=True)
class Technique:
    """One post-training conversion, as data plus the converter set-up.

    Attributes:
        name: Its name in profiles, run folders and tables (``float16``).
        configure: Sets up TensorFlow's converter (see :data:`Configure`).
        weights: The dtype every conv/dense weight tensor must have in the flatbuffer.
        io: The dtype of the model's input and output (``int8`` models take and give
            int8; :class:`cielib.quantize.TFLiteClassifier` converts).
        biases: The dtype every bias must have, or None to leave biases unchecked.
        min_elements: Weight tensors with fewer elements may stay float32 (TFLite's
            dynamic-range quantizer skips them); at least one must have ``weights``.
        calibrates: Needs representative (training) images.
        reference: The unquantized reference every size, speed and accuracy ratio is
            taken against; exactly one technique is.
        label: How prose names it (defaults to ``name``).
        documented: TensorFlow's documented benefits (``technique``, ``benefits``,
            ``hardware``, ``size_factor``, ``speedup_low``, ``speedup_high``,
            ``source``), or empty.
    """

    name: str
    configure: Configure
    weights: str
    io: str = "float32"
    biases: str | None = None
    min_elements: int = 0
    calibrates: bool = False
    reference: bool = False
    label: str = ""
    documented: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"technique name must be an identifier-like string, got {self.name!r}")
        if not callable(self.configure):
            raise ValueError(f"technique {self.name!r}: configure must be callable, got {self.configure!r}")
        if not self.label:
            object.__setattr__(self, "label", self.name)


# --- the built-in techniques: TensorFlow's post-training quantization guide -------------

#: Where the documented benefits come from (TensorFlow's post-training quantization guide,
#: the table "Post-training quantization technique / Benefits / Hardware").
DOCUMENTED_SOURCE = "https://www.tensorflow.org/lite/performance/post_training_quantization"

#: The TFLite converter's dynamic-range quantizer skips weight tensors with fewer
#: elements than this (its ``min_num_elements_for_weights`` default).
DYNAMIC_MIN_ELEMENTS = 1024


def _float32(converter: Any, tf: Any, calibration: np.ndarray | None) -> None:
    """No optimization: the unquantized reference."""


def _float16(converter: Any, tf: Any, calibration: np.ndarray | None) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _dynamic_int8(converter: Any, tf: Any, calibration: np.ndarray | None) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]


def _full_int8(converter: Any, tf: Any, calibration: np.ndarray | None) -> None:
    """Representative images one at a time (as the guide does), int8 ops only so that
    conversion fails rather than silently keeping float ops, int8 input and output."""
    converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def representative_dataset():
        for image in calibration:
            yield [image[None]]

    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8


#: float16: weights stored as float16, dequantized to float32 at load time. dynamic_int8:
#: weights int8 (per channel for convolutions), activations quantized on the fly where an
#: int8 kernel exists; tensors under DYNAMIC_MIN_ELEMENTS stay float32. full_int8: weights
#: and activations int8, calibrated on representative training images; int8 input and output.
BUILTIN: tuple[Technique, ...] = (
    Technique("float32", _float32, weights="float32", reference=True),
    Technique("float16", _float16, weights="float16", documented={
        "technique": "Float16 quantization", "benefits": "2x smaller, GPU acceleration",
        "hardware": "CPU, GPU", "size_factor": 2.0, "speedup_low": None, "speedup_high": None,
        "source": DOCUMENTED_SOURCE}),
    Technique("dynamic_int8", _dynamic_int8, weights="int8", min_elements=DYNAMIC_MIN_ELEMENTS,
              documented={
        "technique": "Dynamic range quantization", "benefits": "4x smaller, 2x-3x speedup",
        "hardware": "CPU", "size_factor": 4.0, "speedup_low": 2.0, "speedup_high": 3.0,
        "source": DOCUMENTED_SOURCE}),
    Technique("full_int8", _full_int8, weights="int8", io="int8", biases="int32", calibrates=True,
              documented={
        "technique": "Full integer quantization", "benefits": "4x smaller, 3x+ speedup",
        "hardware": "CPU, Edge TPU, Microcontrollers", "size_factor": 4.0, "speedup_low": 3.0,
        "speedup_high": None, "source": DOCUMENTED_SOURCE}),
)

_REGISTRY: dict[str, Technique] = {t.name: t for t in BUILTIN}
_imported: set[str] = set()


# --- the registry ----------------------------------------------------------------------


def _load_plugins() -> None:
    """Import the modules named in :data:`PLUGINS_ENV` that are not imported yet."""
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        if module not in _imported:
            _imported.add(module)
            try:
                importlib.import_module(module)
            except ImportError as exc:
                _imported.discard(module)
                raise ImportError(f"{PLUGINS_ENV} names module {module!r}, which cannot be "
                                  f"imported: {exc}") from exc


def register(technique: Technique) -> Technique:
    """Add a technique at the end of the table order (a name can be registered once).

    Raises:
        ValueError: not a Technique, a name already taken, or a second reference.
    """
    if not isinstance(technique, Technique):
        raise ValueError(f"register takes a Technique, got {type(technique).__name__}")
    if technique.name in _REGISTRY:
        raise ValueError(f"technique {technique.name!r} is already registered")
    if technique.reference:
        raise ValueError(f"technique {technique.name!r}: the reference is {reference().name!r} "
                         "and there is only one")
    _REGISTRY[technique.name] = technique
    return technique


def unregister(name: str) -> None:
    """Remove a registered technique (the built-in ones stay)."""
    if name in {t.name for t in BUILTIN}:
        raise ValueError(f"{name!r} is built in and cannot be unregistered")
    _REGISTRY.pop(name, None)


def reset() -> None:
    """Back to the built-in techniques, forgetting imported plugins (for tests)."""
    _REGISTRY.clear()
    _REGISTRY.update((t.name, t) for t in BUILTIN)
    _imported.clear()


def techniques() -> tuple[Technique, ...]:
    """Every registered technique in table order (reference first, then by strength)."""
    _load_plugins()
    return tuple(_REGISTRY.values())


def names() -> tuple[str, ...]:
    """The registered technique names in table order."""
    return tuple(t.name for t in techniques())


def get(name: Any) -> Technique:
    """The technique called ``name``.

    Raises:
        ValueError: unknown name (the message lists the registered ones).
    """
    found = {t.name: t for t in techniques()}
    return found[check_choice(name, tuple(found), what="technique")]


def reference() -> Technique:
    """The reference technique (float32 TFLite)."""
    return next(t for t in techniques() if t.reference)


# --- settings --------------------------------------------------------------------------


class SettingLabel(str):
    """A setting's name that remembers its :class:`Setting`, so that dicts and tables keyed
    by name still sort in table order (``sorted(names, key=lambda n: n.setting.sort_key)``)."""

    setting: "Setting"

    def __new__(cls, text: str, setting: "Setting") -> "SettingLabel":
        out = super().__new__(cls, text)
        out.setting = setting
        return out


@dataclass(frozen=True, order=False)
class Setting:
    """How one model was compressed: a sparsity and, for a converted model, a technique.

    Attributes:
        sparsity: Share of pruned weights (0 for a dense model).
        technique: A registered technique's name, or None for a Keras model.
    """

    sparsity: float = 0.0
    technique: str | None = None

    def __post_init__(self) -> None:
        s = self.sparsity
        if isinstance(s, bool) or not isinstance(s, (int, float, np.floating, np.integer)) \
                or not 0 <= float(s) < 1:
            raise ValueError(f"sparsity must be a number in [0, 1), got {s!r}")
        object.__setattr__(self, "sparsity", float(s))
        if self.technique is not None:
            get(self.technique)  # a clear error for an unknown technique

    @classmethod
    def from_params(cls, params: dict) -> "Setting":
        """The setting of a run from its parameters or table row (``sparsity``,
        ``technique``; a missing or NaN technique means a Keras model)."""
        technique = params.get("technique")
        if not isinstance(technique, str) or not technique:  # absent, None, or NaN from a row
            technique = None
        sparsity = params.get("sparsity")
        if sparsity is None or (isinstance(sparsity, float) and math.isnan(sparsity)):
            sparsity = 0.0
        return cls(sparsity=sparsity, technique=technique)

    @property
    def label(self) -> SettingLabel:
        """``dense``, ``sparsity 0.5``, ``float16`` or ``sparsity 0.5 + float16``."""
        if self.technique:
            text = self.technique if self.sparsity == 0 else f"sparsity {self.sparsity:g} + {self.technique}"
        else:
            text = "dense" if self.sparsity == 0 else f"sparsity {self.sparsity:g}"
        return SettingLabel(text, self)

    @property
    def sort_key(self) -> tuple[int, float, int]:
        """The paper's table order: dense, then pruned by sparsity, then converted models
        by sparsity and technique (reference first)."""
        if self.technique is None:
            return (0 if self.sparsity == 0 else 1, self.sparsity, -1)
        return (2, self.sparsity, names().index(self.technique))
