"""scripts/compare_stores.py, the check behind every "bit-identical" claim: it must find a
planted difference in predictions or in a quantized flatbuffer, and a missing run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from cielib import runs

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("compare_stores", ROOT / "scripts" / "compare_stores.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(runs_dir: Path, stage: str, rid: str, params: dict, parts: dict[str, bytes] | None = None) -> Path:
    d = runs_dir / stage / rid
    d.mkdir(parents=True)
    runs.write_json(d / runs.PARAMS, {"stage": stage, "params": params})
    probs = np.full((4, 3), 1 / 3, np.float32)
    probs[:, 0] += 0.01 * (1 + params["seed"])
    places = {"": d} if parts is None else {t: d / t for t in parts}
    if parts is not None:
        runs.write_json(d / runs.PARTS, {"key": "technique", "values": list(parts)})
    for technique, where in places.items():
        where.mkdir(exist_ok=True)
        runs.save_predictions(where / runs.PREDICTIONS, y_true=np.arange(4) % 3, y_pred=probs.argmax(1),
                              probs=probs)
        if parts is not None:
            (where / runs.TFLITE_MODEL).write_bytes(parts[technique])
    (d / runs.DONE).write_text(json.dumps({"seconds": 1.0, "run_id": rid}))
    return d


def _store(root: Path) -> Path:
    runs_dir = root / "runs"
    for i, (sparsity, seed) in enumerate([(0.0, 0), (0.0, 1), (0.5, 1000)]):
        _run(runs_dir, "train", f"t{i:011d}", {"task": "a", "sparsity": sparsity, "seed": seed})
    _run(runs_dir, "quantize", "q00000000000", {"task": "a", "sparsity": 0.0, "seed": 0},
         parts={"float32": b"flat32", "dynamic_int8": b"int8"})
    return runs_dir


def test_identical_stores_pass_and_planted_differences_are_named(tmp_path, capsys):
    compare = _script().main
    old, new = _store(tmp_path / "old"), _store(tmp_path / "new")
    assert compare([str(old), str(new)]) == 0
    assert compare([str(old), str(new), "--stage", "quantize"]) == 0
    assert "3 train runs compared: 0 differ" in capsys.readouterr().out

    moved = new / "train" / "t00000000001" / runs.PREDICTIONS
    pred = dict(np.load(moved))
    pred["probs"] = pred["probs"].copy()
    pred["probs"][2, 1] += 1e-7  # one float, by one ulp or so: still a difference
    np.savez(moved, **pred)
    assert compare([str(old), str(new)]) == 1
    out = capsys.readouterr().out
    assert "('a', 0.0, 1): differ in probs (0 predictions)" in out and "1 differ" in out

    (new / "quantize" / "q00000000000" / "dynamic_int8" / runs.TFLITE_MODEL).write_bytes(b"int9")
    assert compare([str(old), str(new), "--stage", "quantize"]) == 1
    assert "('a', 0.0, 0, 'dynamic_int8'): differ in model.tflite" in capsys.readouterr().out

    (new / "train" / "t00000000002" / runs.DONE).unlink()
    assert compare([str(old), str(new)]) == 1
    assert "('a', 0.5, 1000): only in old" in capsys.readouterr().out
