"""The report's "Gold design" section, read from the run's records (never recomputed).

Why apart from :mod:`textgauge.reporting.report`: the view joins two records, sample.json's
``design`` block (rule sample_gold: the cells drawn, the first pass, the planning of both
designs) and each model's metrics.json ``design`` entry (rule evaluate: which texts the
weighted estimates could not represent), and the report page only lays it out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["gold_design_view"]


def gold_design_view(gold: Mapping[str, Any],
                     models: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The "Gold design" section, read from sample.json's ``design`` block and the models'
    metrics.json ``design`` entries (never recomputed): the design, the first pass, the cells
    with their inclusion probabilities, the predicted label counts, the planning half-widths
    of both designs and the recommendation, and the texts the estimates cannot represent.
    None for a sample.json from before designs."""
    block = gold.get("design")
    if not isinstance(block, Mapping):
        return None
    cells = []
    for c in block.get("cells") or []:
        size, n = c.get("cell_size"), c.get("cell_n")
        prob = c.get("inclusion_prob")
        if prob is None and size:  # the allocation table states n and size, not their ratio
            prob = n / size if n is not None else None
        cells.append({"cell": c.get("cell"), "predicted": c.get("predicted"),
                      "band": c.get("band"), "stratum": c.get("stratum"),
                      "cell_size": size, "cell_n": n, "inclusion_prob": prob})
    plan = block.get("planning") or {}
    designs = plan.get("designs") or {}
    labels = sorted({lab for d in designs.values() for lab in (d.get("f1") or {})})
    planning = [{"design": name, "kappa": d.get("kappa"),
                 "f1": [(d.get("f1") or {}).get(lab) for lab in labels]}
                for name, d in designs.items()]
    infos = [(m["model"], m.get("design") or {}) for m in models]
    lost = [{"model": name, "texts": i.get("texts_not_represented", 0),
             "cells": [c.get("cell") for c in i.get("cells_without_items") or []],
             "sum_weights": i.get("sum_weights"), "population": i.get("population")}
            for name, i in infos if i.get("weighted")]
    return {"design": block.get("design"), "first_pass": block.get("first_pass"),
            "weighted": bool(block.get("weighted_analysis")) or any(
                i.get("weighted") for _, i in infos),
            "n_eligible": block.get("n_eligible"),
            "excluded_training_split": block.get("excluded_training_split"),
            "confidence_bands": block.get("confidence_bands"),
            "min_per_label": block.get("min_per_label"), "allocation": block.get("allocation"),
            "cells": cells, "has_bands": any(c["band"] is not None for c in cells),
            "predicted_counts": block.get("predicted_counts"),
            "planning": planning, "planning_labels": labels,
            "planning_confidence": plan.get("confidence"), "planning_studies": plan.get("studies"),
            "recommendation": block.get("recommendation"), "not_represented": lost}
