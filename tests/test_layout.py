"""The map users were promised: the rooms exist, and data flows one way (a lower room never imports a higher)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["config", "ingest", "detectors", "alerting", "api"]  # lower first; riskwatch/ wires them all


def imported_rooms(folder: str) -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            for name in names:
                found.add((str(path.relative_to(ROOT)), name.split(".")[0]))
    return found


def test_the_promised_top_level_folders_exist():
    for folder in ("ingest", "detectors", "alerting", "api", "simulators", "config", "tests", "bench"):
        assert (ROOT / folder).is_dir(), folder
    assert (ROOT / "pyproject.toml").is_file() and (ROOT / "README.md").is_file()


def test_no_room_imports_a_higher_one():
    wrong = []
    for i, room in enumerate(ORDER):
        higher = set(ORDER[i + 1:]) | {"riskwatch", "simulators", "bench"}
        wrong += [f"{path} imports {mod}" for path, mod in imported_rooms(room) if mod in higher]
    assert wrong == []


def test_detectors_do_no_io_and_read_no_clock():
    forbidden = {"time", "datetime", "socket", "sqlite3", "asyncio", "paho", "aiomqtt", "os", "pathlib", "requests"}
    bad = [f"{path} imports {mod}" for path, mod in imported_rooms("detectors") if mod in forbidden]
    assert bad == []
