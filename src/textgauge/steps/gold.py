"""Rules of workflow/rules/gold.smk: gold sample, coding sheets, (simulated) codes, import."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from textgauge.data import coding
from textgauge.data import corpus as corpus_data
from textgauge.data import gold as gold_data
from textgauge.data.ids import normalise_ids
from textgauge.data.sheets import read_csv as read_sheet_csv
from textgauge.data.sheets import read_sheet, write_csv
from textgauge.errors import ConfigError, InputDataError, format_rows
from textgauge.io import write_json_atomic, write_parquet_atomic, write_text_atomic
from textgauge.options import CodesLong

log = logging.getLogger("textgauge")


def labelled_ids(path: str | None, id_column: str = "id") -> list[str]:
    """The ids of the labelled training data (kept out of the gold sample)."""
    if not path:
        return []
    df = corpus_data.read_table(path, "labelled training data")
    if id_column not in df.columns:
        raise InputDataError(f"The labelled training data {path} has no column {id_column!r}; "
                             f"its columns are {', '.join(map(repr, df.columns))}.")
    return normalise_ids(df[id_column], f"The labelled training data {path}", id_column).tolist()


def sample_gold(*, corpus: str, labelled: str | None, sample: str, summary: str, size: int,
                strata: Sequence[str], seed: int, min_per_stratum: int = 0,
                id_column: str = "id", exclude_from_gold: bool = True,
                labels: Sequence[str] = (), gold: str | None = None,
                design: str = "proportional", first_pass: str | None = None,
                confidence_bands: int = 3, min_per_label: int | None = None,
                first_pass_predictions: str | None = None, first_pass_train: str | None = None,
                first_pass_val: str | None = None) -> None:
    """Rule sample_gold: the seeded gold-standard sample and its summary.

    ``design`` "proportional" draws a stratified sample over ``strata`` (self-weighting);
    "model_assisted" stratifies by the ``first_pass`` coder's predicted label x confidence
    band (x strata) (:mod:`textgauge.data.design`). With a first pass (either design) the
    texts of the training split (``first_pass_train``/``first_pass_val``) are not eligible,
    and the summary compares the designs' expected CI half-widths on its predictions.

    Rule sample_development (workflow/rules/development.smk) too: with ``gold`` (the gold
    sample) every gold id is left out as well, so the development sample is drawn apart from
    gold from the same eligible texts.
    """
    from textgauge.data import design as design_data

    df = pd.read_parquet(corpus)
    exclude = labelled_ids(labelled, id_column) if exclude_from_gold else []
    gold_ids = pd.read_parquet(gold)["id"].astype(str).tolist() if gold else []
    split_ids = [i for p in (first_pass_train, first_pass_val) if p
                 for i in pd.read_parquet(p)["id"].astype(str)]
    excluded = set(exclude) | set(gold_ids) | set(split_ids)
    eligible = int(len(df) - len(excluded & set(df["id"])))
    if gold and eligible < size:
        raise ConfigError(f"gold.development_size is {size}, but only {eligible} texts are "
                          "outside the gold sample and the training data: choose a smaller "
                          "development sample.")
    fp = pd.read_parquet(first_pass_predictions) if first_pass_predictions else None
    allocation = None
    frame = df.loc[~df["id"].astype(str).isin(excluded)]
    if design == "model_assisted" and not gold:
        if fp is None:
            raise ConfigError("gold.design is model_assisted but no first-pass predictions "
                              "reached the gold step; set gold.first_pass.")
        if min_per_stratum:
            raise ConfigError(f"gold.min_per_stratum ({min_per_stratum}) applies to the "
                              "proportional design; a model_assisted sample guarantees items "
                              "per predicted label instead: remove gold.min_per_stratum and "
                              "set gold.min_per_label.")
        drawn, allocation = design_data.sample_model_assisted(
            frame, fp, size, list(strata), seed, n_bands=confidence_bands,
            min_per_label=min_per_label, model=str(first_pass))
    else:
        drawn = gold_data.sample_gold(df, size, list(strata), seed, sorted(excluded),
                                      min_per_stratum)
    write_parquet_atomic(drawn, sample)
    info = {"size": len(drawn), "seed": seed, "strata": list(strata),
            "eligible": eligible, "excluded_training_ids": len(exclude),
            "per_stratum": drawn["stratum"].value_counts().sort_index().to_dict()}
    if gold:
        info["excluded_gold_ids"] = len(gold_ids)
        info["purpose"] = ("development sample for prompt iteration, drawn apart from the gold "
                           "set; its evaluations are not recorded in the gold-set ledger")
    else:
        info["design"] = _design_block(
            drawn, allocation, fp, frame, design=design,
            first_pass=first_pass, labels=list(labels), size=size, strata=list(strata),
            seed=seed, confidence_bands=confidence_bands, min_per_label=min_per_label,
            excluded_split=len(set(split_ids) & set(df["id"].astype(str))))
        log.info("gold design: %s", info["design"]["recommendation"])
    if labels:
        from textgauge.stats.samplesize import kappa_n_for_ci

        need = int(kappa_n_for_ci(0.7, 0.1, n_categories=len(labels)))
        info["recommended_size_for_kappa_ci_pm_0.10"] = need
        if len(drawn) < need:
            log.warning("gold.size=%d is below the %d items needed for a +/-0.10 CI of a kappa "
                        "near 0.70 with %d equally frequent labels (skewed labels need more); "
                        "see `textgauge samplesize ci --help`.", len(drawn), need, len(labels))
    write_json_atomic(info, summary)
    log.info("%s sample: %d texts over %d strata", "development" if gold else "gold",
             len(drawn), drawn["stratum"].nunique())


def _design_block(drawn: pd.DataFrame, allocation: pd.DataFrame | None,
                  predictions: pd.DataFrame | None, eligible: pd.DataFrame, *, design: str,
                  first_pass: str | None, labels: list[str], size: int, strata: list[str],
                  seed: int, confidence_bands: int, min_per_label: int | None,
                  excluded_split: int) -> dict:
    """sample.json's ``design``: which design drew the sample, its cells, and, where a first
    pass classified the eligible texts, what each design is expected to give (CI
    half-widths of kappa and of each label's F1), so the choice is made before coding."""
    from textgauge.data.design import NO_ANSWER, answered
    from textgauge.stats.design import weighted_design
    from textgauge.stats.inputs import to_builtin

    block: dict[str, Any] = {"design": design, "first_pass": first_pass,
                             "n_eligible": int(len(eligible)),
                             "excluded_training_split": int(excluded_split),
                             "weighted_analysis": weighted_design(drawn)}
    if allocation is not None:
        block.update(confidence_bands=int(confidence_bands),
                     min_per_label=allocation.attrs["min_per_label"],
                     allocation=("at least 2 per cell, at least min_per_label per predicted "
                                 "label, the rest in proportion to N_c sqrt(e_c (1 - e_c)) "
                                 "(e_c: mean 1 - confidence of the cell)"),
                     cells=allocation.to_dict("records"))
    else:
        cells = (drawn.groupby("cell", sort=True)
                 .agg(cell_size=("cell_size", "first"), cell_n=("id", "size")).reset_index())
        cells["inclusion_prob"] = cells["cell_n"] / cells["cell_size"]
        block["cells"] = cells.to_dict("records")
    if predictions is None:
        kind = ("design-weighted: strata topped up" if weighted_design(drawn)
                else "self-weighting")
        block.update(predicted_counts=None, planning=None, recommendation=(
            f"Drawn with the {design} design ({kind}). Name a coder with scope: "
            "corpus in gold.first_pass to see, before coding, what gold.design: "
            "model_assisted would give for rare labels."))
        return to_builtin(block)
    from textgauge.planning.gold_design import plan_designs, recommendation

    ids = set(eligible["id"].astype(str))
    fp = predictions.loc[predictions["id"].astype(str).isin(ids)]
    ok = answered(fp, labels)
    counts = fp.loc[ok, "label"].astype(str).value_counts()
    block["predicted_counts"] = {**{lab: int(counts.get(lab, 0)) for lab in labels},
                                 NO_ANSWER: int(len(ids) - int(ok.sum()))}
    try:
        plan = plan_designs(fp, labels, size, strata_frame=eligible[["id", *strata]],
                            n_bands=confidence_bands, min_per_label=min_per_label, seed=seed)
    except ConfigError as exc:  # a proportional run: the other design does not fit the size
        block.update(planning=None, recommendation=(
            f"Drawn with the {design} design. A model_assisted sample is not possible with "
            f"these settings: {exc}"))
        return to_builtin(block)
    block["planning"] = plan
    block["recommendation"] = f"Drawn with the {design} design. {recommendation(plan)}"
    return to_builtin(block)


def coding_sheets(*, sample: str, codebook: str, coders: Sequence[str], seed: int,
                  labels: Mapping[str, str], instructions: str,
                  sheets: Sequence[str] | None = None, workbooks: Sequence[str] | None = None,
                  summary: str | None = None) -> dict:
    """Rule coding_sheets: one blinded sheet per coder (own random order) and the codebook.

    ``sheets`` are the CSV sheets and ``workbooks`` the XLSX ones (gold.sheet_formats says
    which the rule writes; both by default). A coder fills either. Texts too long for an Excel
    cell are cut in the workbooks with a visible marker (the CSV keeps them whole); how many
    is logged and written to ``summary``.
    """
    from textgauge.data.xlsx import EXCEL_CELL_LIMIT, write_coding_workbook

    df = pd.read_parquet(sample)
    sheets, workbooks = list(sheets or []), list(workbooks or [])
    if not sheets and not workbooks:
        raise ConfigError("gold.sheet_formats is empty: list xlsx, csv or both.")
    for what, paths in (("CSV", sheets), ("XLSX", workbooks)):
        if paths and len(paths) != len(coders):
            raise ValueError(f"{len(paths)} {what} sheet paths for {len(coders)} coders")
    full_text = ("see the CSV sheet" if sheets
                 else "the whole text is in the gold sample (sample.parquet)")
    infos = []
    for k, coder in enumerate(coders):
        sheet = coding.coding_sheet(df, coder, seed)
        if sheets:
            write_csv(sheet, sheets[k])
        if workbooks:
            infos.append(write_coding_workbook(sheet, workbooks[k], labels, instructions,
                                               coder=coder, full_text=full_text))
    write_text_atomic(coding.codebook_markdown(labels, instructions), codebook)
    cut = sorted(set(infos[0].truncated_items)) if infos else []
    info = {"coders": list(coders), "items": int(len(df)),
            "formats": [f for f, p in (("xlsx", workbooks), ("csv", sheets)) if p],
            "csv_sheets": dict(zip(coders, sheets, strict=False)),
            "xlsx_sheets": dict(zip(coders, workbooks, strict=False)),
            "xlsx_cell_limit": EXCEL_CELL_LIMIT,
            "truncated_texts": len(cut), "truncated_ids": cut,
            "characters_not_shown": infos[0].characters_not_shown if infos else 0,
            "control_characters_replaced": infos[0].control_characters_replaced if infos else 0}
    if cut:
        log.warning("%d text(s) are longer than an Excel cell holds (%d characters) and are cut "
                    "in the .xlsx sheets with a visible marker (%d characters not shown in "
                    "each sheet); %s: %s", len(cut), EXCEL_CELL_LIMIT,
                    info["characters_not_shown"],
                    "the CSV sheets hold them whole" if sheets else "no CSV sheet holds them "
                    "whole (gold.sheet_formats has no csv)", format_rows(cut))
    if info["control_characters_replaced"]:
        log.warning("%d control character(s) that an .xlsx file cannot hold were shown as "
                    "U+FFFD in each .xlsx sheet%s.", info["control_characters_replaced"],
                    "; the CSV sheets keep them" if sheets else "")
    if summary:
        write_json_atomic(info, summary)
    log.info("coding sheets for %d coder(s), %d items each (%s)", len(coders), len(df),
             ", ".join(info["formats"]))
    return info


def simulate_coding(*, sheets: Sequence[str], truth: str, confusions: str,
                    coded: Sequence[str], adjudication: str, coders: Sequence[str], seed: int,
                    adjudicator_accuracy: float = 0.95) -> None:
    """Rule simulate_coding (SYNTHETIC example only): fill the blinded sheets as the simulated
    coders (confusion matrices in ``confusions``, gold.simulate.coders) would."""
    from textgauge.data.example import confusion_labels, read_confusions, simulate_codes

    true = pd.read_csv(truth, dtype=str).set_index("id")["true_label"]
    labs = confusion_labels(confusions)  # the frames, or the scale of the ordinal example
    conf = read_confusions(confusions, labs)
    wide = {}
    for coder, sheet_path, out in zip(coders, sheets, coded, strict=True):
        if coder not in conf:
            raise ConfigError(f"No simulated confusion matrix for coder {coder!r} in {confusions}.")
        if str(sheet_path).lower().endswith(".xlsx"):  # gold.sheet_formats without csv
            sheet = read_sheet(sheet_path, f"coding sheet of {coder}")
        else:
            sheet = read_sheet_csv(sheet_path, dtype=str, keep_default_na=False)
        unknown = sorted(set(sheet["id"]) - set(true.index))
        if unknown:
            raise InputDataError(
                f"gold.simulate is meant for the synthetic example: {len(unknown)} sheet id(s) "
                f"have no simulated truth in {truth} (e.g. {unknown[:3]}). For real data "
                "set gold.simulate: null (or run with --replace-workflow-config).")
        sheet["label"] = simulate_codes(true.loc[sheet["id"]], coder, seed, conf, labs).values
        write_csv(sheet, out)
        wide[coder] = sheet.set_index("id")["label"]
    table = pd.DataFrame(wide)
    disagree = table.index[table.nunique(axis=1) > 1]
    k = len(labs)
    acc = adjudicator_accuracy
    adj_conf = {"adjudicator": np.full((k, k), (1 - acc) / (k - 1))
                + np.eye(k) * (acc - (1 - acc) / (k - 1))}
    adj = simulate_codes(true.loc[disagree], "adjudicator", seed, adj_conf, labs)
    write_csv(pd.DataFrame({"id": disagree, "label": adj.values}), adjudication)


#: the keys of ``counts`` in the import summary (gold/codes.json), for the report and methods.
#: Identities: sample_size = evaluated + excluded; excluded = uncoded + excluded_ties;
#: coded = majority + tied; tied = adjudicated + resolved_by_lead_coder + resolved_at_random
#: + excluded_ties (+ unresolved, always 0 in a summary that was written).
COUNT_KEYS = {
    "sample_size": "items in the gold sample",
    "coders": "coders with at least one code",
    "codes": "non-empty codes on gold items",
    "coded": "gold items with at least one code",
    "uncoded": "gold items without any code (excluded)",
    "missing_per_coder": "coder -> gold items without a code of theirs (sheets: empty label "
                         "or row deleted; long file: rows with an empty label)",
    "rows_missing_per_coder": "coder -> gold items whose row was deleted from the sheet",
    "majority": "items whose reference is a clear majority (a single code included)",
    "tied": "items whose codes tie",
    "adjudicated": "ties resolved by the adjudication file",
    "resolved_by_lead_coder": "ties resolved by the lead coder's code (gold.ties: lead_coder)",
    "resolved_at_random": "ties resolved by a seeded random coder (gold.ties: random)",
    "excluded_ties": "ties left out of the reference (gold.ties: exclude)",
    "excluded": "items left out of the reference (uncoded + excluded_ties)",
    "evaluated": "items with a reference label: the n every coder is judged on",
}


def import_codes(*, sample: str, sheets: Any = None, long: Any = None,
                 adjudication: str | None = None, codes: str, reference: str,
                 adjudication_sheet: str, summary: str, labels: Sequence[str],
                 sheet_files: Mapping[str, str], coders: Sequence[str] = (),
                 lead_coder: str | None = None,
                 codes_long: Mapping[str, Any] | None = None, ties: str = "adjudication",
                 seed: int = 0, to_adjudicate: str | None = None,
                 adjudication_option: str = "gold.adjudication") -> dict:
    """Rule import_codes: validate the human codes, derive reference labels, count everything.

    ``ties`` is gold.ties (see :mod:`textgauge.data.coding`). With ``adjudication`` (the
    default) a tie that the adjudication file does not resolve stops the run: the ties are
    written to ``to_adjudicate`` (not an output, so it survives the failed job) and the
    message names it. The summary's ``counts`` (keys: :data:`COUNT_KEYS`) are what the report
    and the methods state.
    """
    frame = pd.read_parquet(sample)
    ids = set(frame["id"])
    labels = list(labels)
    coding.check_codebook(labels)
    parts = [coding.read_sheet_codes(path, coder, labels, ids)
             for coder, path in dict(sheet_files).items()]
    sheet_coders = list(dict(sheet_files))
    long_coders: list[str] = []
    if codes_long:
        cl = CodesLong.from_dict(codes_long)
        part = coding.read_long_codes(cl.path, labels, ids, cl.id_column, cl.coder_column,
                                      cl.label_column, cl.label_map or None)
        long_coders = list(dict.fromkeys(part["coder"]))
        parts.append(part)
    if not parts:
        raise ConfigError("No human codes: set gold.codes (one filled sheet per coder), "
                          "gold.codes_long (one long file) or, for the synthetic example, "
                          "gold.simulate.")
    repeated = sum(p.attrs.get("repeated_codes_dropped", 0) for p in parts)
    if repeated:
        log.warning("%d repeated codes (same coder, same item) were set aside; the first code "
                    "of each coder counts.", repeated)
    rows_missing = {c: int(p.attrs.get("rows_missing", 0))
                    for c, p in zip(sheet_coders, parts, strict=False)}
    table = pd.concat(parts, ignore_index=True)
    adj = None
    if isinstance(adjudication, str) and adjudication:
        adj = coding.read_adjudication(adjudication, labels, ids)
    found = list(dict.fromkeys(table.loc[table["label"] != "", "coder"]))
    lead = lead_coder or (list(coders) or found)[0]
    if ties == "lead_coder" and lead not in found:
        where = ", ".join(filter(None, [", ".join(dict(sheet_files).values()),
                                        (codes_long or {}).get("path", "")]))
        raise ConfigError(
            f"gold.ties is lead_coder, but the lead coder {lead!r} "
            f"({'gold.lead_coder' if lead_coder else 'the first of gold.coders'}) has no codes "
            f"in {where}. Coders with codes: {format_rows([repr(c) for c in found])}. Set "
            "gold.lead_coder to one of them, or choose another gold.ties (adjudication, "
            "random, exclude).")
    ref = coding.reference_labels(table, labels, lead if ties == "lead_coder" else None, adj,
                                  ties=ties, seed=seed)
    tied_labels = dict(zip(ref.ties["id"], ref.ties["tied_labels"], strict=True))
    if to_adjudicate and Path(to_adjudicate).exists():
        Path(to_adjudicate).unlink()  # a sheet of an earlier run would mislead
    if ref.unresolved:
        sheet_path = to_adjudicate or str(Path(adjudication_sheet).with_name(
            "to_adjudicate.csv"))
        Path(sheet_path).parent.mkdir(parents=True, exist_ok=True)
        write_csv(coding.ties_sheet(table, frame, ref.unresolved, tied_labels), sheet_path)
        lead_note = ""
        if ties == "lead_coder":
            lead_note = f" (the lead coder {lead!r} did not code them)"
        raise InputDataError(
            f"{len(ref.unresolved)} of {len(ids)} gold items are tied and no decision "
            f"resolves them{lead_note}: {format_rows(ref.unresolved)}. Ties are the ambiguous "
            "items, so dropping them silently would bias agreement upward. The adjudication "
            f"sheet to fill is {sheet_path}: write the decided label in its `label` column, "
            f"save it outside the results folder and set {adjudication_option} to that file. Or "
            "choose how ties are resolved with gold.ties: lead_coder (the lead coder's code), "
            "random (a seeded random coder's) or exclude (leave them out, and say so).")
    write_parquet_atomic(table, codes)
    write_parquet_atomic(ref.table, reference)
    write_csv(coding.disagreements(table, frame), adjudication_sheet)
    present = table.loc[table["label"] != ""]
    coded_ids = set(present["id"])
    uncoded = sorted(ids - coded_ids)
    n_items = {c: int(n) for c, n in present.groupby("coder")["id"].nunique().items()}
    missing = {c: len(ids) - n_items.get(c, 0) for c in sheet_coders}
    blanks = table.loc[table["label"] == ""].groupby("coder").size()
    missing.update({c: int(blanks.get(c, 0)) for c in long_coders if c not in missing})
    res = ref.ties["resolution"].value_counts()
    excluded_ties = sorted(map(str, ref.ties.loc[ref.ties["resolution"] == "excluded", "id"]))
    by = ref.table["method"].value_counts()
    counts = {
        "sample_size": len(ids), "coders": len(found), "codes": int(len(present)),
        "coded": len(coded_ids), "uncoded": len(uncoded),
        "missing_per_coder": missing, "rows_missing_per_coder": rows_missing,
        "majority": int(by.get(coding.METHOD_MAJORITY, 0)), "tied": int(len(ref.ties)),
        "adjudicated": int(res.get(coding.METHOD_ADJUDICATED, 0)),
        "resolved_by_lead_coder": int(res.get(coding.METHOD_LEAD, 0)),
        "resolved_at_random": int(res.get(coding.METHOD_RANDOM, 0)),
        "excluded_ties": len(excluded_ties), "excluded": len(uncoded) + len(excluded_ties),
        "evaluated": int(len(ref.table)),
    }
    assert counts["sample_size"] == counts["evaluated"] + counts["excluded"], counts
    info = {"counts": counts, "count_keys": COUNT_KEYS, "ties": ties,
            "lead_coder": lead if ties == "lead_coder" else None,
            "excluded_ids": {"uncoded": uncoded, "ties": excluded_ties},
            "coders": found, "codes": counts["codes"],
            "repeated_codes_set_aside": int(repeated),
            "missing_codes": int(sum(missing.values())),
            "items_without_any_code": len(uncoded), "reference": ref.summary,
            "codes_per_item": present.groupby("id").size().describe().round(2).to_dict()}
    write_json_atomic(info, summary)
    for coder, n in missing.items():
        if n:
            log.warning("coder %s: %d gold item(s) without a code (%d row(s) deleted from the "
                        "sheet)", coder, n, rows_missing.get(coder, 0))
    if uncoded:
        log.warning("%d gold item(s) have no code at all and are left out: %s", len(uncoded),
                    format_rows(uncoded))
    if excluded_ties:
        log.warning("gold.ties is exclude: %d tied item(s) are left out of the reference: %s",
                    len(excluded_ties), format_rows(excluded_ties))
    log.info("imported %d codes from %d coders; %d of %d gold items evaluated (%s)",
             counts["codes"], len(found), counts["evaluated"], len(ids),
             ref.summary["by_method"])
    return info
