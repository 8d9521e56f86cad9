"""Rule submit_batch: send one predict job's requests to a provider's batch API
(textgauge.steps.infer.submit_batch)."""
from textgauge.steps import infer, run

run(infer.submit_batch, snakemake, "send {model} {job} to the batch API")
