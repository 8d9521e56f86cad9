"""Step of workflow/rules/report.smk: the HTML report, the methods section and the manifest.

Loads what the validation, audit and review steps wrote and hands it to
:mod:`textgauge.reporting.report`, which renders it. ``config`` is the whole run
configuration: the manifest records (and hashes) all of it and the methods section describes
each model from its settings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from textgauge.escaping import md_escape
from textgauge.io import build_manifest, read_jsonl, stable_hash, write_text_atomic
from textgauge.reporting.ledger import ledger_sentence
from textgauge.reporting.report import (
    audit_sections,
    latex_snippet,
    methods_text,
    model_section,
    render_html,
)
from textgauge.secrets import redact_config


def load_json(path: str | Path) -> Any:
    """One JSON output of a step (the contract test wraps this to record what is read)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _paths(value: str | Sequence[str] | None) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


def _load_audit(path: str) -> Any:
    p = Path(path)
    if p.name == "sample.parquet" and p.parent.name == "revalidation":
        df = pd.read_parquet(p)
        return {"n": len(df), "path": str(p),
                "cells": int(df["cell"].nunique()) if "cell" in df else None}
    return load_json(p)


def report(*, metrics: str | Sequence[str], manifests: str | Sequence[str], human: str,
           ingest: str, gold: str, codes: str, training: str | Sequence[str] | None,
           label_issues: str | None, audits: str | Sequence[str] | None, html: str,
           methods: str, latex: str, manifest: str, config: Mapping[str, Any],
           models: Sequence[str], ledger: str | None = None,
           comparisons: str | None = None, spend: str | None = None) -> None:
    """Write the report page, the methods section (Markdown and LaTeX) and the run manifest.

    ``label_issues`` is an input so the label-noise check runs before the report; its
    findings are in the training warnings. ``ledger`` is the gold-set ledger (read when it
    exists): each model gets ``ledger_key`` (from its metrics.json) and ``ledger_sentence``.
    ``comparisons`` (rule compare, when there is a model): the paired differences; each model
    gets ``vs_humans``, its verdict against the human coders, shown beside its decision.
    ``spend`` (rule spend): planned against actual tokens, cost and GPU hours, shown in the
    report and recorded in the manifest.
    """
    del label_issues
    config = redact_config(config)  # the manifest, methods and page show no URL credential
    human_d = load_json(human)
    trained = {Path(p).parent.name: load_json(p) for p in _paths(training)}
    labels = list(config["labels"])
    kappa_threshold = config["validation"]["kappa_threshold"]
    manifest_paths = _paths(manifests)
    model_manifests = {name: load_json(p) for name, p in zip(models, manifest_paths,
                                                             strict=True)}
    model_metrics = [
        model_section(name, load_json(mp), model_manifests[name], config["models"][name],
                      trained.get(name, {}), labels, kappa_threshold)
        for name, mp in zip(models, _paths(metrics), strict=True)]
    audit = audit_sections([(p, _load_audit(p)) for p in _paths(audits)],
                           config["validation"]["review_fraction"])
    for m in model_metrics:
        m["audit"] = audit["models"].get(m["model"])
        m["positional"] = audit["positional"].get(m["model"])
    ledger_entries = read_jsonl(ledger) if ledger else []
    ledger_keys = {name: load_json(mp).get("ledger_key")
                   for name, mp in zip(models, _paths(metrics), strict=True)}
    for m in model_metrics:
        m["ledger_key"] = ledger_keys.get(m["model"])
        m["ledger_sentence"] = ledger_sentence(ledger_entries, m["model"], m["ledger_key"])
    comparisons_d = load_json(comparisons) if comparisons else None
    for m in model_metrics:
        m["vs_humans"] = (comparisons_d["vs_humans"][m["model"]]["verdict"]
                          if comparisons_d else None)
    gold_d, codes_d = load_json(gold), load_json(codes)
    text = methods_text(config, human_d, model_metrics, gold_d, codes_d, trained,
                        comparisons=comparisons_d,
                        revalidation=audit.get("revalidation_metrics"))
    spend_d = load_json(spend) if spend else None
    run_manifest = build_manifest("report", config, run_config=dict(config),
                                  models=model_manifests, spend=spend_d)
    page = render_html(config=config, models=model_metrics, human=human_d,
                       ingest=load_json(ingest), gold=gold_d, codes=codes_d, audit=audit,
                       methods=text, manifest=run_manifest, config_hash=stable_hash(config),
                       kappa_threshold=kappa_threshold, ledger=ledger_entries,
                       comparisons=comparisons_d, spend=spend_d)
    write_text_atomic(page, html)
    # names, labels and strata are the user's: shown literally, never as HTML or formatting
    write_text_atomic("# Methods (generated by textgauge)\n\n" + md_escape(text) + "\n", methods)
    write_text_atomic(latex_snippet(text), latex)
    write_text_atomic(json.dumps(run_manifest, indent=2, default=str), manifest)
