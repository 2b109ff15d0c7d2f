"""The Dockerfile, checked statically (no Docker engine here): paths, entry point, user, final-stage contents."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import memory_operator.__main__
from tests.ops.conftest import ROOT, kustomize

BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|make|build-essential|clang|cargo|rustc|git|pip3? install|apt-get install)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def stages() -> list[Stage]:
    text = (ROOT / "Dockerfile").read_text()
    logical = re.sub(r"\\\n", " ", text)  # join continuation lines
    found: list[Stage] = []
    for raw in logical.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            found.append(Stage(words[0], words[2] if len(words) > 2 and words[1].upper() == "AS" else None))
        else:
            found[-1].instructions.append((keyword, args.strip()))
    return found


def project_scripts() -> dict[str, str]:
    return dict(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def test_it_is_multi_stage_from_a_slim_base() -> None:
    found = stages()
    assert len(found) >= 2
    assert all("slim" in s.base or s.base in {x.name for x in found} for s in found)


def test_every_path_it_copies_from_the_context_exists() -> None:
    for stage in stages():
        for args in stage.all("COPY"):
            words = [w for w in shlex.split(args) if not w.startswith("--")]
            if "--from=" in args:
                continue
            for source in words[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_the_dockerignore_lets_every_copied_path_through() -> None:
    allowed = {
        line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")
    }
    for stage in stages():
        for args in stage.all("COPY"):
            if "--from=" not in args:
                for source in shlex.split(args)[:-1]:
                    assert source.rstrip("/") in allowed, f"COPY {source} is excluded by .dockerignore"


def test_the_entry_point_is_a_project_script() -> None:
    final = stages()[-1]
    (entrypoint,) = final.all("ENTRYPOINT")
    command = json.loads(entrypoint)  # exec form: signals reach the operator, no shell in between
    assert command[0] in project_scripts()
    assert project_scripts()[command[0]] == "memory_operator.__main__:main"


def test_the_default_command_is_accepted_by_the_operators_parser() -> None:
    final = stages()[-1]
    (cmd,) = final.all("CMD")
    args = memory_operator.__main__.parser().parse_args(json.loads(cmd))  # exits (SystemExit) on an unknown flag
    assert args.liveness == "http://0.0.0.0:8080/healthz"
    assert args.metrics_address == "0.0.0.0:9090"


def test_the_parser_refuses_a_flag_it_does_not_define() -> None:
    """The check above can fail: a CMD with a flag of another program is refused."""
    with pytest.raises(SystemExit):
        memory_operator.__main__.parser().parse_args(["--metrics-bind-address=:8080"])


def _requirements(pyproject: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / pyproject).read_text())["project"]
    return [Requirement(r) for r in project["dependencies"]]


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "constraints" / "operator.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints/operator.txt: {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_the_image_installs_both_distributions_with_every_dependency_pinned() -> None:
    (install,) = [args for args in stages()[0].all("RUN") if "pip install" in args]
    assert "--constraint constraints/operator.txt ./client ." in install
    pins = _pins()
    ours = {"agent-memory-operator-client", "agent-memory-operator"}
    for requirement in _requirements("client/pyproject.toml") + _requirements("pyproject.toml"):
        name = canonicalize_name(requirement.name)
        if name in ours:
            continue
        assert name in pins, f"{name} is a dependency but constraints/operator.txt does not pin it"
        assert requirement.specifier.contains(pins[name]), f"the pin {name}=={pins[name]} breaks {requirement}"


def test_the_image_carries_oci_labels_and_not_the_sandbox() -> None:
    labels = " ".join(stages()[-1].all("LABEL"))
    for key in ("title", "description", "version", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert f'org.opencontainers.image.version="{version}"' in labels
    copied = [shlex.split(args)[0] for stage in stages() for args in stage.all("COPY") if "--from=" not in args]
    assert not any(source.startswith("sandbox") for source in copied)


def test_the_final_stage_runs_as_a_non_root_numeric_user() -> None:
    final = stages()[-1]
    users = final.all("USER")
    assert users, "the final stage must set USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric, so runAsNonRoot can verify it


def test_the_final_stage_installs_no_build_tools() -> None:
    final = stages()[-1]
    for args in final.all("RUN"):
        assert not BUILD_TOOLS.search(args), f"final stage runs: {args}"
    assert any("--from=" in args for args in final.all("COPY")), "the final stage copies the built venv"


def test_the_deployment_runs_the_image_as_the_dockerfile_user() -> None:
    deployment = next(d for d in kustomize(ROOT / "deploy" / "base") if d["kind"] == "Deployment")
    uid = stages()[-1].all("USER")[-1].split(":")[0]
    assert str(deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"]) == uid
