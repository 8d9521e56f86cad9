"""The workflow's steps as plain functions: paths and options in, files out.

Each Snakemake rule's script calls one function here, so every step can be run and tested
without Snakemake. Functions take the option names used in config.yaml.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from textgauge.data import coding, corpus, gold, splits
from textgauge.errors import ConfigError, InputDataError
from textgauge.io import (
    build_manifest,
    write_json_atomic,
    write_manifest,
    write_parquet_atomic,
    write_text_atomic,
)

log = logging.getLogger("textgauge")


# ---------------------------------------------------------------- corpus
def ingest_stage(path: str, id_column: str, text_column: str, strata: Sequence[str],
                 out_corpus: str, out_rejects: str, out_summary: str) -> dict:
    res = corpus.ingest(path, id_column, text_column, strata)
    write_parquet_atomic(res.corpus, out_corpus)
    res.rejects.to_csv(out_rejects, index=False)
    write_json_atomic(res.summary, out_summary)
    if len(res.rejects):
        log.warning("%d row(s) of %s were rejected (%s); see %s", len(res.rejects), path,
                    res.summary["rejected_by_reason"], out_rejects)
    log.info("corpus: %d texts kept of %d read", res.summary["rows_kept"],
             res.summary["rows_read"])
    return res.summary


def shard_stage(corpus_path: str, out_paths: Sequence[str]) -> None:
    df = pd.read_parquet(corpus_path)
    for part, out in zip(corpus.shard_corpus(df, len(out_paths)), out_paths, strict=True):
        write_parquet_atomic(part, out)
    log.info("corpus split into %d shards", len(out_paths))


# ---------------------------------------------------------------- gold standard
def labelled_ids(path: str | None, id_column: str = "id") -> list[str]:
    if not path:
        return []
    df = corpus.read_table(path, "labelled training data")
    if id_column not in df.columns:
        raise InputDataError(f"The labelled training data {path} has no column {id_column!r}; "
                             f"its columns are {', '.join(map(repr, df.columns))}.")
    return df[id_column].astype(str).str.strip().tolist()


def sample_gold_stage(corpus_path: str, gold_cfg: Mapping[str, Any], training_cfg: Mapping[str, Any],
                      out_sample: str, out_summary: str, labels: Sequence[str] = ()) -> None:
    df = pd.read_parquet(corpus_path)
    exclude = (labelled_ids(training_cfg.get("labelled"), training_cfg.get("id_column", "id"))
               if training_cfg.get("exclude_from_gold", True) else [])
    sample = gold.sample_gold(df, gold_cfg["size"], gold_cfg.get("strata", []), gold_cfg["seed"],
                              exclude, gold_cfg.get("min_per_stratum", 0))
    write_parquet_atomic(sample, out_sample)
    summary = {"size": len(sample), "seed": gold_cfg["seed"], "strata": gold_cfg.get("strata", []),
               "eligible": int(len(df) - len(set(exclude) & set(df["id"]))),
               "excluded_training_ids": len(exclude),
               "per_stratum": sample["stratum"].value_counts().sort_index().to_dict()}
    if labels:
        from textgauge.stats.samplesize import kappa_n_for_ci

        need = int(kappa_n_for_ci(0.7, 0.1, n_categories=len(labels)))
        summary["recommended_size_for_kappa_ci_pm_0.10"] = need
        if len(sample) < need:
            log.warning("gold.size=%d is below the %d items needed for a +/-0.10 CI of a kappa "
                        "near 0.70 with %d equally frequent labels (skewed labels need more); "
                        "see `textgauge samplesize ci --help`.", len(sample), need, len(labels))
    write_json_atomic(summary, out_summary)
    log.info("gold sample: %d texts over %d strata", len(sample), sample["stratum"].nunique())


def sheets_stage(sample_path: str, coders: Sequence[str], seed: int, codebook: Mapping[str, str],
                 instructions: str, out_sheets: Sequence[str], out_codebook: str) -> None:
    sample = pd.read_parquet(sample_path)
    for coder, out in zip(coders, out_sheets, strict=True):
        coding.coding_sheet(sample, coder, seed).to_csv(out, index=False)
    write_text_atomic(coding.codebook_markdown(codebook, instructions), out_codebook)


def simulate_stage(sheets: Sequence[str], coders: Sequence[str], truth_path: str, coders_path: str,
                   adjudicator_accuracy: float, seed: int, out_coded: Sequence[str],
                   out_adjudication: str) -> None:
    """SYNTHETIC example only: fill the blinded sheets as the simulated coders would."""
    from textgauge.data.example import FRAMES, read_confusions, simulate_codes

    truth = pd.read_csv(truth_path, dtype=str).set_index("id")["true_label"]
    conf = read_confusions(coders_path)
    coded = {}
    for coder, sheet_path, out in zip(coders, sheets, out_coded, strict=True):
        if coder not in conf:
            raise ConfigError(f"No simulated confusion matrix for coder {coder!r} in {coders_path}.")
        sheet = pd.read_csv(sheet_path, dtype=str, keep_default_na=False)
        unknown = sorted(set(sheet["id"]) - set(truth.index))
        if unknown:
            raise InputDataError(
                f"gold.simulate is meant for the synthetic example: {len(unknown)} sheet id(s) "
                f"have no simulated truth in {truth_path} (e.g. {unknown[:3]}). For real data "
                "set gold.simulate: null (or run with --replace-workflow-config).")
        sheet["label"] = simulate_codes(truth.loc[sheet["id"]], coder, seed, conf).values
        sheet.to_csv(out, index=False)
        coded[coder] = sheet.set_index("id")["label"]
    wide = pd.DataFrame(coded)
    disagree = wide.index[wide.nunique(axis=1) > 1]
    k = len(FRAMES)
    acc = adjudicator_accuracy
    adj_conf = {"adjudicator": np.full((k, k), (1 - acc) / (k - 1)) + np.eye(k) * (acc - (1 - acc) / (k - 1))}
    adj = simulate_codes(truth.loc[disagree], "adjudicator", seed, adj_conf)
    pd.DataFrame({"id": disagree, "label": adj.values}).to_csv(out_adjudication, index=False)


def import_codes_stage(sample_path: str, labels: Sequence[str], gold_cfg: Mapping[str, Any],
                       sheet_files: Mapping[str, str], adjudication: str | None,
                       out_codes: str, out_reference: str, out_adjudication_sheet: str,
                       out_summary: str) -> None:
    sample = pd.read_parquet(sample_path)
    ids = set(sample["id"])
    parts = [coding.read_sheet_codes(path, coder, labels, ids) for coder, path in sheet_files.items()]
    long_cfg = gold_cfg.get("codes_long")
    if long_cfg:
        parts.append(coding.read_long_codes(
            long_cfg["path"], labels, ids, long_cfg.get("id_column", "id"),
            long_cfg.get("coder_column", "coder"), long_cfg.get("label_column", "label"),
            long_cfg.get("label_map") or None))
    if not parts:
        raise ConfigError("No human codes: set gold.codes (one filled sheet per coder), "
                          "gold.codes_long (one long file) or, for the synthetic example, "
                          "gold.simulate.")
    repeated = sum(p.attrs.get("repeated_codes_dropped", 0) for p in parts)
    if repeated:
        log.warning("%d repeated codes (same coder, same item) were set aside; the first code "
                    "of each coder counts.", repeated)
    codes = pd.concat(parts, ignore_index=True)
    adj = None
    if adjudication:
        adj_df = corpus.read_table(adjudication, "adjudication file")
        adj = pd.DataFrame({"id": adj_df["id"].astype(str),
                            "label": coding.validate_codes(adj_df, labels,
                                                           f"The adjudication file {adjudication}")})
    coders = list(dict.fromkeys(codes["coder"]))
    lead = gold_cfg.get("lead_coder") or (gold_cfg.get("coders") or coders)[0]
    ref = coding.reference_labels(codes, labels, lead if lead in coders else None, adj)
    write_parquet_atomic(codes, out_codes)
    write_parquet_atomic(ref.table, out_reference)
    coding.disagreements(codes, sample).to_csv(out_adjudication_sheet, index=False)
    uncoded = sorted(ids - set(codes.loc[codes["label"] != "", "id"]))
    summary = {"coders": coders, "codes": int((codes["label"] != "").sum()),
               "repeated_codes_set_aside": int(repeated),
               "missing_codes": int((codes["label"] == "").sum()),
               "items_without_any_code": len(uncoded), "reference": ref.summary,
               "codes_per_item": codes.loc[codes["label"] != ""].groupby("id").size()
               .describe().round(2).to_dict()}
    write_json_atomic(summary, out_summary)
    log.info("imported %d codes from %d coders; reference labels: %s", summary["codes"],
             len(coders), ref.summary["by_method"])


# ---------------------------------------------------------------- training data
def split_stage(corpus_path: str, sample_path: str, training_cfg: Mapping[str, Any],
                labels: Sequence[str], out_train: str, out_val: str, out_summary: str,
                rejects_path: str | None = None) -> None:
    df = pd.read_parquet(corpus_path)
    sample = pd.read_parquet(sample_path)
    if not training_cfg.get("labelled"):
        raise ConfigError("Fine-tuned models need labelled training data: set training.labelled "
                          "to a file with id and label columns.")
    labelled = splits.read_labelled(training_cfg["labelled"], labels, df,
                                    training_cfg.get("id_column", "id"),
                                    training_cfg.get("label_column", "label"),
                                    training_cfg.get("label_map") or None,
                                    set(pd.read_csv(rejects_path, dtype=str)["id"])
                                    if rejects_path else None)
    train, val, summary = splits.split_train_val(labelled, list(sample["id"]),
                                                 training_cfg["val_fraction"], training_cfg["seed"])
    write_parquet_atomic(train, out_train)
    write_parquet_atomic(val, out_val)
    write_json_atomic(summary, out_summary)


def train_encoder_stage(train_path: str, val_path: str, sample_path: str, labels: Sequence[str],
                        model_cfg: Mapping[str, Any], out_dir: str, out_summary: str,
                        config: Mapping[str, Any] | None = None) -> None:
    from textgauge.training.encoder import EncoderConfig, train_encoder

    cfg = EncoderConfig.from_dict(model_cfg)
    summary = train_encoder(pd.read_parquet(train_path), pd.read_parquet(val_path), labels, cfg,
                            out_dir, forbidden_ids=list(pd.read_parquet(sample_path)["id"]))
    for w in summary["warnings"]:
        log.warning(w)
    summary["manifest"] = build_manifest("train_encoder", config, model_config=dict(model_cfg))
    write_json_atomic(summary, out_summary)


# ---------------------------------------------------------------- inference
def predict_stage(model_name: str, model_cfg: Mapping[str, Any], items_path: str,
                  labels: Sequence[str], codebook: Mapping[str, str], instructions: str,
                  out_path: str, model_dir: str | None = None, checkpoint: str | None = None,
                  local_only: bool = False, seed: int = 0, threads: int | None = None,
                  batch_size: int = 64, label_order: str | None = None,
                  few_shot_pool: str | None = None) -> None:
    from textgauge.inference.predictions import now_utc

    items = pd.read_parquet(items_path)
    kind = model_cfg["kind"]
    stamp = now_utc()
    if kind == "encoder":
        from textgauge.training.encoder import EncoderPredictor

        pred = EncoderPredictor(model_dir, batch_size=batch_size,
                                max_length=model_cfg.get("max_length", 128), threads=threads,
                                precision=model_cfg.get("inference_precision", "auto"))
        df = pred.predict(list(items["id"]), list(items["text"]))
        if pred.precision_check:
            log.info("%s: bf16 check against fp32: %s", model_name, pred.precision_check)
        training = json.loads((Path(model_dir).parent / "training.json").read_text())
        meta = {"model": model_name, "backend": f"transformers-encoder ({pred.precision_used})",
                "model_revision": f"fine-tuned from {training['base_model'].get('upstream')}",
                "prompt_hash": None, "run_timestamp": stamp}
        df = _with_meta(df.assign(error=None), meta)
    elif kind == "prompt":
        from textgauge.inference.predictions import build_template, make_backend

        examples = []
        if model_cfg.get("few_shot") and few_shot_pool:
            from textgauge.inference.prompting import select_examples

            pool = pd.read_parquet(few_shot_pool)
            examples = select_examples(list(zip(pool["text"], pool["label"], strict=True)),
                                       int(model_cfg["few_shot"]), seed)
        template = build_template(model_cfg, codebook, instructions, examples)
        backend = make_backend(model_cfg, local_only=local_only, threads=threads)
        df = _run_prompted(model_name, model_cfg, backend, template, items, labels, checkpoint,
                           label_order, seed, stamp)
    elif kind == "lora":
        from textgauge.training.lora import lora_predictor, lora_template

        template = lora_template(model_cfg, codebook, instructions)
        backend = lora_predictor(model_dir, model_cfg, threads)
        trained = backend.describe().get("prompt_hash_trained")
        if trained not in (None, template.hash()):
            log.warning("%s: the prompt differs from the one the adapter was trained on.",
                        model_name)
        df = _run_prompted(model_name, model_cfg, backend, template, items, labels, checkpoint,
                           label_order, seed, stamp)
    else:
        raise ConfigError(f"Model {model_name}: kind {kind!r} has no inference step.")
    write_parquet_atomic(df, out_path)
    log.info("%s: %d predictions (%s)", model_name, len(df), df["status"].value_counts().to_dict())


def _run_prompted(model_name: str, model_cfg: Mapping[str, Any], backend: Any, template: Any,
                  items: pd.DataFrame, labels: Sequence[str], checkpoint: str,
                  label_order: str | None, seed: int, stamp: str) -> pd.DataFrame:
    """Render, classify resumably, and shape the predictions of a prompted coder."""
    from textgauge.inference.backends.runner import run_with_checkpoint
    from textgauge.inference.predictions import predictions_frame

    order = label_order or model_cfg.get("label_order", "fixed")
    info = backend.describe()
    requests = template.requests(list(zip(items["id"].astype(str), items["text"], strict=True)),
                                 order=order, seed=seed)
    try:
        raw = run_with_checkpoint(backend, requests,
                                  fingerprinted(checkpoint, model_cfg, template, labels, order),
                                  fail_bound=model_cfg.get("max_fail_share", 0.05))
    finally:
        backend.close()
    meta = {"model": model_name, "backend": info.get("backend"),
            "model_revision": info.get("revision") or info.get("model"),
            "prompt_hash": template.hash(), "run_timestamp": stamp}
    df = predictions_frame(raw.to_dict("records"), labels, meta)
    shown = {r.id: "|".join(r.labels) for r in requests}
    df["label_order"] = df["id"].map(shown)  # the order the prompt listed the labels in
    return df


def fingerprinted(checkpoint: str, model_cfg: Mapping[str, Any], template: Any,
                  labels: Sequence[str], order: str) -> str:
    """The checkpoint file for exactly these settings.

    A checkpoint outlives its job (that is what makes resuming possible), so answers recorded
    under an earlier prompt, model or label order must never be reused after a change: the
    file name carries a hash of everything that shapes an answer.
    """
    from textgauge.io import stable_hash

    key = stable_hash({"model": dict(model_cfg), "prompt": template.hash(),
                       "labels": list(labels), "order": order})
    p = Path(checkpoint)
    return str(p.with_name(f"{p.stem}.{key}{p.suffix}"))


def _with_meta(df: pd.DataFrame, meta: Mapping[str, Any]) -> pd.DataFrame:
    for k, v in meta.items():
        df[k] = v
    return df


def gather_stage(parts: Sequence[str], out_path: str, out_manifest: str, model_name: str,
                 model_cfg: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> None:
    frames = [pd.read_parquet(p) for p in parts]
    df = pd.concat(frames, ignore_index=True).sort_values("id").reset_index(drop=True)
    dup = df["id"][df["id"].duplicated()]
    if len(dup):
        raise InputDataError(f"{model_name}: id(s) predicted in more than one shard: "
                             f"{list(dup.head(5))}.")
    write_parquet_atomic(df, out_path)
    first = df.iloc[0] if len(df) else {}
    template = None
    if model_cfg.get("prompt") and Path(model_cfg["prompt"]).exists():
        template = Path(model_cfg["prompt"]).read_text(encoding="utf-8")
    write_manifest(out_manifest, build_manifest(
        "predictions", config, model=model_name, model_config=dict(model_cfg),
        prompt_template=template,
        model_revision=first.get("model_revision"), backend=first.get("backend"),
        prompt_hash=first.get("prompt_hash"), n=len(df),
        status_counts=df["status"].value_counts().to_dict(), parts=list(parts)))
