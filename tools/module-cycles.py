#!/usr/bin/env python3
"""Checks that the top-level modules of `src/` import each other without a
cycle: every `crate::<module>` path in a module's files (in `use` lines and
in code) is an edge from that module to `<module>`. Prints the layering
(modules in dependency order) or every cycle found, and exits 1 on a cycle.

Item-level tools (cargo-modules) flag a type and its own `impl` as a cycle;
at module level, a cycle means two parts of the server cannot be read, or
changed, one without the other.

    tools/module-cycles.py [SRC_DIR]          (default: src)
"""

import re
import sys
from pathlib import Path

# `crate::name` anywhere, and `use crate::{a, b::c}` groups.
PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
GROUP = re.compile(r"\buse\s+crate::\{([^;]*)\}", re.S)
COMMENT = re.compile(r"//[^\n]*")


def top_modules(src: Path) -> dict[str, list[Path]]:
    """Each top-level module of the crate and the files that make it up."""
    modules: dict[str, list[Path]] = {}
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src)
        if rel.parts[0] in ("lib.rs", "main.rs"):
            continue
        name = rel.parts[0].removesuffix(".rs")
        modules.setdefault(name, []).append(path)
    return modules


def edges(modules: dict[str, list[Path]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, files in modules.items():
        for path in files:
            text = COMMENT.sub("", path.read_text())
            targets = set(PATH.findall(text))
            for group in GROUP.findall(text):
                for item in group.split(","):
                    head = item.strip().split("::")[0].strip()
                    if head:
                        targets.add(head)
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module
    (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layers(graph: dict[str, set[str]]) -> list[list[str]]:
    """Modules grouped by depth: each depends only on earlier groups."""
    depth: dict[str, int] = {}

    def of(node: str) -> int:
        if node not in depth:
            depth[node] = 1 + max((of(d) for d in graph[node]), default=-1)
        return depth[node]

    for node in graph:
        of(node)
    grouped: dict[int, list[str]] = {}
    for node, d in depth.items():
        grouped.setdefault(d, []).append(node)
    return [sorted(grouped[d]) for d in sorted(grouped)]


def main() -> int:
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "src")
    graph = edges(top_modules(src))
    found = cycles(graph)
    if found:
        for component in found:
            print("cycle among: " + ", ".join(component))
            for node in component:
                inside = sorted(graph[node] & set(component))
                print(f"  {node} -> {', '.join(inside)}")
        return 1
    for level, nodes in enumerate(layers(graph)):
        print(f"layer {level}: {', '.join(nodes)}")
    print(f"{len(graph)} modules, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
