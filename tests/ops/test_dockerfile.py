"""The Dockerfile, checked statically (no Docker engine here): paths, entry point, user, final-stage contents."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field

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


def test_the_default_command_uses_flags_the_operator_has() -> None:
    final = stages()[-1]
    (cmd,) = final.all("CMD")
    flags = [arg.split("=", 1)[0] for arg in json.loads(cmd)]
    source = (ROOT / "operator" / "memory_operator" / "__main__.py").read_text()
    for flag in flags:
        assert f'"{flag}"' in source, f"CMD uses {flag}, which agent-memory-operator does not define"


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
