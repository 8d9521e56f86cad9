"""Rule of workflow/rules/replication.smk: the replication package (folder + tarball)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def replication(*, report: Sequence[str], sample: str, sample_summary: str,
                ingest_summary: str, codebook: str, codes: str, reference: str,
                codes_summary: str, human_codes: Sequence[str], human_metrics: str,
                human_pairwise: str, predictions: Sequence[str], manifests: Sequence[str],
                metrics: Sequence[str], training: Sequence[str] | None = None,
                prompts: Sequence[str] | None = None, few_shot_pool: str | None = None,
                folder: str, tarball: str,
                config: Mapping[str, Any], models: Sequence[str],
                env_files: Sequence[str] = ()) -> dict:
    """Rule replication: ``folder`` and ``tarball`` (see reporting.replication.build_package).

    The list inputs are expanded over ``models`` in this order. ``few_shot_pool`` (the
    training split, when a prompted coder uses few-shot examples) gives the examples that
    enter each prompt hash; the package refuses a prompt that does not match its predictions.
    """
    from textgauge.reporting.replication import build_package

    models = list(models)
    metric_files = [p for p in metrics if Path(p).name == "metrics.json"]
    return build_package(
        folder, tarball, config, models, sample=sample, codes=codes, reference=reference,
        codes_summary=codes_summary, sample_summary=sample_summary,
        ingest_summary=ingest_summary, codebook=codebook, human_metrics=human_metrics,
        human_pairwise=human_pairwise,
        predictions=dict(zip(models, predictions, strict=True)),
        prediction_manifests=dict(zip(models, manifests, strict=True)),
        validation_dirs={m: str(Path(p).parent)
                         for m, p in zip(models, metric_files, strict=True)},
        report_files=list(report), training_summaries=list(training or []),
        human_code_files=list(human_codes or []), prompt_files=list(prompts or []),
        env_files=list(env_files), few_shot_pool=few_shot_pool or None)
