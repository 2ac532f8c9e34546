"""The picture of imports: no circles, and the key module's builders never share a prefix.

The layer contracts themselves are import-linter's (`.importlinter`, run by `make test`)."""

from __future__ import annotations

import inspect
import re

import grimp

from chalicelib.store import keys


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(module: str) -> None:
        index[module] = low[module] = counter[0]
        counter[0] += 1
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module) & modules:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return found


def test_no_module_imports_itself_through_others():
    """Function-level (lazy) imports count too: a circle is a circle whenever it is walked."""
    graph = grimp.build_graph("chalicelib")
    modules = {m for m in graph.modules if m.startswith("chalicelib")}
    assert _cycles(graph, modules) == []


def test_no_package_imports_itself_through_others():
    graph = grimp.build_graph("chalicelib")
    packages = {m for m in graph.modules if m.count(".") == 1}
    squashed = grimp.build_graph("chalicelib")
    for package in packages:
        if squashed.find_children(package):
            squashed.squash_module(package)
    assert _cycles(squashed, {m for m in squashed.modules if m.count(".") <= 1 and m != "chalicelib"}) == []


def _key_shape(builder) -> tuple[str, str]:
    """(partition shape, literal sort-key prefix) of a builder's keys: made with placeholder
    arguments, each placeholder in the partition standing for any value."""
    args = len(inspect.signature(builder).parameters)
    pk, sk = builder(*[f"\x00{n}\x00" for n in range(args)])
    pk_shape = re.sub("\x00[0-9]+\x00", "{}", pk)
    return pk_shape, sk.split("\x00", 1)[0]


def test_no_two_item_kinds_share_a_key_prefix():
    """Two kinds of item may share a partition (a member's), never a sort-key prefix in it: a
    Query by one kind's prefix must never meet the other kind."""
    shapes = [(kind, name, *_key_shape(getattr(keys, name))) for name, kind in keys.BUILDERS.items()]
    clashes = [
        f"{name_a} ({kind_a}) ~ {name_b} ({kind_b}): {pk_a} / {sk_a!r} vs {sk_b!r}"
        for i, (kind_a, name_a, pk_a, sk_a) in enumerate(shapes)
        for kind_b, name_b, pk_b, sk_b in shapes[i + 1:]
        if kind_a != kind_b and pk_a == pk_b and (sk_a.startswith(sk_b) or sk_b.startswith(sk_a))
    ]
    assert clashes == []


def test_every_item_kind_has_its_key_builder():
    from chalicelib.store import models, wechat_tokens  # noqa: F401  (every module that defines item kinds)

    kinds = set(models.TableItem._attributes["kind"]._class_map.values())
    assert kinds - set(keys.BUILDERS.values()) == set()


def test_every_item_kind_says_what_it_is_to_a_member():
    """Members' rights (domain/privacy.py): export and erasure follow one table; a kind nobody
    classified would be silently left out of both. Add one line per new kind to `KINDS`."""
    from chalicelib.domain import privacy
    from chalicelib.store import models, wechat_tokens  # noqa: F401  (every module that defines item kinds)

    kinds = set(models.TableItem._attributes["kind"]._class_map.values())
    assert privacy.unclassified(kinds) == set(), "classify these kinds in chalicelib/domain/privacy.py KINDS"
    assert set(privacy.KINDS) - kinds == set(), "KINDS names kinds that no longer exist"
    for kind, handling in privacy.KINDS.items():
        assert not handling.strip or handling.cls == privacy.FINANCIAL, kind
