"""Rules predict_gold and its variants (predict_shard, predict_gold_order, predict_gold_variant):
run one machine coder (textgauge.steps.infer.predict)."""
from textgauge.steps import infer, run

run(infer.predict, snakemake, "run {model}")
