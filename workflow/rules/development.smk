# Stage: a development sample for prompt iteration (gold.development_size > 0; off by default).
# Iterating a prompt on the gold set overfits the test set: the development sample is drawn
# apart from gold (same eligibility, every gold id excluded, stratified the same way), coded
# the same way, and evaluated without a ledger entry (the ledger counts gold evaluations only).
# Every rule is a `use rule ... with:` variant of its gold version (restating what differs).
# Target: `snakemake development` (not part of `rule all`).

use rule sample_gold as sample_development with:
    message:
        "Drawing the development sample apart from gold (n={params.size})"
    input:
        corpus=rules.ingest_corpus.output.corpus,
        labelled=training_file,
        gold=rules.sample_gold.output.sample,
    output:
        sample=f"{DEV}/sample.parquet",
        summary=f"{DEV}/sample.json",
    params:
        size=DEV_SIZE,
        seed=DEV_SEED,
        labels=[],  # no gold-size advice for a development sample
    log:
        f"{RESULTS}/logs/development/sample.log",


use rule coding_sheets as development_sheets with:
    message:
        "Writing blinded development coding sheets for {params.coders}"
    input:
        sample=rules.sample_development.output.sample,
    output:
        sheets=coder_sheets(f"{DEV}/sheets", "csv"),
        workbooks=coder_sheets(f"{DEV}/sheets", "xlsx"),
        codebook=f"{DEV}/sheets/codebook.md",
        summary=f"{DEV}/sheets.json",
    params:
        seed=DEV_SEED,
    log:
        f"{RESULTS}/logs/development/sheets.log",


if config["gold"].get("simulate"):

    use rule simulate_coding as simulate_development_coding with:
        message:
            "SYNTHETIC example: simulated coders fill the development sheets"
        input:
            sheets=rules.development_sheets.output.sheets
            or rules.development_sheets.output.workbooks,
            truth=lookup(dpath="gold/simulate/truth", within=config),
            confusions=lookup(dpath="gold/simulate/coders", within=config),
        output:
            coded=expand(f"{DEV}/coded/{{coder}}.csv", coder=CODERS),
            adjudication=f"{DEV}/coded/adjudication.csv",
        params:
            seed=DEV_SEED,
        log:
            f"{RESULTS}/logs/development/simulate_coding.log",


use rule import_codes as import_development_codes with:
    message:
        "Importing and validating the development codes"
    input:
        sample=rules.sample_development.output.sample,
        sheets=lambda w: list(development_code_files().values()),
        adjudication=development_adjudication_file,
    output:
        codes=f"{DEV}/codes.parquet",
        reference=f"{DEV}/reference.parquet",
        adjudication_sheet=f"{DEV}/adjudication_sheet.csv",
        summary=f"{DEV}/codes.json",
    params:
        codes_long=None,  # development codes come as sheets (gold.development_codes)
        sheet_files=development_code_files(),
        seed=DEV_SEED,
        to_adjudicate=f"{DEV}/to_adjudicate.csv",
        adjudication_option="gold.development_adjudication",
    log:
        f"{RESULTS}/logs/development/import_codes.log",


use rule human_agreement as development_human_agreement with:
    message:
        "Human-human agreement on the development sample"
    input:
        codes=rules.import_development_codes.output.codes,
        sample=rules.sample_development.output.sample,
        truth=lambda w: (config["gold"]["simulate"] or {}).get("truth", []),
        coders=lambda w: (config["gold"]["simulate"] or {}).get("coders", []),
    output:
        metrics=f"{DEV}/human/metrics.json",
        pairwise=f"{DEV}/human/pairwise.csv",
    log:
        f"{RESULTS}/logs/development/human_agreement.log",


use rule predict_gold as predict_development with:
    message:
        "{wildcards.model}: classifying the development sample"
    input:
        texts=rules.sample_development.output.sample,
        trained=model_artifact,
        few_shot_pool=few_shot_pool,
        prompt=prompt_file,
        submitted=lambda w: batch_receipt(w, "development"),
        server=model_server,
    output:
        predictions=f"{RESULTS}/predictions/{{model}}/development.parquet",
    log:
        f"{RESULTS}/logs/predict/{{model}}/development.log",


use rule evaluate as evaluate_development with:
    message:
        "{wildcards.model}: agreement and classification metrics on the development sample"
    input:
        predictions=rules.predict_development.output.predictions,
        reference=rules.import_development_codes.output.reference,
        codes=rules.import_development_codes.output.codes,
        sample=rules.sample_development.output.sample,
        # the development coders' own agreement: no dependency on the gold codes
        human=rules.development_human_agreement.output.metrics,
        training=model_artifact,
    output:
        metrics=f"{DEV}/{{model}}/metrics.json",
        per_class=f"{DEV}/{{model}}/per_class.csv",
        confusion=f"{DEV}/{{model}}/confusion.csv",
        per_stratum=f"{DEV}/{{model}}/per_stratum.csv",
        vs_coders=f"{DEV}/{{model}}/vs_coders.csv",
    params:
        ledger=None,  # the gold-set ledger counts gold evaluations only
        evaluated_on="development",
    log:
        f"{RESULTS}/logs/development/evaluate/{{model}}.log",


rule development:
    message:
        "Development metrics of every model (prompt iteration; the gold set stays untouched)"
    input:
        development_targets,
