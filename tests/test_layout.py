"""The seams between the parts: `ml/` is a library that never imports the app, no two modules import
each other (directly or round a loop), and the web process loads no model code."""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import ROOT

PACKAGES = ("convassist", "ml")


def imports(path, *, module_level_only: bool) -> set[str]:
    """The modules of ours a file imports (module level only: what loading it loads)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if module_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] in PACKAGES}


def module_name(path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_ml_never_imports_the_app():
    offenders = {module_name(path): sorted(n for n in imports(path, module_level_only=False)
                                           if n.startswith("convassist"))
                 for path in (ROOT / "ml").rglob("*.py")}
    assert {m: names for m, names in offenders.items() if names} == {}


def test_no_import_cycle():
    files = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    graph = {m: {n for n in imports(p, module_level_only=False) if n in files and n != m} for m, p in files.items()}
    cycles = []

    def visit(module, path):
        for nxt in graph[module]:
            if nxt in path:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt, path + [nxt])
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    # a package importing its own modules (convassist.api → convassist.api.app) is how packages work
    cycles = [c for c in cycles if not any(a.startswith(b + ".") or b.startswith(a + ".") for a, b in zip(c, c[1:]))]
    assert cycles == []


def test_the_web_process_loads_no_model_code():
    code = ("import sys, convassist.convassist; "
            "print(sorted(m for m in ('numpy', 'torch', 'transformers', 'llama_cpp', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
