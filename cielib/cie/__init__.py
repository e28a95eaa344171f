"""Compression identified exemplars (CIE): which classes and images compression hurts.

Two detection schemas live here, so that they can be run on the same predictions
and compared:

* :func:`single_model_cie` -- the cheap schema of "Rethinking Compression within
  Deep Neural Networks" (Section IX.vii, seven steps; Tables 4 and 9). It needs one
  uncompressed and one compressed model and flags classes that cross a
  "standard deviation boundary". :func:`single_model_cie_from_recalls` runs the same
  steps on printed per-class recalls (e.g. the paper's own figures).
* :func:`population_cie` -- the schema of Hooker et al., "What Do Compressed Deep
  Neural Networks Forget?" (arXiv 1911.05248). It needs a *population* of
  independently trained models on each side; a class is impacted when Welch's
  t-test finds its normalized recall shifted, and an image is a CIE when the
  modal (most frequent) label across the population changes.

Neither paper calibrates its schema against a null. :func:`single_model_null` and
:func:`population_null` run each schema where nothing was compressed (dense models
that differ only in their seed); :func:`beyond_null` and :func:`schemas_vs_null` put
a compressed setting's counts beside that null. :func:`expected_false_flags` and the
``low_power`` columns say how many flags chance alone gives and when a population is
too small to mean much. :func:`agreement` and :func:`agreement_table` ask how often
the cheap schema agrees with the population schema.

Everything is plain numpy/pandas/scipy (never TensorFlow) and vectorized: per-model
per-class counts come from one ``np.bincount`` over ``model * n_classes + label``,
modal labels from one ``np.bincount`` over ``image * n_classes + label``; there is no
Python loop over images. Labels are integer class ids in ``[0, n_classes)``.

Layout: ``_checks`` (input checks and per-class counts), ``single`` (the paper's
schema), ``population`` (Hooker et al.'s schema, Benjamini-Hochberg, chance flags),
``compare`` (agreement between the two), ``null`` (both schemas where nothing was
compressed). Import from ``cielib.cie``; the submodules are an implementation detail.
"""

from __future__ import annotations

from cielib.cie._checks import BOUNDARIES, CORRECTIONS, NORMALIZATIONS
from cielib.cie.analysis import (
    DESIGNS,
    N_NULL,
    SCHEMAS,
    VERDICT_COLUMNS,
    VERDICT_TABLE_COLUMNS,
    CIEAnalysis,
    analyse,
    pair_models,
    verdict_table,
)
from cielib.cie.compare import AGREEMENT_COLUMNS, agreement, agreement_table
from cielib.cie.null import (
    NULL_POPULATION_COLUMNS,
    NULL_SINGLE_COLUMNS,
    beyond_null,
    population_null,
    schemas_vs_null,
    single_model_null,
)
from cielib.cie.population import (
    LOW_POWER_MODELS,
    POPULATION_SUMMARY_COLUMNS,
    TESTS,
    PopulationCIE,
    bh_complete_null_pmf,
    benjamini_hochberg,
    expected_false_flags,
    modal_labels,
    population_cie,
    population_summary,
)
from cielib.cie.single import (
    SINGLE_TABLE_COLUMNS,
    SingleModelCIE,
    single_model_cie,
    single_model_cie_from_recalls,
    single_model_table,
)

__all__ = [
    "analyse",
    "CIEAnalysis",
    "pair_models",
    "verdict_table",
    "SCHEMAS",
    "DESIGNS",
    "N_NULL",
    "VERDICT_COLUMNS",
    "SingleModelCIE",
    "PopulationCIE",
    "single_model_cie",
    "single_model_cie_from_recalls",
    "single_model_table",
    "population_cie",
    "population_summary",
    "benjamini_hochberg",
    "expected_false_flags",
    "modal_labels",
    "agreement",
    "agreement_table",
    "single_model_null",
    "population_null",
    "beyond_null",
    "schemas_vs_null",
    "CORRECTIONS",
    "NORMALIZATIONS",
    "BOUNDARIES",
    "LOW_POWER_MODELS",
    "TESTS",
]
