"""The install story: pyproject, environment.yml, Makefile and CI agree with each other."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[;\s]", requirement.strip(), maxsplit=1)[0].lower()


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_environment_yml_is_valid_conda_and_mirrors_pyproject() -> None:
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert env["name"] and env["channels"]
    conda_deps = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "python=3.11" in conda_deps and "pip" in conda_deps
    pip_lists = [d["pip"] for d in env["dependencies"] if isinstance(d, dict)]
    assert len(pip_lists) == 1, "exactly one pip section"
    pip_reqs = [r for r in pip_lists[0] if not r.startswith("-")]
    assert "-e ." in pip_lists[0], "the cluster env must install this repository"
    pyproject_reqs = _pyproject()["project"]["dependencies"]
    assert sorted(map(_name, pip_reqs)) == sorted(map(_name, pyproject_reqs))
    assert sorted(pip_reqs) == sorted(pyproject_reqs), "versions must match too"


def test_torch_is_pinned_and_torchvision_absent() -> None:
    deps = _pyproject()["project"]["dependencies"]
    assert "torch==2.13.0" in deps, "a bare `torch` pulls a multi-GB CUDA build on the dev machine"
    all_deps = deps + sum(_pyproject()["project"]["optional-dependencies"].values(), [])
    assert "torchvision" not in map(_name, all_deps)


def test_makefile_has_the_documented_targets() -> None:
    out = subprocess.run(["make", "-pRrq", "-C", str(REPO)], capture_output=True, text=True).stdout
    targets = set(re.findall(r"^([a-z][\w-]*):", out, flags=re.M))
    for target in ("setup", "test", "repro", "cluster-up", "cluster-down", "bench", "clean"):
        assert target in targets, target


def test_ci_runs_make_test_and_nothing_cleverer() -> None:
    script = (REPO / ".ci/run").read_text().splitlines()
    commands = [line for line in script if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert commands == ["make test"]


def test_readme_opens_with_the_two_commands() -> None:
    head = (REPO / "README.md").read_text()[:1500]
    assert "make repro" in head and "make test" in head
