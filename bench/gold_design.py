"""Gold design evidence (issue 16): proportional vs model_assisted, simulated and real.

Why: a model-assisted gold sample is only worth its complexity if, with the same number of
gold items, the rare label's F1 and the kappa get narrower CIs *and* the design-weighted
estimates still land on the corpus values. Two checks:

``--simulate``: the known-truth simulation of ``tests/stats/test_design_simulation.py``
(20,000 texts, rare label at 3%, a class-balanced first pass that is itself the coder
evaluated; 1,000 studies of 300 gold items): coverage, median CI widths, bias, for
proportional, model_assisted weighted and the same samples unweighted.

``--real`` (default): the shared manifesto corpus (Benoit et al. 2016, every sentence
crowd-coded; ../shared/data/benoit2016_immigration/sentences.csv, or ``--data``). The 7,206 non-gold
manifesto sentences (CrowdFlower test questions and screeners left out) are split, seeded,
into a labelled half (trains the first pass: TF-IDF + logistic regression with balanced
class weights, :func:`textgauge.training.baseline.fit_baseline`; tied sentences are not
training examples) and an eligible half, which the first pass predicts. 300 gold sentences
are drawn from the eligible half under ``proportional`` (stratified by party,
:func:`textgauge.data.gold.sample_gold`) and ``model_assisted`` (predicted label x 3
confidence bands x party, :func:`textgauge.data.design.sample_model_assisted`). The first
pass is scored against the crowd majority label; sentences whose crowd vote is tied are left
out and counted (their cell's weight moves to its other items,
:func:`textgauge.stats.design.gold_design`). Printed: immigration F1 and kappa with 95% CIs
for one draw, the median CI widths, mean estimates and coverage of the corpus values over
``--draws`` draws, and the corpus (eligible half) values themselves.

Run (from the repository root)::

    .venv/bin/python bench/gold_design.py                 # the real data, 50 draws
    .venv/bin/python bench/gold_design.py --simulate      # the simulation (about a minute)
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from textgauge.data.design import sample_model_assisted  # noqa: E402
from textgauge.data.gold import sample_gold  # noqa: E402
from textgauge.options import BaselineModel  # noqa: E402
from textgauge.planning.gold_design import (  # noqa: E402
    plan_designs,
    plan_table,
    simulate_known_truth,
    simulated_corpus,
    simulation_table,
)
from textgauge.stats.design import gold_design  # noqa: E402
from textgauge.stats.weighted import weighted_metrics  # noqa: E402
from textgauge.training.baseline import (  # noqa: E402
    fit_baseline,
    predictions_table,
    probabilities,
)

#: the shared data folder beside the checkout (as the Makefile's REAL_DATA)
DATA = (Path(__file__).resolve().parents[2] / "shared/data/benoit2016_immigration"
        / "sentences.csv")
LABELS = ["immigration", "not_immigration"]
RARE = "immigration"
#: the analyses compared on the real data: (name, design, strata, weighted)
ANALYSES = (("proportional (party)", "proportional", ["party"], True),
            ("model_assisted (x party)", "model_assisted", ["party"], True),
            ("model_assisted (x party), unweighted", "model_assisted", ["party"], False),
            ("model_assisted (no strata)", "model_assisted", [], True))


def load(path: Path) -> pd.DataFrame:
    """The non-gold manifesto sentences: id, text, party, truth (crowd majority or tie)."""
    df = pd.read_csv(path)
    df = df.loc[(df["is_gold"] == 0) & (df["is_screener"] == 0) & df["party"].notna()]
    return pd.DataFrame({"id": df["sentence_id"].astype(str), "text": df["text"].astype(str),
                         "party": df["party"].astype(str),
                         "truth": df["majority_label"].astype(str)}).reset_index(drop=True)


def first_pass(corpus: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Split in halves (seeded); train the baseline on one; predict the other (eligible)."""
    rng = np.random.default_rng(seed)
    labelled = rng.random(len(corpus)) < 0.5
    train = corpus.loc[labelled & (corpus["truth"] != "tie"), ["id", "text", "truth"]]
    train = train.rename(columns={"truth": "label"})
    val = train.iloc[:0]
    cfg = BaselineModel.from_dict({"kind": "baseline", "class_weights": "balanced"},
                                  "models.baseline")
    pipe, summary = fit_baseline(train, val, LABELS, cfg)
    eligible = corpus.loc[~labelled].reset_index(drop=True)
    probs = probabilities(pipe.named_steps["tfidf"], pipe.named_steps["logreg"],
                          eligible["text"].tolist(), len(LABELS))
    return eligible, predictions_table(eligible["id"].tolist(), probs, LABELS), summary


def draw(eligible: pd.DataFrame, preds: pd.DataFrame, design: str, strata: list[str],
         size: int, seed: int) -> pd.DataFrame:
    """One gold sample of the eligible half under ``design``."""
    corpus = eligible[["id", "text", "party"]]
    if design == "proportional":
        return sample_gold(corpus, size, strata, seed)
    return sample_model_assisted(corpus, preds, size, strata, seed, model="baseline")[0]


def score(sample: pd.DataFrame, eligible: pd.DataFrame, preds: pd.DataFrame,
          weighted: bool, n_boot: int, seed: int) -> dict:
    """The first pass against the crowd majority on the gold sample (ties left out)."""
    truth = eligible.set_index("id")["truth"]
    pred = preds.set_index("id")["label"]
    ids = sample["id"].astype(str)
    keep = ids[truth.loc[ids].to_numpy() != "tie"]
    d = gold_design(keep, sample)
    w, cells = (d.weights, d.cells) if weighted else (None, None)
    m = weighted_metrics(truth.loc[keep].to_numpy(), pred.loc[keep].to_numpy(), LABELS,
                         design_weights=w, cells=cells, n_boot=n_boot, seed=seed)
    s = m.summary()
    f1 = next(c for c in s["per_class"] if c["label"] == RARE)
    return {"kappa": s["kappa"]["estimate"], "kappa_lo": s["kappa"]["ci_low"],
            "kappa_hi": s["kappa"]["ci_high"], "f1": f1["f1"], "f1_lo": f1["ci_low"],
            "f1_hi": f1["ci_high"], "n": m.n, "ties": int(len(ids) - len(keep)),
            "n_rare": int((truth.loc[keep] == RARE).sum()),
            "n_pred_rare": int((pred.loc[keep] == RARE).sum())}


def real(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    corpus = load(args.data)
    eligible, preds, summary = first_pass(corpus, args.split_seed)
    ok = eligible["truth"] != "tie"
    full = weighted_metrics(eligible.loc[ok, "truth"], preds.loc[ok.to_numpy(), "label"],
                            LABELS, n_boot=1)
    target = {"kappa": full.estimates["kappa"],
              "f1": float(full.f1[list(full.scored).index(RARE)])}
    print(f"Manifesto corpus: {len(corpus)} non-gold sentences; labelled half "
          f"{summary['n_train']} (train, ties dropped), eligible half {len(eligible)} "
          f"({int((eligible['truth'] == RARE).sum())} immigration, "
          f"{int((~ok).sum())} ties); first pass predicts immigration for "
          f"{int((preds['label'] == RARE).sum())}.")
    print(f"Corpus (eligible half, ties left out) values of the first pass: kappa "
          f"{target['kappa']:.3f}, immigration F1 {target['f1']:.3f}.\n")
    rows, per_draw = [], {a[0]: [] for a in ANALYSES}
    for i in range(args.draws):
        for j, (name, design, strata, weighted) in enumerate(ANALYSES):
            smp = draw(eligible, preds, design, strata, args.size, args.seed + i)
            per_draw[name].append(score(smp, eligible, preds, weighted, args.n_boot,
                                        seed=10_000 * (j + 1) + i))
    print(f"One draw (seed {args.seed}), {args.size} gold sentences, 95% CIs "
          f"({args.n_boot} bootstrap replicates):")
    print(f"  {'analysis':<38} {'n':>4} {'ties':>4} {'imm':>4} {'kappa [95% CI]':>22} "
          f"{'immigration F1 [95% CI]':>26}")
    for name, _, _, _ in ANALYSES:
        r = per_draw[name][0]
        print(f"  {name:<38} {r['n']:>4} {r['ties']:>4} {r['n_rare']:>4} "
              f"{r['kappa']:>7.3f} [{r['kappa_lo']:.3f}, {r['kappa_hi']:.3f}] "
              f"{r['f1']:>10.3f} [{r['f1_lo']:.3f}, {r['f1_hi']:.3f}]")
    print(f"\nOver {args.draws} draws: median CI width, mean estimate, coverage of the "
          "corpus value, mean gold items that are immigration (crowd) / predicted so:")
    print(f"  {'analysis':<38} {'w kappa':>7} {'w F1':>6} {'mean kappa':>10} "
          f"{'mean F1':>7} {'cov kappa':>9} {'cov F1':>6} {'imm':>5} {'pred':>5}")
    for name, _, _, _ in ANALYSES:
        d = pd.DataFrame(per_draw[name])
        rows.append(d)
        wk, wf = (d["kappa_hi"] - d["kappa_lo"]).median(), (d["f1_hi"] - d["f1_lo"]).median()
        ck = ((d["kappa_lo"] <= target["kappa"]) & (target["kappa"] <= d["kappa_hi"])).mean()
        cf = ((d["f1_lo"] <= target["f1"]) & (target["f1"] <= d["f1_hi"])).mean()
        print(f"  {name:<38} {wk:>7.3f} {wf:>6.3f} {d['kappa'].mean():>10.3f} "
              f"{d['f1'].mean():>7.3f} {ck:>9.2f} {cf:>6.2f} {d['n_rare'].mean():>5.1f} "
              f"{d['n_pred_rare'].mean():>5.1f}")
    if not args.no_plan:
        strata = eligible[["id", "party"]]
        plan = plan_designs(preds, LABELS, args.size, strata_frame=strata,
                            studies=args.plan_studies, seed=args.seed)
        print("\nPlanning from the first pass alone (textgauge samplesize design; assumes "
              "it is calibrated):")
        print(plan_table(plan))
        print(plan["recommendation"])
    print(f"\n({time.perf_counter() - t0:.0f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--simulate", action="store_true", help="the known-truth simulation")
    ap.add_argument("--studies", type=int, default=1000, help="simulated studies")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--size", type=int, default=300)
    ap.add_argument("--draws", type=int, default=50, help="gold draws on the real data")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--split-seed", type=int, default=2016)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--plan-studies", type=int, default=200)
    ap.add_argument("--no-plan", action="store_true", help="skip the planning table")
    args = ap.parse_args()
    if args.simulate:
        t0 = time.perf_counter()
        corpus = simulated_corpus(20_000, (0.03, 0.57, 0.40), signal=2.5, seed=0)
        sim = simulate_known_truth(corpus, ["rare", "a", "b"], size=300,
                                   studies=args.studies, n_bands=3, n_boot=500, seed=1000)
        print(simulation_table(sim))
        print(f"({time.perf_counter() - t0:.0f} s)")
        return
    real(args)


if __name__ == "__main__":
    main()
