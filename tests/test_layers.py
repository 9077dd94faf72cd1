"""The house: qbm's modules import one way, down the layers of the design notes, and
never in a circle. Walks every module's imports (top level and inside functions) with
``ast``; a package's ``__init__`` (its face) may hand on names from anywhere inside it."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "python"

# rank of each room, low to high (design.md "Layers"); the first matching prefix wins
LAYERS: list[tuple[str, int]] = [
    # the command line: imports everything, imported by nothing below it
    ("qbm.cli", 9),
    ("qbm.commands", 9),
    # studies (the runner and the engines)
    ("qbm.studies", 8),
    # training loops, generation and its judges
    ("qbm.training", 7),
    ("qbm.generation", 7),
    # the prior-sampler registry sits above the adapters it builds, plugins above it
    ("qbm.interop", 6),
    ("qbm.registry", 6),
    # torch models
    ("qbm.models", 5),
    # certificates and the QPU backend
    ("qbm.diagnostics", 4),
    ("qbm.qpu", 4),
    # samplers
    ("qbm.samplers", 3),
    # circuit description -> engine, data loaders -> data registry
    ("qbm.quantum", 2),
    ("qbm.data", 2),
    # numpy-level API
    ("qbm.ising", 1),
    ("qbm.mmd", 1),
    ("qbm.rbm", 1),
    ("qbm.problems", 1),
    ("qbm.checkpoint", 1),  # atomic, checksummed torch files (checkpoints, judges, caches)
    # leaves: the core, validation, small helpers that import nothing of qbm
    ("qbm.metrics", 0),
    ("qbm.plotting", 0),
    ("qbm.threads", 0),
    ("qbm.cli_types", 0),
    ("qbm.cli_help", 0),
    ("qbm._", 0),
]


def rank(mod: str) -> int:
    if mod == "qbm":  # the package's face hands on names from below
        return 10
    for prefix, r in LAYERS:
        if mod == prefix or mod.startswith(prefix + ".") or (prefix.endswith("_") and mod.startswith(prefix)):
            return r
    raise AssertionError(f"{mod}: no layer assigned in tests/test_layers.py")


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for p in sorted((ROOT / "qbm").rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _resolve(mod: str, is_pkg: bool, node: ast.ImportFrom) -> list[str]:
    if node.level:
        base = (mod if is_pkg else mod.rsplit(".", 1)[0]).split(".")
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("qbm"):
        return []
    subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES or a.name == "_core"]
    return subs or [target]


def imports() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for mod, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        out: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                out |= {a.name for a in node.names if a.name.startswith("qbm")}
            elif isinstance(node, ast.ImportFrom):
                out |= set(_resolve(mod, path.name == "__init__.py", node))
        # a bare "qbm" (import qbm / from qbm import ...) names the package: not an edge
        edges[mod] = {t for t in out if t != "qbm" and t != mod}
    return edges


def _is_face(mod: str) -> bool:
    return MODULES[mod].name == "__init__.py"


def test_every_module_has_a_layer():
    for mod in MODULES:
        rank(mod)


def test_no_upward_imports():
    bad = []
    for mod, targets in imports().items():
        if _is_face(mod):
            continue
        for t in targets:
            if t.startswith("qbm._core"):
                continue
            if rank(t) > rank(mod):
                bad.append(f"{mod} (layer {rank(mod)}) -> {t} (layer {rank(t)})")
    assert not bad, "imports up the layers:\n" + "\n".join(sorted(bad))


def test_no_import_cycles():
    edges = {m: {t for t in ts if t in MODULES and not _is_face(t)} for m, ts in imports().items() if not _is_face(m)}
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    sccs: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    assert not sccs, "import cycles: " + "; ".join(" <-> ".join(c) for c in sccs)


@pytest.mark.parametrize(
    "src, expect",
    [
        ("import qbm.cli\n", "upward"),
        ("from qbm.training import vae\n", "upward"),
    ],
)
def test_the_checker_catches_an_upward_import(src, expect):
    # the walk itself must see imports inside functions too (a check that cannot fail is no check)
    tree = ast.parse("def f():\n    " + src)
    seen = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            seen |= set(_resolve("qbm.ising", False, node))
        elif isinstance(node, ast.Import):
            seen |= {a.name for a in node.names}
    assert any(rank(t) > rank("qbm.ising") for t in seen) == (expect == "upward")
