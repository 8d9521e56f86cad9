"""Rule cost_plan: tokens, money and GPU-hours of every machine coder, before running them
(see textgauge.planning.cost.plan_config)."""
import json

import pandas as pd

from textgauge.io import write_text_atomic
from textgauge.logs import friendly_errors
from textgauge.planning.cost import load_prices, plan_config, plan_markdown

with friendly_errors("plan the costs", snakemake.log[0]):
    plan = plan_config(dict(snakemake.params.config),
                       pd.read_parquet(snakemake.input.corpus),
                       pd.read_parquet(snakemake.input.sample),
                       prices=load_prices())
    write_text_atomic(json.dumps(plan, indent=1, default=str), snakemake.output.json)
    write_text_atomic(plan_markdown(plan), snakemake.output.md)
