# Stage: ingest and validate the corpus, then shard it for inference.


rule ingest_corpus:
    message:
        "Validating the corpus {input.path}"
    input:
        path=lookup(dpath="corpus/path", within=config),
    output:
        corpus=f"{RESULTS}/corpus/corpus.parquet",
        rejects=f"{RESULTS}/corpus/rejects.csv",
        summary=f"{RESULTS}/corpus/ingest.json",
    params:
        id_column=lookup(dpath="corpus/id_column", within=config),
        text_column=lookup(dpath="corpus/text_column", within=config),
        strata=lookup(dpath="corpus/strata", within=config),
    log:
        f"{RESULTS}/logs/ingest_corpus.log",
    benchmark:
        f"{RESULTS}/benchmarks/ingest_corpus.tsv"
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
        "Splitting the corpus into {params.shards} shards"
    input:
        corpus=rules.ingest_corpus.output.corpus,
    output:
        parts=expand(f"{RESULTS}/corpus/shards/{{shard}}.parquet", shard=SHARDS),
    params:
        shards=lookup(dpath="inference/shards", within=config),
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
