"""The replication package: everything a reader needs to check the validation, in one folder.

``build_package`` gathers the effective config, the codebook and prompts, the gold sample and
the human codes, every manifest, each model's predictions on the gold set, the metrics, the
report and methods section, and the conda environment files, writes a README and a checksum
index, and packs the folder into a reproducible ``.tar.gz`` (sorted members, fixed mtimes).

Reading a package back (unpacking it safely, recomputing and comparing its metrics) is
:mod:`textgauge.reporting.revalidation`.

Prompts: each predictions file of a prompted (or LoRA) coder is stored with the prompt hash
it was made with (``replication.json``: ``predictions``; the same hash as the predictions'
``prompt_hash`` column and their manifest), next to the template file and the few-shot
examples that enter the hash. ``build_package`` and ``revalidation.revalidate`` refuse a package whose
shipped template (with the codebook, instructions and examples of ``config.yaml``) does not
hash to it: the package would document a prompt that did not produce its predictions.

No Snakemake import here: ``scripts/replication.py`` is the thin bridge.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from textgauge.data.sheets import write_csv
from textgauge.errors import InputDataError
from textgauge.io import build_manifest, write_text_atomic
from textgauge.secrets import redact_config

PACKAGE_VERSION = 1
FIXED_MTIME = 315532800  # 1980-01-01: tar members get this mtime (reproducible archives)
METRIC_FILES = ("metrics.json", "per_class.csv", "confusion.csv", "per_stratum.csv",
                "vs_coders.csv")


class PromptMismatchError(InputDataError):
    """A package's prompt template does not hash to the prompt hash of its predictions."""


# ------------------------------------------------------------------ prompts and their hashes
def prompted(config: Mapping[str, Any], model: str) -> bool:
    """Whether ``model`` answers from a prompt template (kind prompt or lora)."""
    return (config["models"][model].get("kind") in ("prompt", "lora")
            and bool(config["models"][model].get("prompt")))


def prompt_hash(template: str | Path, config: Mapping[str, Any],
                examples: Sequence[Sequence[str]] = ()) -> str:
    """The prompt hash predictions record (:meth:`PromptTemplate.hash`) for a template file
    with the codebook (``labels``) and ``codebook.instructions`` of ``config``."""
    from textgauge.inference.prompting import PromptTemplate

    instructions = (config.get("codebook") or {}).get("instructions") or ""
    scale = (config.get("codebook") or {}).get("scale") or "nominal"
    return PromptTemplate.from_file(template, dict(config["labels"]), instructions,
                                    [(str(t), str(lab)) for t, lab in examples],
                                    scale=scale).hash()


def few_shot_examples(config: Mapping[str, Any], model: str,
                      pool: str | None) -> list[list[str]]:
    """The few-shot examples a prompted coder was shown (as steps.infer.predict picks them:
    ``few_shot`` per label from the training pool, seeded with the project seed)."""
    per_label = int(config["models"][model].get("few_shot") or 0)
    if not per_label or config["models"][model].get("kind") != "prompt":
        return []
    if not pool:
        raise InputDataError(f"{model}: few_shot is {per_label} but no few-shot pool (training "
                             "data) was given to the replication package.")
    from textgauge.inference.prompting import select_examples

    df = pd.read_parquet(pool)
    chosen = select_examples(list(zip(df["text"], df["label"], strict=True)), per_label,
                             config["project"]["seed"])
    return [[str(t), str(lab)] for t, lab in chosen]


def recorded_prompt_hashes(preds: pd.DataFrame, manifest: Mapping[str, Any]) -> set[str]:
    """Every prompt hash recorded with a predictions file: its column and its manifest."""
    hashes = set()
    if "prompt_hash" in preds.columns:
        hashes |= {str(h) for h in preds["prompt_hash"].dropna().unique()}
    if manifest.get("prompt_hash"):
        hashes.add(str(manifest["prompt_hash"]))
    return hashes


def _mismatch(model: str, predictions: str, template: str, recorded: set[str],
              computed: str | None) -> PromptMismatchError:
    got = f"hashes to {computed}" if computed else "is missing"
    return PromptMismatchError(
        f"{model}: the prompt template {template} {got}, but the predictions {predictions} "
        f"were made with prompt hash {' and '.join(sorted(recorded))}. The package would "
        f"document a prompt that did not produce its predictions: rerun the predictions with "
        f"this template (snakemake reruns them when the template changes) or ship the "
        f"template they were made with.")


def check_prompt(model: str, predictions: str, template: str | Path, recorded: set[str],
                 config: Mapping[str, Any], examples: Sequence[Sequence[str]] = (),
                 shown: str | None = None) -> str:
    """The prompt hash of ``template``; PromptMismatchError unless it is the one recorded.

    ``shown`` is the template's name in messages (its path inside a package)."""
    if len(recorded) > 1:
        raise PromptMismatchError(
            f"{model}: the predictions {predictions} record {len(recorded)} prompt hashes "
            f"({', '.join(sorted(recorded))}): they were made with different prompts.")
    computed = prompt_hash(template, config, examples) if Path(template).exists() else None
    if recorded and computed not in recorded:
        raise _mismatch(model, str(predictions), shown or str(template), recorded, computed)
    return computed or ""


# ------------------------------------------------------------------ building the package
def _copy_baseline_model(model_dir: Path, dst: Path) -> None:
    """A fitted TF-IDF baseline (a few hundred kB of JSON + ``.npz``, no pickle: safe to
    open) goes into the package, so the coder itself can be re-run on new texts
    (:class:`textgauge.training.baseline.BaselinePredictor`). Other models' weights stay out."""
    from textgauge.training.baseline import ARRAYS_FILE, SETTINGS_FILE, VOCABULARY_FILE

    if (model_dir / SETTINGS_FILE).exists():
        for name in (SETTINGS_FILE, VOCABULARY_FILE, ARRAYS_FILE):
            _copy(model_dir / name, dst / name)


def _copy(src: str | Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)
    return dst


def _as_list(x: Any) -> list[str]:
    if not x:
        return []
    return [x] if isinstance(x, (str, Path)) else [str(p) for p in x]


def _plain(obj: Any) -> Any:
    """Snakemake's config holds its own mapping/list types: make it plain YAML."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_package(out_dir: str | Path, out_tar: str | Path | None, config: Mapping[str, Any],
                  models: Sequence[str], *, sample: str, codes: str, reference: str,
                  codes_summary: str, sample_summary: str, ingest_summary: str,
                  codebook: str, human_metrics: str, human_pairwise: str,
                  predictions: Mapping[str, str], prediction_manifests: Mapping[str, str],
                  validation_dirs: Mapping[str, str], report_files: Iterable[str],
                  training_summaries: Iterable[str] = (), human_code_files: Iterable[str] = (),
                  prompt_files: Iterable[str] = (), env_files: Iterable[str] = (),
                  few_shot_pool: str | None = None) -> dict:
    """Write the package folder (and the tarball when ``out_tar`` is given); return its index.

    Each prompted coder's predictions are stored with their prompt hash, template file and
    few-shot examples (drawn from ``few_shot_pool`` as the coder drew them) in the index's
    ``predictions``; a template that does not hash to the predictions' prompt hash stops the
    build (:class:`PromptMismatchError`).
    """
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cfg = redact_config(_plain(config))  # a public package: no URL credential (secrets.py)
    write_text_atomic(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True),
                      out / "config.yaml")
    _copy(codebook, out / "codebook.md")
    for p in prompt_files:
        _copy(p, out / "prompts" / Path(p).name)
    gold = pd.read_parquet(sample)
    gold_ids = set(gold["id"])
    _copy(sample, out / "gold/sample.parquet")
    write_csv(gold, out / "gold/sample.csv")
    _copy(codes, out / "gold/codes.parquet")
    write_csv(pd.read_parquet(codes), out / "gold/codes.csv")
    _copy(reference, out / "gold/reference.parquet")
    for p in human_code_files:
        _copy(p, out / "gold/human_codes" / Path(p).name)
    for name, p in (("ingest.json", ingest_summary), ("sample.json", sample_summary),
                    ("codes.json", codes_summary)):
        _copy(p, out / "manifests" / name)
    for p in training_summaries:
        _copy(p, out / "manifests" / f"training-{Path(p).parent.name}.json")
        _copy_baseline_model(Path(p).parent / "model", out / "models" / Path(p).parent.name)
    _copy(human_metrics, out / "metrics/human/metrics.json")
    _copy(human_pairwise, out / "metrics/human/pairwise.csv")
    stored: dict[str, dict[str, Any]] = {}
    for m in models:
        preds = pd.read_parquet(predictions[m])
        entry: dict[str, Any] = {"file": f"predictions/{m}.gold.parquet", "prompt_hash": None}
        if prompted(cfg, m):
            template = Path(cfg["models"][m]["prompt"])
            examples = few_shot_examples(cfg, m, few_shot_pool)
            manifest = json.loads(Path(prediction_manifests[m]).read_text(encoding="utf-8"))
            recorded = recorded_prompt_hashes(preds, manifest)
            computed = check_prompt(m, predictions[m], template, recorded, cfg, examples)
            _copy(template, out / "prompts" / template.name)
            entry.update(prompt_hash=computed, prompt_template=f"prompts/{template.name}",
                         few_shot_examples=examples)
        stored[m] = entry
        preds = preds.loc[preds["id"].isin(gold_ids)].reset_index(drop=True)
        (out / "predictions").mkdir(exist_ok=True)
        preds.to_parquet(out / f"predictions/{m}.gold.parquet", index=False)
        write_csv(preds.drop(columns=[c for c in ("raw_response",) if c in preds],
                             errors="ignore"), out / f"predictions/{m}.gold.csv")
        _copy(prediction_manifests[m], out / f"manifests/predictions-{m}.json")
        vdir = Path(validation_dirs[m])
        for f in METRIC_FILES:
            if (vdir / f).exists():
                _copy(vdir / f, out / "metrics" / m / f)
    for p in report_files:
        name = Path(p).name
        dst = out / ("manifests/report.json" if name == "manifest.json" else f"report/{name}")
        _copy(p, dst)
        if name == "methods.md":
            _copy(p, out / "methods.md")
    for p in env_files:
        _copy(p, out / "envs" / Path(p).name)
    write_text_atomic(readme_text(cfg, models), out / "README.md")
    files = sorted(p for p in out.rglob("*") if p.is_file())
    index = {
        "textgauge_replication_package": PACKAGE_VERSION,
        "models": list(models),
        # the prompt each predictions file was made with (hash, template, few-shot examples)
        "predictions": stored,
        "created_by": build_manifest("replication", cfg),
        "files": {str(p.relative_to(out)): {"sha256": sha256(p), "bytes": p.stat().st_size}
                  for p in files},
    }
    write_text_atomic(json.dumps(index, indent=2, default=str), out / "replication.json")
    if out_tar:
        pack(out, out_tar)
    return index


def pack(folder: str | Path, out_tar: str | Path, arcroot: str = "replication") -> None:
    """A reproducible tar.gz: sorted members, fixed owner and mtime, gzip without a timestamp."""
    folder = Path(folder)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        # Snakemake drops a .snakemake_timestamp into directory() outputs: not package content
        for p in [folder, *sorted(q for q in folder.rglob("*")
                                  if not q.name.startswith(".snakemake"))]:
            rel = p.relative_to(folder)
            info = tar.gettarinfo(str(p), arcname=str(Path(arcroot) / rel) if str(rel) != "."
                                  else arcroot)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = FIXED_MTIME
            info.mode = 0o755 if p.is_dir() else 0o644
            if p.is_file():
                with open(p, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    tmp = Path(str(out_tar) + ".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                               mtime=0) as gz:
        gz.write(buf.getvalue())
    tmp.replace(out_tar)


def readme_text(config: Mapping[str, Any], models: Sequence[str]) -> str:
    synth = ("\n**The data are SYNTHETIC** (simulated texts and coders): the package shows the "
             "procedure, not a substantive finding.\n" if config.get("project", {})
             .get("synthetic") else "")
    from textgauge.escaping import md_escape

    rows = "\n".join(f"| {md_escape(m)} | {md_escape(config['models'][m].get('kind'))} | "
                     + md_escape(config['models'][m].get('model')
                                 or config['models'][m].get('base_model')) + " |"
                     for m in models)
    project = md_escape(config.get('project', {}).get('name', 'textgauge project'))
    return f"""# Replication package: {project}
{synth}
Made by textgauge. It holds what is needed to check the measurement validation of the
machine coders below against the human coders, and to re-run the whole pipeline.

| model | kind | model / base model |
|---|---|---|
{rows}

## Contents

- `config.yaml` - the effective configuration of the run (defaults filled in).
- `codebook.md` - label definitions and coding instructions as the coders saw them;
  `prompts/` - the prompt templates of prompted models.
- `gold/sample.parquet|csv` - the stratified gold-standard sample (ids, texts, strata,
  inclusion probabilities); `gold/codes.parquet|csv` - every human code (id, coder, label);
  `gold/reference.parquet` - the reference label per item and how it was reached;
  `gold/human_codes/` - the filled coding sheets as they came back.
- `predictions/MODEL.gold.parquet|csv` - each model's predictions on the gold sample.
- `metrics/MODEL/` - agreement and classification metrics (metrics.json with CIs, per class,
  per stratum, against each coder, confusion matrix); `metrics/human/` - human-human agreement.
- `report/` - the HTML validation report, methods section (markdown, LaTeX);
  `methods.md` - the methods section.
- `manifests/` - what produced each output: package versions, model revisions, prompt
  hashes, config hash, seeds, git commit, dates.
- `models/MODEL/` - a fitted TF-IDF + logistic-regression baseline (JSON + `.npz`, no
  pickle); `textgauge.training.baseline.BaselinePredictor('models/MODEL')` re-runs it.
- `envs/` - the conda environments of the pipeline's rules.
- `replication.json` - SHA-256 checksums of every file.

## Re-run the validation (minutes, no model needed)

```bash
pip install textgauge            # or: pip install -e . in a textgauge checkout
python -c "from textgauge.reporting.revalidation import revalidate; import json; \\
print(json.dumps(revalidate('.'), indent=1))"      # run inside this folder
```

`revalidate` recomputes every model's metrics from `predictions/` and `gold/` with the
same functions, seeds and settings (`config.yaml`: validation, labels, strata, project seed)
and reports, per model, whether every number matches `metrics/` exactly (`all_match`).

## Re-run the full pipeline

1. Check out textgauge at the commit in `manifests/report.json` (`git_commit`); install it
   (`pip install -e .`, CPU machines: `pip install torch==2.13.0` first) or use the conda
   environments in `envs/` (`snakemake --sdm conda`).
2. Put the corpus, the filled coding sheets and the training data where `config.yaml`
   (`corpus.path`, `gold.codes`, `training.labelled`) expects them; the corpus itself is not
   in this package (licence, size) unless you add it.
3. `snakemake --cores 8 --configfile replication/config.yaml` (on SLURM:
   `--workflow-profile profiles/slurm`, see docs/cluster.md). Seeds are in the config;
   model revisions and package versions are in `manifests/`. GPU kernels are not bitwise
   deterministic: fine-tuned models may differ in the last digits; the gold-set validation of
   the predictions in this package is exactly reproducible.
"""
