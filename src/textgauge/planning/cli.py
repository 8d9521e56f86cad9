"""``textgauge plan``: the dry-run token and cost plan of rendered requests (no request is
sent); see :func:`textgauge.planning.cost.plan_cost`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from textgauge.errors import InputDataError
from textgauge.inference.backends.base import PromptRequest
from textgauge.planning.cost import plan_cost
from textgauge.planning.prices import load_prices


def read_requests_jsonl(path: str | Path) -> list[PromptRequest]:
    """Rendered requests, one JSON object per line: ``{"id", "messages", "labels"}``."""
    p = Path(path)
    if not p.exists():
        raise InputDataError(f"Requests file {p} does not exist.")
    out = []
    for k, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            out.append(PromptRequest(str(d["id"]), list(d["messages"]), list(d["labels"])))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputDataError(f"{p} line {k} is not a request object with id, messages "
                                 f"and labels ({type(exc).__name__}: {exc}).") from exc
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="textgauge plan", description="Dry-run token and cost "
                                 "plan for prompted coding (no request is sent).")
    ap.add_argument("--requests", required=True,
                    help="JSONL of rendered requests: {id, messages, labels} per line")
    ap.add_argument("--model", required=True, action="append",
                    help="model name; repeat to compare models")
    ap.add_argument("--provider", choices=["openai", "anthropic", "local"],
                    help="default: guessed from the model name")
    ap.add_argument("--prices", help="price table YAML (default: the packaged prices.yaml)")
    ap.add_argument("--tokenizer", help="HF tokenizer folder, 'tiktoken:ENCODING' or "
                                        "'approx:CHARS_PER_TOKEN'")
    ap.add_argument("--structured", default="json_schema",
                    choices=["json_schema", "choice", "none"])
    ap.add_argument("--retry-overhead", type=float, default=0.25)
    ap.add_argument("--batch-discount", type=float)
    ap.add_argument("--max-output-tokens", type=int)
    ap.add_argument("--out", help="write the Markdown plan here (default: stdout)")
    ap.add_argument("--json", help="also write the plans as JSON here")
    return ap


def plan_cli(argv: Sequence[str] | None = None) -> int:
    """``textgauge plan``: print (or write) the Markdown cost plan. Returns an exit code."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    requests = read_requests_jsonl(args.requests)
    prices = load_prices(args.prices)
    plans = [plan_cost(requests, model, args.provider, prices, args.tokenizer, args.structured,
                       args.retry_overhead, args.batch_discount, args.max_output_tokens)
             for model in args.model]
    text = "\n".join(p.to_markdown() for p in plans)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    if args.json:
        Path(args.json).write_text(json.dumps([p.to_dict() for p in plans], indent=1),
                                   encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(plan_cli())
