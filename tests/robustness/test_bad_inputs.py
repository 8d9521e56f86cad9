"""Bad inputs give one readable paragraph, never a traceback.

Each case below builds one bad input (a corpus, a returned coding sheet, a config, a prompt
template, a checkpoint, a replication package) in a temporary folder, feeds it to the library
function the workflow step calls, and returns the message the user sees (the error's text,
or the warning logged for checkpoint lines). The test asserts the message's own words (the
file, row or option it names and what to do), that it is one paragraph, and that it holds no
traceback. Fast: no Snakemake run; config errors go through
:func:`textgauge.config_check.validate_config` (the names rule, the typed options and the
schema the workflow validates config.yaml against).
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import logging
import tarfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
import yaml

from textgauge.config_check import validate_config
from textgauge.data import coding, corpus
from textgauge.errors import TextgaugeError
from textgauge.inference.backends.base import Prediction, PromptBackend, PromptRequest
from textgauge.inference.backends.runner import run_with_checkpoint
from textgauge.inference.prompting import PromptTemplate
from textgauge.reporting import revalidation

REPO = Path(__file__).resolve().parents[2]
LABELS = {"economic": "money", "moral": "right and wrong"}
SAMPLE_IDS = {"a1", "a2", "a3"}
GOOD_TEMPLATE = ("{% block system %}Labels: {% for l in labels %}{{ l.name }} {% endfor %}"
                 "{% endblock %}{% block user %}{{ text }}{% endblock %}")


def error_of(fn: Callable[[], object]) -> str:
    """The message of the TextgaugeError ``fn`` raises (any other exception fails the test)."""
    with pytest.raises(TextgaugeError) as e:
        fn()
    return str(e.value)


def write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ corpus
def _ingest(tmp: Path, content: str | bytes, name: str = "corpus.csv",
            strata: Sequence[str] = ()) -> str:
    p = write(tmp / name, content)
    return error_of(lambda: corpus.ingest(p, "id", "text", strata))


CORPUS = {
    "corpus-missing-text-column": (
        lambda t: _ingest(t, "id,body\na,x\n"),
        ["corpus.csv", "'text'", "'body'", "corpus.text_column"]),
    "corpus-duplicate-ids": (
        lambda t: _ingest(t, "id,text\nsame,one\nsame,two\nsame,three\n"),
        ["corpus.csv", "duplicate id", "row 1", "unique non-empty ids"]),
    "corpus-empty-file": (
        lambda t: _ingest(t, ""),
        ["corpus.csv", "is empty", "not even a header row"]),
    "corpus-header-only": (
        lambda t: _ingest(t, "id,text\n"),
        ["corpus.csv", "'id', 'text'", "no rows", "corpus.path"]),
    "corpus-non-utf8-texts": (
        lambda t: _ingest(t, b"id,text\na,caf\xe9 au lait\nb,na\xefve\n"),
        ["corpus.csv", "row 1", "not valid UTF-8"]),
    "corpus-empty-ids": (
        lambda t: _ingest(t, "id,text\n,first text\n  ,second text\n"),
        ["corpus.csv", "row 1", "row 2", "empty id"]),
    "corpus-undecodable-ids": (
        lambda t: _ingest(t, b"id,text\n\xff\xfe1,first text\n\xff2,second\n"),
        ["corpus.csv", "row 1", "id is not valid UTF-8"]),
    "corpus-empty-texts": (
        lambda t: _ingest(t, "id,text\na,\nb,   \n"),
        ["corpus.csv", "row 1", "empty text"]),
    "corpus-missing-file": (
        lambda t: error_of(lambda: corpus.ingest(t / "nope.csv", "id", "text")),
        ["nope.csv", "does not exist", "config.yaml"]),
    "corpus-unknown-extension": (
        lambda t: _ingest(t, "x", name="corpus.docx"),
        ["corpus.docx", "unknown extension", "'.docx'"]),
    "corpus-missing-stratum-column": (
        lambda t: _ingest(t, "id,text\na,x\n", strata=["party"]),
        ["corpus.csv", "'party'", "corpus.strata"]),
    "corpus-broken-jsonl": (
        lambda t: _ingest(t, '{"id": "a", "text": "x"}\n{"id": \n', name="corpus.jsonl"),
        ["corpus.jsonl", "could not be parsed as jsonl", "text editor"]),
    "corpus-ragged-csv": (
        lambda t: _ingest(t, "id,text\na,x\nb,y,extra,more\n"),
        ["corpus.csv", "could not be parsed as csv", "line 3", "same columns"]),
}


# ------------------------------------------------------------------------------ sheets
def _sheet(tmp: Path, content: str, name: str = "coder_a.csv") -> str:
    p = write(tmp / name, content)
    return error_of(lambda: coding.read_sheet_codes(p, "coder_a", list(LABELS), SAMPLE_IDS))


def _long(tmp: Path, content: str) -> str:
    p = write(tmp / "crowd.csv", content)
    return error_of(lambda: coding.read_long_codes(p, list(LABELS), SAMPLE_IDS))


SHEETS = {
    "sheet-unknown-label": (
        lambda t: _sheet(t, "id,label\na1,economic\na2,econmic\na3,moral\n"),
        ["coder_a.csv", "'econmic'", "row"]),
    "sheet-ids-outside-sample": (
        lambda t: _sheet(t, "id,label\na1,economic\nzz9,moral\n"),
        ["coder_a.csv", "zz9", "not in the gold sample"]),
    "sheet-duplicate-ids": (
        lambda t: _sheet(t, "id,label\na1,economic\na1,moral\na2,moral\n"),
        ["coder_a.csv", "a1", "more than once", "one row per id"]),
    "sheet-missing-id-column": (
        lambda t: _sheet(t, "item,label\na1,economic\n"),
        ["coder_a.csv", "no column 'id'", "'item'", "Keep the columns"]),
    "sheet-missing-label-column": (
        lambda t: _sheet(t, "id,code\na1,economic\n"),
        ["coder_a.csv", "no column 'label'", "'code'"]),
    "sheet-no-codes": (
        lambda t: _sheet(t, "id,label\na1,\na2,\n"),
        ["coder_a.csv", "no codes at all", "gold.codes.coder_a"]),
    "sheet-empty-file": (
        lambda t: _sheet(t, ""),
        ["coder_a.csv", "is empty"]),
    "sheet-missing-file": (
        lambda t: error_of(lambda: coding.read_sheet_codes(t / "gone.csv", "coder_a",
                                                           list(LABELS), SAMPLE_IDS)),
        ["gone.csv", "does not exist"]),
    "long-codes-path-like-coder": (
        lambda t: _long(t, "id,coder,label\na1,ok_coder,moral\na2,../../x,economic\n"),
        ["crowd.csv", "row 3", "'../../x'", "gold.codes_long", "rename"]),
    "long-codes-formula-coder": (
        lambda t: _long(t, 'id,coder,label\na1,"=HYPERLINK(""http://x"")",moral\n'),
        ["crowd.csv", "row 2", "=HYPERLINK", "letter or digit"]),
    "long-codes-missing-coder-column": (
        lambda t: _long(t, "id,worker,label\na1,w1,moral\n"),
        ["crowd.csv", "no column 'coder'", "gold.codes_long"]),
}


# ------------------------------------------------------------------------------ config
def _config(mutate: Callable[[dict], None]) -> str:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    cfg = copy.deepcopy(cfg)
    mutate(cfg)
    return error_of(lambda: validate_config(cfg))


def _add_model(cfg: dict, name: str) -> None:
    cfg["models"][name] = copy.deepcopy(cfg["models"]["zeroshot"])


CONFIG = {
    "config-typo-top-level-key": (
        lambda t: _config(lambda c: c.update(modls={})),
        ["'modls'", "did you mean 'models'"]),
    "config-typo-gold-key": (
        lambda t: _config(lambda c: c["gold"].update(sise=100)),
        ["config.gold", "'sise'", "did you mean 'size'"]),
    "config-typo-model-key": (
        lambda t: _config(lambda c: c["models"]["encoder"].update(learning_rte=1e-4)),
        ["models.encoder", "'learning_rte'", "learning_rate"]),
    "config-api-key-in-model": (
        lambda t: _config(lambda c: c["models"]["zeroshot"].update(api_key="sk-not-real")),
        ["models.zeroshot.api_key", "environment", "api_key_env"]),
    "config-path-like-coder": (
        lambda t: _config(lambda c: c["gold"].update(coders=["coder_a", "../../x"])),
        ["gold.coders", "'../../x'", "not a valid name"]),
    "config-formula-lead-coder": (
        lambda t: _config(lambda c: c["gold"].update(lead_coder="=1+1")),
        ["gold.lead_coder", "'=1+1'", "letter or digit"]),
    "config-codes-key-with-slash": (
        lambda t: _config(lambda c: c["gold"].update(codes={"a/b": "sheet.csv"})),
        ["gold.codes", "'a/b'", "not a valid name"]),
    "config-absolute-model-name": (
        lambda t: _config(lambda c: _add_model(c, "/abs/path")),
        ["models", "'/abs/path'", "not a valid name"]),
    "config-parent-model-name": (
        lambda t: _config(lambda c: _add_model(c, "../x")),
        ["models", "'../x'", "slashes"]),
    "config-bad-ties-value": (
        lambda t: _config(lambda c: c["gold"].update(ties="sometimes")),
        ["option gold.ties", "'sometimes'", "lead_coder", "Fix that value"]),
    "config-gold-size-not-a-number": (
        lambda t: _config(lambda c: c["gold"].update(size="many")),
        ["option gold.size", "'many'", "integer"]),
    "config-unknown-model-kind": (
        lambda t: _config(lambda c: c["models"]["zeroshot"].update(kind="magic")),
        ["models.zeroshot", "'magic'"]),
}


# ------------------------------------------------------------------------------ templates
def _template(tmp: Path, content: str | bytes, render: bool = True) -> str:
    p = write(tmp / "prompt.jinja", content)

    def go() -> None:
        tpl = PromptTemplate.from_file(p, LABELS)
        if render:
            tpl.render("a text")

    return error_of(go)


TEMPLATES = {
    "template-syntax-error": (
        lambda t: _template(t, "{% block system %}\nLabels: {{ labels }\n{% endblock %}"),
        ["prompt.jinja", "syntax error on line 2", "zeroshot.jinja"]),
    "template-unclosed-block": (
        lambda t: _template(t, "{% block system %}\nno end\n"),
        ["prompt.jinja", "syntax error", "endblock"]),
    "template-undefined-variable": (
        lambda t: _template(t, "{% block system %}\nHi\n{{ codebook }}{% endblock %}"
                               "{% block user %}{{ text }}{% endblock %}"),
        ["prompt.jinja", "line 3", "'codebook' is undefined", "labels", "instructions",
         "examples", "text"]),
    "template-not-utf8": (
        lambda t: _template(t, b"{% block system %}caf\xe9{% endblock %}"),
        ["prompt.jinja", "not UTF-8", "Save it as UTF-8"]),
    "template-sandbox-escape": (
        lambda t: _template(t, "{% block system %}{{ ''.__class__.__mro__[1]"
                               ".__subclasses__() }}{% endblock %}"
                               "{% block user %}{{ text }}{% endblock %}"),
        ["prompt.jinja", "sandbox", "'__class__'", "do not use it"]),
    "template-sandbox-mutation": (
        lambda t: _template(t, "{% block system %}{{ labels.append(1) }}{% endblock %}"
                               "{% block user %}{{ text }}{% endblock %}"),
        ["prompt.jinja", "sandbox", "append"]),
    "template-missing-file": (
        lambda t: error_of(lambda: PromptTemplate.from_file(t / "nope.jinja", LABELS)),
        ["nope.jinja", "does not exist", "prompt"]),
    "template-missing-block": (
        lambda t: _template(t, "{% block system %}Labels{% endblock %}"),
        ["prompt.jinja", "needs a block named 'user'"]),
}


# ------------------------------------------------------------------------------ checkpoints
class FirstLabel(PromptBackend):
    """Answers every request with its first label."""

    name = "fake"

    def classify(self, requests, on_results) -> None:
        on_results([Prediction(id=r.id, label=r.labels[0], confidence=1.0) for r in requests])


def _requests() -> list[PromptRequest]:
    return [PromptRequest(i, [{"role": "user", "content": i}], list(LABELS))
            for i in sorted(SAMPLE_IDS)]


def _checkpoint(tmp: Path, lines: Sequence[str], caplog: pytest.LogCaptureFixture) -> str:
    """Run once (a good checkpoint), damage it with ``lines``, run again: the warning."""
    ck = tmp / "gold.ckpt.jsonl"
    run_with_checkpoint(FirstLabel(), _requests(), ck)
    good = ck.read_text(encoding="utf-8").splitlines()
    write(ck, "\n".join([good[0], *lines, *good[1:]]) + "\n")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="textgauge"):
        run_with_checkpoint(FirstLabel(), _requests(), ck)
    return " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def _outside_label(tmp: Path, caplog: pytest.LogCaptureFixture) -> str:
    ck = tmp / "gold.ckpt.jsonl"
    run_with_checkpoint(FirstLabel(), _requests(), ck)
    recs = [json.loads(x) for x in ck.read_text(encoding="utf-8").splitlines()]
    recs[1]["label"] = "not_a_label"
    write(ck, "".join(json.dumps(r) + "\n" for r in recs))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="textgauge"):
        run_with_checkpoint(FirstLabel(), _requests(), ck)
    return " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)


def _garbage(tmp: Path, content: bytes) -> str:
    ck = write(tmp / "gold.ckpt.jsonl", content)
    msg = error_of(lambda: run_with_checkpoint(FirstLabel(), _requests(), ck))
    assert ck.read_bytes() == content  # nothing appended to a file that is not a checkpoint
    return msg


CHECKPOINTS = {
    "checkpoint-line-not-json": (
        lambda t, c: _checkpoint(t, ["{this is not json"], c),
        ["gold.ckpt.jsonl", "line 2 (not JSON)", "asked again", "delete it"]),
    "checkpoint-line-not-an-object": (
        lambda t, c: _checkpoint(t, ["[1, 2, 3]"], c),
        ["gold.ckpt.jsonl", "line 2 (not a JSON object)"]),
    "checkpoint-line-without-id": (
        lambda t, c: _checkpoint(t, [json.dumps({"label": "moral"})], c),
        ["gold.ckpt.jsonl", "line 2 (no id)"]),
    "checkpoint-several-bad-lines": (
        lambda t, c: _checkpoint(t, ["oops", "42", json.dumps({"id": ""})], c),
        ["gold.ckpt.jsonl", "3 line(s)", "line 2 (not JSON)", "line 3 (not a JSON object)",
         "line 4 (no id)"]),
    "checkpoint-label-outside-codebook": (
        lambda t, c: _outside_label(t, c),
        ["gold.ckpt.jsonl", "not valid for the codebook", "a2", "asked again"]),
    "checkpoint-entirely-garbage": (
        lambda t, c: _garbage(t, b"\x00\x01binary\xff\n\x89PNG\r\nmore junk\n"),
        ["gold.ckpt.jsonl", "no readable record", "delete it", "Nothing was asked"]),
    "checkpoint-all-lines-without-ids": (
        lambda t, c: _garbage(t, b'{"label": "moral"}\n{"label": "economic"}\n'),
        ["gold.ckpt.jsonl", "no readable record", "no id 2"]),
}


# ------------------------------------------------------------------------------ packages
def _tarball(tmp: Path, members: Sequence[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    out = tmp / "replication.tar.gz"
    out.write_bytes(gzip.compress(buf.getvalue()))
    return out


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o644
    return info


def _unpack(tmp: Path, members: Sequence[tuple[tarfile.TarInfo, bytes | None]]) -> str:
    tar = _tarball(tmp, members)
    dest = tmp / "out"
    dest.mkdir()
    msg = error_of(lambda: revalidation.unpack(tar, dest))
    assert not (tmp / "evil").exists() and not Path("/tmp/textgauge-evil-member").exists()
    return msg


def _package(tmp: Path, index: dict | None = None, config: str | None = None) -> Path:
    pkg = tmp / "replication"
    pkg.mkdir()
    write(pkg / "replication.json", json.dumps(index or {"models": ["zeroshot"], "files": {}}))
    write(pkg / "config.yaml", config if config is not None else
          "project: {seed: 1}\nlabels: {economic: money}\ncorpus: {}\nmodels: {}\n")
    return pkg


def _revalidate(tmp: Path, **kw: object) -> str:
    pkg = _package(tmp, **kw)  # type: ignore[arg-type]
    return error_of(lambda: revalidation.revalidate(pkg))


def _broken_index(tmp: Path) -> str:
    pkg = _package(tmp)
    write(pkg / "replication.json", "{not json")
    return error_of(lambda: revalidation.revalidate(pkg))


PACKAGES = {
    "package-missing": (
        lambda t: error_of(lambda: revalidation.unpack(t / "nope.tar.gz", t / "out")),
        ["nope.tar.gz", "does not exist"]),
    "package-not-gzip": (
        lambda t: error_of(lambda: revalidation.unpack(
            write(t / "replication.tar.gz", "just text"), t / "out")),
        ["replication.tar.gz", "not a gzip file", "Download it again"]),
    "package-gzip-but-not-tar": (
        lambda t: error_of(lambda: revalidation.unpack(
            write(t / "replication.tar.gz", gzip.compress(b"not a tar archive" * 40)),
            t / "out")),
        ["replication.tar.gz", "not a tar archive"]),
    "package-absolute-member": (
        lambda t: _unpack(t, [(_member("/tmp/textgauge-evil-member"), b"x")]),
        ["replication.tar.gz", "outside the folder", "do not use it"]),
    "package-dotdot-member": (
        lambda t: _unpack(t, [(_member("replication/../../evil"), b"x")]),
        ["replication.tar.gz", "outside the folder"]),
    "package-link-outside": (
        lambda t: _unpack(t, [(_member("replication/link", tarfile.SYMTYPE, "/etc/passwd"),
                               None)]),
        ["replication.tar.gz", "outside the folder"]),
    "package-without-replication-folder": (
        lambda t: _unpack(t, [(_member("other/file.txt"), b"x")]),
        ["replication.tar.gz", "no replication/ folder"]),
    "package-yaml-tag": (
        lambda t: _revalidate(t, config="project: !!python/object/apply:os.system ['echo hi']"
                                        "\nlabels: {a: b}\n"),
        ["config.yaml", "line 1", "not plain YAML", "!!python/object", "Do not use"]),
    "package-absolute-model-name": (
        lambda t: _revalidate(t, index={"models": ["/abs/path"], "files": {}}),
        ["replication.json", "'/abs/path'", "not a valid name", "tampered",
         "nothing was written"]),
    "package-parent-model-name": (
        lambda t: _revalidate(t, index={"models": ["../x"], "files": {}}),
        ["replication.json", "'../x'", "not a valid name"]),
    "package-nested-model-name": (
        lambda t: _revalidate(t, index={"models": ["a/b"], "files": {}}),
        ["replication.json", "'a/b'", "not a valid name"]),
    "package-checksum-path-outside": (
        lambda t: error_of(lambda: revalidation.verify_checksums(_package(
            t, index={"models": [], "files": {"../../etc/passwd": {"sha256": "0"}}}))),
        ["replication.json", "'../../etc/passwd'", "outside the package"]),
    "package-without-index": (
        lambda t: error_of(lambda: revalidation.revalidate(t)),
        ["replication.json", "does not exist", "not a textgauge replication package"]),
    "package-index-not-json": (
        lambda t: _broken_index(t),
        ["replication.json", "not valid JSON", "download it again"]),
}

CASES = {**CORPUS, **SHEETS, **CONFIG, **TEMPLATES, **PACKAGES}


def check_paragraph(msg: str, expected: Sequence[str]) -> None:
    assert msg.strip(), "empty message"
    assert "Traceback" not in msg and 'File "' not in msg
    assert "\n" not in msg.strip(), f"not one paragraph:\n{msg}"
    for fragment in expected:
        assert fragment in msg, f"{fragment!r} not in: {msg}"


def test_there_are_at_least_40_bad_inputs():
    assert len(CASES) + len(CHECKPOINTS) >= 40


@pytest.mark.parametrize(("make", "expected"), list(CASES.values()), ids=list(CASES))
def test_bad_input_gives_one_paragraph(tmp_path, make, expected):
    check_paragraph(make(tmp_path), expected)


@pytest.mark.parametrize(("make", "expected"), list(CHECKPOINTS.values()), ids=list(CHECKPOINTS))
def test_bad_checkpoint_gives_one_paragraph(tmp_path, caplog, make, expected):
    check_paragraph(make(tmp_path, caplog), expected)


def test_the_bundled_configs_pass_the_name_rule_and_the_schema():
    """config.yaml, and each config file merged into it as --configfile does, still pass."""
    from snakemake.utils import update_config

    base = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))
    extra = sorted((REPO / "config").rglob("*.yaml")) + sorted(
        p for p in (REPO / "tests").rglob("*.yaml") if "models" in p.read_text())
    for rel in [None, *extra]:
        cfg = copy.deepcopy(base)
        if rel is not None:
            update_config(cfg, yaml.safe_load(rel.read_text(encoding="utf-8")) or {})
        validate_config(cfg)


def test_a_clean_template_still_renders_in_the_sandbox(tmp_path):
    p = write(tmp_path / "ok.jinja", GOOD_TEMPLATE)
    msgs = PromptTemplate.from_file(p, LABELS).render("the text")
    assert msgs == [{"role": "system", "content": "Labels: economic moral"},
                    {"role": "user", "content": "the text"}]


def test_the_bundled_prompts_render_in_the_sandbox():
    for p in sorted((REPO / "prompts").glob("*.jinja")):
        msgs = PromptTemplate.from_file(p, LABELS, "Code it.", [("ex", "moral")]).render("t")
        assert msgs[1]["content"].endswith("t") or "t" in msgs[1]["content"], p


def test_revalidate_cli_reports_a_bad_package_in_one_paragraph(tmp_path, capsys):
    from textgauge.cli import main

    bad = write(tmp_path / "replication.tar.gz", "not a tarball")
    assert main(["revalidate", str(bad)]) == 1
    err = " ".join(capsys.readouterr().err.split())  # the terminal paragraph is wrapped
    assert "not a gzip file" in err and "replication.tar.gz" in err and "Traceback" not in err
