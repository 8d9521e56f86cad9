"""A transparent baseline coder: TF-IDF word n-grams + logistic regression.

A fine-tuned or prompted coder should be judged against what a simple, explainable model
gets on the same split: TF-IDF word 1-2-grams with a class-balanced logistic regression is
what many researchers would otherwise use, and on real data it is often hard to beat. The
baseline is fitted on the same training split as the encoder (rule ``split_training``: the
gold test set never reaches it), scored on the validation split, and then validated on gold
like any other coder.

One implementation: :func:`make_pipeline` is also the model of the label-noise check
(:mod:`textgauge.training.label_noise`), with its own ``min_df`` and ``C``.

The fitted model is saved WITHOUT pickle, so that a replication package is safe to open
(unpickling runs code): the vocabulary as JSON (terms in column order), the idf weights and
the logistic-regression coefficients, intercepts and classes as an ``.npz`` read with
``allow_pickle=False``, and the vectoriser settings as JSON. :class:`BaselinePredictor`
rebuilds the same scikit-learn objects from those arrays, so its probabilities are those of
the fitted pipeline (checked to 1e-12 by tests/training/test_baseline.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from textgauge.errors import ConfigError, InputDataError

#: the files of a saved baseline, inside its model folder
SETTINGS_FILE = "baseline.json"
VOCABULARY_FILE = "vocabulary.json"
ARRAYS_FILE = "baseline.npz"
#: the vectoriser settings that are fixed (not options): recorded with the model, re-used
#: by the loader so that a text is tokenised exactly as in training
FIXED_VECTORIZER = {"analyzer": "word", "lowercase": True, "strip_accents": "unicode",
                    "sublinear_tf": True, "norm": "l2", "use_idf": True, "smooth_idf": True,
                    "token_pattern": r"(?u)\b\w\w+\b"}
CLASS_WEIGHTS = ("balanced", "none")
MAX_ITER = 2000


def make_pipeline(*, ngram_max: int = 2, min_df: int | float = 2,
                  max_features: int | None = None, c: float = 1.0,
                  class_weights: str | None = "balanced", seed: int = 0) -> Any:
    """The baseline's scikit-learn pipeline: TF-IDF (word 1..``ngram_max``-grams, sublinear
    tf, accents stripped) then a logistic regression (lbfgs; multinomial for > 2 labels).

    ``class_weights="balanced"`` weighs each class by n / (k * n_c), so that a skewed
    training set does not teach the majority label; ``"none"`` leaves the loss unweighted.
    ``seed`` is passed to the logistic regression (lbfgs is deterministic; recorded anyway).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    if class_weights in (None, False):
        class_weights = "none"
    if class_weights not in CLASS_WEIGHTS:
        raise ConfigError(f"A baseline's class_weights must be balanced or none, not "
                          f"{class_weights!r}.")
    if int(ngram_max) < 1:
        raise ConfigError(f"A baseline's ngram_max must be at least 1, not {ngram_max!r}.")
    vec = TfidfVectorizer(ngram_range=(1, int(ngram_max)), min_df=min_df,
                          max_features=max_features, dtype=np.float64, **FIXED_VECTORIZER)
    lr = LogisticRegression(C=float(c), max_iter=MAX_ITER, random_state=seed,
                            class_weight="balanced" if class_weights == "balanced" else None)
    return Pipeline([("tfidf", vec), ("logreg", lr)])


def clean_texts(texts: Sequence[Any]) -> list[str]:
    """Texts as strings; a missing text (None/NaN) becomes "" (no features: the prediction
    then follows the intercepts alone, and the summary counts such texts)."""
    return [t if isinstance(t, str) else "" if t is None or pd.isna(t) else str(t)
            for t in texts]


def check_labels(df: pd.DataFrame, labels: Sequence[str], source: str) -> None:
    """Refuse a label outside the codebook, naming the file, row, column and value."""
    if "label" not in df.columns or "text" not in df.columns:
        raise InputDataError(f"{source} has no column(s) "
                             f"{[c for c in ('text', 'label') if c not in df.columns]}; "
                             "it should be the output of rule split_training (id, label, text).")
    bad = ~df["label"].isin(list(labels))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        ident = f" (id {df['id'].iloc[i]})" if "id" in df.columns else ""
        raise InputDataError(
            f"{source}, row {i + 1}{ident}, column 'label': {df['label'].iloc[i]!r} is not a "
            f"label of the codebook ({', '.join(labels)}); {int(bad.sum())} row(s) in all. "
            "Map it with training.label_map or fix the labelled data, then rerun "
            "split_training.")


def fit_baseline(train: pd.DataFrame, val: pd.DataFrame, labels: Sequence[str],
                 cfg: Any, forbidden_ids: Sequence[str] = (),
                 sources: tuple[str, str] = ("the training split", "the validation split")
                 ) -> tuple[Any, dict[str, Any]]:
    """Fit the baseline on ``train``, score it on ``val``: (pipeline, training summary).

    ``cfg`` is a :class:`textgauge.options.BaselineModel`. The gold ids (``forbidden_ids``)
    must be in neither split. The pipeline's classes are label indices into ``labels``, so
    the probability columns follow the codebook order.
    """
    from sklearn import __version__ as sklearn_version
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.utils.class_weight import compute_class_weight

    labels = list(labels)
    check_labels(train, labels, sources[0])
    if len(val):
        check_labels(val, labels, sources[1])
    leak = set(map(str, forbidden_ids)) & (set(train["id"].astype(str)) |
                                           set(val["id"].astype(str)))
    if leak:
        raise InputDataError(f"{len(leak)} gold test id(s) are in the training or validation "
                             f"data (e.g. {sorted(leak)[:5]}); the gold set must stay held out.")
    counts = train["label"].value_counts().reindex(labels, fill_value=0)
    if (counts == 0).any():
        raise InputDataError(f"{sources[0]} has no example of {list(counts.index[counts == 0])}; "
                             "the baseline needs training examples of every label.")
    balance = None
    if getattr(cfg, "class_balance", "none") == "oversample":
        from textgauge.training.balance import oversample

        n_texts = len(train)
        train, balance = oversample(train, labels, cfg.seed, cfg.oversample_cap)
    index = {lab: i for i, lab in enumerate(labels)}
    y = train["label"].map(index).to_numpy()
    texts = clean_texts(train["text"])
    pipe = make_pipeline(ngram_max=cfg.ngram_max, min_df=cfg.min_df,
                         max_features=cfg.max_features, c=cfg.C,
                         class_weights=cfg.class_weights, seed=cfg.seed)
    try:
        pipe.fit(texts, y)
    except ValueError as exc:  # e.g. min_df leaves no term ("empty vocabulary")
        raise InputDataError(f"The baseline could not be fitted on {sources[0]} "
                             f"({len(train)} texts): {exc}. Lower min_df or check the "
                             "texts.") from exc
    weights = (compute_class_weight("balanced", classes=np.arange(len(labels)), y=y)
               if cfg.class_weights == "balanced" else np.ones(len(labels)))
    train_pred = pipe.predict(texts)
    summary: dict[str, Any] = {
        "kind": "baseline",
        "model": f"TF-IDF word 1-{cfg.ngram_max}-grams + logistic regression",
        "labels": labels, "config": cfg.answer_settings(),
        "class_weights_rule": ("balanced: n / (k * n_c) per label" if cfg.class_weights
                               == "balanced" else "none (unweighted loss)"),
        "class_weights": dict(zip(labels, np.round(weights, 4).tolist(), strict=True)),
        # labelled texts (before oversampling: class_balance says how many were fitted)
        "n_train": int(len(train)) if balance is None else int(n_texts), "n_val": int(len(val)),
        "train_label_counts": {k: int(v) for k, v in counts.items()},
        "class_balance": balance or {"method": "none"},
        "n_empty_train_texts": int(sum(1 for t in texts if not t.strip())),
        "vocabulary_size": int(len(pipe.named_steps["tfidf"].vocabulary_)),
        "train_accuracy": float(accuracy_score(y, train_pred)),
        "sklearn_version": sklearn_version, "seed": int(cfg.seed),
        "solver": f"lbfgs, max_iter {MAX_ITER}",
        "n_iter": int(np.max(pipe.named_steps["logreg"].n_iter_)),
        "warnings": [],
    }
    if summary["n_iter"] >= MAX_ITER:
        summary["warnings"].append(f"The logistic regression stopped at {MAX_ITER} iterations "
                                   "without converging.")
    if len(val):
        yv = val["label"].map(index).to_numpy()
        pv = pipe.predict(clean_texts(val["text"]))
        summary["val_accuracy"] = float(accuracy_score(yv, pv))
        summary["val_macro_f1"] = float(f1_score(yv, pv, labels=list(range(len(labels))),
                                                 average="macro", zero_division=0))
    else:
        summary["val_accuracy"] = summary["val_macro_f1"] = None
        summary["warnings"].append("The validation split is empty: no validation score.")
    return pipe, summary


# ---------------------------------------------------------------------------- save and load
def save_baseline(pipe: Any, labels: Sequence[str], model_dir: str | Path) -> str:
    """Write the fitted pipeline as JSON + ``.npz`` (no pickle); returns the arrays' sha256."""
    vec, lr = pipe.named_steps["tfidf"], pipe.named_steps["logreg"]
    out = Path(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = vec.vocabulary_
    terms = [""] * len(vocab)
    for term, j in vocab.items():
        terms[j] = term
    settings = {"format": "textgauge-baseline", "version": 1, "labels": list(labels),
                "ngram_range": list(vec.ngram_range),
                **{k: getattr(vec, k) for k in FIXED_VECTORIZER}}
    (out / SETTINGS_FILE).write_text(json.dumps(settings, indent=2))
    (out / VOCABULARY_FILE).write_text(json.dumps(terms, ensure_ascii=False))
    np.savez(out / ARRAYS_FILE, idf=np.asarray(vec.idf_, dtype=np.float64),
             coef=np.asarray(lr.coef_, dtype=np.float64),
             intercept=np.asarray(lr.intercept_, dtype=np.float64),
             classes=np.asarray(lr.classes_, dtype=np.int64))
    return hashlib.sha256((out / ARRAYS_FILE).read_bytes()).hexdigest()


class BaselinePredictor:
    """A saved baseline, rebuilt from JSON + ``.npz`` without unpickling anything.

    The vectoriser gets the saved vocabulary and idf, the logistic regression the saved
    coefficients, intercepts and classes: scikit-learn then computes the probabilities
    exactly as the fitted pipeline does.
    """

    def __init__(self, model_dir: str | Path):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        folder = Path(model_dir)
        missing = [f for f in (SETTINGS_FILE, VOCABULARY_FILE, ARRAYS_FILE)
                   if not (folder / f).exists()]
        if missing:
            raise InputDataError(f"The baseline model folder {folder} lacks {missing}; "
                                 "rerun rule train_baseline.")
        settings = json.loads((folder / SETTINGS_FILE).read_text())
        if settings.get("format") != "textgauge-baseline":
            raise InputDataError(f"{folder / SETTINGS_FILE} is not a textgauge baseline.")
        terms = json.loads((folder / VOCABULARY_FILE).read_text(encoding="utf-8"))
        with np.load(folder / ARRAYS_FILE, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        self.labels: list[str] = list(settings["labels"])
        self.sha256 = hashlib.sha256((folder / ARRAYS_FILE).read_bytes()).hexdigest()
        vec = TfidfVectorizer(ngram_range=tuple(settings["ngram_range"]),
                              vocabulary={t: j for j, t in enumerate(terms)}, dtype=np.float64,
                              **{k: settings[k] for k in FIXED_VECTORIZER})
        vec.idf_ = arrays["idf"]
        lr = LogisticRegression()
        lr.coef_, lr.intercept_ = arrays["coef"], arrays["intercept"]
        lr.classes_ = arrays["classes"]
        lr.n_features_in_ = arrays["coef"].shape[1]
        self.vectorizer, self.logreg = vec, lr

    def predict_proba(self, texts: Sequence[Any]) -> np.ndarray:
        """Probabilities, one column per codebook label (in codebook order)."""
        return probabilities(self.vectorizer, self.logreg, texts, len(self.labels))

    def predict(self, ids: Sequence[str], texts: Sequence[Any],
                batch_size: int = 10_000) -> pd.DataFrame:
        """Predictions shaped like every coder's (id, label, confidence, prob_*, status, raw),
        transformed ``batch_size`` texts at a time (memory stays bounded on a large shard)."""
        texts = list(texts)
        parts = [self.predict_proba(texts[s:s + batch_size])
                 for s in range(0, len(texts), max(int(batch_size), 1))]
        probs = np.vstack(parts) if parts else np.zeros((0, len(self.labels)))
        return predictions_table(ids, probs, self.labels)


def probabilities(vec: Any, lr: Any, texts: Sequence[Any], n_labels: int) -> np.ndarray:
    """P(label | text) for a vectoriser + logistic regression, columns in codebook order."""
    p = lr.predict_proba(vec.transform(clean_texts(texts)))
    out = np.zeros((p.shape[0], n_labels), dtype=np.float64)
    out[:, np.asarray(lr.classes_, dtype=int)] = p
    return out


def predictions_table(ids: Sequence[str], probs: np.ndarray,
                      labels: Sequence[str]) -> pd.DataFrame:
    """The predictions frame of a probabilistic coder (as the encoder writes it)."""
    best = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
    df = pd.DataFrame({"id": list(ids), "label": [labels[i] for i in best],
                       "confidence": probs.max(axis=1) if len(probs) else np.zeros(0)})
    for j, lab in enumerate(labels):
        df[f"prob_{lab}"] = probs[:, j]
    df["status"] = "ok"
    df["raw"] = df["label"]
    return df
