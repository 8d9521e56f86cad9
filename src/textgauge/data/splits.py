"""Split labelled training data into train/validation, with the gold test set held out.

The gold sample is the test set: no gold id may reach training or model selection. The
labelled pool is checked against the codebook and the corpus, gold ids are removed (and
counted), and the rest is split, stratified by label, with a seed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import pandas as pd
from sklearn.model_selection import train_test_split

from textgauge.data.coding import validate_codes
from textgauge.data.corpus import check_ids_exist, read_table
from textgauge.data.ids import normalise_ids
from textgauge.errors import InputDataError

log = logging.getLogger("textgauge")


def read_labelled(path: str, labels: Sequence[str], corpus: pd.DataFrame,
                  id_column: str = "id", label_column: str = "label",
                  label_map: Mapping[str, str] | None = None,
                  rejected_ids: set[str] | None = None) -> pd.DataFrame:
    """Labelled texts joined to the corpus. Ids whose corpus row was rejected on ingest (and
    is listed with its reason in rejects.csv) are set aside with a warning; any other id
    missing from the corpus is an error."""
    df = read_table(path, "labelled training data")
    source = f"The labelled training data {path}"
    mapped = validate_codes(df, labels, source, label_column, id_column, label_map,
                            option="training.label_map")
    out = pd.DataFrame({"id": normalise_ids(df[id_column], source, id_column).to_numpy(),
                        "label": mapped.to_numpy()})
    out = out.loc[out["label"] != ""]
    dup = out["id"][out["id"].duplicated()]
    if len(dup):
        raise InputDataError(f"The labelled training data {path} labels id(s) more than once: "
                             f"{', '.join(dup.head(10))}. Keep one label per id.")
    rejected = out["id"].isin(rejected_ids or set()) & ~out["id"].isin(set(corpus["id"]))
    if rejected.any():
        log.warning("%d labelled text(s) were rejected on ingest (see rejects.csv) and are not "
                    "used for training: %s", int(rejected.sum()),
                    ", ".join(out.loc[rejected, "id"].head(10)))
        out = out.loc[~rejected]
    check_ids_exist(list(out["id"]), set(corpus["id"]), f"The labelled training data {path}")
    return out.merge(corpus[["id", "text"]], on="id", how="left")


def split_train_val(labelled: pd.DataFrame, gold_ids: Sequence[str], val_fraction: float,
                    seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    gold = set(map(str, gold_ids))
    overlap = labelled["id"].isin(gold)
    pool = labelled.loc[~overlap].sort_values("id").reset_index(drop=True)
    counts = pool["label"].value_counts()
    stratify = pool["label"] if counts.min() >= 2 else None
    train, val = train_test_split(pool, test_size=val_fraction, random_state=seed,
                                  stratify=stratify)
    summary = {"labelled": int(len(labelled)), "removed_gold_overlap": int(overlap.sum()),
               "train": int(len(train)), "val": int(len(val)),
               "train_label_counts": train["label"].value_counts().to_dict(),
               "stratified": stratify is not None}
    return (train.sort_values("id").reset_index(drop=True),
            val.sort_values("id").reset_index(drop=True), summary)
