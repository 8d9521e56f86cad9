"""Kill test: SIGKILL a classification job at seeded random points and restart it.

The job (this file run as a script) builds the transformers backend on a tiny random
Llama-shaped model and runs ``run_with_checkpoint`` over 60 texts in batches of 3, appending
every finished batch to a JSONL checkpoint. The test kills it with SIGKILL once the
checkpoint holds k lines (k drawn by a seeded RNG, at least 5 kills), restarts it each time,
and then checks that the final output has exactly the ids of an uninterrupted run, no
duplicates, and the same labels and probabilities.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

N_TEXTS = 60
BATCH = 3
LABELS = ["economic", "moral", "security", "rights"]
SEED = 4
MIN_KILLS = 5
# each batch is slowed down by this much so that kills land mid-run on a fast machine
BATCH_DELAY = 0.05


def texts() -> list[tuple[str, str]]:
    rng = random.Random(3)
    words = ("tax jobs growth duty fairness crime borders rights privacy equality budget "
             "prices safety values law").split()
    return [(f"s{i:03d}", " ".join(rng.choice(words) for _ in range(rng.randint(4, 20))))
            for i in range(N_TEXTS)]


def requests():
    from textgauge.inference.backends.base import PromptRequest

    system = "Code the frame of the text. Labels: " + ", ".join(LABELS) + "."
    return [PromptRequest(i, [{"role": "system", "content": system},
                              {"role": "user", "content": f"Text: {t}\nCategory:"}], LABELS)
            for i, t in texts()]


def job(model_dir: str, checkpoint: str, out: str) -> None:
    """The classification job (run in a child process)."""
    import torch

    from textgauge.inference.backends.runner import run_with_checkpoint
    from textgauge.inference.backends.transformers import TransformersBackend

    torch.set_num_threads(1)
    backend = TransformersBackend(model_dir, inference_batch_size=BATCH, device="cpu", dtype="float32")
    score = backend._score_batch

    def slow_score(reqs):
        time.sleep(BATCH_DELAY)
        return score(reqs)

    backend._score_batch = slow_score  # type: ignore[method-assign]
    print("READY", flush=True)
    df = run_with_checkpoint(backend, requests(), checkpoint, fail_bound=0.0)
    Path(out).write_text(df[["id", "label", "probs", "status"]].to_json(orient="records"))


def checkpoint_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.endswith(b"\n"))


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume(tmp_path):
    pytest.importorskip("transformers")
    from tests.tiny_models import tiny_llama

    model = tiny_llama(tmp_path / "model", [t for _, t in texts()] + LABELS, seed=1)
    ckpt = tmp_path / "ckpt.jsonl"
    out = tmp_path / "out.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, __file__, str(model), str(ckpt), str(out)]
    rng = random.Random(SEED)
    kills: list[tuple[int, int]] = []  # (target lines, lines seen when killed)
    t0 = time.perf_counter()
    starts = 0
    for _ in range(30):
        starts += 1
        done = checkpoint_lines(ckpt)
        left = N_TEXTS - done
        # kill after k more checkpoint lines (k seeded, at most 3 batches, leaving work to
        # do); after MIN_KILLS kills let it finish
        room = left - 2 * BATCH
        target = done + rng.randint(1, min(3 * BATCH, room)) \
            if len(kills) < MIN_KILLS and room >= 1 else None
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            if target is None:
                proc.wait(timeout=120)
                assert proc.returncode == 0, f"the final run failed ({proc.returncode})"
                break
            while proc.poll() is None and checkpoint_lines(ckpt) < target:
                time.sleep(0.002)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                assert proc.returncode == -signal.SIGKILL
                kills.append((target, checkpoint_lines(ckpt)))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
    else:
        pytest.fail(f"no uninterrupted final run after {starts} starts")
    took = time.perf_counter() - t0
    assert len(kills) >= MIN_KILLS, kills
    # kills came mid-run: some texts were done, some were not
    assert all(0 < seen < N_TEXTS for _, seen in kills), kills

    # the resumed result
    got = json.loads(out.read_text())
    from textgauge.io import read_checkpoint

    ids = [r["id"] for r in read_checkpoint(ckpt)]
    assert len(ids) == len(set(ids)) == N_TEXTS, "duplicate or missing checkpoint records"
    assert [r["id"] for r in got] == [i for i, _ in texts()]

    # an uninterrupted run of the same job (in this process)
    from textgauge.inference.backends.runner import run_with_checkpoint
    from textgauge.inference.backends.transformers import TransformersBackend

    ref = run_with_checkpoint(TransformersBackend(str(model), inference_batch_size=BATCH, device="cpu",
                                                  dtype="float32"),
                              requests(), tmp_path / "ref.jsonl", fail_bound=0.0)
    assert [r["id"] for r in got] == list(ref["id"])
    assert all(r["status"] == "ok" for r in got)
    assert [r["label"] for r in got] == list(ref["label"])
    for r, probs in zip(got, ref["probs"], strict=True):
        assert r["probs"] == pytest.approx(probs, abs=1e-4)
    assert len(set(ref["label"])) > 1  # the random model does not answer one label only
    print(f"kill/resume: {len(kills)} SIGKILLs at checkpoint lines "
          f"(target, seen) {kills}, {starts} starts, {took:.1f} s")


if __name__ == "__main__":
    job(*sys.argv[1:4])
