"""The ``textgauge`` command: helpers around the workflow (not a replacement for snakemake)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from textgauge.errors import TextgaugeError
from textgauge.logs import explain


def _example(args: argparse.Namespace) -> None:
    from textgauge.data.example import ExampleSpec, write_example

    if args.ordinal:  # the 5-point stance example (its own sizes and seed)
        from textgauge.data.example_ordinal import write_ordinal_example

        out = "resources/example_ordinal" if args.out == "resources/example" else args.out
        for name, path in write_ordinal_example(out).items():
            print(f"{name}: {path}")
        return
    spec = ExampleSpec(n_texts=args.n_texts, n_labelled=args.n_labelled, seed=args.seed)
    for name, path in write_example(args.out, spec).items():
        print(f"{name}: {path}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="textgauge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("example", help="(re)generate the bundled SYNTHETIC example")
    ex.add_argument("--out", default="resources/example")
    ex.add_argument("--n-texts", type=int, default=3000)
    ex.add_argument("--n-labelled", type=int, default=900)
    ex.add_argument("--seed", type=int, default=20261129)
    ex.add_argument("--ordinal", action="store_true",
                    help="the ordinal (5-point stance) example, in resources/example_ordinal")
    ex.set_defaults(func=_example)
    sub.add_parser("samplesize", help="gold-sample size for a kappa CI or test (see --help)",
                   add_help=False)
    sub.add_parser("plan", help="dry-run token and cost plan for prompted coders",
                   add_help=False)
    sub.add_parser("plan-jobs", help="jobs per rule, GPU jobs and GPU-hours (snakemake -n)",
                   add_help=False)
    sub.add_parser("lora-size", help="trainable parameters and memory of a LoRA/QLoRA setup",
                   add_help=False)
    sub.add_parser("revalidate", help="recompute the validation from a replication package",
                   add_help=False)
    args, rest = parser.parse_known_args(argv)
    try:
        if args.command == "samplesize":
            from textgauge.stats.samplesize import samplesize_cli

            return samplesize_cli(rest) or 0
        if args.command == "plan":
            from textgauge.planning.cli import plan_cli

            return plan_cli(rest) or 0
        if args.command == "plan-jobs":
            from textgauge.planning.jobs import jobplan_cli

            return jobplan_cli(rest) or 0
        if args.command == "lora-size":
            from textgauge.training.lora_size import lora_size_cli

            return lora_size_cli(rest) or 0
        if args.command == "revalidate":
            from textgauge.reporting.revalidation import revalidate_cli

            return revalidate_cli(rest) or 0
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        args.func(args)
    except TextgaugeError as exc:
        print(explain(exc, args.command), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
