"""The gold-set ledger: every distinct coder configuration ever evaluated on the gold set.

Iterating a prompt on the gold set itself overfits the test set: the fifth prompt that "works"
on gold is chosen by gold. The ledger makes the number of tries visible. Each evaluation of a
machine coder on gold (rule ``evaluate``) records its configuration, one JSON line per
DISTINCT configuration: the key hashes the model's name, its prompt hash, its answer-shaping
settings (everything but ``limits`` and ``plan``) and, for a fine-tuned coder, what its
training summary says it was trained on. Evaluating the same configuration again updates
``last_evaluated`` (and the result), never adds an entry. The methods section reports how many
configurations were tried and which one is reported (:func:`ledger_sentence`).

Pure functions only: reading and writing the file is :func:`textgauge.io.update_jsonl`
(locked, atomic), called by :func:`textgauge.steps.validate.evaluate`; the report step reads
it with :func:`textgauge.io.read_jsonl`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from textgauge.io import stable_hash

#: the fields of a training summary (training.json) that say what a fine-tuned coder is; its
#: dates, curves and scores are left out (a retrain of the same configuration is the same one)
TRAINING_FIELDS = ("base_model", "labels", "config", "n_train", "n_val", "prompt_hash")

ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
            "ninth", "tenth")

#: the result of an evaluation, as the ledger keeps it
RESULT_FIELDS = ("kappa", "kappa_ci_low", "kappa_ci_high", "confidence", "macro_f1",
                 "macro_f1_ci_low", "macro_f1_ci_high", "decision", "kappa_threshold", "n",
                 "coverage")

#: how many characters of a hash the methods sentence shows
SHORT = 8


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def training_fingerprint(summary: Mapping[str, Any] | None) -> str | None:
    """Hash of what a fine-tuned coder was trained from (None for a prompted coder)."""
    if not summary:
        return None
    return stable_hash({k: summary.get(k) for k in TRAINING_FIELDS})


def ledger_key(model: str, prompt_hash: str | None, settings: Mapping[str, Any] | None,
               training_hash: str | None = None) -> str:
    """The key of one coder configuration: model name, prompt, settings, training."""
    return stable_hash({"model": model, "prompt_hash": prompt_hash,
                        "settings_hash": stable_hash(dict(settings or {})),
                        "training_hash": training_hash})


def ledger_entry(model: str, metrics: Mapping[str, Any], *, prompt_hash: str | None,
                 settings: Mapping[str, Any] | None, training: Mapping[str, Any] | None = None,
                 model_id: str | None = None, when: str | None = None) -> dict[str, Any]:
    """One evaluation as a ledger entry, from the metrics rule ``evaluate`` writes."""
    settings = dict(settings or {})
    training_hash = training_fingerprint(training)
    when = when or now_utc()
    k, f1 = metrics.get("kappa") or {}, metrics.get("macro_f1") or {}
    return {
        "key": ledger_key(model, prompt_hash, settings, training_hash),
        "model": model,
        "model_id": model_id or settings.get("model") or settings.get("base_model"),
        "prompt_hash": prompt_hash,
        "settings_hash": stable_hash(settings),
        "training_hash": training_hash,
        "first_evaluated": when, "last_evaluated": when, "n_evaluations": 1,
        "result": {
            "kappa": k.get("kappa"), "kappa_ci_low": k.get("ci_low"),
            "kappa_ci_high": k.get("ci_high"), "confidence": metrics.get("confidence"),
            "macro_f1": f1.get("estimate"), "macro_f1_ci_low": f1.get("ci_low"),
            "macro_f1_ci_high": f1.get("ci_high"), "decision": metrics.get("decision"),
            "kappa_threshold": metrics.get("kappa_threshold"),
            "n": metrics.get("n_evaluated"), "coverage": metrics.get("coverage"),
        },
        "settings": settings,
    }


def record_evaluation(entries: Sequence[Mapping[str, Any]],
                      entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ledger after one more evaluation: a new configuration is appended; one already
    there gets its ``last_evaluated``, count and latest result updated (first date kept)."""
    out = [dict(e) for e in entries]
    for e in out:
        if e.get("key") == entry["key"]:
            e["first_evaluated"] = min(e.get("first_evaluated") or entry["first_evaluated"],
                                       entry["first_evaluated"])
            e["last_evaluated"] = max(e.get("last_evaluated") or entry["last_evaluated"],
                                      entry["last_evaluated"])
            e["n_evaluations"] = int(e.get("n_evaluations") or 1) + 1
            e["result"] = entry["result"]
            return out
    out.append(dict(entry))
    return out


def entries_of(entries: Sequence[Mapping[str, Any]], model: str) -> list[Mapping[str, Any]]:
    """One model's configurations, in the order they were first evaluated."""
    mine = [e for e in entries if e.get("model") == model]
    return sorted(mine, key=lambda e: str(e.get("first_evaluated") or ""))  # stable: file order


def ordinal(n: int) -> str:
    """1 -> "first" ... 10 -> "tenth", then "11th", "22nd" ..."""
    if 1 <= n <= len(ORDINALS):
        return ORDINALS[n - 1]
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _short(h: Any) -> str:
    return str(h)[:SHORT]


def _versions(mine: Sequence[Mapping[str, Any]]) -> str:
    """ "prompt hashes a1b2, c3d4" (or the settings hashes of coders without a prompt)."""
    n = len(mine)
    prompts = list(dict.fromkeys(e.get("prompt_hash") for e in mine if e.get("prompt_hash")))
    if not prompts:
        hashes = [_short(e.get("settings_hash")) for e in mine]
        return f"settings hash{'es' if n > 1 else ''} {', '.join(hashes)}"
    shown = ", ".join(_short(h) for h in prompts)
    if len(prompts) == 1:
        text = f"prompt hash {shown}"
        return text if n == 1 else f"{text}, other settings changed"
    if len(prompts) == n:
        return f"prompt hashes {shown}"
    return f"{len(prompts)} prompt versions, {shown}, and other settings changed"


def ledger_sentence(entries: Sequence[Mapping[str, Any]], model: str,
                    current_key: str | None) -> str:
    """The methods sentence on how many configurations of ``model`` met the gold set.

    "3 configurations of zeroshot were evaluated on the gold set (prompt hashes a1b2c3d4,
    c3d4e5f6, e5f6a7b8); the reported one is the third, first evaluated on 2026-12-03."
    ``current_key`` is the reported configuration's key (``ledger_key`` in its metrics.json).
    An empty string when the ledger holds nothing of ``model``.
    """
    mine = entries_of(entries, model)
    n = len(mine)
    if not n:
        return ""
    were = "configuration of {m} was" if n == 1 else "configurations of {m} were"
    head = f"{n} {were.format(m=model)} evaluated on the gold set ({_versions(mine)})"
    keys = [e.get("key") for e in mine]
    if current_key not in keys:
        return (f"{head}; the reported configuration is not among them (no evaluation of it "
                "on the gold set was recorded).")
    i = keys.index(current_key)
    date = str(mine[i].get("first_evaluated") or "")[:10] or "an unrecorded date"
    if n == 1:
        return f"{head}: the reported one, first evaluated on {date}."
    return f"{head}; the reported one is the {ordinal(i + 1)}, first evaluated on {date}."


def ledger_table(entries: Sequence[Mapping[str, Any]], models: Sequence[str],
                 current: Mapping[str, str | None] | None = None) -> list[dict[str, Any]]:
    """Rows for the report's ledger table, per model in ``models`` order then first date;
    ``current`` (model -> key of the reported configuration) marks the reported rows."""
    current = current or {}
    rows = []
    for model in models:
        for i, e in enumerate(entries_of(entries, model), start=1):
            r = e.get("result") or {}
            rows.append({"model": model, "number": i, "key": _short(e.get("key")),
                         "prompt_hash": _short(e["prompt_hash"]) if e.get("prompt_hash")
                         else None, "settings_hash": _short(e.get("settings_hash")),
                         "first_evaluated": str(e.get("first_evaluated") or "")[:10],
                         "last_evaluated": str(e.get("last_evaluated") or "")[:10],
                         "n_evaluations": e.get("n_evaluations", 1),
                         "reported": e.get("key") == current.get(model),
                         **{k: r.get(k) for k in RESULT_FIELDS}})
    return rows
