"""The import rules of the code base (see docs/architecture.md), checked on the source itself.

Each rule names a set of modules and what they may not import (or all they may import).
The check reads every module's imports with :mod:`ast` (nothing is imported), so it also
sees imports inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "src"

#: Modules with no I/O and no PVC dependencies beyond each other, that any layer may use
#: (the CLI included): domain XML, storage size units and tier names, PVC's base error.
PURE_HELPERS = ("pvc.domain_xml", "pvc.storage.tiers", "pvc.storage.units", "pvc.errors")
#: Packages of the adapters: they talk to one outside system and know nothing of PVC's state.
ADAPTERS = ("pvc.hypervisor", "pvc.storage", "pvc.net", "pvc.power")
#: Packages above the adapters, which adapters must never reach up to.
UPPER = (
    "pvc.state",
    "pvc.tasks",
    "pvc.cluster",
    "pvc.node",
    "pvc.api",
    "pvc.metadata",
    "pvc.cli",
    "pvc.client",
    "pvc.lab",
)


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


@dataclass(frozen=True)
class Import:
    """One import statement's target, where it stands."""

    module: str  # the importing module
    target: str  # the imported module (``from a import b`` gives ``a.b`` when that is a module)
    line: int

    def __str__(self) -> str:
        return f"{self.module} (line {self.line}) imports {self.target}"


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(root: Path, name: str) -> bool:
    base = root.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(root: Path, path: Path) -> Iterator[Import]:
    """Every module that the file at ``path`` imports (absolute and relative imports)."""
    module = module_name(root, path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield Import(module, candidate if _is_module(root, candidate) else base, node.lineno)


def dynamic_imports(path: Path) -> Iterator[int]:
    """Lines that import by name at run time (importlib.import_module, __import__)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                yield node.lineno


@dataclass(frozen=True)
class Rule:
    """Modules in ``scope`` must not import what ``forbidden`` says."""

    name: str
    scope: Callable[[str], bool]
    forbidden: Callable[[str], bool]


RULES = (
    Rule(
        "the API talks only to the domain library",
        lambda module: _within(module, ("pvc.api",)),
        lambda target: (
            target.startswith("pvc")
            and target != "pvc"
            and not _within(target, ("pvc.api", "pvc.cluster", "pvc.config", "pvc.errors", "pvc.accounts"))
        ),
    ),
    Rule(
        "the metadata service talks only to the domain library (VMs are untrusted clients)",
        lambda module: _within(module, ("pvc.metadata",)),
        lambda target: (
            target.startswith("pvc")
            and target != "pvc"
            and not _within(
                target, ("pvc.metadata", "pvc.cluster", "pvc.config", "pvc.errors", "pvc.accounts")
            )
        ),
    ),
    Rule(
        "kazoo is imported only by the state layer",
        lambda module: not _within(module, ("pvc.state",)),
        lambda target: _within(target, ("kazoo",)),
    ),
    Rule(
        "adapters know nothing of PVC's state or the layers above them",
        lambda module: _within(module, ADAPTERS),
        lambda target: _within(target, UPPER) or _within(target, ("kazoo",)),
    ),
    Rule(
        "the CLI uses only the client and pure helpers",
        lambda module: _within(module, ("pvc.cli",)),
        lambda target: (
            target.startswith("pvc")
            and target != "pvc"
            and not _within(target, ("pvc.cli", "pvc.client", *PURE_HELPERS))
        ),
    ),
    Rule(
        "the client stands alone (the CLI, the lab, benches and other clusters use it)",
        lambda module: _within(module, ("pvc.client",)),
        lambda target: (
            target.startswith("pvc") and target != "pvc" and not _within(target, ("pvc.client", "pvc.errors"))
        ),
    ),
    Rule(
        "pure helpers import only each other",
        lambda module: _within(module, PURE_HELPERS),
        lambda target: target.startswith("pvc") and target != "pvc" and not _within(target, PURE_HELPERS),
    ),
    Rule(
        "the domain library never reaches up into the daemons, the API or the CLI",
        lambda module: _within(module, ("pvc.cluster",)),
        lambda target: _within(target, ("pvc.node", "pvc.api", "pvc.metadata", "pvc.cli", "pvc.lab")),
    ),
)


def violations(root: Path, rules: tuple[Rule, ...] = RULES) -> list[str]:
    """Every import under ``root``/pvc that breaks a rule, and every import by name."""
    found = []
    for path in sorted((root / "pvc").rglob("*.py")):
        for item in imports_of(root, path):
            for rule in rules:
                if rule.scope(item.module) and rule.forbidden(item.target):
                    found.append(f"{rule.name}: {item}")
        for line in dynamic_imports(path):
            found.append(
                f"modules are imported by their names in code: {module_name(root, path)} line {line}"
            )
    return found


def test_the_code_base_keeps_its_import_rules() -> None:
    assert violations(SOURCE) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / "pvc" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for directory in [tmp_path / "pvc", *(p for p in (tmp_path / "pvc").rglob("*") if p.is_dir())]:
        (directory / "__init__.py").touch()
    return tmp_path


@pytest.mark.parametrize(
    ("files", "broken"),
    [
        ({"api/views.py": "from pvc.state import paths\n", "state/paths.py": ""}, "the API talks only"),
        ({"api/views.py": "from pvc.state.cache import ClusterCache\n", "state/cache.py": ""}, "the API"),
        ({"api/views.py": "import kazoo.client\n"}, "kazoo is imported only"),
        ({"api/views.py": "from ..storage import pools\n", "storage/pools.py": ""}, "the API talks only"),
        ({"storage/pools.py": "from pvc.state.store import Store\n", "state/store.py": ""}, "adapters know"),
        ({"net/links.py": "from pvc.cluster import errors\n", "cluster/errors.py": ""}, "adapters know"),
        ({"cli/vm.py": "from pvc.cluster.vm import queries\n", "cluster/vm/queries.py": ""}, "the CLI uses"),
        ({"client/http.py": "from pvc.cli import context\n", "cli/context.py": ""}, "the client stands"),
        ({"domain_xml/parse.py": "import pvc.hypervisor.adapter\n"}, "pure helpers"),
        ({"cluster/vm/x.py": "from pvc.node import loop\n", "node/loop.py": ""}, "the domain library never"),
        (
            {"metadata/app.py": "from pvc.db import engine\n", "db/engine.py": ""},
            "the metadata service talks",
        ),
        ({"tasks/registry.py": "import importlib\nimportlib.import_module('pvc.x')\n"}, "by their names"),
    ],
)
def test_each_rule_catches_a_violation(tmp_path: Path, files: dict[str, str], broken: str) -> None:
    found = violations(_tree(tmp_path, files))
    assert found and all(broken in line for line in found), found


def test_allowed_imports_pass(tmp_path: Path) -> None:
    files = {
        "api/views.py": "from pvc.cluster.vm import queries\nfrom pvc.config import ApiSection\n",
        "cluster/vm/queries.py": "from pvc.state.cache import ClusterCache\n",
        "state/cache.py": "from kazoo.recipe.cache import TreeCache\n",
        "cli/vm.py": "from pvc.client.http import ApiClient\nfrom pvc.domain_xml.edit import add_disk\n",
        "client/http.py": "import requests\nfrom pvc.errors import PVCError\n",
        "domain_xml/edit.py": "from lxml import etree\n",
        "storage/pools.py": "from pvc.commands import run\n",
        "commands.py": "",
        "errors.py": "",
        "config.py": "",
    }
    assert violations(_tree(tmp_path, files)) == []
