"""The validation report: one self-contained HTML page, a methods section, a manifest.

The page is what a reviewer reads: every number carries its CI (at the level and with the
replicates the outputs record) and n; the human ceiling and the threshold are drawn on the
same axis as the models; synthetic data is labelled as such; low human agreement is called
out in words, not left for the reader to notice; strata that fail the flag rule of
:func:`textgauge.stats.per_stratum` are named.

This module renders what the steps wrote; it reads no file (:mod:`textgauge.steps.report`
loads the outputs and writes the pages).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from textgauge import __version__
from textgauge.escaping import latex_escape
from textgauge.reporting.ledger import ledger_table
from textgauge.reporting.methods import coder_sentence
from textgauge.reporting.plots import audits as plots_audit
from textgauge.reporting.plots import validation as plots
from textgauge.stats import OVERALL

#: the flag rule, in the words the report prints
FLAG_RULE = ("a stratum is flagged when the upper bound of its kappa CI lies below the "
             "kappa threshold (on its own it fails the decision rule)")
#: the invalid-answer rule, in the words the report prints
INVALID_RULE = ("invalid or failed answers, and gold items a coder did not answer, count as "
                "errors in every metric; coverage is the share of valid answers")


#: keys the report itself adds to a model's loaded audit.json (figures, and the imported codes
#: and stability audits it joins in): not keys of audit.json (tests/workflow/
#: test_validation_contract.py checks every other key the report reads against the steps)
REPORT_KEYS = ("fig_reliability", "fig_coverage", "fig_prevalence", "error_patterns",
               "review_import", "retest", "prompt_stability")
EXTRA_FILES = {"error_patterns.json": "error_patterns", "review.json": "review_import",
               "retest.json": "retest", "prompt_stability.json": "prompt_stability"}


def pct(confidence: Any) -> str:
    """95% for 0.95 (the level an output records)."""
    return f"{100 * float(confidence):g}%"


def _describe_model(cfg: Mapping[str, Any], manifest: Mapping[str, Any]) -> str:
    if cfg["kind"] == "prompt":
        return (f"Prompted decoder {cfg.get('model')} via the {cfg.get('backend', 'transformers')} "
                f"backend, template {cfg.get('prompt')} (prompt hash "
                f"{manifest.get('prompt_hash')}), label order {cfg.get('label_order', 'fixed')}; "
                f"scope: {cfg.get('scope', 'corpus')}.")
    return (f"Fine-tuned {cfg['kind']} from {cfg.get('base_model')} "
            f"({manifest.get('model_revision')}); scope: {cfg.get('scope', 'corpus')}.")


def methods_text(config: Mapping[str, Any], human: Mapping[str, Any], models: Sequence[Mapping[str, Any]],
                 gold: Mapping[str, Any], codes: Mapping[str, Any],
                 training: Mapping[str, Mapping[str, Any]]) -> str:
    """The methods paragraph(s), filled from this run."""
    a = human["alpha"]
    lines = []
    synth = "synthetic data: simulated texts and coders; " if config["project"].get("synthetic") else ""
    lines.append(
        f"We drew a stratified random gold-standard sample of {gold['size']} texts "
        f"({synth}strata: {', '.join(gold['strata']) or 'none'}; proportional allocation; seed "
        f"{gold['seed']}), " + (
            "excluding every text used for training. "
            if config.get("training", {}).get("exclude_from_gold", True)
            else "and removed every gold text from the training data. ") +
        (f"Its texts had been coded by {len(human['coders'])} coders "
           f"({human['codes_per_item']:.1f} codes per text on average; codes imported from a "
           "long-format file). "
           if config.get("gold", {}).get("codes_long") else
           f"{len(human['coders'])} human coders coded it independently from blinded sheets in "
           "coder-specific random order. ") +
        f"{reference_sentence(codes)} "
        "Human-human agreement was Krippendorff's "
        f"alpha = {a['estimate']:.2f} ({pct(a['confidence'])} bootstrap CI {a['ci_low']:.2f} to "
        f"{a['ci_high']:.2f}, {a['n_boot']} replicates over {a['n_units']} units)" + (
            f" and mean pairwise Cohen's kappa = {human['ceiling_kappa']:.2f}."
            if human.get("ceiling_kappa") is not None else "."))
    for m in models:
        cfg = config["models"][m["model"]]
        k, f = m["kappa"], m["macro_f1"]
        what = coder_sentence(m["model"], cfg, m.get("predictions_manifest") or {},
                              training.get(m["model"], {}), len(config["labels"]))
        per_class = ", ".join(f"{r['label']} {r['f1']:.2f}" for r in m["per_class"])
        flagged = [f"{r['stratum_col']} = {r['stratum']}" for r in m["flagged_strata"]]
        lines.append(
            f"{what} On the gold set it reached Cohen's kappa = {k['kappa']:.2f} "
            f"({pct(k['confidence'])} CI {k['ci_low']:.2f} to {k['ci_high']:.2f}; n = "
            f"{m['n_evaluated']} of {m['n_gold']}, {100 * m['coverage']:.1f}% valid answers) and "
            f"macro-F1 = {f['estimate']:.2f} ({f['ci_low']:.2f} to {f['ci_high']:.2f}, "
            f"{f['n_boot']} bootstrap replicates); per-class F1: {per_class}. Against the "
            f"threshold kappa >= {m['kappa_threshold']:.2f} the result is {m['decision']}."
            + (f" Flagged strata ({FLAG_RULE}): {', '.join(flagged)}." if flagged else "")
            # the gold-set ledger: how many configurations were tried on the test set
            + (f" {m['ledger_sentence']}" if m.get("ledger_sentence") else ""))
    errs = [f"{m['model']}: {m['audit']['n_errors']} of {m['audit']['n_gold']}"
            for m in models if m.get("audit")]
    if errs:
        lines.append("Error analysis: the misclassified gold items of each coder ("
                     + "; ".join(errs) + ") were exported with the human codes of each item for "
                     "qualitative coding of error patterns (sarcasm/irony, mixed signals, "
                     "ambiguity, indirect stance, domain mismatch).")
    lines.append(f"Invalid answers: {INVALID_RULE}.")
    lines.append(config.get("project", {}).get("modifications")
                 or "Modifications after validation: none recorded in this run.")
    return "\n\n".join(lines)


def audit_sections(outputs: Sequence[tuple[str | Path, Any]],
                   review_fraction: float) -> dict[str, Any]:
    """The audit outputs, by model, with their figures (missing audits are simply absent).

    ``outputs``: (path, loaded content) pairs as :mod:`textgauge.steps.report` loads them: the
    JSON dicts, and for the stage-5 sample its summary ``{"n", "path", "cells"}``.
    """
    out: dict[str, Any] = {"models": {}, "positional": {}, "ensemble": None, "revalidation": None}
    extras: dict[str, dict[str, Any]] = {}
    for path, a in outputs:
        p = Path(path)
        if p.name == "audit.json":
            if a.get("calibration"):
                a["fig_reliability"] = plots.to_data_uri(plots_audit.plot_reliability_diagram(
                    pd.DataFrame(a["calibration"]["bins"]), a["calibration"]["ece"],
                    f"{a['model']}: calibration on gold"))
                a["fig_coverage"] = plots.to_data_uri(plots_audit.plot_coverage_accuracy(
                    pd.DataFrame(a["coverage_curve"]), review_fraction,
                    f"{a['model']}: coverage vs accuracy"))
            if a.get("prevalence"):
                a["fig_prevalence"] = plots.to_data_uri(plots_audit.plot_prevalence(
                    pd.DataFrame(a["prevalence"]), title=f"{a['model']}: corpus prevalence"))
            out["models"][a["model"]] = a
        elif p.name in EXTRA_FILES:
            extras.setdefault(a.get("model") or p.parent.name, {})[EXTRA_FILES[p.name]] = a
        elif p.name == "positional.json":
            a["fig"] = plots.to_data_uri(plots_audit.plot_positional_selection(
                pd.DataFrame(a["selection"]), a["p_value"], f"{a['model']}: chosen position"))
            out["positional"][a["model"]] = a
        elif p.name == "ensemble.json":
            out["ensemble"] = a
        elif p.name == "sample.parquet" and p.parent.name == "revalidation":
            out["revalidation"] = a
    # imported codes and stability audits (workflow/rules/review.smk) join the model's audit;
    # they are shown with it, so a model without audit.json (audits.enabled: false) keeps them
    # only in out["extras"]
    out["extras"] = extras
    for model, parts in extras.items():
        if model in out["models"]:
            out["models"][model].update(parts)
    return out


def model_section(name: str, m: dict[str, Any], manifest: Mapping[str, Any],
                  model_cfg: Mapping[str, Any], training: Mapping[str, Any],
                  labels: Sequence[str], kappa_threshold: float) -> dict[str, Any]:
    """One machine coder's metrics.json, completed with its figures and flagged strata."""
    m["predictions_manifest"] = dict(manifest)  # what ran: decoding, served snapshot
    m["model_revision"] = manifest.get("model_revision")
    m["prompt_hash"] = manifest.get("prompt_hash")
    m["describe"] = _describe_model(model_cfg, manifest)
    m["fig_confusion"] = plots.to_data_uri(plots.confusion_heatmap(
        m["classification"]["confusion"], labels, f"{name}: confusion on gold"))
    strata = pd.DataFrame(m["per_stratum"])
    m["flagged_strata"] = [r for r in m["per_stratum"]
                           if r["flagged"] and r["stratum_col"] != OVERALL]
    m["fig_strata"] = (plots.to_data_uri(plots_audit.plot_stratum_forest(
        strata, threshold=kappa_threshold, title=f"{name}: kappa per stratum"))
        if len(strata) > 1 and strata["kappa"].notna().any() else None)
    m["warnings"] = list(training.get("warnings", []))
    hist = training.get("history")
    m["fig_training"] = (plots.to_data_uri(plots.training_curves(hist, f"{name}: training"))
                         if hist else None)
    return m


def reference_sentence(codes: Mapping[str, Any]) -> str:
    """How the reference labels were made, with every count of gold/codes.json (import_codes).

    Nothing about the gold set is left unsaid: items without codes, missing codes per coder,
    ties and how each was resolved, exclusions, and the n every coder is evaluated on.
    """
    c = codes["counts"]
    missing = {k: v for k, v in c["missing_per_coder"].items() if v}
    gaps = (f"; missing codes: {', '.join(f'{k} {v}' for k, v in missing.items())}"
            if missing else "; no code missing")
    ways = [(c["adjudicated"], "by adjudication"),
            (c["resolved_by_lead_coder"], "by the lead coder's code"),
            (c["resolved_at_random"], "by the code of one of the tied coders drawn at random "
             "(seeded)"),
            (c["excluded_ties"], "excluded")]
    ties = (f"{c['tied']} tied ({', '.join(f'{n} {how}' for n, how in ways if n)})"
            if c["tied"] else "none tied")
    excluded = (f"{c['excluded']} were excluded ({c['uncoded']} without any code, "
                f"{c['excluded_ties']} unresolved ties)" if c["excluded"] else "none was excluded")
    return (f"Of the {c['sample_size']} sampled texts, {c['coded']} were coded ({c['codes']} codes"
            f"{gaps}); the reference label is the majority code for {c['majority']} texts and "
            f"{ties}; {excluded}, so every coder is evaluated on {c['evaluated']} texts.")


def latex_snippet(methods: str) -> str:
    """The methods text as a LaTeX subsection, every special character escaped in one pass."""
    esc = latex_escape(methods)
    return "% generated by textgauge\n\\subsection*{Measurement validation}\n" + esc + "\n"


def render_html(*, config: Mapping[str, Any], models: Sequence[dict[str, Any]],
                human: Mapping[str, Any], ingest: Mapping[str, Any], gold: Mapping[str, Any],
                codes: Mapping[str, Any], audit: Mapping[str, Any], methods: str,
                manifest: Mapping[str, Any], config_hash: str, kappa_threshold: float,
                ledger: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The report page: the models (with their audits) against the human ceiling.

    ``ledger``: the gold-set ledger's entries (:mod:`textgauge.reporting.ledger`), shown as a
    table per model; a model's ``ledger_key`` marks the reported configuration.
    """
    forest_rows, per_class = [], {}
    for m in models:
        per_class[m["model"]] = pd.DataFrame(m["per_class"])
        forest_rows.append({"name": f"{m['model']} vs gold", **m["kappa"]})
        for r in m.get("vs_coders", []):
            forest_rows.append({"name": f"{m['model']} vs {r['coder']}", **r})
    ceiling = None
    for p in human.get("pairwise", []):
        forest_rows.append({"name": f"human {p['coder_1']} vs {p['coder_2']}", "human": True, **p})
        ceiling = (p["ci_low"], p["ci_high"]) if ceiling is None else ceiling
    figures = {
        "forest": plots.to_data_uri(plots.kappa_forest(
            forest_rows, kappa_threshold, ceiling, "Agreement with CIs: models and humans",
            confidence=float(human.get("confidence", 0.95)))),
        "f1": plots.to_data_uri(plots.per_class_f1(per_class)),
    }
    env = jinja2.Environment(loader=jinja2.PackageLoader("textgauge.reporting", "templates"),
                             autoescape=jinja2.select_autoescape(["html"]),
                             undefined=jinja2.ChainableUndefined)
    env.filters["pct"] = pct
    return env.get_template("report.html").render(
        project=config["project"], version=__version__, created=manifest["created"],
        config_hash=config_hash, git_commit=manifest["git_commit"], models=models,
        human=human, threshold=kappa_threshold, figures=figures, ingest=ingest, gold=gold,
        codes=codes, reference_text=reference_sentence(codes), methods=methods,
        ensemble=audit["ensemble"],
        revalidation=audit["revalidation"], flag_rule=FLAG_RULE, invalid_rule=INVALID_RULE,
        ledger=ledger_table(ledger or [], [m["model"] for m in models],
                            {m["model"]: m.get("ledger_key") for m in models}))
