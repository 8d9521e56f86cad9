"""textgauge.stats: the one statistics engine (pure functions, no file access).

Every number textgauge reports comes from here: the evaluation of each coder, the human
ceiling, the per-stratum table, the audits, the ensemble and the report. ``stats`` imports
nothing else of textgauge except :mod:`textgauge.errors`; other packages import from
``textgauge.stats`` (or its public face :mod:`textgauge.agreement`).

Modules: :mod:`~textgauge.stats.inputs` (encodings, checks, weights), :mod:`~.kappa` (Cohen,
FCE standard errors), :mod:`~.cac` (Scott's pi, Gwet's AC1/AC2, Brennan-Prediger),
:mod:`~.fleiss`, :mod:`~.alpha` (Krippendorff), :mod:`~.bootstrap` (the one seeded, vectorised
bootstrap), :mod:`~.classification` (metrics, the decision rule, how a coder is scored,
the invalid-answer and macro-F1 rules), :mod:`~.pairwise` (coder pairs, the human ceiling),
:mod:`~.ordinal` (ordinal codebooks: exact, off-by-one, MAE in scale steps),
:mod:`~.paired` (paired differences of coders on the same items, humans vs model on
equal terms), :mod:`~.strata` (the one per-stratum table and its flag rule), :mod:`~.proportions` (Wilson),
:mod:`~.calibration`, :mod:`~.prevalence` (PPI, DSL), :mod:`~.samplesize`, :mod:`~.weighted`
(design-weighted metrics of unequal-probability samples, stratified bootstrap, differences of
independent samples).
"""

from __future__ import annotations

from textgauge.stats.alpha import (
    AlphaResult,
    krippendorff_alpha,
    krippendorff_alpha_long,
    weighted_alpha,
)
from textgauge.stats.bootstrap import (
    BootstrapResult,
    bootstrap_agreement,
    bootstrap_kappa,
    bootstrap_macro_f1,
    bootstrap_tables,
    ci_from_replicates,
    f1_from_tables,
    macro_f1_from_tables,
    unit_resample_counts,
)
from textgauge.stats.cac import (
    AgreementResult,
    brennan_prediger,
    brennan_prediger_table,
    gwet_ac1,
    gwet_ac1_counts,
    gwet_ac1_table,
    scott_pi,
    scott_pi_table,
)
from textgauge.stats.calibration import (
    calibration_bins,
    coverage_accuracy_curve,
    ece_if_calibrated,
    expected_calibration_error,
    fit_temperature,
    maximum_calibration_error,
    negative_log_likelihood,
    softmax_with_temperature,
    temperature_scaling,
)
from textgauge.stats.classification import (
    INVALID_LABEL,
    ClassificationReport,
    classification_metrics,
    classification_summary,
    decide,
    kappa_summary,
    kappa_weights_for,
    label_weight_matrix,
    macro_f1_summary,
    per_class_f1_ci,
    scored_labels,
)
from textgauge.stats.fleiss import FleissResult, fleiss_kappa, fleiss_kappa_long
from textgauge.stats.inputs import agreement_weights, contingency_table, encode_pair
from textgauge.stats.kappa import (
    KappaResult,
    cohen_kappa,
    cohen_kappa_table,
    kappa_from_tables,
    kappa_parts,
)
from textgauge.stats.ordinal import ORDINAL_MEASURES, ordinal_from_tables, ordinal_summary
from textgauge.stats.paired import (
    AVERAGE_CODER,
    human_model_comparison,
    leave_one_out_reference,
    paired_comparison,
    verdict_vs_humans,
)
from textgauge.stats.pairwise import HumanBenchmark, compare_with_humans, pairwise_agreement
from textgauge.stats.prevalence import dsl_mean, naive_share, ppi_mean
from textgauge.stats.proportions import goodness_of_fit, paired_share_difference, wilson_ci
from textgauge.stats.strata import OVERALL, STRATUM_COLUMNS, flag_stratum, per_stratum
from textgauge.stats.weighted import (
    WeightedMetrics,
    independent_difference,
    stratified_tables,
    weighted_confusion,
    weighted_metrics,
)

__all__ = [
    "AVERAGE_CODER",
    "INVALID_LABEL",
    "ORDINAL_MEASURES",
    "OVERALL",
    "STRATUM_COLUMNS",
    "AgreementResult",
    "AlphaResult",
    "BootstrapResult",
    "ClassificationReport",
    "FleissResult",
    "HumanBenchmark",
    "KappaResult",
    "agreement_weights",
    "bootstrap_agreement",
    "bootstrap_kappa",
    "bootstrap_macro_f1",
    "bootstrap_tables",
    "brennan_prediger",
    "brennan_prediger_table",
    "calibration_bins",
    "ci_from_replicates",
    "classification_metrics",
    "classification_summary",
    "cohen_kappa",
    "cohen_kappa_table",
    "compare_with_humans",
    "contingency_table",
    "coverage_accuracy_curve",
    "decide",
    "dsl_mean",
    "ece_if_calibrated",
    "encode_pair",
    "expected_calibration_error",
    "f1_from_tables",
    "fit_temperature",
    "flag_stratum",
    "goodness_of_fit",
    "human_model_comparison",
    "fleiss_kappa",
    "fleiss_kappa_long",
    "gwet_ac1",
    "gwet_ac1_counts",
    "gwet_ac1_table",
    "kappa_from_tables",
    "kappa_parts",
    "kappa_summary",
    "kappa_weights_for",
    "krippendorff_alpha",
    "krippendorff_alpha_long",
    "leave_one_out_reference",
    "label_weight_matrix",
    "macro_f1_from_tables",
    "macro_f1_summary",
    "maximum_calibration_error",
    "fit_temperature",
    "negative_log_likelihood",
    "softmax_with_temperature",
    "temperature_scaling",
    "naive_share",
    "negative_log_likelihood",
    "ordinal_from_tables",
    "ordinal_summary",
    "paired_comparison",
    "paired_share_difference",
    "pairwise_agreement",
    "per_class_f1_ci",
    "per_stratum",
    "ppi_mean",
    "scored_labels",
    "scott_pi",
    "scott_pi_table",
    "temperature_scaling",
    "unit_resample_counts",
    "verdict_vs_humans",
    "WeightedMetrics",
    "independent_difference",
    "softmax_with_temperature",
    "stratified_tables",
    "weighted_alpha",
    "weighted_confusion",
    "weighted_metrics",
    "wilson_ci",
]
