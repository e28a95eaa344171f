#!/usr/bin/env python
"""Compare the test predictions of two run stores' training (or quantize) runs, key by key.

    python scripts/compare_stores.py OLD_RUNS_DIR NEW_RUNS_DIR [--stage train|quantize]

Runs are matched by (task, sparsity, seed), and for ``quantize`` also by technique —
not by id, which changes whenever a notebook or a parameter does — and their
``predictions.npz`` arrays compared bit for bit; a quantize run's ``.tflite`` flatbuffers
too. Used to show that a refactor changed no result. Exit 1 if any differ or are missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from cielib import runs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--stage", default="train", choices=("train", "quantize"))
    args = p.parse_args(argv)
    tables = [runs.table(d) for d in (args.old, args.new)]
    def key(r):
        base = (r.task, float(r.sparsity), int(r.seed))
        return (*base, r.technique) if args.stage == "quantize" else base

    keyed = [{key(r): r.path for r in t[t["stage"] == args.stage].itertuples()} for t in tables]
    old, new = keyed
    bad = missing = 0
    for key in sorted(set(old) | set(new)):
        if key not in old or key not in new:
            print(f"{key}: only in {'new' if key in new else 'old'}")
            missing += 1
            continue
        a, b = runs.load_predictions(old[key]), runs.load_predictions(new[key])
        diff = [name for name in ("y_true", "y_pred", "probs") if not np.array_equal(a[name], b[name])]
        if args.stage == "quantize":
            flat = [(Path(d) / runs.TFLITE_MODEL).read_bytes() for d in (old[key], new[key])]
            if flat[0] != flat[1]:
                diff.append(runs.TFLITE_MODEL)
        if diff:
            bad += 1
            print(f"{key}: differ in {', '.join(diff)} ({int((a['y_pred'] != b['y_pred']).sum())} predictions)")
    print(f"{len(set(old) & set(new))} {args.stage} runs compared: {bad} differ; {missing} in one store only")
    return 1 if bad or missing else 0


if __name__ == "__main__":
    sys.exit(main())
