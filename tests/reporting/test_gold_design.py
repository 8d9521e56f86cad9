"""The report and the methods state the gold design from sample.json and metrics.json:
the as-drawn column only when the headline numbers are weighted, the design paragraph with
the run's own numbers."""

from __future__ import annotations

from textgauge.reporting.design import gold_design_view
from textgauge.reporting.methods import design_sentence
from textgauge.reporting.report import allocation_phrase, template_environment

KAPPA = {"kappa": 0.71, "ci_low": 0.62, "ci_high": 0.79, "confidence": 0.95, "n_boot": 200}
F1 = {"estimate": 0.68, "ci_low": 0.6, "ci_high": 0.75, "n_boot": 200}

PROPORTIONAL = {
    "size": 200, "seed": 7, "strata": ["party"],
    "design": {"design": "proportional", "first_pass": None, "n_eligible": 5000,
               "excluded_training_split": 0, "weighted_analysis": False,
               "cells": [{"cell": "left", "cell_size": 2500, "cell_n": 100,
                          "inclusion_prob": 0.04},
                         {"cell": "right", "cell_size": 2500, "cell_n": 100,
                          "inclusion_prob": 0.04}],
               "predicted_counts": None, "planning": None,
               "recommendation": "Drawn with the proportional design (self-weighting)."}}

MODEL_ASSISTED = {
    "size": 200, "seed": 7, "strata": [],
    "design": {"design": "model_assisted", "first_pass": "tfidf", "n_eligible": 4200,
               "excluded_training_split": 800, "weighted_analysis": True,
               "confidence_bands": 3, "min_per_label": 33,
               "allocation": "at least 2 per cell, at least min_per_label per predicted label",
               "cells": [{"cell": f"{lab} | band {b} | all", "predicted": lab, "band": b,
                          "stratum": "all", "cell_size": size, "mean_error": 0.2,
                          "cell_n": n}
                         for lab, b, size, n in [("support", 0, 300, 40), ("support", 1, 300, 20),
                                                 ("support", 2, 300, 10),
                                                 ("oppose", 0, 1100, 60),
                                                 ("oppose", 1, 1100, 40),
                                                 ("oppose", 2, 1100, 30)]],
               "predicted_counts": {"support": 900, "oppose": 3300, "(no answer)": 0},
               "planning": {"confidence": 0.95, "studies": 200, "rare_label": "support",
                            "designs": {"proportional": {"kappa": 0.081,
                                                         "f1": {"support": 0.12,
                                                                "oppose": 0.04}},
                                        "model_assisted": {"kappa": 0.074,
                                                           "f1": {"support": 0.08,
                                                                  "oppose": 0.05}}}},
               "recommendation": "Drawn with the model_assisted design. model_assisted gives "
                                 "the narrower 95% CI for the F1 of the rarest label."}}

DESIGN_INFO = {"design": "model_assisted", "weighted": True, "n_cells": 6,
               "sum_weights": 4200.0, "population": 4200.0, "cells_without_items": [],
               "texts_not_represented": 0, "first_pass": "tfidf",
               "bootstrap": "within design cells (Rao-Wu rescaled, n_h - 1 draws)"}


def _model(weighted: bool) -> dict:
    m = {"model": "enc", "kappa": KAPPA, "macro_f1": F1, "n_evaluated": 200, "coverage": 1.0,
         "decision": "pass", "per_class": [], "per_stratum": [], "flagged_strata": [],
         "design": DESIGN_INFO if weighted else {"design": "proportional",
                                                 "weighted": False},
         "as_drawn": None}
    if weighted:
        m["as_drawn"] = {"kappa": {**KAPPA, "kappa": 0.55, "ci_low": 0.44, "ci_high": 0.66},
                         "macro_f1": {**F1, "estimate": 0.52}, "per_class": []}
    return m


def _top_of_page(**context) -> str:
    """The page down to the human ceiling: the summary table and the gold design (the rest
    of the page needs the whole run's records)."""
    env = template_environment()
    source = env.loader.get_source(env, "report.html")[0]
    return env.from_string(source.split("<h2>Human–human agreement")[0]).render(**context)


def _context(models: list[dict], view: dict | None) -> dict:
    """The page's context, bare but for the models and the gold design (the template takes
    a missing key for empty)."""
    return {"project": {"name": "t"}, "models": models, "threshold": 0.7, "figures": {},
            "kappa_name": "κ", "human": {"pairwise": [], "confidence": 0.95},
            "gold_design": view, "as_drawn_column": any(m.get("as_drawn") for m in models)}


def test_report_shows_the_as_drawn_column_only_when_weighted():
    for gold, weighted in ((MODEL_ASSISTED, True), (PROPORTIONAL, False)):
        models = [_model(weighted)]
        page = _top_of_page(**_context(models, gold_design_view(gold, models)))
        summary = page.split("<h2>Summary</h2>")[1].split("</table>")[0]
        assert ("as drawn" in summary) is weighted
        assert ("0.550 [0.440, 0.660] / 0.520" in summary) is weighted
        assert "0.710 [0.620, 0.790]" in summary  # the headline: metrics.json's kappa
        section = page.split('<h2 id="gold-design">Gold design</h2>')[1].split("<h2")[0]
        if weighted:
            assert "first-pass coder: <b>tfidf</b>" in section
            assert "support | band 0 | all" in section and "0.1333" in section  # 40 / 300
            assert "support 900, oppose 3300" in section
            assert "0.081" in section and "0.074" in section  # planning half-widths
            assert "narrower 95% CI" in section
            assert "Every design cell has a coded item" in section
        else:
            assert "self-weighting" in section and "0.0400" in section


def test_report_names_texts_not_represented():
    models = [_model(True)]
    models[0]["design"] = {**DESIGN_INFO, "texts_not_represented": 37,
                           "cells_without_items": [{"cell": "support | band 2 | all",
                                                    "cell_size": 37, "drawn": 1}]}
    view = gold_design_view(MODEL_ASSISTED, models)
    assert view["not_represented"][0]["texts"] == 37
    page = _top_of_page(**_context(models, view))
    assert "37 texts lie in cells without a coded item (support | band 2 | all)" in page


def test_methods_paragraph_for_each_design():
    config = {"models": {"tfidf": {"kind": "baseline"}, "enc": {"kind": "encoder"}}}
    text = design_sentence(PROPORTIONAL, [_model(False)], config)
    assert text.startswith("The gold sample is a proportional stratified sample of 200 texts "
                           "over the strata party (2 cells")
    assert "analysed as drawn (self-weighting)" in text
    assert allocation_phrase(PROPORTIONAL) == "proportional allocation"

    text = design_sentence(MODEL_ASSISTED, [_model(True)], config)
    for part in ("designed around the predictions of tfidf (baseline) on the 4200 eligible "
                 "texts it was not trained on (800 texts",
                 "predicted label x 3 confidence bands", "into 6 cells",
                 "at least 33 texts per predicted label", "N_c sqrt(e_c (1 - e_c))",
                 "200 texts were drawn (seed 7)", "inverse of its inclusion probability",
                 "adjusted within cells for items without a reference label",
                 "bootstrap within design cells", "Rao-Wu",
                 "enc kappa 0.71 weighted vs 0.55 as drawn, macro-F1 0.68 vs 0.52",
                 "Every design cell had a coded item"):
        assert part in text, part
    assert "model-assisted" in allocation_phrase(MODEL_ASSISTED)
    lost = _model(True)
    lost["design"] = {**DESIGN_INFO, "texts_not_represented": 37}
    assert "37 texts in cells without a coded item are not represented" in design_sentence(
        MODEL_ASSISTED, [lost], config)
    assert design_sentence({"size": 10, "strata": []}, [], config) is None


def test_a_proportional_sample_at_unequal_rates_says_so_and_how():
    """min_per_stratum tops up small strata: the sample is not self-weighting, and the
    methods must not call it so (it is analysed as drawn, which they say)."""
    from textgauge.reporting.methods import design_sentence

    gold = {"size": 300, "strata": ["party"], "design": {
        "design": "proportional", "cells": [{"cell": "A", "inclusion_prob": 0.1},
                                            {"cell": "B", "inclusion_prob": 0.3}]}}
    weighted = [{"design": {"design": "proportional", "weighted": True}}]
    text = design_sentence(gold, weighted, {"gold": {"min_per_stratum": 20}})
    assert "rates from 0.1 to 0.3" in text and "topped up to 20" in text
    assert "weighted by the inverse" in text and "self-weighting" not in text
    plain = design_sentence(gold, [], {"gold": {"min_per_stratum": 20}})
    assert "without design weights" in plain and "from rounding" in plain
    assert "topped up" not in plain  # nothing was: no weights, no claim
    gold["design"]["cells"][1]["inclusion_prob"] = 0.1
    assert "(self-weighting)" in design_sentence(gold, [], {})
