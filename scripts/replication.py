"""Rule replication: the replication package (see textgauge.reporting.replication)."""
from pathlib import Path

from textgauge.logs import friendly_errors
from textgauge.reporting import replication

with friendly_errors("write the replication package", snakemake.log[0]):
    inp, models = snakemake.input, list(snakemake.params.models)
    # inputs are expanded over the models in this order
    metrics = [p for p in inp.metrics if Path(p).name == "metrics.json"]
    replication.build_package(
        snakemake.output.folder, snakemake.output.tarball, snakemake.params.config, models,
        sample=inp.sample, codes=inp.codes, reference=inp.reference,
        codes_summary=inp.codes_summary, sample_summary=inp.sample_summary,
        ingest_summary=inp.ingest_summary, codebook=inp.codebook,
        human_metrics=inp.human_metrics, human_pairwise=inp.human_pairwise,
        predictions=dict(zip(models, inp.predictions, strict=True)),
        prediction_manifests=dict(zip(models, inp.manifests, strict=True)),
        validation_dirs={m: str(Path(p).parent) for m, p in zip(models, metrics, strict=True)},
        report_files=list(inp.report), training_summaries=list(inp.training),
        human_code_files=list(inp.human_codes), prompt_files=list(inp.prompts),
        env_files=snakemake.params.env_files)
