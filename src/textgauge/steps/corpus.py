"""Rules of workflow/rules/corpus.smk: ingest and validate the corpus, shard it."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from textgauge.data import corpus as corpus_data
from textgauge.data.sheets import write_csv
from textgauge.io import write_json_atomic, write_parquet_atomic

log = logging.getLogger("textgauge")


def ingest_corpus(*, path: str, id_column: str, text_column: str, strata: Sequence[str],
                  corpus: str, rejects: str, summary: str) -> dict:
    """Rule ingest_corpus: the validated corpus, the rejected rows with reasons, a summary."""
    res = corpus_data.ingest(path, id_column, text_column, strata)
    write_parquet_atomic(res.corpus, corpus)
    write_csv(res.rejects, rejects)
    write_json_atomic(res.summary, summary)
    if len(res.rejects):
        log.warning("%d row(s) of %s were rejected (%s); see %s", len(res.rejects), path,
                    res.summary["rejected_by_reason"], rejects)
    log.info("corpus: %d texts kept of %d read", res.summary["rows_kept"],
             res.summary["rows_read"])
    return res.summary


def shard_corpus(*, corpus: str, parts: Sequence[str], shards: int) -> None:
    """Rule shard_corpus: ``shards`` parts by a stable hash of the id."""
    if len(parts) != shards:
        raise ValueError(f"{len(parts)} output files for {shards} shards")
    df = pd.read_parquet(corpus)
    for part, out in zip(corpus_data.shard_corpus(df, shards), parts, strict=True):
        write_parquet_atomic(part, out)
    log.info("corpus split into %d shards", shards)
