"""The package's shape: one checked export list, typed, and importable without kopf or kubernetes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import memory_client

PACKAGE = Path(memory_client.__file__).parent


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
