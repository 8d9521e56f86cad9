# Stage: gold-standard sample, blinded coding sheets, human codes, human-human agreement.


rule sample_gold:
    message:
        "Drawing the stratified gold-standard sample (n={params.gold[size]})"
    input:
        corpus=rules.ingest_corpus.output.corpus,
        labelled=training_file,
    output:
        sample=f"{RESULTS}/gold/sample.parquet",
        summary=f"{RESULTS}/gold/sample.json",
    params:
        gold=config["gold"],
        training=config["training"],
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
        sheets=expand(f"{RESULTS}/gold/sheets/{{coder}}.csv", coder=CODERS),
        codebook=f"{RESULTS}/gold/sheets/codebook.md",
    params:
        coders=CODERS,
        seed=config["gold"]["seed"],
        codebook=config["labels"],
        instructions=config["codebook"]["instructions"],
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
            sheets=rules.coding_sheets.output.sheets,
            truth=config["gold"]["simulate"]["truth"],
            coders=config["gold"]["simulate"]["coders"],
        output:
            coded=expand(f"{RESULTS}/gold/coded/{{coder}}.csv", coder=CODERS),
            adjudication=f"{RESULTS}/gold/coded/adjudication.csv",
        params:
            coders=CODERS,
            seed=config["gold"]["seed"],
            adjudicator_accuracy=config["gold"]["simulate"].get("adjudicator_accuracy", 0.95),
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
        gold=config["gold"],
        sheet_files=human_code_files(),
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


rule human_agreement:
    message:
        "Human-human agreement (the ceiling)"
    input:
        codes=rules.import_codes.output.codes,
        sample=rules.sample_gold.output.sample,
        truth=lambda w: (config["gold"]["simulate"] or {}).get("truth", []),
        coders=lambda w: (config["gold"]["simulate"] or {}).get("coders", []),
    output:
        metrics=f"{RESULTS}/validation/human/metrics.json",
        pairwise=f"{RESULTS}/validation/human/pairwise.csv",
    params:
        labels=LABELS,
        validation=config["validation"],
        seed=config["project"]["seed"],
    log:
        f"{RESULTS}/logs/human_agreement.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/human_agreement.py"
