"""Rule prompt_stability: Krippendorff's alpha across paraphrased prompts (textgauge.steps.review)."""
from textgauge.steps import run
from textgauge.steps.review import prompt_stability

run(prompt_stability, snakemake, "audit prompt stability of {model}")
