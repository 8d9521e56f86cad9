"""Temporal instability: a coder's current run against its own stored earlier run.

Closed models change without notice; re-running the gold set and comparing it with the stored
run measures the drift: agreement, Cohen's kappa (:mod:`textgauge.stats`), the flips, and what
changed in the run manifest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from textgauge.audits.gold_alignment import (
    INVALID_LABEL,
    prediction_labels,
    require_columns,
    require_unique,
)
from textgauge.secrets import redact_config
from textgauge.stats import kappa_summary

__all__ = ["KEY_MANIFEST_FIELDS", "TestRetest", "manifest_diff", "test_retest"]


#: manifest keys reported first in a diff (model revision, provider, date)
KEY_MANIFEST_FIELDS = ("model", "model_id", "revision", "model_revision", "provider", "backend",
                       "date", "run_timestamp", "prompt_hash", "temperature",
                       # what the API says answered (an API model can change under one name)
                       "served_models", "system_fingerprints")


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def manifest_diff(earlier: Mapping[str, Any], current: Mapping[str, Any]) -> pd.DataFrame:
    """Keys (nested keys dotted) whose values differ between two run manifests.

    Columns key, earlier, current, key_field (True for model/revision/provider/date-like keys,
    listed first).
    """
    # an earlier run's manifest may predate redaction: its URLs are shown without credentials
    a, b = _flatten(redact_config(earlier or {})), _flatten(redact_config(current or {}))
    rows = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if va != vb:
            parts = key.split(".")
            rows.append({"key": key, "earlier": va, "current": vb,
                         "key_field": parts[-1] in KEY_MANIFEST_FIELDS
                         or parts[0] in KEY_MANIFEST_FIELDS})
    out = pd.DataFrame(rows, columns=["key", "earlier", "current", "key_field"])
    return out.sort_values(["key_field", "key"], ascending=[False, True]).reset_index(drop=True)


@dataclass
class TestRetest:
    """Result of :func:`test_retest`."""

    n_common: int
    agreement: float
    kappa: dict[str, Any]
    flips: pd.DataFrame
    manifest_diff: pd.DataFrame
    accuracy_earlier: float | None = None
    accuracy_current: float | None = None
    only_earlier: list[str] = field(default_factory=list)
    only_current: list[str] = field(default_factory=list)

    __test__ = False  # not a pytest class


def test_retest(
    current: pd.DataFrame,
    earlier: pd.DataFrame,
    current_manifest: Mapping[str, Any] | None = None,
    earlier_manifest: Mapping[str, Any] | None = None,
    gold: pd.DataFrame | None = None,
    reference_col: str = "reference",
    labels: Sequence[str] | None = None,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    weights: str | None = None,
) -> TestRetest:
    """Test-retest reliability of one coder: a stored earlier run against a current run.

    Closed models change without notice (temporal instability); re-running the gold set and
    comparing it with the stored run measures the drift. Returns percent agreement and Cohen's
    kappa (:func:`textgauge.stats.kappa_summary`: analytic CI, bootstrap CI beside) on the
    common ids (invalid answers are errors: two invalid answers do not agree), the
    flip list (with the gold label when ``gold`` is given) and the manifest diff
    (:func:`manifest_diff`). When ``gold`` is given only gold ids are compared. ``weights``
    weights the kappa of an ordinal codebook (``labels`` in scale order).
    """
    require_columns(current, ["id", "label"], "current predictions")
    require_columns(earlier, ["id", "label"], "earlier predictions")
    require_unique(current, ["id"], "current predictions")
    require_unique(earlier, ["id"], "earlier predictions")

    def prep(df: pd.DataFrame) -> pd.DataFrame:
        conf = df["confidence"] if "confidence" in df.columns else np.nan
        return pd.DataFrame({"id": df["id"].astype(str).to_numpy(),
                             "label": prediction_labels(df).astype(str).to_numpy(),
                             "confidence": pd.to_numeric(pd.Series(conf, index=df.index),
                                                         errors="coerce").to_numpy()})

    a, b = prep(earlier), prep(current)
    if gold is not None:
        require_columns(gold, ["id", reference_col], "gold")
        gids = set(gold["id"].astype(str))
        a, b = a[a["id"].isin(gids)], b[b["id"].isin(gids)]
    m = a.merge(b, on="id", suffixes=("_earlier", "_current"))
    only_e = sorted(set(a["id"]) - set(b["id"]))
    only_c = sorted(set(b["id"]) - set(a["id"]))
    codebook = list(labels) if labels is not None else sorted(
        (set(m["label_earlier"]) | set(m["label_current"])) - {INVALID_LABEL})
    nan = float("nan")
    kap = (kappa_summary(m["label_earlier"], m["label_current"], codebook,
                         confidence=confidence, bootstrap=bootstrap, seed=seed,
                         weights=weights) if len(m)
           else {"kappa": nan, "ci_low": nan, "ci_high": nan, "n": 0,
                 "confidence": float(confidence), "n_boot": 0})
    flips = m[m["label_earlier"] != m["label_current"]].copy()
    acc_e = acc_c = None
    if gold is not None:
        ref = dict(zip(gold["id"].astype(str), gold[reference_col].astype(str), strict=True))
        flips["reference"] = flips["id"].map(ref)
        acc_e = float((m["label_earlier"] == m["id"].map(ref)).mean()) if len(m) else np.nan
        acc_c = float((m["label_current"] == m["id"].map(ref)).mean()) if len(m) else np.nan
    return TestRetest(
        n_common=len(m),
        agreement=float((m["label_earlier"] == m["label_current"]).mean()) if len(m) else np.nan,
        kappa=kap, flips=flips.reset_index(drop=True),
        manifest_diff=manifest_diff(earlier_manifest or {}, current_manifest or {}),
        accuracy_earlier=acc_e, accuracy_current=acc_c, only_earlier=only_e, only_current=only_c,
    )


test_retest.__test__ = False  # type: ignore[attr-defined]  # a library function, not a test
