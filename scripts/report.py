"""Rule report: HTML report, methods section and run manifest (see textgauge.reporting.report)."""
from textgauge.logs import friendly_errors
from textgauge.reporting import report

with friendly_errors("write the report", snakemake.log[0]):
    report.report_stage({k: v for k, v in snakemake.input.items()},
                        {k: v for k, v in snakemake.output.items()}, snakemake.params.config,
                        snakemake.params.models)
