# Stage: the HTML validation report, the methods section and the run manifest.


rule report:
    message:
        "Writing the validation report"
    input:
        metrics=expand(f"{RESULTS}/validation/{{model}}/metrics.json", model=MODELS),
        manifests=expand(f"{RESULTS}/predictions/{{model}}.manifest.json", model=MODELS),
        human=rules.human_agreement.output.metrics,
        ingest=rules.ingest_corpus.output.summary,
        gold=rules.sample_gold.output.summary,
        codes=rules.import_codes.output.summary,
        training=expand(
            f"{RESULTS}/models/{{model}}/training.json",
            model=models_of("encoder") + models_of("lora") + models_of("baseline"),
        ),
        label_issues=lambda w: (
            rules.label_noise.output.summary
            if models_of("encoder") + models_of("lora")
            else []
        ),
        audits=audit_targets(),
        # paired comparisons (machine vs machine, machine vs human coders): with a model only
        comparisons=lambda w: rules.compare.output.comparisons if MODELS else [],
        # planned against actual tokens, cost and GPU hours (rule spend, plan.smk)
        spend=lambda w: rules.spend.output.spend if MODELS else [],
    output:
        html=report(
            f"{RESULTS}/report/index.html",
            caption="../report/index.rst",
            category="Report",
        ),
        methods=f"{RESULTS}/report/methods.md",
        latex=f"{RESULTS}/report/methods.tex",
        manifest=f"{RESULTS}/report/manifest.json",
    params:
        # the whole configuration: the manifest records and hashes it, the methods section
        # describes each model from its settings (URL credentials redacted: common.smk)
        config=PUBLIC_CONFIG,
        models=MODELS,
        # the gold-set ledger (read if present; not an input: it is never a job's output)
        ledger=LEDGER,
    log:
        f"{RESULTS}/logs/report.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/report.py"
