# Stage: ingest and validate the corpus, then shard it for inference.


rule ingest_corpus:
    message:
        "Validating the corpus {input.corpus}"
    input:
        corpus=config["corpus"]["path"],
    output:
        corpus=f"{RESULTS}/corpus/corpus.parquet",
        rejects=f"{RESULTS}/corpus/rejects.csv",
        summary=f"{RESULTS}/corpus/ingest.json",
    params:
        id_column=config["corpus"]["id_column"],
        text_column=config["corpus"]["text_column"],
        strata=config["corpus"]["strata"],
    log:
        f"{RESULTS}/logs/ingest_corpus.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/ingest_corpus.py"


rule shard_corpus:
    message:
        "Splitting the corpus into {params.n} shards"
    input:
        corpus=rules.ingest_corpus.output.corpus,
    output:
        shards=expand(f"{RESULTS}/corpus/shards/{{shard}}.parquet", shard=SHARDS),
    params:
        n=N_SHARDS,
    log:
        f"{RESULTS}/logs/shard_corpus.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/shard_corpus.py"
