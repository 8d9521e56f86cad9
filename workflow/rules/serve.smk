# Stage: a local OpenAI-compatible server for each prompted coder with `serve: true` (#14.2).
#
# serve_model's output is a Snakemake `service`: the address file the server side writes
# (starting -> ready with base_url, or failed with the reason). Every predict job of the
# coder (predict_gold, _shard, _gold_order, _gold_variant, _development) takes it as input
# `server`, so Snakemake puts the server and those jobs in one group: they run at the same
# time (locally; on SLURM as ONE job on one node, the server's GPU and the sum of the
# group's cores and memory), each predict job waits until the server answers /v1/models,
# and Snakemake ends the server (SIGTERM) when they are done or kills it when one fails.
# The server is never a target of its own and never reruns anything: with every
# prediction up to date, no server starts.
#
# A shell rule on purpose: Snakemake signals shell jobs only (a `script:` service is never
# stopped); the command `exec`s the step so the signal reaches it, and the server's watcher
# stops the server even when the step is killed (textgauge.inference.serving).
# The helpers (SERVED_MODELS, model_server, predict_threads, serve_runtime): serve_common.smk.


rule serve_model:
    message:
        "{wildcards.model}: a local OpenAI-compatible server for its predict jobs "
        "(stopped when they end)"
    output:
        server=service(f"{RESULTS}/serve/{{model}}.json"),
    params:
        python=_serve_python(),
        spec=_serve_spec,
        # the server's wall time, the GPU-hours of a served coder (planning.spend), in
        # benchmark-file form written by the step itself: Snakemake writes no benchmark
        # file for a service job it terminates
        benchmark=f"{RESULTS}/benchmarks/serve_model/{{model}}.tsv",
    log:
        f"{RESULTS}/logs/serve/{{model}}.log",
    wildcard_constraints:
        model="|".join(SERVED_MODELS) or "NO_SERVED_MODEL",
    threads: 1
    resources:
        mem_mb=16000,
        runtime=serve_runtime,
        gpu=1,
    conda:
        "../../envs/vllm.yaml"
    shell:
        # the address file at once: a predict job waits only --latency-wait for its input
        "printf '{{\"state\": \"starting\"}}\\n' > {output.server:q} && "
        "exec {params.python:q} -m textgauge.steps.serve --model {wildcards.model:q} "
        "--server {output.server:q} --log {log:q} --spec {params.spec:q} "
        "--benchmark {params.benchmark:q}"
