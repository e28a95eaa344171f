"""Time cielib.cie on a CIFAR-100-sized population: 100 classes x 30 models x 10,000 images.

Not a test. Run ``python benchmarks/bench_cie.py``; writes benchmarks/results/cie.json
and prints it. Predictions are random (seeded) but realistic in shape: each model is
right on ~75% of images and otherwise predicts a random class. Times
:func:`population_cie` under both normalizations, :func:`single_model_cie`, and the
two null controls on the 30 dense models (870 ordered pairs; 20 splits of 15 vs 15).
"""

from __future__ import annotations

import json
import os
import statistics
import time

import numpy as np
from _common import machine_info, write_result

from cielib.cie import population_cie, population_null, single_model_cie, single_model_null

N_CLASSES, N_MODELS, N_IMAGES, REPEATS, SEED = 100, 30, 10_000, 5, 0


def population(rng: np.random.Generator, y: np.ndarray, accuracy: float) -> np.ndarray:
    right = rng.random((N_MODELS, y.size)) < accuracy
    wrong = rng.integers(0, N_CLASSES, size=(N_MODELS, y.size))
    return np.where(right, y[None, :], wrong)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> dict:
    rng = np.random.default_rng(SEED)
    y = np.repeat(np.arange(N_CLASSES), N_IMAGES // N_CLASSES)
    base = population(rng, y, 0.78)
    comp = population(rng, y, 0.74)

    def pop():
        return population_cie(y, base, comp, correction="fdr_bh")

    def pop_model():
        return population_cie(y, base, comp, correction="fdr_bh", normalize="model")

    def single():
        return single_model_cie(y, base[0], comp[0])

    pop()  # warm-up
    runs = [timed(pop) for _ in range(REPEATS)]
    pop_model()
    model_runs = [timed(pop_model) for _ in range(REPEATS)]
    single()
    single_runs = [timed(single) for _ in range(REPEATS)]
    null_single_s = timed(lambda: single_model_null(y, base))
    null_pop_s = timed(lambda: population_null(y, base, correction="fdr_bh", max_splits=20))
    r = pop()
    result = {
        "population_cie_seconds_median": statistics.median(runs),
        "runs": runs,
        "normalize": "population",
        "population_cie_normalize_model_seconds_median": statistics.median(model_runs),
        "single_model_null_seconds": null_single_s,
        "single_model_null_pairs": N_MODELS * (N_MODELS - 1),
        "population_null_seconds": null_pop_s,
        "population_null_splits": 20,
        "single_model_cie_seconds_median": statistics.median(single_runs),
        "single_model_runs": single_runs,
        "shape": {
            "n_classes": N_CLASSES,
            "n_models_per_population": N_MODELS,
            "n_images": N_IMAGES,
            "repeats": REPEATS,
            "seed": SEED,
            "correction": "fdr_bh",
        },
        "sanity": {
            "n_impacted_classes": len(r.impacted_classes),
            "n_cie_images": int(r.cie_images.size),
        },
        "load_average_1min": os.getloadavg()[0],
        "machine": machine_info(packages=("numpy", "scipy")),
    }
    write_result("cie", result)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
