"""Predictions brought from outside: any framework's models, read as the CIE stage reads
this project's own runs.

The format (a directory, written in a few lines from PyTorch, JAX, Keras, ONNX...)::

    my-models/
      dense/            the uncompressed models (another name: ``baseline`` in design.toml)
        0.npz           one file per independently trained model; the name is its seed
        1.npz           keys: y_pred (1-D class ids), y_true (1-D class ids, the same in
        ...             every file), optionally probs (n_images x n_classes, rows sum to 1)
      pruned-0.9/       one sub-directory per compressed setting, any name
        1000.npz
        ...
      int8/
        0.npz           a paired setting: derived from dense/0.npz (declared in design.toml)
      classes.txt       optional: one class name per line (ids index into it)
      images.npy        optional: the test images, first axis = images (CIE gallery)
      design.toml       optional: baseline, paired settings, analysis options

``design.toml`` (every key optional)::

    baseline = "dense"        # the sub-directory of the uncompressed models
    paired = ["int8"]         # settings derived from the dense model with the same seed
    [analysis]
    alpha = 0.05
    correction = "none"       # or "fdr_bh"
    normalize = "population"  # or "model"
    boundary = "uncompressed" # or "own"
    n_null = 1000             # null draws per setting and schema
    rng_seed = 0              # seed of the null draws

A setting not declared paired holds independently trained models: its seeds (file
names) must be disjoint from the baseline's, since a shared seed would mean shared
initial weights and data order, i.e. not independent models; a shared seed is refused
with a message saying how to declare a derived setting paired.

Everything is checked by :func:`load` before any work, and every refusal raises
:class:`PredictionsError` (a :class:`cielib.config.ConfigError`, so ``run_all.py`` exits
with code 2) with one message naming the file and what is allowed.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cielib.config import ConfigError

DEFAULT_BASELINE = "dense"
CLASSES = "classes.txt"
IMAGES = "images.npy"
DESIGN = "design.toml"
TOP_FILES = (CLASSES, IMAGES, DESIGN)
REQUIRED_KEYS = ("y_pred", "y_true")
OPTIONAL_KEYS = ("probs",)
#: The analysis options design.toml may set, with what each allows.
ANALYSIS = {"alpha": "a number in (0, 1)", "correction": ("none", "fdr_bh"),
            "normalize": ("population", "model"), "boundary": ("uncompressed", "own"),
            "n_null": "a positive integer (null draws)", "rng_seed": "a non-negative integer"}
DESIGN_KEYS = ("baseline", "paired", "analysis")
PROBS_TOLERANCE = 1e-3
_SEED = re.compile(r"^\d+$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
MIN_MODELS = 2
SCHEMA_NEEDS = ("the population schema (Hooker et al.) compares populations of at least 2 models "
                "per side (they used 30); the single-model schema (the paper) needs 1 dense and 1 "
                "compressed model, and its null at least 2 dense models")


class PredictionsError(ConfigError):
    """A predictions directory that cannot be analysed; the message names the file."""


@dataclass(frozen=True)
class Predictions:
    """A checked predictions directory, in the variables the CIE notebook uses.

    Attributes:
        y_true: The test labels (the same in every file).
        base: ``{seed: y_pred}`` of the baseline (uncompressed) models.
        settings: ``{setting: {seed: y_pred}}`` of every compressed setting.
        designs: ``{setting: "paired" | "independent"}``.
        class_names: One name per class id.
        images: The test images, or None.
        name: The directory's name (labels the run and its report).
        baseline: The baseline's sub-directory name.
        sha256: Content hash of the directory (part of the run's identity).
        analysis: The analysis options design.toml sets (the rest keep their defaults).
    """

    y_true: np.ndarray
    base: dict[int, np.ndarray]
    settings: dict[str, dict[int, np.ndarray]]
    designs: dict[str, str]
    class_names: list[str]
    images: np.ndarray | None
    name: str
    baseline: str
    sha256: str
    analysis: dict[str, Any] = field(default_factory=dict)


def files_of(directory: str | Path) -> list[Path]:
    """Every visible file under the directory, sorted (hidden names such as
    ``.ipynb_checkpoints`` or ``.DS_Store`` are not part of the input)."""
    root = Path(directory)
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def content_hash(directory: str | Path) -> str:
    """sha256 over every visible file's relative path and content: the same files give
    the same hash wherever the directory lies (so the same run id, nothing recomputed).

    An .npz counts by its arrays (names, dtypes, shapes, values), not its bytes: a zip
    archive also stores timestamps and compression choices, and writing the same
    predictions again must not make a new run.
    """
    root = Path(directory)
    h = hashlib.sha256()
    for p in files_of(root):
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        h.update(_npz_digest(p) if p.suffix == ".npz" else hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _npz_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    try:
        with np.load(path, allow_pickle=False) as npz:
            for key in sorted(npz.files):
                a = np.ascontiguousarray(npz[key])
                h.update(f"{key}\0{a.dtype.str}\0{a.shape}\0".encode())
                h.update(a.tobytes())
    except Exception:  # noqa: BLE001 - an unreadable file counts by its bytes (load refuses it)
        return hashlib.sha256(path.read_bytes()).digest()
    return h.digest()


def read_design(path: Path) -> dict[str, Any]:
    """design.toml, checked: known keys only, analysis options among the allowed values."""
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PredictionsError(f"{path}: not a readable TOML file ({exc}); allowed keys: "
                               f"{', '.join(DESIGN_KEYS)}") from None
    unknown = sorted(set(raw) - set(DESIGN_KEYS))
    if unknown:
        raise PredictionsError(f"{path}: unknown key(s) {unknown}; allowed: {', '.join(DESIGN_KEYS)}")
    if not isinstance(raw.get("baseline", DEFAULT_BASELINE), str):
        raise PredictionsError(f"{path}: baseline must be a sub-directory name (a string)")
    paired = raw.get("paired", [])
    if not isinstance(paired, list) or not all(isinstance(s, str) for s in paired):
        raise PredictionsError(f"{path}: paired must be a list of setting names, e.g. paired = [\"int8\"]")
    analysis = raw.get("analysis", {})
    if not isinstance(analysis, dict):
        raise PredictionsError(f"{path}: [analysis] must be a table of {', '.join(ANALYSIS)}")
    for key, value in analysis.items():
        allowed = ANALYSIS.get(key)
        if allowed is None:
            raise PredictionsError(f"{path}: unknown analysis option {key!r}; allowed: {', '.join(ANALYSIS)}")
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if key == "alpha":
            ok = number and 0 < value < 1
        elif key in ("n_null", "rng_seed"):
            ok = number and isinstance(value, int) and value >= (1 if key == "n_null" else 0)
        else:
            ok = value in allowed
        if not ok:
            what = allowed if isinstance(allowed, str) else ", ".join(allowed)
            raise PredictionsError(f"{path}: analysis.{key} = {value!r}; allowed: {what}")
    return {"baseline": raw.get("baseline", DEFAULT_BASELINE), "paired": paired, "analysis": analysis}


def read_classes(path: Path) -> list[str]:
    """classes.txt: one non-empty, distinct name per line."""
    try:
        names = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PredictionsError(f"{path}: not a readable UTF-8 text file ({exc}); allowed: one class "
                               "name per line") from None
    while names and not names[-1].strip():
        names.pop()
    names = [n.strip() for n in names]
    if not names or any(not n for n in names):
        raise PredictionsError(f"{path}: {'no class names' if not names else 'an empty line'}; "
                               "allowed: one non-empty class name per line (line i names class id i-1)")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise PredictionsError(f"{path}: class name(s) {dupes} repeated; each line names one class")
    return names


def read_model(path: Path) -> dict[str, np.ndarray]:
    """One model's .npz: y_pred and y_true (1-D integer ids of one length), optional probs."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same message
        raise PredictionsError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc}); "
                               f"allowed: numpy.savez with {', '.join(REQUIRED_KEYS)} and optionally "
                               f"{', '.join(OPTIONAL_KEYS)}") from None
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    unknown = sorted(set(arrays) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if missing or unknown:
        raise PredictionsError(f"{path}: {'missing ' + ', '.join(missing) if missing else ''}"
                               f"{'; ' if missing and unknown else ''}"
                               f"{'unknown array(s) ' + ', '.join(unknown) if unknown else ''}; "
                               f"allowed: {', '.join(REQUIRED_KEYS)} (required), "
                               f"{', '.join(OPTIONAL_KEYS)} (optional)")
    for key in REQUIRED_KEYS:
        a = arrays[key]
        if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
            raise PredictionsError(f"{path}: {key} has shape {a.shape} and dtype {a.dtype}; allowed: a "
                                   "1-D array of integer class ids (one per test image)")
    if len(arrays["y_pred"]) != len(arrays["y_true"]):
        raise PredictionsError(f"{path}: y_pred has {len(arrays['y_pred'])} entries but y_true "
                               f"{len(arrays['y_true'])}; allowed: one prediction per test image")
    return arrays


def check_probs(path: Path, probs: np.ndarray, *, n_images: int, n_classes: int) -> None:
    """probs: (n_images, n_classes), finite, non-negative, every row summing to 1."""
    if probs.ndim != 2 or probs.shape[0] != n_images or probs.shape[1] != n_classes \
            or not np.issubdtype(probs.dtype, np.floating):
        raise PredictionsError(f"{path}: probs has shape {probs.shape} and dtype {probs.dtype}; allowed: "
                               f"floats of shape ({n_images}, {n_classes}) (images x classes)")
    sums = probs.sum(axis=1, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(sums) | (np.abs(sums - 1) > PROBS_TOLERANCE) | (probs < 0).any(axis=1))
    if bad.size:
        i = int(bad[0])
        raise PredictionsError(f"{path}: probs row {i} sums to {sums[i]:.6g} ({bad.size} bad row(s)); "
                               f"allowed: non-negative rows that sum to 1 (within {PROBS_TOLERANCE:g}); "
                               "apply a softmax to logits")


def _setting_files(setting_dir: Path) -> dict[int, Path]:
    out: dict[int, Path] = {}
    for p in sorted(setting_dir.iterdir()):
        if p.name.startswith("."):
            continue
        if not p.is_file() or p.suffix != ".npz" or not _SEED.match(p.stem):
            raise PredictionsError(f"{p}: not a model file; allowed in a setting's directory: one "
                                   "<seed>.npz per model, the seed a non-negative integer (0.npz, 1000.npz)")
        seed = int(p.stem)
        if seed in out:
            raise PredictionsError(f"{p}: seed {seed} also in {out[seed].name}; one file per seed")
        out[seed] = p
    return out


def _scan(root: Path) -> tuple[dict[str, dict[int, Path]], dict[str, Path]]:
    if not root.is_dir():
        raise PredictionsError(f"{root}: not a directory; allowed: a directory with one sub-directory "
                               "of <seed>.npz files per setting (see the README, 'Your own models')")
    settings: dict[str, dict[int, Path]] = {}
    extras: dict[str, Path] = {}
    for p in sorted(root.iterdir()):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            if not _NAME.match(p.name):
                raise PredictionsError(f"{p}: setting name {p.name!r} not allowed; allowed: letters, "
                                       "digits and . _ + - (starting with a letter or digit)")
            settings[p.name] = _setting_files(p)
        elif p.name in TOP_FILES:
            extras[p.name] = p
        else:
            raise PredictionsError(f"{p}: unexpected file; allowed at the top: {', '.join(TOP_FILES)}, "
                                   "and one sub-directory of <seed>.npz files per setting")
    return settings, extras


def load(directory: str | Path, *, expect_sha256: str | None = None) -> Predictions:
    """Read and check a predictions directory (see the module docstring for the format).

    Args:
        directory: The directory.
        expect_sha256: The content hash the run was planned with; a different one means
            the files changed after planning, and is refused.

    Raises:
        PredictionsError: naming the file and what is allowed, for any bad input.
    """
    root = Path(directory).resolve()
    settings_files, extras = _scan(root)
    design = read_design(extras[DESIGN]) if DESIGN in extras else read_design_default()
    baseline = design["baseline"]
    if baseline not in settings_files:
        raise PredictionsError(f"{root}: no baseline: no sub-directory {baseline!r} of the uncompressed "
                               f"models (found: {', '.join(settings_files) or 'none'}); name another "
                               f"with baseline = \"...\" in {DESIGN}")
    compressed = [s for s in settings_files if s != baseline]
    if not compressed:
        raise PredictionsError(f"{root}: only the baseline {baseline!r}; allowed: at least one more "
                               "sub-directory, one per compressed setting")
    for name in design["paired"]:
        if name not in compressed:
            raise PredictionsError(f"{root / DESIGN}: paired setting {name!r} is not a compressed "
                                   f"setting here; allowed: {', '.join(compressed)}")
    for name, files in settings_files.items():
        if len(files) < MIN_MODELS:
            raise PredictionsError(f"{root / name}: {len(files)} model file(s); allowed: at least "
                                   f"{MIN_MODELS} per setting: {SCHEMA_NEEDS}")
    designs = {s: "paired" if s in design["paired"] else "independent" for s in compressed}
    base_seeds = settings_files[baseline]
    for name in compressed:
        for seed, path in settings_files[name].items():
            if designs[name] == "independent" and seed in base_seeds:
                raise PredictionsError(
                    f"{path}: seed {seed} is also a baseline seed ({base_seeds[seed]}), but setting "
                    f"{name!r} is not declared paired; allowed: independently trained models with "
                    f"seeds disjoint from the baseline's (rename, e.g. {seed + 1000}.npz), or "
                    f"paired = [\"{name}\"] in {DESIGN} when each model is derived from the baseline "
                    "model of its seed (quantization, fine-tuning)")
            if designs[name] == "paired" and seed not in base_seeds:
                raise PredictionsError(
                    f"{path}: setting {name!r} is paired but the baseline has no model {seed}.npz; "
                    f"allowed: seeds of the baseline ({', '.join(map(str, base_seeds))})")
    class_names = read_classes(extras[CLASSES]) if CLASSES in extras else None
    ordered = [baseline, *compressed]
    models = {name: {seed: read_model(path) for seed, path in settings_files[name].items()} for name in ordered}
    ref_path = next(iter(settings_files[baseline].values()))
    y_true = models[baseline][next(iter(base_seeds))]["y_true"]
    for name in ordered:
        for seed, arrays in models[name].items():
            path = settings_files[name][seed]
            if len(arrays["y_true"]) != len(y_true):
                raise PredictionsError(f"{path}: {len(arrays['y_true'])} test images but {ref_path} has "
                                       f"{len(y_true)}; allowed: every model predicts the same test set")
            if not np.array_equal(arrays["y_true"], y_true):
                i = int(np.flatnonzero(arrays["y_true"] != y_true)[0])
                raise PredictionsError(f"{path}: y_true differs from {ref_path}'s (first at image {i}); "
                                       "allowed: the same test labels in the same order in every file")
    n_classes = len(class_names) if class_names else max(
        max(1 + int(max(a["y_true"].max(initial=0), a["y_pred"].max(initial=0))),
            a["probs"].shape[-1] if "probs" in a and a["probs"].ndim == 2 else 0)
        for m in models.values() for a in m.values())
    for name in ordered:
        for seed, arrays in models[name].items():
            path = settings_files[name][seed]
            for key in REQUIRED_KEYS:
                bad = (arrays[key] < 0) | (arrays[key] >= n_classes)
                if bad.any():
                    where = f"the {n_classes} lines of {root / CLASSES}" if class_names else "non-negative"
                    raise PredictionsError(f"{path}: {key} holds class id {int(arrays[key][bad][0])}; "
                                           f"allowed: ids 0 to {n_classes - 1} ({where})")
            if "probs" in arrays:
                check_probs(path, arrays["probs"], n_images=len(y_true), n_classes=n_classes)
    images = read_images(extras[IMAGES], n_images=len(y_true)) if IMAGES in extras else None
    sha = content_hash(root)
    if expect_sha256 is not None and sha != expect_sha256:
        raise PredictionsError(f"{root}: its files changed since the run was planned (content hash "
                               f"{sha[:12]}, planned {expect_sha256[:12]}); plan again")
    return Predictions(
        y_true=y_true.astype(np.int64),
        base={s: a["y_pred"].astype(np.int64) for s, a in models[baseline].items()},
        settings={n: {s: a["y_pred"].astype(np.int64) for s, a in models[n].items()} for n in compressed},
        designs=designs, class_names=class_names or [str(i) for i in range(n_classes)], images=images,
        name=root.name, baseline=baseline, sha256=sha, analysis=dict(design["analysis"]))


def read_design_default() -> dict[str, Any]:
    """What an absent design.toml means: baseline ``dense``, nothing paired, defaults."""
    return {"baseline": DEFAULT_BASELINE, "paired": [], "analysis": {}}


def read_images(path: Path, *, n_images: int) -> np.ndarray:
    """images.npy: one image per test image, (n, H, W) or (n, H, W, channels)."""
    try:
        images = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise PredictionsError(f"{path}: not a readable .npy file ({type(exc).__name__}: {exc}); "
                               "allowed: numpy.save of an (n_images, H, W[, channels]) array") from None
    if images.ndim not in (3, 4) or images.shape[0] != n_images:
        raise PredictionsError(f"{path}: shape {images.shape}; allowed: ({n_images}, H, W) or "
                               f"({n_images}, H, W, channels), one image per test image")
    return images


def describe(pred: Predictions) -> str:
    """A Markdown paragraph and table: which models the directory holds, and the design."""
    lines = [f"Predictions brought from outside: directory `{pred.name}` (content sha256 "
             f"`{pred.sha256[:12]}`), {len(pred.y_true)} test images, {len(pred.class_names)} classes"
             f"{', with images' if pred.images is not None else ''}.", "",
             "| setting | design | models | seeds |", "|---|---|---|---|",
             f"| {pred.baseline} | baseline | {len(pred.base)} | {', '.join(map(str, pred.base))} |"]
    for name, by_seed in pred.settings.items():
        lines.append(f"| {name} | {pred.designs[name]} | {len(by_seed)} | {', '.join(map(str, by_seed))} |")
    return "\n".join(lines)
