"""Agreement and validation statistics for textgauge (public API).

Why: validating a text classifier as a measurement instrument means reporting chance-corrected
agreement with human coders *with* its uncertainty, classification metrics against a reference,
and a decision that respects the confidence interval. This module gathers that API; the
implementation lives in ``agreement_core`` (kappa family, Fleiss, Gwet/Scott/Brennan-Prediger),
``agreement_alpha`` (Krippendorff's alpha), ``agreement_bootstrap`` (vectorised bootstrap) and
``agreement_report`` (classification metrics, pairwise tables, human ceiling, strata).
The library never imports Snakemake.
"""

from __future__ import annotations

from textgauge.stats.alpha import AlphaResult, krippendorff_alpha, krippendorff_alpha_long
from textgauge.stats.bootstrap import (
    BootstrapResult,
    bootstrap_agreement,
    bootstrap_kappa,
    bootstrap_macro_f1,
    bootstrap_tables,
    ci_from_replicates,
    macro_f1_from_tables,
)
from textgauge.stats.core import (
    AgreementResult,
    FleissResult,
    KappaResult,
    agreement_weights,
    brennan_prediger,
    brennan_prediger_table,
    cohen_kappa,
    cohen_kappa_table,
    contingency_table,
    encode_pair,
    fleiss_kappa,
    fleiss_kappa_long,
    gwet_ac1,
    gwet_ac1_counts,
    gwet_ac1_table,
    kappa_from_tables,
    scott_pi,
    scott_pi_table,
)
from textgauge.stats.tables import (
    ClassificationReport,
    HumanBenchmark,
    classification_metrics,
    compare_with_humans,
    decide,
    pairwise_agreement,
    per_stratum,
)

__all__ = [
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
    "ci_from_replicates",
    "classification_metrics",
    "cohen_kappa",
    "cohen_kappa_table",
    "compare_with_humans",
    "contingency_table",
    "decide",
    "encode_pair",
    "fleiss_kappa",
    "fleiss_kappa_long",
    "gwet_ac1",
    "gwet_ac1_counts",
    "gwet_ac1_table",
    "kappa_from_tables",
    "krippendorff_alpha",
    "krippendorff_alpha_long",
    "macro_f1_from_tables",
    "pairwise_agreement",
    "per_stratum",
    "scott_pi",
    "scott_pi_table",
]
