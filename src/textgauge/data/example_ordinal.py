"""Seeded generator of the bundled SYNTHETIC ordinal example: stance on local policies on a
5-point scale (strongly_oppose < oppose < neutral < support < strongly_support).

Why: an ordinal codebook (``codebook.scale: ordinal``) needs an example with known truth in
which errors have a size: two simulated coders whose confusion matrices put most errors one
step away from the true point (as human coders of a stance scale do), so the weighted kappa,
the ordinal alpha and the off-by-one rate the workflow reports can be checked against the
known population values (:func:`textgauge.data.example.true_kappa` with weights).

The texts are short statements with a cue phrase per scale point, some hedged (a softening
clause), some mixed (a clause of the neighbouring point first), some short and vague; the
share of each point differs by source. Deterministic given the seed:
``textgauge example --ordinal --out DIR`` rewrites ``resources/example_ordinal/`` byte for
byte (a test checks this).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from textgauge.data.example import sentence, simulate_codes, write_confusions
from textgauge.data.sheets import write_input_csv

#: the scale, lowest first (the codebook order is the scale order)
SCALE = ("strongly_oppose", "oppose", "neutral", "support", "strongly_support")

CODEBOOK = {
    "strongly_oppose": "The speaker rejects the policy outright and wants it stopped.",
    "oppose": "The speaker leans against the policy: doubts, reservations, more harm than good.",
    "neutral": "The speaker takes no side: weighs both sides, withholds judgement, or only "
    "describes the policy.",
    "support": "The speaker leans in favour of the policy: welcomes it, with or without "
    "reservations.",
    "strongly_support": "The speaker backs the policy wholeheartedly and wants it now.",
}

INSTRUCTIONS = ("Code the stance of the speaker towards the policy named in the text, on the "
                "scale from strongly_oppose to strongly_support.")

SOURCES = ("council", "press", "social")
TOPICS = (
    "the congestion charge", "the cycle lane scheme", "the wind farm", "the library closure plan",
    "the housing estate plan", "the parking fee rise", "the school merger", "the tram extension",
    "the night-time noise rule", "the market hall renovation", "the bus lane scheme",
    "the tourist tax",
)

CUES = {
    "strongly_oppose": [
        "{topic} is a disaster and must be scrapped immediately",
        "I will fight {topic} with everything I have",
        "there is nothing to be said for {topic}; it has to be stopped",
        "{topic} is the worst idea this council has had in decades",
        "{topic} is an outrage and I will never accept it",
    ],
    "oppose": [
        "I have serious doubts about {topic}",
        "on balance, {topic} does more harm than good",
        "I am not convinced that {topic} is the right approach",
        "{topic} should be reconsidered before it goes any further",
        "I lean against {topic} as it stands",
    ],
    "neutral": [
        "there are arguments on both sides of {topic}",
        "it is too early to judge {topic}",
        "{topic} has benefits and costs that roughly cancel out",
        "I want to see the evidence on {topic} before taking a view",
        "{topic} will be discussed at next month's meeting",
    ],
    "support": [
        "{topic} is a sensible step forward",
        "on balance I welcome {topic}",
        "{topic} deserves a fair chance",
        "I am broadly in favour of {topic}",
        "{topic} looks like a reasonable plan to me",
    ],
    "strongly_support": [
        "{topic} is exactly what this town needs, and it cannot come soon enough",
        "I wholeheartedly back {topic}",
        "{topic} is the best decision we have made in years",
        "everyone should get behind {topic} without hesitation",
        "I am thrilled about {topic} and will campaign for it",
    ],
}

HEDGES = ("although some questions remain", "if the details are right",
          "even if I understand the other view", "though time will tell")
SHORT = ("{topic}. Hmm.", "Not sure what to make of {topic}.", "{topic}, again.",
         "Thoughts on {topic}?")
OPENERS = {"council": ("Chair, ", "Colleagues, ", "Speaking for my ward, ", ""),
           "press": ("Asked about it, she said ", "In a statement: ", "Quote: ", ""),
           "social": ("honestly ", "ok so ", "thread: ", "")}

#: share of each hardness kind
KINDS = {"plain": 0.6, "hedged": 0.2, "mixed": 0.12, "short": 0.08}

#: share of each scale point by source (the council polarises, social media more so)
SOURCE_PREVALENCE = {
    "council": (0.15, 0.20, 0.25, 0.25, 0.15),
    "press": (0.08, 0.22, 0.40, 0.22, 0.08),
    "social": (0.30, 0.15, 0.10, 0.15, 0.30),
}

#: the simulated coders (rows: true point, columns: coded point): most errors one step away
CODER_CONFUSION = {
    "coder_a": np.array([
        [0.84, 0.13, 0.03, 0.00, 0.00],
        [0.08, 0.80, 0.10, 0.02, 0.00],
        [0.01, 0.09, 0.80, 0.09, 0.01],
        [0.00, 0.02, 0.10, 0.80, 0.08],
        [0.00, 0.00, 0.03, 0.13, 0.84],
    ]),
    "coder_b": np.array([
        [0.72, 0.22, 0.05, 0.01, 0.00],
        [0.14, 0.66, 0.16, 0.03, 0.01],
        [0.02, 0.15, 0.66, 0.15, 0.02],
        [0.01, 0.03, 0.16, 0.66, 0.14],
        [0.00, 0.01, 0.05, 0.22, 0.72],
    ]),
}


@dataclass(frozen=True)
class OrdinalExampleSpec:
    """Sizes of the synthetic ordinal example."""

    n_texts: int = 600
    n_labelled: int = 240  # the labelled pool (coded once, by coder_a) used for training
    seed: int = 20261206


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[rng.integers(len(options))]


def _compose(rng: np.random.Generator, point: str, kind: str, topic: str, source: str) -> str:
    opener = _pick(rng, OPENERS[source])
    if kind == "short":
        return sentence(_pick(rng, SHORT).format(topic=topic))
    cue = _pick(rng, CUES[point]).format(topic=topic)
    if kind == "hedged":
        return sentence(f"{opener}{cue}, {_pick(rng, HEDGES)}")
    if kind == "mixed":  # a clause of a neighbouring point, then the speaker's own
        i = SCALE.index(point)
        j = i + (1 if i == 0 else -1 if i == len(SCALE) - 1 else int(rng.choice([-1, 1])))
        other = _pick(rng, CUES[SCALE[j]]).format(topic=topic)
        return sentence(f"Some say {other}") + " " + sentence(f"{opener}but in the end, {cue}")
    return sentence(opener + cue)


def generate_corpus(spec: OrdinalExampleSpec = OrdinalExampleSpec()) -> pd.DataFrame:
    """The synthetic corpus with its true scale points and kinds (truth columns included)."""
    rng = np.random.default_rng(spec.seed)
    kinds = list(KINDS)
    kind_p = np.array(list(KINDS.values()))
    rows = []
    for i in range(spec.n_texts):
        source = SOURCES[rng.integers(len(SOURCES))]
        point = SCALE[rng.choice(len(SCALE), p=np.array(SOURCE_PREVALENCE[source]))]
        kind = kinds[rng.choice(len(kinds), p=kind_p)]
        topic = _pick(rng, TOPICS)
        rows.append({"id": f"st{i + 1:04d}", "text": _compose(rng, point, kind, topic, source),
                     "source": source, "true_label": point, "kind": kind})
    return pd.DataFrame(rows)


def write_ordinal_example(out: str | Path,
                          spec: OrdinalExampleSpec = OrdinalExampleSpec()) -> dict[str, Path]:
    """Write the example's files: corpus, labelled pool, truth and the coders' matrices."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = generate_corpus(spec)
    rng = np.random.default_rng(spec.seed + 1)
    labelled_idx = np.sort(rng.choice(len(corpus), size=spec.n_labelled, replace=False))
    pool = corpus.iloc[labelled_idx][["id", "true_label"]].set_index("id")["true_label"]
    labelled = simulate_codes(pool, "coder_a", spec.seed, CODER_CONFUSION,
                              SCALE).rename("label").reset_index()
    paths = {"corpus": out / "corpus.csv", "labelled": out / "labelled_pool.csv",
             "truth": out / "truth.csv", "coders": out / "simulated_coders.csv"}
    write_input_csv(corpus[["id", "text", "source"]], paths["corpus"])
    write_input_csv(labelled, paths["labelled"])
    write_input_csv(corpus[["id", "true_label", "kind"]], paths["truth"])
    write_confusions(CODER_CONFUSION, SCALE, paths["coders"])
    return paths
