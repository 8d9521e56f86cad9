# Dry-run cost and job plan of the machine coders (not part of `all`):
#   snakemake --cores 1 cost_plan        ->  results/plan/plan.md, results/plan/plan.json
# Renders every prompted coder's requests over its scope (gold sample or corpus) plus the
# positional-audit re-runs, counts tokens (tiktoken / the model's Hugging Face tokenizer /
# characters / 3.5 for Anthropic), prices them from the dated table with caching and batch
# discounts, and gives GPU-hours of local engines from `throughput_texts_per_s`. No request
# is sent. Every rule's job counts: `textgauge plan-jobs` (a Snakemake dry run).


rule cost_plan:
    message:
        "Planning tokens, costs and GPU-hours of the machine coders (no request is sent)"
    input:
        corpus=rules.ingest_corpus.output.corpus,
        sample=rules.sample_gold.output.sample,
    output:
        plan_json=f"{RESULTS}/plan/plan.json",
        plan_md=f"{RESULTS}/plan/plan.md",
    params:
        # every model's answer settings and plan (the plan's own trigger), never its limits
        models=lambda w: {
            n: {k: v for k, v in m.items() if k != "limits"}
            for n, m in PUBLIC_CONFIG["models"].items()
        },
        labels=config["labels"],
        instructions=lookup(dpath="codebook/instructions", within=config),
        seed=lookup(dpath="project/seed", within=config),
        positional_orders=ORDERS,
        shards=lookup(dpath="inference/shards", within=config),
        name=lookup(dpath="project/name", within=config),
    log:
        f"{RESULTS}/logs/plan.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/train.yaml"
    script:
        "../../scripts/cost_plan.py"
