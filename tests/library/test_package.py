"""The package's shape: one checked export list, typed, and importable without kopf or kubernetes."""

from __future__ import annotations

import configparser
import pkgutil
import subprocess
import sys
from pathlib import Path

import memory_client
from memory_client import AgentMemory

PACKAGE = Path(memory_client.__file__).parent
#: The modules users and the operator import; the rest are `_private` rooms behind the package's exports.
PUBLIC_MODULES = {"aio", "audit", "contract", "errors", "langchain", "langgraph", "seal", "wire"}


def test_every_exported_name_exists_and_the_list_is_sorted_without_duplicates() -> None:
    assert all(hasattr(memory_client, name) for name in memory_client.__all__)
    assert len(set(memory_client.__all__)) == len(memory_client.__all__)
    assert memory_client.__all__ == sorted(memory_client.__all__, key=lambda n: (not n.isupper(), n))


def test_every_public_class_and_function_of_the_top_level_is_exported() -> None:
    public = {n for n, v in vars(memory_client).items() if not n.startswith("_") and not isinstance(v, type(sys))}
    public -= {"annotations"}
    assert public == set(memory_client.__all__)


def test_package_is_marked_typed() -> None:
    assert (PACKAGE / "py.typed").exists()


def test_library_imports_without_kopf_or_kubernetes() -> None:
    """An agent image has neither; a finder that refuses them proves no module of ours needs them."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('kopf', 'kubernetes', 'memory_operator', 'memory_sandbox'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import pkgutil, importlib, memory_client\n"
        "for m in pkgutil.iter_modules(memory_client.__path__):\n"
        "    importlib.import_module('memory_client.' + m.name)\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(PACKAGE.parent)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_internals_live_in_private_modules() -> None:
    modules = {m.name for m in pkgutil.iter_modules(memory_client.__path__)}
    assert {m for m in modules if not m.startswith("_")} == PUBLIC_MODULES


def test_the_operator_may_not_import_a_private_module_and_every_one_is_named_so() -> None:
    """The import-linter contract (in the test command) names each private module: a new one must join it."""
    config = configparser.ConfigParser()
    config.read(PACKAGE.parents[1] / ".importlinter")
    forbidden = set(config["importlinter:contract:library-public-face"]["forbidden_modules"].split())
    private = {f"memory_client.{m.name}" for m in pkgutil.iter_modules(memory_client.__path__) if m.name[0] == "_"}
    assert forbidden == private


def test_the_facade_offers_what_users_call_and_no_building_blocks() -> None:
    public = {name for name in vars(AgentMemory) if not name.startswith("_")}
    assert public == {
        "agent_report",
        "audit_events",
        "auditing",
        "close",
        "conversation",
        "erase_subject",
        "export_subject",
        "from_env",
        "pseudonym",
        "shared_context",
        "usage",
        "verify_audit",
        "verify_sealed",
    }
