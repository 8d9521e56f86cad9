"""Offline checks of the conda environment files and of the rules' `conda:` directives.

No conda exists here (`--sdm conda` cannot run): the files are checked for YAML structure,
conda MatchSpec syntax (py-rattler), pip requirement syntax (packaging), and version ranges
that agree with pyproject.toml for every package listed in both.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
RULE_FILES = sorted((REPO / "workflow/rules").glob("*.smk"))
# conda-forge name -> PyPI name where they differ
CONDA_TO_PYPI = {"pytorch": "torch", "matplotlib-base": "matplotlib", "py-rattler": "py-rattler"}
NOT_ON_PYPI = {"python", "pip"}


def pyproject_requirements() -> dict[str, Requirement]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(data["dependencies"])
    for extra in data.get("optional-dependencies", {}).values():
        reqs += extra
    return {canonicalize_name(r.name): r for r in map(Requirement, reqs)}


def load_env(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def conda_specs(env: dict) -> list[str]:
    return [d for d in env["dependencies"] if isinstance(d, str)]


def pip_specs(env: dict) -> list[str]:
    out = []
    for d in env["dependencies"]:
        if isinstance(d, dict):
            out += d.get("pip", [])
    return out


def conda_version_to_specifier(version: str) -> SpecifierSet:
    """A conda version constraint made of ANDed comparisons as a PEP 440 SpecifierSet."""
    assert "|" not in version, f"OR-constraints are not compared: {version}"
    parts = [p.strip() for p in version.split(",") if p.strip()]
    fixed = []
    for p in parts:
        if re.fullmatch(r"[0-9][\w.]*", p):  # bare version: conda means ==, glob-free here
            p = f"=={p}"
        fixed.append(p)
    return SpecifierSet(",".join(fixed))


def test_there_is_one_env_per_rule_family():
    assert {p.stem for p in ENV_FILES} >= {"core", "train", "vllm", "api"}


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_env_file_structure(path):
    env = load_env(path)
    assert isinstance(env, dict), "an env file is a YAML mapping"
    assert set(env) <= {"name", "channels", "dependencies", "variables"}, set(env)
    assert env.get("channels") and all(isinstance(c, str) for c in env["channels"])
    assert "defaults" not in env["channels"], "use conda-forge (+ nodefaults), not defaults"
    deps = env["dependencies"]
    assert isinstance(deps, list) and deps
    for d in deps:
        assert isinstance(d, (str, dict)), d
        if isinstance(d, dict):
            assert set(d) == {"pip"} and isinstance(d["pip"], list), d
    names = [d.split()[0] for d in conda_specs(env)]
    assert "python" in names
    if pip_specs(env):
        assert "pip" in names, "a pip: section needs pip among the conda dependencies"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_conda_matchspecs_parse(path):
    rattler = pytest.importorskip("rattler", reason="py-rattler (dev extra) not installed")
    for spec in conda_specs(load_env(path)):
        ms = rattler.MatchSpec(spec)
        assert ms.name is not None and ms.name.normalized == spec.split()[0].lower(), spec


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_pip_requirements_parse(path):
    for spec in pip_specs(load_env(path)):
        if spec.startswith(("-e ", "--editable")):
            target = (path.parent / spec.split(maxsplit=1)[1]).resolve()
            assert (target / "pyproject.toml").exists(), f"{spec}: {target} is not the package"
            continue
        try:
            Requirement(spec)
        except InvalidRequirement as exc:
            pytest.fail(f"{path.name}: invalid pip requirement {spec!r}: {exc}")


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.name)
def test_versions_agree_with_pyproject(path):
    rattler = pytest.importorskip("rattler", reason="py-rattler (dev extra) not installed")
    project = pyproject_requirements()
    env = load_env(path)
    problems = []
    for spec in conda_specs(env):
        ms = rattler.MatchSpec(spec)
        name = spec.split()[0]
        pypi = canonicalize_name(CONDA_TO_PYPI.get(name, name))
        if name in NOT_ON_PYPI or pypi not in project:
            continue
        ours = conda_version_to_specifier(str(ms.version)) if ms.version else SpecifierSet()
        if ours != project[pypi].specifier:
            problems.append(f"{spec!r} vs pyproject {project[pypi]}")
    for spec in pip_specs(env):
        if spec.startswith("-e"):
            continue
        r = Requirement(spec)
        name = canonicalize_name(r.name)
        if name in project and r.specifier != project[name].specifier:
            problems.append(f"{spec!r} vs pyproject {project[name]}")
    assert not problems, f"{path.name}: " + "; ".join(problems)


def test_python_range_admits_pyproject_minimum():
    req = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    low = re.search(r">=\s*([\d.]+)", req).group(1)
    for path in ENV_FILES:
        py = next(s for s in conda_specs(load_env(path)) if s.split()[0] == "python")
        spec = conda_version_to_specifier(py.split(maxsplit=1)[1])
        assert spec.contains(low) and spec.contains("3.11"), f"{path.name}: {py}"


def rules_of(text: str) -> dict[str, str]:
    """rule/checkpoint name -> its body (up to the next top-level or nested rule)."""
    heads = list(re.finditer(r"^\s*(?:rule|checkpoint)\s+(\w+)\s*:", text, re.M))
    return {m.group(1): text[m.end(): heads[i + 1].start() if i + 1 < len(heads) else len(text)]
            for i, m in enumerate(heads)}


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_every_rule_declares_a_conda_env(path):
    for name, body in rules_of(path.read_text()).items():
        if re.search(r"^\s*conda:\s*\n\s*model_env\s*$", body, re.M):
            continue  # chosen per model backend: test_predict_env_is_chosen_by_backend
        if not re.search(r"^\s*(script|shell|run|wrapper|notebook):", body, re.M):
            continue  # a target rule (only input, e.g. development): it runs nothing
        m = re.search(r"^\s*conda:\s*\n\s*[\"']([^\"']+)[\"']", body, re.M)
        assert m, f"rule {name} in {path.name} has no conda: directive"
        env = (path.parent / m.group(1)).resolve()
        assert env.exists(), f"rule {name}: {m.group(1)} does not exist (relative to {path})"
        assert env.parent == REPO / "envs", env


def test_rules_were_found():
    names = set()
    for p in RULE_FILES:
        names |= set(rules_of(p.read_text()))
        names |= set(re.findall(r"^use rule \w+ as (\w+)", p.read_text(), re.M))
    assert {"train_encoder", "predict_shard", "predict_gold", "report", "replication"} <= names


# ------------------------------------------------------------------ predict rules: env per backend
COMMON_SMK = REPO / "workflow/rules/common.smk"
B = "textgauge.inference.backends."
#: what the predict step loads whatever the backend (dispatchers: read at module level only,
#: their lazy imports are the per-backend choice below)
DISPATCH = ["textgauge.steps.infer", "textgauge.inference.predictions"]
COMMON = [B + "runner", "textgauge.inference.prompting"]
#: the modules that run each backend / kind (read whole, lazy imports included)
RUNS = {"openai": [B + "openai", B + "asyncengine", B + "batch", B + "registry"],
        "anthropic": [B + "anthropic", B + "asyncengine", B + "batch", B + "registry"],
        "vllm": [B + "vllm", B + "registry", "textgauge.inference.aliases"],
        "transformers": [B + "transformers", "textgauge.inference.aliases"],
        "encoder": ["textgauge.training.encoder", "textgauge.inference.aliases"],
        "lora": [B + "lora", B + "transformers", "textgauge.inference.aliases"]}
#: import name -> distribution name, where they differ
IMPORT_TO_DIST = {"sklearn": "scikit-learn", "yaml": "pyyaml"}
#: a distribution that a listed one always brings along (its hard dependency)
BROUGHT_BY = {"numpy": {"pandas"}, "httpx2": {"openai", "anthropic"}, "tqdm": {"transformers"},
              "torch": {"vllm", "peft"}}
SRC = REPO / "src"


def module_file(mod: str) -> Path | None:
    for p in (SRC / (mod.replace(".", "/") + ".py"), SRC / mod.replace(".", "/") / "__init__.py"):
        if p.exists():
            return p
    return None


def imported(mod: str, lazy: bool) -> list[str]:
    import ast

    tree = ast.parse(module_file(mod).read_text())
    out = []
    for n in (ast.walk(tree) if lazy else tree.body):
        if isinstance(n, ast.Import):
            out += [a.name for a in n.names]
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            out += [n.module] + [f"{n.module}.{a.name}" for a in n.names]
    return out


def third_party_imports(run: list[str]) -> set[str]:
    """Top-level third-party modules the predict step imports for one backend: the modules
    that run it read whole (lazy imports too), every other textgauge module at module level
    (what importing it loads)."""
    import sys

    todo = [(m, False) for m in DISPATCH] + [(m, True) for m in COMMON + run]
    seen: set = set()
    found: set[str] = set()
    while todo:
        mod, lazy = todo.pop()
        if (mod, lazy) in seen or module_file(mod) is None:
            continue
        seen.add((mod, lazy))
        for name in imported(mod, lazy):
            top = name.split(".")[0]
            if top == "textgauge":
                parts = name.split(".")
                todo += [(".".join(parts[:i]), False) for i in range(1, len(parts) + 1)]
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.add(IMPORT_TO_DIST.get(top, top))
    return found


def env_provides(path: Path) -> set[str]:
    env = load_env(path)
    names = {CONDA_TO_PYPI.get(s.split()[0], s.split()[0]) for s in conda_specs(env)}
    names |= {Requirement(s).name for s in pip_specs(env) if not s.startswith("-e")}
    names = {canonicalize_name(n) for n in names}
    return names | {dep for dep, by in BROUGHT_BY.items() if by & names}


def backend_envs() -> dict[str, str]:
    """BACKEND_ENVS of workflow/rules/common.smk (the function model_env reads it)."""
    import ast

    m = re.search(r"^BACKEND_ENVS = (\{.*?\})$", COMMON_SMK.read_text(), re.M | re.S)
    return ast.literal_eval(m.group(1))


def test_predict_env_is_chosen_by_backend():
    """The predict rules take `conda: model_env`; each backend's env exists; API and vLLM
    coders do not run in the training env."""
    text = (REPO / "workflow/rules/infer.smk").read_text()
    body = rules_of(text)["predict_gold"]
    assert re.search(r"^\s*conda:\s*\n\s*model_env\s*$", body, re.M), body
    assert "def model_env(wildcards):" in COMMON_SMK.read_text()
    envs = backend_envs()
    assert envs == {"openai": "api", "anthropic": "api", "vllm": "vllm", "transformers": "train"}
    for env in set(envs.values()) | {"train"}:  # encoder and lora models: train
        assert (REPO / "envs" / f"{env}.yaml").exists(), env


@pytest.mark.parametrize("backend", sorted(RUNS))
def test_predict_env_provides_every_module_the_backend_imports(backend):
    env = backend_envs().get(backend, "train")
    needed = third_party_imports(RUNS[backend])
    assert needed, backend
    missing = sorted(needed - env_provides(REPO / "envs" / f"{env}.yaml"))
    assert not missing, (f"{backend}: the predict step imports {missing}, which "
                         f"envs/{env}.yaml does not provide")


def test_the_import_scan_sees_lazy_backend_imports():
    assert {"openai", "aiolimiter", "tenacity"} <= third_party_imports(RUNS["openai"])
    assert {"vllm", "torch"} <= third_party_imports(RUNS["vllm"])
    assert {"peft", "torch", "transformers"} <= third_party_imports(RUNS["lora"])
