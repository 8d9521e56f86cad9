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
        # the training split: few-shot examples are drawn from it (their tokens are in every
        # prompt), and fine-tuned models' training jobs are planned from its size
        train=lambda w: (
            rules.split_training.output.train
            if models_of("encoder") + models_of("lora")
            or any(m.get("few_shot") for m in config["models"].values())
            else []
        ),
        variants=lambda w: [p for v in PROMPT_VARIANTS.values() for p in v],
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
        prompt_variants=PROMPT_VARIANTS,
        scale=SCALE,
        # an earlier run's benchmark files measure each model's throughput (read if present;
        # a folder to look in, not an input: the plan never waits for them)
        results=lambda w: RESULTS,
    log:
        f"{RESULTS}/logs/plan.log",
    benchmark:
        f"{RESULTS}/benchmarks/cost_plan.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/train.yaml"
    script:
        "../../scripts/cost_plan.py"


# Spend after the run: planned against actual tokens and cost of every prompted coder (the
# usage recorded with each answer, summed over every prediction file it produced; answers
# reused from a checkpoint apart), and wall/GPU hours per rule and model from the benchmark
# files (results/benchmarks/, read if present: a missing one is said, never filled in). The
# report shows it and the run manifest records it.


rule spend:
    message:
        "Summing the spend of the run against the plan"
    input:
        plan=rules.cost_plan.output.plan_json,
        predictions=spend_parts,
        # run after the benchmarked jobs (gather, evaluate, human agreement), so that their
        # benchmark files are there to be summed
        after=lambda w: [rules.human_agreement.output.metrics]
        + expand(f"{RESULTS}/predictions/{{model}}.manifest.json", model=MODELS)
        + expand(f"{RESULTS}/validation/{{model}}/metrics.json", model=MODELS),
    output:
        spend=f"{RESULTS}/plan/spend.json",
    params:
        # each model's answer settings, whether it used the batch API (priced at its
        # discount) and whether its jobs requested a GPU (GPU-hours from its benchmarks)
        models=lambda w: {
            n: {k: v for k, v in m.items() if k not in ("limits", "plan")}
            for n, m in PUBLIC_CONFIG["models"].items()
        },
        # a namespace, as model_limits: a limits change reruns nothing, not even this summary
        batch_api=types.SimpleNamespace(
            **{n: bool(m["limits"].get("batch_api")) for n, m in config["models"].items()}
        ),
        gpu={n: uses_gpu(types.SimpleNamespace(model=n)) for n in MODELS},
        # where the benchmark files are (read if present, never inputs: a missing one is
        # reported, it does not rerun the job)
        results=lambda w: RESULTS,
    log:
        f"{RESULTS}/logs/spend.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/spend.py"
