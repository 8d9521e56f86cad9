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
from textgauge.reporting.design import gold_design_view
from textgauge.reporting.ledger import ledger_table
from textgauge.reporting.methods import (
    baseline_what,
    coder_sentence,
    comparison_sentence,
    design_sentence,
    kappa_label,
    kappa_name,
    ordinal_sentence,
    revalidation_sentence,
    scale_sentence,
)
from textgauge.reporting.plots import audits as plots_audit
from textgauge.reporting.plots import validation as plots
from textgauge.stats import AVERAGE_CODER, OVERALL
from textgauge.stats.weighted import MAX_UNDEFINED_SHARE

#: the flag rule, in the words the report prints
FLAG_RULE = ("a stratum is flagged when the upper bound of its kappa CI lies below the "
             "kappa threshold (on its own it fails the decision rule)")
#: the invalid-answer rule, in the words the report prints
INVALID_RULE = ("invalid or failed answers, and gold items a coder did not answer, count as "
                "errors in every metric; coverage is the share of valid answers")


#: keys the report itself adds to a model's loaded audit.json (figures, and the imported codes
#: and stability audits it joins in): not keys of audit.json (tests/workflow/
#: test_validation_contract.py checks every other key the report reads against the steps)
REPORT_KEYS = ("fig_reliability", "fig_coverage", "fig_prevalence", "fig_shift", "error_patterns",
               "review_import", "retest", "prompt_stability")
EXTRA_FILES = {"error_patterns.json": "error_patterns", "review.json": "review_import",
               "retest.json": "retest", "prompt_stability.json": "prompt_stability"}


def pct(confidence: Any) -> str:
    """95% for 0.95 (the level an output records)."""
    return f"{100 * float(confidence):g}%"


def _describe_model(cfg: Mapping[str, Any], manifest: Mapping[str, Any],
                    training: Mapping[str, Any] | None = None) -> str:
    if cfg["kind"] == "baseline":
        return f"{baseline_what(cfg, training or {})}; scope: {cfg.get('scope', 'corpus')}."
    if cfg["kind"] == "prompt":
        # answers collected from the provider's batch API (limits.batch_api), when any
        n_batch = manifest.get("answers_from_batch_api") if (cfg.get("limits") or {}).get(
            "batch_api") else None
        via = (f" {n_batch} of {manifest.get('n', '?')} answers came from the provider's batch "
               "API." if n_batch else "")
        return (f"Prompted decoder {cfg.get('model')} via the {cfg.get('backend', 'transformers')} "
                f"backend, template {cfg.get('prompt')} (prompt hash "
                f"{manifest.get('prompt_hash')}), label order {cfg.get('label_order', 'fixed')}; "
                f"scope: {cfg.get('scope', 'corpus')}.{via}")
    return (f"Fine-tuned {cfg['kind']} from {cfg.get('base_model')} "
            f"({manifest.get('model_revision')}); scope: {cfg.get('scope', 'corpus')}.")


def methods_text(config: Mapping[str, Any], human: Mapping[str, Any], models: Sequence[Mapping[str, Any]],
                 gold: Mapping[str, Any], codes: Mapping[str, Any],
                 training: Mapping[str, Mapping[str, Any]],
                 comparisons: Mapping[str, Any] | None = None,
                 revalidation: Mapping[str, Any] | None = None) -> str:
    """The methods paragraph(s), filled from this run (``comparisons``: the paired
    comparisons of rule compare, when there are any)."""
    a = human["alpha"]
    lines = []
    synth = "synthetic data: simulated texts and coders; " if config["project"].get("synthetic") else ""
    lines.append(
        f"We drew a stratified random gold-standard sample of {gold['size']} texts "
        f"({synth}strata: {', '.join(gold['strata']) or 'none'}; "
        f"{allocation_phrase(gold)}; seed "
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
        + (f"{scale} " if (scale := scale_sentence(list(config["labels"]),
                                                    human.get("kappa_weights"))) else "")
        + "Human-human agreement was Krippendorff's "
        + ("ordinal " if a.get("level") == "ordinal" else "")
        + f"alpha = {a['estimate']:.2f} ({pct(a['confidence'])} bootstrap CI {a['ci_low']:.2f} to "
        f"{a['ci_high']:.2f}, {a['n_boot']} replicates over {a['n_units']} units)" + (
            f" and mean pairwise {kappa_name(human.get('kappa_weights'))} = "
            f"{human['ceiling_kappa']:.2f}."
            if human.get("ceiling_kappa") is not None else "."))
    if (design := design_sentence(gold, models, config)) is not None:
        lines.append(design)
    for m in models:
        cfg = config["models"][m["model"]]
        k, f = m["kappa"], m["macro_f1"]
        what = coder_sentence(m["model"], cfg, m.get("predictions_manifest") or {},
                              training.get(m["model"], {}), len(config["labels"]))
        per_class = ", ".join(f"{r['label']} {r['f1']:.2f}" for r in m["per_class"])
        flagged = [f"{r['stratum_col']} = {r['stratum']}" for r in m["flagged_strata"]]
        lines.append(
            f"{what} On the gold set it reached {kappa_name(k.get('weights'))} = "
            f"{k['kappa']:.2f} "
            f"({pct(k['confidence'])} CI {k['ci_low']:.2f} to {k['ci_high']:.2f}; n = "
            f"{m['n_evaluated']} of {m['n_gold']}, {100 * m['coverage']:.1f}% valid answers) and "
            f"macro-F1 = {f['estimate']:.2f} ({f['ci_low']:.2f} to {f['ci_high']:.2f}, "
            f"{f['n_boot']} bootstrap replicates); per-class F1: {per_class}. Against the "
            f"threshold kappa >= {m['kappa_threshold']:.2f} the result is {m['decision']}."
            + (f" {ordinal_sentence(m['ordinal'])}" if m.get("ordinal") else "")
            + (f" Flagged strata ({FLAG_RULE}): {', '.join(flagged)}." if flagged else "")
            + shift_sentence((m.get("audit") or {}).get("shift"))
            # the gold-set ledger: how many configurations were tried on the test set
            + (f" {m['ledger_sentence']}" if m.get("ledger_sentence") else ""))
    errs = [f"{m['model']}: {m['audit']['n_errors']} of {m['audit']['n_gold']}"
            for m in models if m.get("audit")]
    if errs:
        lines.append("Error analysis: the misclassified gold items of each coder ("
                     + "; ".join(errs) + ") were exported with the human codes of each item for "
                     "qualitative coding of error patterns (sarcasm/irony, mixed signals, "
                     "ambiguity, indirect stance, domain mismatch).")
    if comparisons:  # paired differences, humans vs model on equal terms
        lines.append(comparison_sentence(comparisons))
    if revalidation:  # stage 5: the coded re-validation sample vs the gold set
        lines.append(revalidation_sentence(revalidation))
    lines.append(f"Invalid answers: {INVALID_RULE}.")
    lines.append(config.get("project", {}).get("modifications")
                 or "Modifications after validation: none recorded in this run.")
    return "\n\n".join(lines)


def allocation_phrase(gold: Mapping[str, Any]) -> str:
    """How the gold sample was allocated, in the first methods sentence (sample.json)."""
    design = (gold.get("design") or {}).get("design") if isinstance(gold.get("design"),
                                                                    Mapping) else None
    return ("model-assisted allocation over the first pass's predicted labels and confidence "
            "bands, described below" if design == "model_assisted" else "proportional allocation")


def audit_sections(outputs: Sequence[tuple[str | Path, Any]],
                   review_fraction: float) -> dict[str, Any]:
    """The audit outputs, by model, with their figures (missing audits are simply absent).

    ``outputs``: (path, loaded content) pairs as :mod:`textgauge.steps.report` loads them: the
    JSON dicts, and for the stage-5 sample its summary ``{"n", "path", "cells"}``.
    """
    out: dict[str, Any] = {"models": {}, "positional": {}, "ensemble": None, "revalidation": None,
                           "revalidation_metrics": None, "revalidation_fig": None}
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
            if a.get("shift"):
                a["fig_shift"] = shift_figure(a["shift"], a["model"])
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
        elif p.name == "metrics.json" and p.parent.name == "revalidation":
            out["revalidation_metrics"] = a
            out["revalidation_fig"] = revalidation_figure(a)
    # imported codes and stability audits (workflow/rules/review.smk) join the model's audit;
    # they are shown with it, so a model without audit.json (audits.enabled: false) keeps them
    # only in out["extras"]
    out["extras"] = extras
    for model, parts in extras.items():
        if model in out["models"]:
            out["models"][model].update(parts)
    return out


def shift_sentence(rows: Sequence[Mapping[str, Any]] | None) -> str:
    """" Shift between strata (...): ..." for the methods (audit.json ``shift``), or ""."""
    def finite(x: Any) -> bool:
        return x is not None and x == x

    compared = [r for r in rows or [] if finite(r.get("kappa_diff_ci_low"))
                and finite(r.get("kappa_diff_ci_high"))]
    no_ci = [f"{r['stratum_col']} = {r['stratum']}" for r in rows or []
             if finite(r.get("kappa_diff")) and r not in compared]
    if not compared:
        return ""
    shifted = [f"{r['stratum_col']} = {r['stratum']} ({r['kappa_diff']:+.2f}, "
               f"{r['kappa_diff_ci_low']:+.2f} to {r['kappa_diff_ci_high']:+.2f})"
               for r in compared if r.get("shifted")]
    n = len(compared)
    how = (" Shift between strata (kappa on a stratum minus kappa on the rest of the gold "
           f"set, {pct(compared[0]['confidence'])} CI from independent bootstrap replicates; "
           f"{n} {'stratum' if n == 1 else 'strata'} compared): ")
    small = (f" Too few texts of a label for a CI (kappa undefined in more than "
             f"{MAX_UNDEFINED_SHARE:.0%} of the replicates), so not compared: "
             f"{', '.join(no_ci)}." if no_ci else "")
    return how + ("; ".join(shifted) + " differ from the rest." if shifted
                  else "no stratum differs from the rest (every CI includes 0).") + small


def shift_figure(rows: Sequence[Mapping[str, Any]], model: str) -> str | None:
    """Per-stratum shift (audit.json ``shift``): each stratum minus the rest of gold, kappa
    and macro-F1 with CIs, around a 0 line; apart from the threshold and the flag."""
    table = pd.DataFrame([{
        "name": f"{r['stratum_col']} = {r['stratum']}",
        **{f"{s}{suffix}": r[f"{s}_diff{suffix}"] for s in ("kappa", "macro_f1")
           for suffix in ("", "_ci_low", "_ci_high")}} for r in rows])
    if table.empty or not table["kappa"].notna().any():
        return None
    level = pct(rows[0]["confidence"])
    return plots.to_data_uri(plots_audit.plot_difference_forest(
        table.astype({c: float for c in table.columns if c != "name"}), ("kappa", "macro_f1"),
        title=f"{model}: shift, each stratum minus the rest of gold ({level} CI)",
        xlabel="difference vs the rest of gold (0 = no shift)"))


def revalidation_figure(a: Mapping[str, Any]) -> str | None:
    """Stage 5: re-validation (design-weighted) minus gold, kappa and macro-F1, overall and
    per stratum, around 0 (the rows of results/revalidation/metrics.json)."""
    rows = []
    for r in [a["overall"], *a["strata"]]:
        d = r["difference"]
        if not d:
            continue
        name = str(r["stratum"]) if r["stratum_col"] == OVERALL else (
            f"{r['stratum_col']} = {r['stratum']}")
        rows.append({"name": name, **{f"{s}{suffix}": d[s][key] for s in ("kappa", "macro_f1")
                                      for suffix, key in (("", "estimate"),
                                                          ("_ci_low", "ci_low"),
                                                          ("_ci_high", "ci_high"))}})
    if not rows:
        return None
    return plots.to_data_uri(plots_audit.plot_difference_forest(
        pd.DataFrame(rows), ("kappa", "macro_f1"),
        title=f"{a['model']}: stage 5 minus gold ({pct(a['confidence'])} CI)",
        xlabel="re-validation (weighted) minus gold set"))


def model_section(name: str, m: dict[str, Any], manifest: Mapping[str, Any],
                  model_cfg: Mapping[str, Any], training: Mapping[str, Any],
                  labels: Sequence[str], kappa_threshold: float) -> dict[str, Any]:
    """One machine coder's metrics.json, completed with its figures and flagged strata."""
    m["predictions_manifest"] = dict(manifest)  # what ran: decoding, served snapshot
    m["model_revision"] = manifest.get("model_revision")
    m["prompt_hash"] = manifest.get("prompt_hash")
    m["describe"] = _describe_model(model_cfg, manifest, training)
    m["fig_confusion"] = plots.to_data_uri(plots.confusion_heatmap(
        m["classification"]["confusion"], labels, f"{name}: confusion on gold"))
    strata = pd.DataFrame(m["per_stratum"])
    m["flagged_strata"] = [r for r in m["per_stratum"]
                           if r["flagged"] and r["stratum_col"] != OVERALL]
    m["fig_strata"] = (plots.to_data_uri(plots_audit.plot_stratum_forest(
        strata, threshold=kappa_threshold, title=f"{name}: kappa per stratum"))
        if len(strata) > 1 and strata["kappa"].notna().any() else None)
    m["warnings"] = list(training.get("warnings", []))
    m["calibration_fit"] = training.get("calibration")  # temperature scaling (encoders)
    m["truncation"] = truncation_sentence(manifest, model_cfg, training)
    hist = training.get("history")
    m["fig_training"] = (plots.to_data_uri(plots.training_curves(hist, f"{name}: training"))
                         if hist else None)
    return m


def truncation_sentence(manifest: Mapping[str, Any], model_cfg: Mapping[str, Any],
                        training: Mapping[str, Any]) -> str | None:
    """How many texts the coder saw only the start of (``n_truncated`` of the predictions
    manifest; for an encoder also in training, from training.json), or None when the coder
    counts none (``n_truncated`` None: no ``truncated`` column) or truncates nothing and has
    no token limit (an API coder)."""
    n = manifest.get("n_truncated")
    limit = model_cfg.get("max_length")
    if n is None or (not n and not limit):
        return None
    at = f"max_length {limit} tokens" if limit else "the context length"
    if model_cfg.get("kind") in ("prompt", "lora"):  # only the text is cut (#14.5)
        return (f"{n} of {manifest.get('n', '?')} texts shortened to fit {at}: only the text "
                "was cut (ending in \" […]\"); the codebook, the instructions and the answer "
                "cue were kept.")
    text = (f"{n} of {manifest.get('n', '?')} texts truncated at {at} (the coder saw only "
            "their beginning).")
    if training.get("n_truncated_train") is not None:
        text += (f" In training: {training['n_truncated_train']} of {training.get('n_train')} "
                 f"training and {training.get('n_truncated_val')} of {training.get('n_val')} "
                 "validation texts.")
    return text


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


def template_environment() -> jinja2.Environment:
    """The Jinja environment of the report page (autoescaped; a missing key renders empty)."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("textgauge.reporting", "templates"),
                             autoescape=jinja2.select_autoescape(["html"]),
                             undefined=jinja2.ChainableUndefined)
    env.filters["pct"] = pct
    return env


def render_html(*, config: Mapping[str, Any], models: Sequence[dict[str, Any]],
                human: Mapping[str, Any], ingest: Mapping[str, Any], gold: Mapping[str, Any],
                codes: Mapping[str, Any], audit: Mapping[str, Any], methods: str,
                manifest: Mapping[str, Any], config_hash: str, kappa_threshold: float,
                ledger: Sequence[Mapping[str, Any]] | None = None,
                comparisons: Mapping[str, Any] | None = None,
                spend: Mapping[str, Any] | None = None) -> str:
    """The report page: the models (with their audits) against the human ceiling.

    ``comparisons``: comparisons.json of rule compare (paired differences), or None.

    ``spend``: spend.json of rule spend (planned against actual tokens, cost, GPU hours), or
    None; shown as rows by :func:`spend_view`.

    ``ledger``: the gold-set ledger's entries (:mod:`textgauge.reporting.ledger`), shown as a
    table per model; a model's ``ledger_key`` marks the reported configuration.
    """
    # crowd codes (no pair of coders shares enough items): the average coder is the ceiling,
    # in place of a dozen individual coders with a few shared items each
    crowd = (average_coder_rows(comparisons)
             if comparisons and comparisons.get("mode") == "crowd" else [])
    forest_rows, per_class = [], {}
    for m in models:
        per_class[m["model"]] = pd.DataFrame(m["per_class"])
        forest_rows.append({"name": f"{m['model']} vs gold", **m["kappa"]})
        for r in [] if crowd else m.get("vs_coders", []):
            forest_rows.append({"name": f"{m['model']} vs {r['coder']}", **r})
    ceiling = None
    for p in human.get("pairwise", []):
        forest_rows.append({"name": f"human {p['coder_1']} vs {p['coder_2']}", "human": True, **p})
        ceiling = (p["ci_low"], p["ci_high"]) if ceiling is None else ceiling
    ceiling_label = "human-human kappa (CI)"
    if crowd and ceiling is None:
        forest_rows += crowd
        ceiling = (crowd[-1]["ci_low"], crowd[-1]["ci_high"])
        ceiling_label = "average human coder vs leave-one-out majority (CI)"
    weights = models[0]["kappa"].get("weights") if models else human.get("kappa_weights")
    figures = {
        "forest": plots.to_data_uri(plots.kappa_forest(
            forest_rows, kappa_threshold, ceiling, "Agreement with CIs: models and humans",
            confidence=float(human.get("confidence", 0.95)),
            statistic=kappa_label(weights).replace("κ", "kappa"),
            ceiling_label=ceiling_label)),
        "f1": plots.to_data_uri(plots.per_class_f1(per_class)),
    }
    paired = comparison_view(comparisons) if comparisons else None
    return template_environment().get_template("report.html").render(
        project=config["project"], version=__version__, created=manifest["created"],
        config_hash=config_hash, git_commit=manifest["git_commit"], models=models,
        human=human, threshold=kappa_threshold, figures=figures, ingest=ingest, gold=gold,
        codes=codes, reference_text=reference_sentence(codes), methods=methods,
        ensemble=audit["ensemble"], paired=paired,
        revalidation=audit["revalidation"],
        revalidation_metrics=audit.get("revalidation_metrics"),
        revalidation_reference_text=(
            reference_sentence({"counts": audit["revalidation_metrics"]["counts"]})
            if audit.get("revalidation_metrics") else None),
        revalidation_fig=audit.get("revalidation_fig"), flag_rule=FLAG_RULE, invalid_rule=INVALID_RULE,
        # "Cohen's κ" or "weighted κ (quadratic)" (an ordinal codebook), one for the page
        kappa_name=kappa_label(models[0]["kappa"].get("weights") if models
                               else human.get("kappa_weights")),
        # the gold design: the as-drawn column only when the headline numbers are weighted
        gold_design=gold_design_view(gold, models),
        as_drawn_column=any(m.get("as_drawn") for m in models),
        spend=spend_view(spend) if spend else None,
        ledger=ledger_table(ledger or [], [m["model"] for m in models],
                            {m["model"]: m.get("ledger_key") for m in models}))


def _num(x: Any, fmt: str) -> str:
    return "–" if x is None or x != x else fmt % x


def _diff_text(d: Mapping[str, Any]) -> str:
    """"+0.012 [-0.050, +0.071]" for a paired difference (– where undefined)."""
    return (f"{_num(d['difference'], '%+.3f')} [{_num(d['ci_low'], '%+.3f')}, "
            f"{_num(d['ci_high'], '%+.3f')}]")


def average_coder_rows(c: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Forest-plot rows for crowd-coded gold (no pair of coders shares enough items): each
    model and, last, the average human coder against the same leave-one-out majority, with
    each side's own CI from the paired comparison (comparisons.json)."""
    rows: list[dict[str, Any]] = []
    human_row = None
    for model in c["models"]:
        for h in c["vs_humans"][model]["comparisons"]:
            if h["coder"] != AVERAGE_CODER or h["kappa"]["estimate_b"] is None:
                continue
            k = h["kappa"]
            rows.append({"name": f"{model} vs leave-one-out majority", "kappa": k["estimate_a"],
                         "ci_low": k["ci_low_a"], "ci_high": k["ci_high_a"], "n": h["n"]})
            human_row = {"name": "human: average coder vs leave-one-out majority",
                         "human": True, "kappa": k["estimate_b"], "ci_low": k["ci_low_b"],
                         "ci_high": k["ci_high_b"], "n": h["n"]}
    return rows + [human_row] if human_row else []


def comparison_view(c: Mapping[str, Any]) -> dict[str, Any]:
    """The paired comparisons for the page: table rows (kappa and macro-F1 differences) and
    the forest plot of the kappa differences."""
    rows: list[dict[str, Any]] = []
    for p in c["machine_pairs"]:
        rows.append({"name": f"{p['coder_a']} − {p['coder_b']}", "kind": "machine vs machine",
                     "kappa": p["kappa"], "macro_f1": p["macro_f1"], "n": p["n"],
                     "n_ties": None, "verdict": p["finding"]})
    for model in c["models"]:
        v = c["vs_humans"][model]
        for h in v["comparisons"]:
            rows.append({"name": f"{model} − {h['coder']}", "kind": "machine vs human",
                         "kappa": h["kappa"], "macro_f1": h["macro_f1"], "n": h["n"],
                         "n_ties": h["n_ties"], "verdict": h["verdict"], "human": True})
    for r in rows:  # formatted here: an undefined kappa (one category only) shows as "–"
        r["kappa_a"], r["kappa_b"] = (_num(r["kappa"][k], "%.3f")
                                      for k in ("estimate_a", "estimate_b"))
        r["kappa_text"], r["f1_text"] = (_diff_text(r[s]) for s in ("kappa", "macro_f1"))
    fig = None
    forest = [{"name": r["name"], "difference": r["kappa"]["difference"],
               "ci_low": r["kappa"]["ci_low"], "ci_high": r["kappa"]["ci_high"], "n": r["n"],
               "human": r.get("human", False)} for r in rows
              if r["kappa"]["difference"] is not None]
    if forest:
        kappa = ("Cohen's kappa" if c["weights"] == "unweighted"
                 else f"{c['weights']}-weighted kappa")
        fig = plots.to_data_uri(plots.difference_forest(
            forest, "Paired differences in kappa (A − B, same gold items)",
            confidence=float(c["confidence"]), statistic=kappa))
    first = c["vs_humans"][c["models"][0]] if c["models"] else None
    return {"rows": rows, "fig": fig, "mode": c["mode"], "mode_reason": c["mode_reason"],
            "reference": first["reference"] if first else None,
            "skipped": first["skipped_coders"] if first else [], "confidence": c["confidence"], "n_boot": c["n_boot"],
            "weights": c["weights"], "codes_outside_gold": c["codes_outside_gold"],
            "verdicts": {m: c["vs_humans"][m]["verdict"] for m in c["models"]}}


def spend_view(s: Mapping[str, Any]) -> dict[str, Any]:
    """The report's "Spend: planned vs actual" tables from spend.json (rule spend): one row
    per prompted coder (tokens and cost planned, asked in this run, reused from a checkpoint)
    and one per rule and per model with benchmarked wall and GPU hours."""
    def n(x: Any) -> str:
        return "–" if x is None else f"{round(x):,}"

    def usd(x: Any) -> str:
        return "–" if x is None else f"${x:,.4f}" if x < 1 else f"${x:,.2f}"

    def hours(x: Any) -> str:
        return "–" if x is None else f"{x:,.1f}" if x >= 10 else f"{x:.3g}"

    def share(x: Any) -> str:
        return "–" if x is None else f"{100 * x:+.1f}%"

    rows = []
    for name, e in (s.get("models") or {}).items():
        p = e.get("planned") or {}
        a, r = e["actual"], e["reused"]
        rows.append({
            "model": name, "backend": e.get("backend") or "",
            "planned_input": n(p.get("input_tokens")), "planned_output": n(p.get("output_tokens")),
            "planned_cost": usd(p.get("cost_expected_usd")),
            "answers": n(a["answers"]), "input": n(a["input_tokens"]) if e["usage_recorded"] else "–",
            "output": n(a["output_tokens"]) if e["usage_recorded"] else "–",
            "cached": n(a["cached_tokens"]) if e["usage_recorded"] else "–",
            "cost": usd(a.get("cost_usd")), "input_vs_plan": share(e.get("input_tokens_vs_plan")),
            "reused_answers": n(r["answers"]),
            "reused_input": n(r["input_tokens"]) if e["usage_recorded"] else "–",
            "reused_cost": usd(r.get("cost_usd")),
            "parts": ", ".join(f"{k}: {v}" for k, v in (e.get("parts") or {}).items())})
    b = s.get("benchmarks") or {}
    rules = [{"rule": k, "jobs": v["jobs"], "wall": hours(v["wall_hours"]),
              "gpu": hours(v["gpu_hours"]), "cpu": hours(v["cpu_hours"])}
             for k, v in (b.get("rules") or {}).items()]
    per_model = [{"model": k, "jobs": v["jobs"], "wall": hours(v["wall_hours"]),
                  "gpu": hours(v["gpu_hours"]), "planned": hours(v.get("gpu_hours_planned")),
                  "requested": hours(v.get("gpu_hours_requested"))}
                 for k, v in (b.get("models") or {}).items()]
    t = s.get("totals") or {}
    return {"rows": rows, "rules": rules, "models": per_model, "notes": b.get("notes") or [],
            "files": b.get("files", 0),
            "total_cost": usd(t.get("cost_usd")), "planned_cost": usd(t.get("cost_planned_usd")),
            "gpu_hours": hours(t.get("gpu_hours")),
            "gpu_hours_planned": hours(t.get("gpu_hours_planned")),
            "gpu_hours_requested": hours(t.get("gpu_hours_requested")),
            "price_as_of": ", ".join(s.get("price_table_as_of") or []) or "unknown"}
