"""Rules of workflow/rules/infer.smk: run a machine coder, gather its predictions.

predict_gold, predict_shard, predict_gold_order and predict_gold_variant are one rule and
its variants, so they share one step, :func:`predict`. What shapes the answers arrives as
``settings`` (a rerun trigger, and the checkpoint fingerprint); how the coder runs arrives
as ``limits`` (never a trigger, never in the fingerprint: a changed rate limit resumes the
same checkpoint instead of paying for every answer again).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from textgauge.errors import ConfigError, InputDataError
from textgauge.io import (
    build_manifest,
    stable_hash,
    write_manifest,
    write_parquet_atomic,
    write_text_atomic,
)
from textgauge.options import BaselineModel, EncoderModel, LoraModel, PromptModel, run_settings
from textgauge.secrets import redact_config

log = logging.getLogger("textgauge")


def predict(*, texts: str, predictions: str | None, settings: Mapping[str, Any], labels: Mapping[str, str],
            model: str, instructions: str = "", trained: str | None = None,
            few_shot_pool: str | None = None, prompt: str | None = None, limits: Any = None,
            endpoint: Any = None, local_only: bool = False, seed: int = 0, checkpoint: str | None = None,
            threads: int | None = None, shard: str | None = None, order: str | None = None,
            variant: str | None = None, scale: str = "nominal", submitted: str | None = None,
            batch_submit: bool = False, server: str | None = None) -> None:
    """Rules predict_*: classify ``texts`` with ``model`` into ``predictions``.

    ``settings`` arrive with URL credentials redacted (they are a param Snakemake stores);
    ``endpoint`` (a namespace Snakemake never stores) carries the real values of what was
    redacted (``base_url``), see :func:`with_endpoint`.

    ``labels`` is the codebook (label -> definition); ``trained`` the training summary of a
    fine-tuned model (its model/adapter folder sits beside it); ``prompt`` the template file
    (``settings["prompt"]`` unless a variant overrides it); ``shard``, ``order`` and
    ``variant`` are the wildcards of the variants (the order and the paraphrase are already
    in ``settings``); ``scale`` is codebook.scale (an ordinal scale is named in the prompt).

    With ``limits.batch_api`` the job collects what rule submit_batch sent (``submitted`` is
    its receipt, an input only so the job follows it): it waits at most ``batch_wait``
    seconds and, if some batches have not ended, stops with "not ready yet, run again later"
    (:class:`~textgauge.inference.backends.batch.BatchNotReady`); the answers of the ended
    ones are in the checkpoint already. ``batch_submit`` (from :func:`submit_batch`) only
    submits, and ``predictions`` is then None.
    """
    from textgauge.inference.predictions import now_utc

    opts = run_settings(with_endpoint(settings, endpoint, model), limits, name=model)
    if isinstance(opts, PromptModel) and opts.serve:  # the managed server's address (#14.2)
        opts.base_url = served_url(opts, model, server)
    items = pd.read_parquet(texts)
    stamp = now_utc()
    model_dir = str(Path(trained).parent / "model") if trained else None
    if isinstance(opts, EncoderModel):
        df = _predict_encoder(model, opts, items, model_dir, threads, stamp)
    elif isinstance(opts, BaselineModel):
        df = _predict_baseline(model, opts, items, model_dir, stamp)
    elif isinstance(opts, PromptModel):
        from textgauge.inference.predictions import make_backend
        from textgauge.inference.prompting import PromptTemplate, select_examples

        examples, shots = [], None
        if opts.few_shot and few_shot_pool:
            pool = pd.read_parquet(few_shot_pool)
            examples = select_examples(list(zip(pool["text"], pool["label"], strict=True)),
                                       opts.few_shot, seed)
            shots = few_shot_record(pool, examples, few_shot_pool, opts.few_shot, seed)
        template = PromptTemplate.from_file(prompt or opts.prompt, labels, instructions,
                                            examples, scale=scale)
        backend = make_backend(opts, local_only=local_only, threads=threads)
        if batch_submit:  # rule submit_batch: send this job's batches and stop (BatchSubmitted)
            if not hasattr(backend, "bind_state"):
                raise ConfigError(f"models.{model}: rule submit_batch runs only models with "
                                  "limits.batch_api: true (backend openai or anthropic).")
            backend.submit_only = True
        df = _run_prompted(model, opts, backend, template, items, list(labels), checkpoint,
                           seed, stamp, opts.limits.max_fail_share)
        if shots:
            df.attrs["few_shot"] = shots
    else:
        from textgauge.inference.backends.lora import lora_predictor
        from textgauge.inference.prompting import PromptTemplate

        assert isinstance(opts, LoraModel)
        template = PromptTemplate.from_file(prompt or opts.prompt, labels, instructions,
                                            scale=scale)
        backend = lora_predictor(model_dir, opts, threads)
        trained_hash = backend.describe().get("prompt_hash_trained")
        if trained_hash not in (None, template.hash()):
            log.warning("%s: the prompt differs from the one the adapter was trained on.", model)
        df = _run_prompted(model, opts, backend, template, items, list(labels), checkpoint,
                           seed, stamp, opts.limits.max_fail_share)
    if predictions is None:  # submit_batch with every answer already in the checkpoint
        return
    write_parquet_atomic(df, predictions)
    log.info("%s: %d predictions (%s)", model, len(df), df["status"].value_counts().to_dict())


def few_shot_record(pool: pd.DataFrame, examples: Sequence[tuple[str, str]], source: str,
                    per_label: int, seed: int) -> dict[str, Any]:
    """Which training items were shown as few-shot examples (for the manifest).

    The examples are drawn from the training split only (rule split_training keeps gold out
    of it); recording their ids lets a reader check that, and count them per label.
    """
    ids: dict[tuple[str, str], str] = {}
    for i, t, lab in zip(pool["id"].astype(str), pool["text"], pool["label"], strict=True):
        ids.setdefault((t, lab), i)
    per: dict[str, int] = {}
    for _, lab in examples:
        per[str(lab)] = per.get(str(lab), 0) + 1
    return {"source": source, "per_label": int(per_label), "seed": int(seed),
            "n": len(examples), "by_label": per,
            "ids": [ids[(t, lab)] for t, lab in examples],
            "labels": [str(lab) for _, lab in examples]}


def submit_batch(*, texts: str, receipt: str, settings: Mapping[str, Any],
                 labels: Mapping[str, str], model: str, job: str, instructions: str = "",
                 few_shot_pool: str | None = None, prompt: str | None = None,
                 limits: Any = None, endpoint: Any = None, local_only: bool = False,
                 seed: int = 0, checkpoint: str | None = None, threads: int | None = None,
                 scale: str = "nominal") -> None:
    """Rule submit_batch: send one predict job's requests to the provider's batch API, exit.

    The job (``gold``, ``shard-0001``, ``gold-order-reversed``, ``gold-variant-1``) renders
    its requests exactly as its predict job will (one code path, :func:`predict`), so the
    collecting job finds each of them in a batch. Requests already answered in the job's
    checkpoint, or already in a batch of its state (a rerun), are not sent again. The batch
    ids live in the job's state file beside its checkpoint (never a Snakemake output, so a
    rerun of this rule pays nothing twice); ``receipt`` records what was sent.
    """
    from textgauge.inference.backends.batch import BatchSubmitted

    try:
        predict(texts=texts, predictions=None, settings=settings, labels=labels, model=model,
                instructions=instructions, few_shot_pool=few_shot_pool, prompt=prompt,
                limits=limits, endpoint=endpoint, local_only=local_only, seed=seed,
                checkpoint=checkpoint, threads=threads, scale=scale, batch_submit=True)
    except BatchSubmitted as sent:
        summary = sent.summary
        log.info("%s %s: %d request(s) sent now, %d batch(es) carry this job's %d unanswered "
                 "request(s); state %s", model, job, summary["submitted_now"],
                 sum(1 for b in summary["batches"] if b["of_this_job"]), summary["requests"],
                 summary["state"])
    else:
        summary = {"requests": 0, "submitted_now": 0, "batches": [],
                   "note": "every text of this job has an answer in its checkpoint"}
        log.info("%s %s: every text is answered in the checkpoint; nothing sent", model, job)
    write_text_atomic(json.dumps({"model": model, "job": job, **summary}, indent=1,
                                 ensure_ascii=False), receipt)


def served_url(opts: PromptModel, model: str, server: str | None) -> str:
    """The ``base_url`` of a ``serve: true`` coder: its managed server's, once it answers.

    ``server`` is the address file rule serve_model writes (a Snakemake service output, an
    input of every predict job of the coder); this waits until it says ``ready``."""
    from textgauge.inference.serving import served_problem, wait_for_server

    problem = served_problem(opts, model)
    if problem:
        raise ConfigError(problem)
    if not server:
        raise ConfigError(f"models.{model}: serve: true: the workflow starts the server (rule "
                          "serve_model) and hands its address file to this step as `server`. "
                          "Called from Python, start one with textgauge.inference.serving."
                          "managed_server(...) and pass its base_url with serve: false.")
    return wait_for_server(server, opts, model)


def with_endpoint(settings: Mapping[str, Any], endpoint: Any, model: str) -> dict[str, Any]:
    """The answer settings with the real values of their redacted URLs put back.

    Rule params are stored in .snakemake/metadata, so the workflow passes ``settings`` with
    credentials redacted (``http://***@host/v1``; the rerun trigger then ignores a changed
    password) and the real ``base_url`` in ``endpoint``, a namespace Snakemake neither stores
    nor compares (as ``limits``). Each real value must redact to the setting it replaces.
    """
    out = dict(settings)
    real = dict(vars(endpoint)) if endpoint is not None and not isinstance(endpoint, Mapping) \
        else dict(endpoint or {})
    for key, value in real.items():
        if value is None:
            continue
        if redact_config(value) != out.get(key):
            raise ConfigError(f"models.{model}.{key}: the value handed to the step does not "
                              "match the model's settings (the workflow passes the real "
                              "value beside the redacted one). Run snakemake again; if it "
                              "persists, report it as a bug.")
        out[key] = value
    return out


def _predict_encoder(model: str, opts: EncoderModel, items: pd.DataFrame, model_dir: str | None,
                     threads: int | None, stamp: str) -> pd.DataFrame:
    from textgauge.training.encoder import EncoderPredictor

    if not model_dir:
        raise InputDataError(f"{model}: an encoder needs its trained model (rule train_encoder).")
    training = json.loads((Path(model_dir).parent / "training.json").read_text())
    # the temperature fitted on the validation split (rule train_encoder); 1 when none was
    calibration = training.get("calibration") or {}
    pred = EncoderPredictor(model_dir, inference_batch_size=opts.limits.inference_batch_size,
                            max_length=opts.max_length, threads=threads,
                            precision=opts.inference_precision,
                            temperature=float(calibration.get("temperature") or 1.0))
    df = pred.predict(list(items["id"]), list(items["text"]))
    if pred.precision_check:
        log.info("%s: bf16 check against fp32: %s", model, pred.precision_check)
    if pred.n_truncated:
        log.info("%s: %d of %d texts truncated at max_length %d tokens", model,
                 pred.n_truncated, len(df), opts.max_length)
    df.attrs["calibration"] = {k: calibration.get(k) for k in ("method", "fit_on",
                                                                "temperature")}
    meta = {"model": model, "backend": f"transformers-encoder ({pred.precision_used})",
            "model_revision": f"fine-tuned from {training['base_model'].get('upstream')}",
            "prompt_hash": None, "run_timestamp": stamp}
    df["error"] = None
    for k, v in meta.items():
        df[k] = v
    return df


def _predict_baseline(model: str, opts: BaselineModel, items: pd.DataFrame,
                      model_dir: str | None, stamp: str) -> pd.DataFrame:
    """A TF-IDF + logistic-regression baseline: one vectorised pass over the texts."""
    from sklearn import __version__ as sklearn_version

    from textgauge.training.baseline import BaselinePredictor

    if not model_dir:
        raise InputDataError(f"{model}: a baseline needs its fitted model (rule train_baseline).")
    pred = BaselinePredictor(model_dir)
    df = pred.predict(list(items["id"]), list(items["text"]),
                      batch_size=opts.limits.inference_batch_size)
    training = json.loads((Path(model_dir).parent / "training.json").read_text())
    meta = {"model": model, "backend": f"scikit-learn {sklearn_version} (TF-IDF + logistic "
                                       "regression)",
            "model_revision": f"fitted on {training.get('n_train')} training texts "
                              f"(arrays sha256 {pred.sha256[:12]})",
            "prompt_hash": None, "run_timestamp": stamp}
    df["error"] = None
    for k, v in meta.items():
        df[k] = v
    return df


def _run_prompted(model: str, opts: PromptModel | LoraModel, backend: Any, template: Any,
                  items: pd.DataFrame, labels: Sequence[str], checkpoint: str | None, seed: int,
                  stamp: str, max_fail_share: float) -> pd.DataFrame:
    """Render, classify resumably, and shape the predictions of a prompted coder."""
    from textgauge.inference.backends.runner import run_with_checkpoint
    from textgauge.inference.predictions import predictions_frame

    info = backend.describe()
    requests = template.requests(list(zip(items["id"].astype(str), items["text"], strict=True)),
                                 order=opts.label_order, seed=seed)
    # hashed as written (credentials redacted): a new password keeps the checkpoint
    settings = redact_config(opts.answer_settings())
    path = fingerprinted(checkpoint or "checkpoint.jsonl", settings, template, labels,
                         opts.label_order)
    if hasattr(backend, "bind_state"):  # a batch API: one state per job, beside its checkpoint
        backend.bind_state(path)
    # each record carries the hash of its exact request (text and label order as sent, this
    # context): an answer is reused only for the same question
    context = {"prompt_hash": template.hash(), "settings": settings}
    try:
        raw = run_with_checkpoint(backend, requests, path, fail_bound=max_fail_share,
                                  context=context)
        # described again after the run: what the backend decided while running (precision
        # check, prefix reuse, batch size, texts shortened) goes to the manifest
        info = {**info, **backend.describe()}
    finally:
        backend.close()
    meta = {"model": model, "backend": info.get("backend"),
            "model_revision": info.get("revision") or info.get("model"),
            "prompt_hash": template.hash(), "run_timestamp": stamp}
    df = predictions_frame(raw.to_dict("records"), labels, meta)
    # the order the prompt listed the labels in, for the request that produced the answer
    df["label_order"] = df["id"].map(dict(zip(raw["id"], raw["label_order"], strict=True)))
    # answered from the checkpoint instead of asked in this job (rule spend counts them apart)
    if "reused" in raw.columns:
        df["answer_reused"] = df["id"].map(dict(zip(raw["id"], raw["reused"], strict=True)))
    df.attrs["checkpoint"] = raw.attrs.get("checkpoint", {})
    # answers that came from a provider batch (their records say served.via = batch)
    df.attrs["batch_api"] = int(raw["served"].map(
        lambda s: isinstance(s, dict) and s.get("via") == "batch").sum())
    # how the answers were decoded, as the backend ran it (no secrets: describe() leaves them out)
    df.attrs["decoding"] = {k: v for k, v in info.items() if v is not None}
    return df


def fingerprinted(checkpoint: str, settings: Mapping[str, Any], template: Any,
                  labels: Sequence[str], order: str) -> str:
    """The checkpoint file for exactly these answer-shaping settings.

    A checkpoint outlives its job (that is what makes resuming possible), so answers recorded
    under an earlier prompt, model or label order must never be reused after a change: the
    file name carries a hash of everything that shapes an answer. ``settings`` are a model's
    answer settings only: its ``limits`` (rates, retries, batching) and ``plan`` do not
    change an answer and keep the checkpoint.
    """
    key = stable_hash({"model": dict(settings), "prompt": template.hash(),
                       "labels": list(labels), "order": order})
    p = Path(checkpoint)
    return str(p.with_name(f"{p.stem}.{key}{p.suffix}"))


def gather_predictions(*, parts: Sequence[str], predictions: str, manifest: str,
                       settings: Mapping[str, Any], model: str,
                       prompt: str | None = None) -> None:
    """Rule gather_predictions: one predictions table per model, with its manifest (the
    prompt template, an input, the checkpoint counts of every part)."""
    frames = [pd.read_parquet(p) for p in parts]
    checkpoints = {str(p): f.attrs["checkpoint"] for p, f in zip(parts, frames, strict=True)
                   if f.attrs.get("checkpoint")}
    corrupt = sum(int(c.get("corrupt_lines", 0)) for c in checkpoints.values())
    if corrupt:
        log.warning("%s: %d checkpoint line(s) were not usable records (see the manifest's "
                    "checkpoints)", model, corrupt)
    decoding = next((f.attrs["decoding"] for f in frames if f.attrs.get("decoding")), None)
    few_shot = next((f.attrs["few_shot"] for f in frames if f.attrs.get("few_shot")), None)
    calibration = next((f.attrs["calibration"] for f in frames if f.attrs.get("calibration")),
                       None)
    df = pd.concat(frames, ignore_index=True).sort_values("id").reset_index(drop=True)
    df.attrs = {}
    dup = df["id"][df["id"].duplicated()]
    if len(dup):
        raise InputDataError(f"{model}: id(s) predicted in more than one shard: "
                             f"{list(dup.head(5))}.")
    write_parquet_atomic(df, predictions)
    first = df.iloc[0] if len(df) else {}
    template = None
    prompt = prompt or settings.get("prompt")
    if prompt and Path(prompt).exists():
        template = Path(prompt).read_text(encoding="utf-8")
    write_manifest(manifest, build_manifest(
        "predictions", None, model=model, model_config=dict(settings),
        settings_hash=stable_hash(dict(settings)), prompt_template=template,
        model_revision=first.get("model_revision"), backend=first.get("backend"),
        prompt_hash=first.get("prompt_hash"), n=len(df),
        status_counts=df["status"].value_counts().to_dict(), parts=list(parts),
        checkpoint_corrupt_lines=corrupt,
        answers_reused=sum(int(c.get("reused", 0)) for c in checkpoints.values()),
        answers_asked=sum(int(c.get("asked", 0)) for c in checkpoints.values()),
        answers_from_batch_api=sum(int(f.attrs.get("batch_api", 0)) for f in frames),
        checkpoints=checkpoints, decoding=decoding, few_shot=few_shot,
        n_truncated=n_truncated(df), calibration=calibration,
        served_models=_counts(df, "served_model"),
        system_fingerprints=_counts(df, "system_fingerprint")))


def n_truncated(df: pd.DataFrame) -> int | None:
    """How many texts a coder saw only part of: the rows whose boolean ``truncated`` column
    is true (the encoder: more tokens than max_length). None for a coder that records no
    such column (not "0": nothing was counted)."""
    if "truncated" not in df.columns:
        return None
    return int(df["truncated"].astype("boolean").fillna(False).astype(bool).sum())


def _counts(df: pd.DataFrame, column: str) -> dict[str, int]:
    """Distinct values of a column with their counts ({} when absent: local models)."""
    if column not in df.columns:
        return {}
    return {str(k): int(v) for k, v in df[column].dropna().value_counts().items()}
