"""Reading a replication package back: unpack it safely, recompute its metrics, compare.

A package may come from anyone, so it is read as untrusted input: members that would land
outside the folder, YAML tags, model names that are paths and file entries that leave the
package are refused with one message each, and nothing is written outside a temporary folder.
``revalidate`` recomputes the validation metrics from the package alone (gold predictions +
reference labels + human codes) with :mod:`textgauge.steps.validate` and compares them with the
stored ones, number for number; ``textgauge revalidate`` is its command line.
"""

from __future__ import annotations

import gzip
import json
import math
import tarfile
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from textgauge.data.sheets import read_csv as read_sheet_csv
from textgauge.errors import InputDataError
from textgauge.reporting.replication import (
    METRIC_FILES,
    check_prompt,
    prompted,
    recorded_prompt_hashes,
    sha256,
)


def unpack(tar_path: str | Path, dest: str | Path) -> Path:
    """Extract a package tarball; return the package folder.

    A package may come from anyone: tarfile's ``data`` filter refuses members with absolute
    paths, ``..``, links pointing outside ``dest`` and device files, so nothing is written
    outside ``dest``. A missing file, a file that is not gzip or not a tar archive, and a
    refused member each give one InputDataError naming the file.
    """
    dest = Path(dest)
    tar_path = Path(tar_path)
    what = f"The replication package {tar_path}"
    if not tar_path.is_file():
        raise InputDataError(f"{what} does not exist (or is not a file). Give the path of a "
                             "replication.tar.gz (results/replication.tar.gz) or of an "
                             "unpacked replication folder.")
    with open(tar_path, "rb") as fh:
        if fh.read(2) != b"\x1f\x8b":
            raise InputDataError(f"{what} is not a gzip file (a .tar.gz starts with the gzip "
                                 "signature). Download it again, or give the unpacked "
                                 "replication folder instead.")
    try:
        with tarfile.open(tar_path, "r:gz") as tar:
            tar.extractall(dest, filter=_safe_member)
    except tarfile.FilterError as exc:
        raise InputDataError(
            f"{what} has a member that would be written outside the folder it is unpacked "
            f"into ({exc}). It was not made by textgauge or was tampered with: do not use "
            "it.") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InputDataError(
            f"{what} is not a complete gzip file ({exc}). Download it again, or give the "
            "unpacked replication folder instead.") from None
    except tarfile.TarError as exc:
        raise InputDataError(
            f"{what} is gzip-compressed but not a tar archive, or is cut short ({exc}). "
            "Download it again, or give the unpacked replication folder instead.") from None
    if not (dest / "replication").is_dir():
        raise InputDataError(f"{what} has no replication/ folder: it is not a textgauge "
                             "replication package.")
    return dest / "replication"


def _safe_member(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's ``data`` filter (no ``..``, no links leaving ``dest``, no device files);
    an absolute member name is refused too (the filter would only strip its slash)."""
    if member.name.startswith(("/", "\\")) or Path(member.name).is_absolute():
        raise tarfile.AbsolutePathError(member)
    return tarfile.data_filter(member, dest)


def _inside(pkg: Path, rel: Any, what: str) -> Path:
    """``pkg / rel`` when ``rel`` is a relative path that stays inside the package folder;
    else an InputDataError naming ``what`` (a replication.json entry)."""
    rel_s = str(rel)
    target = (pkg / rel_s).resolve()
    if Path(rel_s).is_absolute() or not target.is_relative_to(pkg.resolve()):
        raise InputDataError(
            f"{pkg / 'replication.json'}: {what} is {rel_s!r}, a path outside the package "
            "folder. A package only refers to its own files: it was not made by textgauge "
            "or was tampered with, so it is not used.")
    return pkg / rel_s


def _load_package(pkg: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """replication.json and config.yaml of a package, read safely: a missing or broken file,
    a YAML tag (``!!python/object``: yaml.safe_load refuses it) or a model name that is not a
    valid name (it would become a path: ``/abs/path``, ``../x``) is an InputDataError."""
    from textgauge.names import check_name

    index_path, cfg_path = pkg / "replication.json", pkg / "config.yaml"
    for f in (index_path, cfg_path):
        if not f.is_file():
            raise InputDataError(f"{f} does not exist: {pkg} is not a textgauge replication "
                                 "package (it needs replication.json and config.yaml).")
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputDataError(f"{index_path} is not valid JSON ({exc}): the package is "
                             "damaged; download it again.") from None
    try:
        cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputDataError(f"{cfg_path} is not UTF-8 text ({exc}): the package is "
                             "damaged; download it again.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputDataError(
            f"{cfg_path}{where} is not plain YAML: {problem}. A package config holds only "
            "plain values; YAML tags such as !!python/object could run code, so it is not "
            "read. Do not use this package.") from None
    if not isinstance(index, dict) or not isinstance(cfg, dict):
        raise InputDataError(f"{index_path} and {cfg_path} must each hold a mapping: the "
                             "package is damaged; download it again.")
    models = index.get("models")
    if not isinstance(models, list):
        raise InputDataError(f"{index_path} has no list of models: the package is damaged; "
                             "download it again.")
    for m in models:  # a model name becomes a path in the temporary folder: /abs, ../x
        check_name(m, f"{index_path}: models", InputDataError,
                   "A package made by textgauge never has such a name: it was tampered with, "
                   "so it is not used (nothing was written).")
    return index, cfg


def _same(a: Any, b: Any, path: str = "", tol: float = 0.0) -> list[str]:
    """Differences between two JSON-like values (NaN equals NaN; floats within ``tol``)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{path}/{k}: only in {'stored' if k in a else 'recomputed'}")
            else:
                out.extend(_same(a[k], b[k], f"{path}/{k}", tol))
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} entries"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in _same(x, y, f"{path}[{i}]", tol)]
    if isinstance(a, float) and isinstance(b, float):
        if (math.isnan(a) and math.isnan(b)) or a == b or abs(a - b) <= tol:
            return []
        return [f"{path}: {a!r} vs {b!r}"]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return [] if a == b else [f"{path}: {a!r} vs {b!r}"]
    if (a is None and isinstance(b, float) and math.isnan(b)) or \
            (b is None and isinstance(a, float) and math.isnan(a)):
        return []
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def _tables_differ(stored: Path, recomputed: Path) -> list[str]:
    if not stored.exists():
        return []
    if stored.stat().st_size == 0 and recomputed.stat().st_size == 0:
        return []
    try:
        a = read_sheet_csv(stored, keep_default_na=False)
        b = read_sheet_csv(recomputed, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return [] if stored.read_bytes() == recomputed.read_bytes() else [f"{stored.name}: differs"]
    return [] if a.equals(b) else [f"{stored.name}: table differs"]


def revalidate(package_dir: str | Path, tol: float = 0.0) -> dict[str, Any]:
    """Recompute the validation metrics from a package; compare with the stored ones.

    Returns ``{"all_match": bool, "models": {name: {"match", "differences", "kappa",
    "macro_f1", "decision"}}, "human": {"match", "differences"}}``. ``tol=0`` asks for the
    exact numbers (same seeds, same code: they are reproducible).
    """
    from textgauge.steps.validate import evaluate, human_agreement

    pkg = Path(package_dir)
    index, cfg = _load_package(pkg)
    labels = list(cfg["labels"])
    given = cfg.get("validation") or {}
    validation = {k: given.get(k, default) for k, default in
            (("kappa_threshold", 0.7), ("confidence", 0.95), ("bootstrap", 1000))}
    seed = cfg["project"]["seed"]
    strata = cfg["corpus"].get("strata", [])
    # an ordinal codebook: the same weighted kappa and ordinal alpha as the run
    book = cfg.get("codebook") or {}
    scale = {"scale": book.get("scale", "nominal"),
             "kappa_weights": book.get("kappa_weights", "quadratic")}
    result: dict[str, Any] = {"models": {}, "package": str(pkg),
                              "prompts": check_package_prompts(pkg, index, cfg)}
    with tempfile.TemporaryDirectory(prefix="textgauge-revalidate-") as tmp:
        t = Path(tmp)
        human_stored = json.loads((pkg / "metrics/human/metrics.json").read_text())
        human_agreement(codes=str(pkg / "gold/codes.parquet"),
                        sample=str(pkg / "gold/sample.parquet"), truth=None, coders=None,
                        metrics=str(t / "human.json"), pairwise=str(t / "pairwise.csv"),
                        labels=labels, seed=seed, **validation, **scale)
        human_new = json.loads((t / "human.json").read_text())
        stored_cmp = {k: v for k, v in human_stored.items() if k != "simulated_truth"}
        diffs = _same(stored_cmp, human_new, "human", tol)
        result["human"] = {"match": not diffs, "differences": diffs}
        for m in index["models"]:
            out = {f.split(".")[0]: str(t / m / f) for f in METRIC_FILES}
            (t / m).mkdir()
            evaluate(model=m, predictions=str(pkg / f"predictions/{m}.gold.parquet"),
                     reference=str(pkg / "gold/reference.parquet"),
                     codes=str(pkg / "gold/codes.parquet"), sample=str(pkg / "gold/sample.parquet"),
                     human=str(pkg / "metrics/human/metrics.json"), **out, labels=labels,
                     strata=strata, seed=seed, **validation, **scale)
            new = json.loads(Path(out["metrics"]).read_text())
            stored = json.loads((pkg / f"metrics/{m}/metrics.json").read_text())
            # the ledger key names the configuration (settings, training) that made the
            # predictions: provenance, not a number recomputable from the package
            new.pop("ledger_key", None)
            stored.pop("ledger_key", None)
            diffs = _same(stored, new, m, tol)
            for f in METRIC_FILES[1:]:
                diffs += _tables_differ(pkg / "metrics" / m / f, t / m / f)
            result["models"][m] = {"match": not diffs, "differences": diffs,
                                   "kappa": new["kappa"]["kappa"],
                                   "macro_f1": new["macro_f1"]["estimate"],
                                   "decision": new["decision"], "n": new["n_evaluated"]}
    result["all_match"] = result["human"]["match"] and all(
        r["match"] for r in result["models"].values())
    return result


def check_package_prompts(pkg: Path, index: Mapping[str, Any],
                          cfg: Mapping[str, Any]) -> dict[str, str]:
    """Each prompted coder's shipped template must hash to the prompt hash recorded with its
    predictions (index, predictions column, manifest); returns ``{model: prompt hash}``.

    Raises :class:`PromptMismatchError` naming the model, the files and both hashes.
    """
    entries = index.get("predictions") or {}
    out = {}
    for m in index["models"]:
        if m not in cfg.get("models", {}) or not prompted(cfg, m):
            continue
        entry = entries.get(m) or {}
        pfile = _inside(pkg, entry.get("file", f"predictions/{m}.gold.parquet"),
                        f"predictions.{m}.file")
        preds = pd.read_parquet(pfile)
        mpath = pkg / f"manifests/predictions-{m}.json"
        manifest = json.loads(mpath.read_text(encoding="utf-8")) if mpath.exists() else {}
        recorded = recorded_prompt_hashes(preds, manifest)
        if entry.get("prompt_hash"):
            recorded.add(str(entry["prompt_hash"]))
        rel = entry.get("prompt_template") or f"prompts/{Path(cfg['models'][m]['prompt']).name}"
        out[m] = check_prompt(m, str(pfile.relative_to(pkg)),
                              _inside(pkg, rel, f"predictions.{m}.prompt_template"), recorded, cfg,
                              entry.get("few_shot_examples") or [], shown=rel)
    return out


def verify_checksums(package_dir: str | Path) -> list[str]:
    """Files whose SHA-256 differs from replication.json (or that are missing)."""
    pkg = Path(package_dir)
    index, _ = _load_package(pkg)
    bad = []
    for rel, meta in index["files"].items():  # .snakemake_timestamp is not listed
        p = _inside(pkg, rel, "files")
        if not p.exists() or sha256(p) != meta["sha256"]:
            bad.append(rel)
    return bad


def revalidate_cli(argv: Sequence[str] | None = None) -> int:
    """``textgauge revalidate DIR|TARBALL``: recompute and compare; exit 1 on any mismatch."""
    import argparse

    ap = argparse.ArgumentParser(prog="textgauge revalidate", description=revalidate_cli.__doc__)
    ap.add_argument("package", help="replication folder or replication.tar.gz")
    ap.add_argument("--tol", type=float, default=0.0, help="absolute tolerance (default exact)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(args.package)
        if not pkg.is_dir():  # a tarball; unpack names a missing or broken file
            pkg = unpack(pkg, tmp)
        bad = verify_checksums(pkg)
        res = revalidate(pkg, tol=args.tol)
    for m, r in res["models"].items():
        print(f"{m}: kappa={r['kappa']:.4f} macro-F1={r['macro_f1']:.4f} n={r['n']} "
              f"{r['decision']}: {'reproduced' if r['match'] else 'DIFFERS'}")
        for d in r["differences"][:10]:
            print(f"  {d}")
    print(f"human agreement: {'reproduced' if res['human']['match'] else 'DIFFERS'}")
    if bad:
        print(f"checksum mismatch: {', '.join(bad)}")
    return 0 if res["all_match"] and not bad else 1
