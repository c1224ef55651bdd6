"""Fail when a module graph of the project has an import cycle.

``python tests/check_import_cycles.py`` reads every ``.py`` file under the package roots below with ``ast`` (nothing
is imported or run), records each import of another project module -- module-level ones and the lazy ones inside
functions alike, since a lazy import is a dependency too, only a postponed one -- and prints every strongly
connected component of more than one module.  Exit status 0: no cycle; 1: cycles (listed).

Roots: ``backend/`` (``impasto``), ``shared/`` (``impasto_protocol``), ``plugins/krita/`` (``impasto_krita``),
``plugins/gimp/impasto/`` (``impasto_gimp``, the plug-in script ``impasto``) and ``plugins/core/``
(``impasto_plugin``).
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = [ROOT / "backend", ROOT / "shared", ROOT / "plugins" / "krita", ROOT / "plugins" / "gimp" / "impasto",
                ROOT / "plugins" / "core"]


def module_files(roots: list[Path]) -> dict[str, Path]:
    """Dotted module name -> file, for every module under ``roots`` (``pkg/__init__.py`` is ``pkg``)."""
    out: dict[str, Path] = {}
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root)
            if any(part in ("vendor", "__pycache__") or part.startswith(".") for part in rel.parts):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts:
                out[".".join(parts)] = path
    return out


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute module named by ``from <level dots><name> import ...`` inside ``module``."""
    if level == 0:
        return name or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``module`` imports (the longest known prefix of each imported name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def add(name: str) -> None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
            for alias in node.names:          # `from pkg import sub` imports the submodule pkg.sub
                full = f"{base}.{alias.name}" if base else alias.name
                add(full if full in known else base)
    return found


def graph(roots: list[Path] = SOURCE_ROOTS) -> dict[str, set[str]]:
    files = module_files(roots)
    known = set(files)
    return {m: imports_of(m, p, known) for m, p in files.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(g):
        if start in index:
            continue
        work = [(start, iter(sorted(g[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            for nxt in it:
                if nxt not in g:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(g[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return sorted(out)


def main() -> int:
    g = graph()
    found = cycles(g)
    for comp in found:
        edges = [f"{a} -> {b}" for a in comp for b in sorted(g[a]) if b in comp]
        print(f"cycle of {len(comp)} modules: {', '.join(comp)}\n  " + "\n  ".join(edges))
    print(f"{len(g)} modules, {sum(len(v) for v in g.values())} imports, {len(found)} cycle(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
