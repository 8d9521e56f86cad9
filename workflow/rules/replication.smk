# Stage: the replication package (folder + reproducible tarball) of a finished validation.
import glob as _glob


rule replication:
    message:
        "Writing the replication package"
    input:
        report=rules.report.output,
        sample=rules.sample_gold.output.sample,
        sample_summary=rules.sample_gold.output.summary,
        ingest_summary=rules.ingest_corpus.output.summary,
        codebook=rules.coding_sheets.output.codebook,
        codes=rules.import_codes.output.codes,
        reference=rules.import_codes.output.reference,
        codes_summary=rules.import_codes.output.summary,
        human_codes=lambda w: list(human_code_files().values())
        + ([adjudication_file()] if adjudication_file() else [])
        + ([long_codes_file()] if long_codes_file() else []),
        human_metrics=rules.human_agreement.output.metrics,
        human_pairwise=rules.human_agreement.output.pairwise,
        predictions=expand(f"{RESULTS}/predictions/{{model}}.parquet", model=MODELS),
        manifests=expand(f"{RESULTS}/predictions/{{model}}.manifest.json", model=MODELS),
        metrics=expand(
            f"{RESULTS}/validation/{{model}}/{{f}}",
            model=MODELS,
            f=["metrics.json", "per_class.csv", "confusion.csv", "per_stratum.csv", "vs_coders.csv"],
        ),
        training=expand(
            f"{RESULTS}/models/{{model}}/training.json",
            model=models_of("encoder") + models_of("baseline"),
        ),
        prompts=[m["prompt"] for m in config["models"].values() if m.get("prompt")],
        # few-shot examples enter the prompt hash stored with each predictions file
        few_shot_pool=lambda w: (
            f"{RESULTS}/training/train.parquet"
            if any(m.get("few_shot") for m in config["models"].values())
            else []
        ),
    output:
        folder=directory(f"{RESULTS}/replication"),
        tarball=f"{RESULTS}/replication.tar.gz",
    params:
        # the package archives the whole configuration it was made with (URL credentials
        # redacted: common.smk)
        config=PUBLIC_CONFIG,
        models=MODELS,
        env_files=sorted(_glob.glob(f"{workflow.basedir}/envs/*.yaml")),
    log:
        f"{RESULTS}/logs/replication.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/replication.py"
