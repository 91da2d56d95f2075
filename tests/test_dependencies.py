"""`pip install llmcassette` alone is enough: the package imports only what it declares."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import llmcassette

PACKAGE = Path(llmcassette.__file__).parent

# Installed with a declared dependency that requires it: pydantic pins its pydantic-core, and
# httpcore (like httpx2) brings h11.
PROVIDED_BY = {"pydantic_core": "pydantic", "h11": "httpcore"}
# The libraries of the clients the adapters serve: imported only to answer a client that uses them.
CLIENT_LIBRARIES = {"aiohttp", "urllib3", "botocore", "requests"}


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    # An import inside `try: ... except ImportError` (or a TYPE_CHECKING block) is optional.
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
            for h in node.handlers
        ):
            return True
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _third_party_imports() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "llmcassette" or _guarded(node, parents):
                    continue
                found.setdefault(top, set()).add(str(path.relative_to(PACKAGE)))
    return found


def _runtime_requirements() -> set[str]:
    declared = importlib.metadata.requires("llmcassette") or []
    return {
        re.split(r"[\s<>=!~;\[]", line, maxsplit=1)[0].lower().replace("_", "-")
        for line in declared
        if "extra ==" not in line
    }


def test_every_import_of_the_package_is_a_runtime_dependency() -> None:
    distributions = importlib.metadata.packages_distributions()
    required = _runtime_requirements()
    missing = {
        top: sorted(files)
        for top, files in _third_party_imports().items()
        if top not in CLIENT_LIBRARIES
        and not {d.lower().replace("_", "-") for d in distributions.get(top, [])} & required
        and PROVIDED_BY.get(top) not in required
    }
    assert missing == {}
