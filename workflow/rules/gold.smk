# Stage: gold-standard sample, blinded coding sheets, human codes (human-human agreement: validate.smk).


rule sample_gold:
    message:
        "Drawing the {params.design} gold-standard sample (n={params.size})"
    input:
        # gold.design model_assisted (or a first pass named to compare the designs): the
        # first pass's corpus predictions and the split it was trained on (common.smk)
        unpack(first_pass_inputs),
        corpus=rules.ingest_corpus.output.corpus,
        labelled=training_file,
    output:
        sample=f"{RESULTS}/gold/sample.parquet",
        summary=f"{RESULTS}/gold/sample.json",
    params:
        size=lookup(dpath="gold/size", within=config),
        strata=lookup(dpath="gold/strata", within=config),
        seed=lookup(dpath="gold/seed", within=config),
        min_per_stratum=lookup(dpath="gold/min_per_stratum", within=config),
        design=lookup(dpath="gold/design", within=config),
        first_pass=FIRST_PASS,
        confidence_bands=lookup(dpath="gold/confidence_bands", within=config),
        min_per_label=lookup(dpath="gold/min_per_label", within=config),
        id_column=lookup(dpath="training/id_column", within=config),
        exclude_from_gold=lookup(dpath="training/exclude_from_gold", within=config),
        labels=LABELS,
    log:
        f"{RESULTS}/logs/sample_gold.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/sample_gold.py"


rule coding_sheets:
    message:
        "Writing blinded coding sheets for {params.coders}"
    input:
        sample=rules.sample_gold.output.sample,
    output:
        # gold.sheet_formats: CSV and/or XLSX sheets (an empty list when a format is off)
        sheets=coder_sheets(f"{RESULTS}/gold/sheets", "csv"),
        workbooks=coder_sheets(f"{RESULTS}/gold/sheets", "xlsx"),
        codebook=f"{RESULTS}/gold/sheets/codebook.md",
        summary=f"{RESULTS}/gold/sheets.json",
    params:
        coders=CODERS,
        seed=lookup(dpath="gold/seed", within=config),
        labels=config["labels"],
        instructions=lookup(dpath="codebook/instructions", within=config),
    log:
        f"{RESULTS}/logs/coding_sheets.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/coding_sheets.py"


if config["gold"].get("simulate"):

    rule simulate_coding:
        message:
            "SYNTHETIC example: simulated coders fill the blinded sheets"
        input:
            sheets=rules.coding_sheets.output.sheets or rules.coding_sheets.output.workbooks,
            truth=lookup(dpath="gold/simulate/truth", within=config),
            confusions=lookup(dpath="gold/simulate/coders", within=config),
        output:
            coded=expand(f"{RESULTS}/gold/coded/{{coder}}.csv", coder=CODERS),
            adjudication=f"{RESULTS}/gold/coded/adjudication.csv",
        params:
            coders=CODERS,
            seed=lookup(dpath="gold/seed", within=config),
            adjudicator_accuracy=lookup(
                dpath="gold/simulate/adjudicator_accuracy", within=config
            ),
        log:
            f"{RESULTS}/logs/simulate_coding.log",
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        conda:
            "../../envs/core.yaml"
        script:
            "../../scripts/simulate_coding.py"


rule import_codes:
    message:
        "Importing and validating the human codes"
    input:
        sample=rules.sample_gold.output.sample,
        sheets=lambda w: list(human_code_files().values()),
        long=long_codes_file,
        adjudication=adjudication_file,
    output:
        codes=f"{RESULTS}/gold/codes.parquet",
        reference=f"{RESULTS}/gold/reference.parquet",
        adjudication_sheet=f"{RESULTS}/gold/adjudication_sheet.csv",
        summary=f"{RESULTS}/gold/codes.json",
    params:
        labels=LABELS,
        coders=CODERS,
        lead_coder=lookup(dpath="gold/lead_coder", within=config),
        codes_long=lookup(dpath="gold/codes_long", within=config),
        sheet_files=human_code_files(),
        ties=lookup(dpath="gold/ties", within=config),
        seed=lookup(dpath="gold/seed", within=config),
        # not an output: written when ties stop the run, so it survives the failed job
        to_adjudicate=f"{RESULTS}/gold/to_adjudicate.csv",
    log:
        f"{RESULTS}/logs/import_codes.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/import_codes.py"

