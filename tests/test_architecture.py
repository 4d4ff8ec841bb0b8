"""docs/architecture.md is the map of the rooms; it must match the tree both ways."""
from __future__ import annotations

import re

from tests.support.paths import ROOT

DOC = (ROOT / "docs" / "architecture.md").read_text()


def _first_column(heading: str) -> list[str]:
    """The backticked paths in the first column of the table under `## heading`."""
    section = DOC.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", section, flags=re.MULTILINE)


def test_every_room_the_document_names_exists():
    rooms = _first_column("Rooms")
    assert len(rooms) > 10
    missing = [room for room in rooms if not (ROOT / room).is_dir()]
    assert missing == []
    not_packages = [room for room in rooms
                    if room.startswith("hub/") and room != "hub/translations/" and not (ROOT / room / "__init__.py").is_file()]
    assert not_packages == []


def test_every_room_in_the_tree_is_named():
    named = set(_first_column("Rooms"))
    in_tree = {f"hub/{p.parent.name}/" for p in (ROOT / "hub").glob("*/__init__.py")}
    in_tree |= {f"hub/channels/{p.parent.name}/" for p in (ROOT / "hub" / "channels").glob("*/__init__.py")}
    in_tree |= {f"hub/channels/whatsapp/{p.parent.name}/"
                for p in (ROOT / "hub" / "channels" / "whatsapp").glob("*/__init__.py")}
    in_tree.add("hub/translations/")
    assert sorted(in_tree - named) == []


def test_the_root_holds_only_the_entry_points_the_document_lists():
    listed = set(_first_column("The root: entry points only"))
    assert listed == {f"hub/{p.name}" for p in (ROOT / "hub").glob("*.py")}
    assert all((ROOT / path).is_file() for path in listed)
