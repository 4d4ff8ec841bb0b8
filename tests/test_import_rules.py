"""The import rules of docs/architecture.md, read from every module's imports (those
inside functions too): connectors see only the hub's shared leaves, the hub never
imports a connector package, and production code never imports an emulator."""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.paths import ROOT

CONNECTOR_PACKAGES = {p.parent.name for p in (ROOT / "connectors").glob("*/__init__.py")}
# These drive emulators on purpose: the demo and the connectors' benchmark kits.
EMULATOR_DRIVERS = {"hub.demo"} | {f"connectors.{name}.benchkit" for name in CONNECTOR_PACKAGES}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(top: str) -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / top).rglob("*.py"))}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported name) for every absolute import; `from a import b` gives a.b."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _is_emulator(name: str) -> bool:
    return any(part.startswith("emulator") for part in name.split("."))


def _connector_package(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if parts[0] == "connectors" and len(parts) > 1 and parts[1] in CONNECTOR_PACKAGES else None


def test_the_rules_see_the_whole_tree():
    assert len(_modules("hub")) > 200 and len(_modules("connectors")) > 50
    assert {"amocrm", "bitrix24", "hubspot", "webhook"} <= CONNECTOR_PACKAGES


def test_connectors_import_only_the_shared_leaves_of_the_hub_and_never_each_other():
    wrong = []
    for module, path in _modules("connectors").items():
        own = _connector_package(module)
        for line, name in _imports(path):
            if name.split(".")[0] == "hub" and not name.startswith("hub.shared."):
                wrong.append(f"{module}:{line} imports {name}")
            other = _connector_package(name)
            if other and other != own:
                wrong.append(f"{module}:{line} imports {name}")
    assert wrong == []


def test_nothing_in_the_hub_imports_a_connector_package():
    wrong = [f"{module}:{line} imports {name}"
             for module, path in _modules("hub").items()
             for line, name in _imports(path) if _connector_package(name)]
    assert wrong == []


def test_production_code_never_imports_an_emulator():
    wrong = []
    for top in ("hub", "connectors"):
        for module, path in _modules(top).items():
            if _is_emulator(module) or module in EMULATOR_DRIVERS:
                continue
            wrong += [f"{module}:{line} imports {name}" for line, name in _imports(path) if _is_emulator(name)]
    assert wrong == []


def test_every_channel_module_imports_with_the_emulators_blocked():
    """In a fresh interpreter where any `emulator` module under hub.channels refuses to
    load, every production module of the channels still imports."""
    modules = sorted(m for m in _modules("hub") if m.startswith("hub.channels") and not _is_emulator(m))
    assert "hub.channels.whatsapp.outbound.sender" in modules
    script = textwrap.dedent(f"""
        import importlib, importlib.abc, sys

        class BlockEmulators(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.startswith("hub.channels") and any(p.startswith("emulator") for p in name.split(".")):
                    raise ImportError(f"emulator blocked: {{name}}")
                return None

        sys.meta_path.insert(0, BlockEmulators())
        for name in {modules!r}:
            importlib.import_module(name)
        loaded = sorted(m for m in sys.modules if m.startswith("hub.channels") and "emulator" in m)
        assert loaded == [], loaded
        print("imported", len({modules!r}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == f"imported {len(modules)}"


CHANNEL_PACKAGES = {p.parent.name for p in (ROOT / "hub" / "channels").glob("*/__init__.py")}
# Reach a channel only through its kind (hub.channels.registry): the web layer's
# channel-neutral modules; the per-kind forms and WhatsApp's templates pages may not.
THROUGH_THE_KIND = {"hub.web.webhooks", "hub.web.media", "hub.web.api.messages", "hub.web.admin.inbox",
                    "hub.web.admin.broadcasts"}


def _channel_package(name: str) -> str | None:
    parts = name.split(".")
    if parts[:2] == ["hub", "channels"] and len(parts) > 2 and parts[2] in CHANNEL_PACKAGES:
        return parts[2]
    return None


def test_the_channel_rules_see_every_channel_and_every_module_they_name():
    assert {"whatsapp", "telegram", "instagram"} <= CHANNEL_PACKAGES
    assert THROUGH_THE_KIND <= set(_modules("hub"))


def test_telegram_and_instagram_never_import_whatsapp():
    """What they share with WhatsApp lives in hub.channels (settings, window,
    meta_signature, media, ledger), their emulators included."""
    wrong = [f"{module}:{line} imports {name}"
             for module, path in _modules("hub").items() if _channel_package(module) in ("telegram", "instagram")
             for line, name in _imports(path) if _channel_package(name) == "whatsapp"]
    assert wrong == []


def test_no_channel_package_imports_another():
    wrong = [f"{module}:{line} imports {name}"
             for module, path in _modules("hub").items() if (own := _channel_package(module))
             for line, name in _imports(path) if (other := _channel_package(name)) and other != own]
    assert wrong == []


def test_the_shared_channel_modules_import_no_channel():
    """hub/channels/*.py is what every kind shares; only the package itself imports the
    kinds, to register them."""
    shared = {m: p for m, p in _modules("hub").items() if p.parent == ROOT / "hub" / "channels" and m != "hub.channels"}
    assert {"hub.channels.base", "hub.channels.ledger", "hub.channels.media", "hub.channels.settings",
            "hub.channels.window", "hub.channels.meta_signature", "hub.channels.webhook_cache"} <= set(shared)
    wrong = [f"{module}:{line} imports {name}"
             for module, path in shared.items() for line, name in _imports(path) if _channel_package(name)]
    assert wrong == []


def test_the_inbox_webhooks_media_and_message_api_reach_channels_only_through_their_kind():
    wrong = [f"{module}:{line} imports {name}"
             for module in sorted(THROUGH_THE_KIND) for line, name in _imports(_modules("hub")[module])
             if _channel_package(name)]
    assert wrong == []


def _graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the modules of `modules` it imports (`from a import b` is a.b when that
    is a module, else a; a package's own __init__ is not counted as imported by its parts)."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for _line, name in _imports(path):
            target = name if name in modules else name.rpartition(".")[0]
            if target in modules and target != module and not module.startswith(target + "."):
                targets.add(target)
        graph[module] = targets
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
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
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circle_among_the_hubs_and_the_connectors_modules():
    """Imports inside functions count too: a circle hidden in a function is still one
    (a channel's kind calling its webhook module, which built the kind again)."""
    modules = {**_modules("hub"), **_modules("connectors")}
    assert _circles(_graph(modules)) == []


def test_the_circle_finder_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _room(path: Path) -> str:
    """The room a file belongs to: a folder at the top of `hub/`, `connectors/`,
    `migrations/`, or a file of its own at the root (the entry points, `wsgi.py`)."""
    parts = path.relative_to(ROOT).parts
    if parts[0] == "hub" and len(parts) > 2:
        return f"hub/{parts[1]}"
    if parts[0] in ("connectors", "migrations"):
        return parts[0]
    return "/".join(parts)


def _room_imports(modules: dict[str, Path]) -> dict[tuple[str, str], list[str]]:
    """(room, room it imports) -> the imports that draw the arrow, as `file:line name`;
    a name is the longest module of `modules` it starts with."""
    arrows: dict[tuple[str, str], list[str]] = {}
    for module, path in modules.items():
        source = _room(path)
        for line, name in _imports(path):
            parts = name.split(".")
            while parts and ".".join(parts) not in modules:
                parts.pop()
            if not parts:
                continue
            target = _room(modules[".".join(parts)])
            if target != source:
                arrows.setdefault((source, target), []).append(f"{path.relative_to(ROOT)}:{line} {name}")
    return arrows


def _room_circles(arrows: dict[tuple[str, str], list[str]]) -> list[str]:
    """Each circle of rooms, with every import that runs between two of its rooms."""
    graph: dict[str, set[str]] = {}
    for source, target in arrows:
        graph.setdefault(source, set()).add(target)
        graph.setdefault(target, set())
    report = []
    for group in _circles(graph):
        inside = [f"  {source} -> {target}: {where}" for (source, target), wheres in sorted(arrows.items())
                  if source in group and target in group for where in wheres]
        report.append(f"rooms {', '.join(group)} import each other:\n" + "\n".join(inside))
    return report


def _all_modules() -> dict[str, Path]:
    return {**_modules("hub"), **_modules("connectors"), **_modules("migrations"), "wsgi": ROOT / "wsgi.py"}


def test_no_import_circle_among_the_rooms():
    """The rooms of docs/architecture.md form no circle either, imports inside functions
    included: a lower room reaches a higher one only through a hook the higher room
    installs (hub/wiring.py) or a setting check it registers, never by importing it."""
    circles = _room_circles(_room_imports(_all_modules()))
    assert not circles, "\n".join(circles)


def test_the_room_rules_see_every_room_and_find_a_circle():
    rooms = {source for source, _target in _room_imports(_all_modules())}
    assert {"hub/shared", "hub/platform", "hub/models", "hub/events", "hub/delivery", "hub/conversations",
            "hub/crm", "hub/channels", "hub/web", "connectors", "migrations", "hub/app.py", "wsgi.py"} <= rooms
    arrows = {("a", "b"): ["a/x.py:3 b.y"], ("b", "a"): ["b/y.py:7 a.x"], ("c", "a"): ["c/z.py:1 a.x"]}
    assert _room_circles(arrows) == ["rooms a, b import each other:\n  a -> b: a/x.py:3 b.y\n  b -> a: b/y.py:7 a.x"]
