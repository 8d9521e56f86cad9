"""The validation report: one self-contained HTML page, a methods section, a manifest.

The page is what a reviewer reads: every number carries its CI and n; the human ceiling and
the threshold are drawn on the same axis as the models; synthetic data is labelled as such;
low human agreement is called out in words, not left for the reader to notice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from textgauge import __version__
from textgauge.io import build_manifest, stable_hash, write_text_atomic
from textgauge.reporting.plots import audits as plots_audit
from textgauge.reporting.plots import validation as plots


def _load(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


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
           "long-format file); "
           if config.get("gold", {}).get("codes_long") else
           f"{len(human['coders'])} human coders coded it independently from blinded sheets in "
           "coder-specific random order; ") +
        f"reference labels are the majority code{_ties(codes['reference']['by_method'])}. "
        "Human-human agreement was Krippendorff's "
        f"alpha = {a['estimate']:.2f} (95% bootstrap CI {a['ci_low']:.2f} to {a['ci_high']:.2f}, "
        f"{a['n_units']} units)" + (
            f" and mean pairwise Cohen's kappa = {human['ceiling_kappa']:.2f}."
            if human.get("ceiling_kappa") is not None else "."))
    for m in models:
        cfg = config["models"][m["model"]]
        k, f = m["kappa"], m["macro_f1"]
        if cfg["kind"] == "prompt":
            what = (f"{m['model']} is the instruction-tuned model {cfg.get('model')} "
                    f"({m.get('model_revision')}) prompted with the codebook (template "
                    f"{cfg.get('prompt')}, prompt hash {m.get('prompt_hash')}); its label is the "
                    f"option with the highest probability among the {len(config['labels'])} labels "
                    f"(no free generation, deterministic).")
        else:
            t = training.get(m["model"], {})
            what = (f"{m['model']} is {cfg.get('base_model')} fine-tuned for sequence "
                    f"classification on {t.get('n_train', '?')} labelled texts "
                    f"({t.get('n_val', '?')} for validation; learning rate "
                    f"{cfg.get('learning_rate')}, up to {cfg.get('epochs')} epochs with early "
                    f"stopping on validation macro-F1, {_epochs(t.get('epochs_run'))} run; class "
                    f"weights: {cfg.get('class_weights', 'inverse_frequency')}; seed "
                    f"{t.get('config', {}).get('seed', '?')}).")
        per_class = ", ".join(f"{r['label']} {r['f1']:.2f}" for r in m["per_class"])
        lines.append(
            f"{what} On the gold set it reached Cohen's kappa = {k['kappa']:.2f} (95% CI "
            f"{k['ci_low']:.2f} to {k['ci_high']:.2f}; n = {m['n_evaluated']} of {m['n_gold']}) and "
            f"macro-F1 = {f['estimate']:.2f} ({f['ci_low']:.2f} to {f['ci_high']:.2f}); per-class F1: "
            f"{per_class}. Against the threshold kappa >= {m['threshold']:.2f} the result is "
            f"{m['decision']}.")
    errs = [f"{m['model']}: {m['audit']['n_errors']} of {m['audit']['n_gold']}"
            for m in models if m.get("audit")]
    if errs:
        lines.append("Error analysis: the misclassified gold items of each coder ("
                     + "; ".join(errs) + ") were exported with the human codes of each item for "
                     "qualitative coding of error patterns (sarcasm/irony, mixed signals, "
                     "ambiguity, indirect stance, domain mismatch).")
    lines.append(config.get("project", {}).get("modifications")
                 or "Modifications after validation: none recorded in this run.")
    return "\n\n".join(lines)


def audit_sections(paths: Sequence[str] | str, config: Mapping[str, Any]) -> dict[str, Any]:
    """Load the audit outputs and draw their figures (missing audits are simply absent)."""
    paths = [paths] if isinstance(paths, str) else list(paths)
    out: dict[str, Any] = {"models": {}, "positional": {}, "ensemble": None, "revalidation": None}
    frac = config["validation"]["review_fraction"]
    extra_files = {"error_patterns.json": "error_patterns", "review.json": "review_import",
                   "retest.json": "retest", "prompt_stability.json": "prompt_stability"}
    extras: dict[str, dict[str, Any]] = {}
    for p in map(Path, paths):
        if p.name == "audit.json":
            a = _load(p)
            if a.get("calibration"):
                a["fig_reliability"] = plots.to_data_uri(plots_audit.plot_reliability_diagram(
                    pd.DataFrame(a["calibration"]["bins"]), a["calibration"]["ece"],
                    f"{a['model']}: calibration on gold"))
                a["fig_coverage"] = plots.to_data_uri(plots_audit.plot_coverage_accuracy(
                    pd.DataFrame(a["coverage_curve"]), frac, f"{a['model']}: coverage vs accuracy"))
            if a.get("prevalence"):
                a["fig_prevalence"] = plots.to_data_uri(plots_audit.plot_prevalence(
                    pd.DataFrame(a["prevalence"]), title=f"{a['model']}: corpus prevalence"))
            a["flagged_strata"] = [r for r in a.get("strata", []) if r.get("flag")]
            out["models"][a["model"]] = a
        elif p.name in extra_files:
            a = _load(p)
            extras.setdefault(a.get("model") or p.parent.name, {})[extra_files[p.name]] = a
        elif p.name == "positional.json":
            a = _load(p)
            a["fig"] = plots.to_data_uri(plots_audit.plot_positional_selection(
                pd.DataFrame(a["selection"]), a["p_value"], f"{a['model']}: chosen position"))
            out["positional"][a["model"]] = a
        elif p.name == "ensemble.json":
            out["ensemble"] = _load(p)
        elif p.name == "sample.parquet" and p.parent.name == "revalidation":
            df = pd.read_parquet(p)
            out["revalidation"] = {"n": len(df), "path": str(p),
                                   "cells": int(df["cell"].nunique()) if "cell" in df else None}
    # imported codes and stability audits (workflow/rules/review.smk) join the model's audit;
    # they are shown with it, so a model without audit.json (audits.enabled: false) keeps them
    # only in out["extras"]
    out["extras"] = extras
    for model, parts in extras.items():
        if model in out["models"]:
            out["models"][model].update(parts)
    return out


def _ties(by_method: Mapping[str, int]) -> str:
    """How ties between coders were resolved, in words, with the counts."""
    parts = [f"{n} by {m}" for m, n in by_method.items() if m != "majority"]
    if not parts:
        return f" (no ties among {by_method.get('majority', 0)} items)"
    return (f" ({by_method.get('majority', 0)} items); ties were resolved "
            + ", ".join(parts).replace("by adjudicated", "by adjudication"))


def _epochs(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else "?"


def latex_snippet(methods: str) -> str:
    esc = methods.replace("\\", "\\textbackslash{}")
    for ch in "&%$#_{}":
        esc = esc.replace(ch, "\\" + ch)
    return "% generated by textgauge\n\\subsection*{Measurement validation}\n" + esc + "\n"


def report_stage(inputs: Mapping[str, Any], outputs: Mapping[str, str], config: Mapping[str, Any],
                 model_names: Sequence[str]) -> None:
    human = _load(inputs["human"])
    ingest, gold, codes = _load(inputs["ingest"]), _load(inputs["gold"]), _load(inputs["codes"])
    metrics_paths = list(inputs["metrics"]) if not isinstance(inputs["metrics"], str) else [inputs["metrics"]]
    manifest_paths = (list(inputs["manifests"]) if not isinstance(inputs["manifests"], str)
                      else [inputs["manifests"]])
    train_paths = inputs.get("training") or []
    train_paths = [train_paths] if isinstance(train_paths, str) else list(train_paths)
    training = {Path(p).parent.name: _load(p) for p in train_paths}
    labels = list(config["labels"])
    thr = config["validation"]["kappa_threshold"]
    models, per_class = [], {}
    forest_rows = []
    for name, mp, pp in zip(model_names, metrics_paths, manifest_paths, strict=True):
        m, man = _load(mp), _load(pp)
        m["model_revision"], m["prompt_hash"] = man.get("model_revision"), man.get("prompt_hash")
        m["describe"] = _describe_model(config["models"][name], man)
        m["fig_confusion"] = plots.to_data_uri(plots.confusion_heatmap(
            m["classification"]["confusion"], labels, f"{name}: confusion on gold"))
        strata = pd.DataFrame(m["per_stratum"])
        m["fig_strata"] = (plots.to_data_uri(plots.stratum_forest(strata, thr, f"{name}: per stratum"))
                           if "kappa" in strata and strata["kappa"].notna().any() else None)
        m["warnings"] = list(training.get(name, {}).get("warnings", []))
        hist = training.get(name, {}).get("history")
        m["fig_training"] = (plots.to_data_uri(plots.training_curves(hist, f"{name}: training"))
                             if hist else None)
        pc = pd.DataFrame(m["per_class"])
        per_class[name] = pc
        forest_rows.append({"name": f"{name} vs gold", "n": m["n_evaluated"], **m["kappa"]})
        for r in m.get("vs_coders", []):
            forest_rows.append({"name": f"{name} vs {r['coder']}", **r})
        models.append(m)
    ceiling = None
    for p in human.get("pairwise", []):
        forest_rows.append({"name": f"human {p['coder_1']} vs {p['coder_2']}", "human": True, **p})
        ceiling = (p["ci_low"], p["ci_high"]) if ceiling is None else ceiling
    figures = {
        "forest": plots.to_data_uri(plots.kappa_forest(forest_rows, thr, ceiling,
                                                       "Agreement with CIs: models and humans")),
        "f1": plots.to_data_uri(plots.per_class_f1(per_class)),
    }
    audit = audit_sections(inputs.get("audits") or [], config)
    for m in models:
        m["audit"] = audit["models"].get(m["model"])
        m["positional"] = audit["positional"].get(m["model"])
    methods = methods_text(config, human, models, gold, codes, training)
    manifest = build_manifest("report", config, run_config=dict(config),
                              models={m["model"]: _load(p) for m, p in zip(models, manifest_paths, strict=True)})
    env = jinja2.Environment(loader=jinja2.PackageLoader("textgauge.reporting", "templates"),
                             autoescape=jinja2.select_autoescape(["html"]),
                             undefined=jinja2.ChainableUndefined)
    html = env.get_template("report.html").render(
        project=config["project"], version=__version__, created=manifest["created"],
        config_hash=stable_hash(config), git_commit=manifest["git_commit"], models=models,
        human=human, threshold=thr, figures=figures, ingest=ingest, gold=gold, codes=codes,
        methods=methods, ensemble=audit["ensemble"], revalidation=audit["revalidation"])
    write_text_atomic(html, outputs["html"])
    write_text_atomic("# Methods (generated by textgauge)\n\n" + methods + "\n", outputs["methods"])
    write_text_atomic(latex_snippet(methods), outputs["latex"])
    write_text_atomic(json.dumps(manifest, indent=2, default=str), outputs["manifest"])
