"""Seeded generator of the bundled SYNTHETIC example: parliamentary speech excerpts in four frames.

Why synthetic: the demo must run offline with known truth, so the report can show that the
workflow recovers the true human-human agreement. The texts are realistically hard for a
classifier: mixed frames (a secondary cue from another frame), indirect reporting ("the
minister claims ..." where the speaker's own frame differs), negation ("this is not about
jobs, it is about ..."), irony, short ambiguous lines, and unequal class sizes that differ by
party and period.

Two simulated human coders code items with known confusion matrices (rows: true frame,
columns: coded frame), independently given the true frame. Their true Cohen's kappa is
therefore known exactly (:func:`true_kappa`), and the report puts it next to the estimate.

Everything here is deterministic given the seed: ``textgauge example --out DIR`` rewrites the
files in ``resources/example/`` byte for byte (a test checks this).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from textgauge.data.sheets import write_input_csv

FRAMES = ("economic", "moral", "security", "rights")

CODEBOOK = {
    "economic": "The speaker frames the issue mainly in terms of costs, jobs, growth, taxes, "
    "prices, budgets or prosperity.",
    "moral": "The speaker frames the issue mainly as a question of right and wrong, duty, "
    "fairness, compassion, values or decency.",
    "security": "The speaker frames the issue mainly in terms of threats, crime, safety, "
    "borders, defence or public order.",
    "rights": "The speaker frames the issue mainly in terms of individual rights, civil "
    "liberties, equality before the law, privacy or discrimination.",
}

INSTRUCTIONS = (
    "Code the frame the speaker uses, not frames the speaker reports or rejects. "
    "If the speaker quotes an opponent's frame to dismiss it, code the speaker's own frame."
)

PARTIES = ("Progressive", "Conservative", "Liberal", "Green")
PERIODS = ("2010-2014", "2015-2019", "2020-2024")
CHAMBERS = ("lower", "upper")

TOPICS = (
    "immigration", "the energy bill", "housing", "the health service", "policing",
    "online surveillance", "the trade agreement", "welfare reform", "school funding",
    "the climate levy", "asylum processing", "the data retention bill", "farm subsidies",
    "prison reform", "the defence review",
)

# Cue phrases per frame: the clause a speaker uses to frame {topic}.
CUES = {
    "economic": [
        "{topic} will cost the taxpayer billions over the next decade",
        "businesses in my constituency cannot absorb the extra costs of {topic}",
        "getting {topic} right is essential for growth and for jobs",
        "the budget simply does not add up on {topic}",
        "families are facing higher prices because of how we handle {topic}",
        "investment in {topic} pays for itself through higher productivity",
        "the deficit will grow if we keep spending like this on {topic}",
        "small firms tell me {topic} is strangling their margins",
        "wages have stagnated while the bill for {topic} keeps rising",
        "the Treasury's own figures show {topic} is a drag on the economy",
    ],
    "moral": [
        "we have a duty to treat people with decency when it comes to {topic}",
        "it is simply wrong to turn our backs on the vulnerable over {topic}",
        "{topic} is a test of our values as a nation",
        "compassion, not convenience, must guide us on {topic}",
        "there is nothing fair about the way {topic} treats ordinary people",
        "our children will judge whether we did the right thing on {topic}",
        "this is a question of conscience, and on {topic} I know where I stand",
        "basic fairness demands that we share the burden of {topic}",
        "we owe it to future generations to act honourably on {topic}",
        "any decent society would be ashamed of our record on {topic}",
    ],
    "security": [
        "{topic} leaves our borders dangerously exposed",
        "the police warn that {topic} will make our streets less safe",
        "hostile states are watching how we handle {topic}",
        "organised crime will exploit every gap in {topic}",
        "the first duty of government is to keep people safe, and {topic} fails that test",
        "our security services need stronger powers on {topic}",
        "{topic} creates a threat we cannot afford to ignore",
        "violent offenders are walking free because of {topic}",
        "terrorists thrive where oversight of {topic} is weak",
        "public order is at stake if we get {topic} wrong",
    ],
    "rights": [
        "{topic} tramples on the civil liberties of law-abiding citizens",
        "everyone must be equal before the law, and {topic} is not",
        "the right to privacy cannot be traded away for {topic}",
        "{topic} discriminates against people because of where they were born",
        "the courts have already found that {topic} breaches fundamental rights",
        "freedom of expression is under threat from {topic}",
        "due process must apply to everyone affected by {topic}",
        "{topic} gives the state powers no free citizen should accept",
        "the equality act means nothing if {topic} goes ahead as drafted",
        "people have a right to a fair hearing, and {topic} denies it",
    ],
}

OPENERS = (
    "", "Madam Speaker, ", "Mr Speaker, ", "Let me be clear: ", "I rise to say that ",
    "My Lords, ", "Frankly, ", "As I said in committee, ", "The truth is that ",
)
CLOSERS = (
    "", " I urge the House to reject this.", " That is why I will vote against it.",
    " The Government must think again.", " I commend the amendment to the House.",
    " We cannot go on like this.", " I hope the minister will listen.",
)
REPORTERS = (
    "The minister claims that", "Members opposite keep telling us that",
    "We are told by the Government that", "The honourable member suggests that",
    "Some would have us believe that", "The press says that",
)
IRONY = {
    "economic": "Of course, what a bargain: {cue_other}, and all it costs us is a fortune in "
    "wasted public money.",
    "moral": "How wonderfully noble of the Government: {cue_other}, while the most vulnerable "
    "are left to fend for themselves.",
    "security": "Marvellous. {cue_other}, and meanwhile the criminals must be delighted.",
    "rights": "Splendid, {cue_other}; who needs civil liberties anyway?",
}
SHORT = (
    "We must act now on {topic}.", "{topic}: enough is enough.", "I have serious concerns "
    "about {topic}.", "The country expects better on {topic}.", "This is not good enough.",
    "Let us be honest about {topic}.", "Nobody voted for this approach to {topic}.",
)

# Probability of each hardness type.
KINDS = {"plain": 0.45, "mixed": 0.20, "reported": 0.10, "negation": 0.10, "irony": 0.07,
         "short": 0.08}

# Frame prevalence by party (unequal classes, shifting across strata).
PARTY_PREVALENCE = {
    "Progressive": (0.30, 0.30, 0.15, 0.25),
    "Conservative": (0.45, 0.10, 0.35, 0.10),
    "Liberal": (0.35, 0.15, 0.15, 0.35),
    "Green": (0.35, 0.35, 0.10, 0.20),
}
PERIOD_SECURITY_SHIFT = {"2010-2014": -0.05, "2015-2019": 0.0, "2020-2024": 0.05}

# Known confusion matrices of the two simulated human coders (rows: truth; cols: code).
CODER_CONFUSION = {
    "coder_a": np.array([
        [0.90, 0.03, 0.05, 0.02],
        [0.03, 0.88, 0.02, 0.07],
        [0.04, 0.02, 0.92, 0.02],
        [0.02, 0.06, 0.03, 0.89],
    ]),
    "coder_b": np.array([
        [0.80, 0.05, 0.12, 0.03],
        [0.04, 0.74, 0.04, 0.18],
        [0.08, 0.03, 0.86, 0.03],
        [0.03, 0.14, 0.05, 0.78],
    ]),
}


@dataclass(frozen=True)
class ExampleSpec:
    """Sizes of the synthetic example."""

    n_texts: int = 3000
    n_labelled: int = 900  # the labelled pool (coded once, by coder_a) used for training
    seed: int = 20261129


def sentence(s: str) -> str:
    """``s`` as a sentence: capitalised, ending in a full stop unless it has an ending."""
    s = s.strip()
    return s[0].upper() + s[1:] + ("" if s.endswith((".", "?", "!")) else ".")


def _cue(rng: np.random.Generator, frame: str, topic: str) -> str:
    cues = CUES[frame]
    return cues[rng.integers(len(cues))].format(topic=topic)


def _other(rng: np.random.Generator, frame: str) -> str:
    others = [f for f in FRAMES if f != frame]
    return others[rng.integers(len(others))]


def _compose(rng: np.random.Generator, frame: str, kind: str, topic: str) -> str:
    opener = OPENERS[rng.integers(len(OPENERS))]
    closer = CLOSERS[rng.integers(len(CLOSERS))]
    other = _other(rng, frame)
    if kind == "plain":
        body = sentence(opener + _cue(rng, frame, topic))
        if rng.random() < 0.5:
            body += " " + sentence(_cue(rng, frame, topic))
    elif kind == "mixed":  # the primary frame carries two clauses, the secondary one
        parts = [sentence(_cue(rng, other, topic)), sentence("but above all, "
                 + _cue(rng, frame, topic)), sentence(_cue(rng, frame, topic))]
        if rng.random() < 0.5:
            parts = [sentence(_cue(rng, frame, topic)), sentence("Yes, "
                     + _cue(rng, other, topic)), sentence("Still, " + _cue(rng, frame, topic))]
        body = " ".join(parts)
    elif kind == "reported":
        rep = REPORTERS[rng.integers(len(REPORTERS))]
        body = (f"{rep} {_cue(rng, other, topic)}. "
                + sentence("What really matters is that " + _cue(rng, frame, topic)))
    elif kind == "negation":
        body = (sentence(f"This is not about the fact that {_cue(rng, other, topic)}")
                + " " + sentence("It is about this: " + _cue(rng, frame, topic)))
    elif kind == "irony":
        body = IRONY[frame].format(cue_other=_cue(rng, other, topic))
    else:  # short and ambiguous
        body = SHORT[rng.integers(len(SHORT))].format(topic=topic)
        body = body[0].upper() + body[1:]
    return (body + closer).strip()


def generate_corpus(spec: ExampleSpec = ExampleSpec()) -> pd.DataFrame:
    """The synthetic corpus with its true frames and hardness kinds (truth columns included)."""
    rng = np.random.default_rng(spec.seed)
    kinds = list(KINDS)
    kind_p = np.array(list(KINDS.values()))
    rows = []
    for i in range(spec.n_texts):
        party = PARTIES[rng.integers(len(PARTIES))]
        period = PERIODS[rng.integers(len(PERIODS))]
        chamber = CHAMBERS[int(rng.random() < 0.3)]
        p = np.array(PARTY_PREVALENCE[party], dtype=float)
        p[2] = max(p[2] + PERIOD_SECURITY_SHIFT[period], 0.02)
        p /= p.sum()
        frame = FRAMES[rng.choice(len(FRAMES), p=p)]
        kind = kinds[rng.choice(len(kinds), p=kind_p)]
        topic = TOPICS[rng.integers(len(TOPICS))]
        rows.append({
            "id": f"sp{i + 1:05d}",
            "text": _compose(rng, frame, kind, topic),
            "party": party, "period": period, "chamber": chamber,
            "true_label": frame, "kind": kind,
        })
    return pd.DataFrame(rows)


def simulate_codes(true_labels: pd.Series, coder: str, seed: int,
                   confusion: dict[str, np.ndarray] | None = None,
                   labels: Sequence[str] = FRAMES) -> pd.Series:
    """Codes of one simulated coder: each true label is coded per its confusion-matrix row
    (rows and columns in the order of ``labels``: the frames here, the scale of the ordinal
    example).

    The random stream depends on the coder name, the seed and each item's id, so an item gets
    the same code whatever sample it appears in.
    """
    conf = (confusion or CODER_CONFUSION)[coder]
    labels = list(labels)
    out = []
    for item_id, truth in true_labels.items():
        rng = np.random.default_rng([seed, _stable_int(coder), _stable_int(str(item_id))])
        out.append(labels[rng.choice(len(labels), p=conf[labels.index(truth)])])
    return pd.Series(out, index=true_labels.index, name=coder)


def _stable_int(s: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(s.encode()).digest()[:8], "little")


def true_kappa(prevalence: np.ndarray, conf_a: np.ndarray, conf_b: np.ndarray,
               weights: str | None = None) -> float:
    """Population Cohen's (weighted) kappa of two coders who err independently given the truth.

    p_o = sum_t pi_t sum_kl A[t,k] B[t,l] w_kl;  p_e = sum_kl (pi A)_k (pi B)_l w_kl, with w
    the agreement weights (identity for ``weights=None``; "linear"/"quadratic" for an
    ordinal scale, :func:`textgauge.stats.inputs.agreement_weights`).
    """
    from textgauge.stats.inputs import agreement_weights

    pi = np.asarray(prevalence, dtype=float)
    if weights is None:  # the unweighted sums, exactly as before
        po = float(np.sum(pi[:, None] * conf_a * conf_b))
        pe = float(np.sum((pi @ conf_a) * (pi @ conf_b)))
        return (po - pe) / (1 - pe)
    w = agreement_weights(len(pi), weights)
    po = float(np.einsum("t,tk,tl,kl->", pi, conf_a, conf_b, w))
    pe = float((pi @ conf_a) @ w @ (pi @ conf_b))
    return (po - pe) / (1 - pe)


def true_accuracy_kappa(prevalence: np.ndarray, conf: np.ndarray,
                        weights: str | None = None) -> float:
    """Population (weighted) kappa of one coder against the truth."""
    return true_kappa(prevalence, np.eye(len(prevalence)), conf, weights)


def write_example(out: str | Path, spec: ExampleSpec = ExampleSpec()) -> dict[str, Path]:
    """Write the example's files: corpus, labelled pool, truth, coder matrices and a README."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = generate_corpus(spec)
    rng = np.random.default_rng(spec.seed + 1)
    labelled_idx = np.sort(rng.choice(len(corpus), size=spec.n_labelled, replace=False))
    pool = corpus.iloc[labelled_idx][["id", "true_label"]].set_index("id")["true_label"]
    labelled = simulate_codes(pool, "coder_a", spec.seed).rename("label").reset_index()
    paths = {
        "corpus": out / "corpus.csv",
        "labelled": out / "labelled_pool.csv",
        "truth": out / "truth.csv",
        "coders": out / "simulated_coders.csv",
    }
    # input data, as a user would bring it (ingest reads it as it is): the plain writer
    write_input_csv(corpus[["id", "text", "party", "period", "chamber"]], paths["corpus"])
    write_input_csv(labelled, paths["labelled"])
    write_input_csv(corpus[["id", "true_label", "kind"]], paths["truth"])
    write_confusions(CODER_CONFUSION, FRAMES, paths["coders"])
    return paths


def write_confusions(matrices: Mapping[str, np.ndarray], labels: Sequence[str],
                     path: str | Path) -> None:
    """The simulated coders' confusion matrices as :func:`read_confusions` reads them: one
    row per coder and true label, one column per coded label (in ``labels`` order)."""
    rows = [{"coder": coder, "true_label": t, **{c: float(m[i, j]) for j, c in enumerate(labels)}}
            for coder, m in matrices.items() for i, t in enumerate(labels)]
    write_input_csv(pd.DataFrame(rows), path)


def confusion_labels(path: str | Path) -> list[str]:
    """The labels of ``simulated_coders.csv``, in the file's column order (the codebook's)."""
    cols = pd.read_csv(path, nrows=0).columns
    return [c for c in cols if c not in ("coder", "true_label")]


def read_confusions(path: str | Path,
                    labels: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Read ``simulated_coders.csv`` back into coder -> confusion matrix, rows and columns
    in the order of ``labels`` (default: the file's column order, :func:`confusion_labels`)."""
    df = pd.read_csv(path, dtype={"true_label": str})
    labs = list(labels) if labels is not None else confusion_labels(path)
    out = {}
    for coder, g in df.groupby("coder", sort=False):
        g = g.set_index("true_label").loc[labs, labs]
        out[str(coder)] = g.to_numpy(dtype=float)
    return out
