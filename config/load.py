"""Loading a plant file: YAML -> standards presets merged under each point -> a validated Plant, or every error."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from config.model import Plant

HERE = Path(__file__).parent
STANDARDS = HERE / "standards.yaml"
DEMO = HERE / "demo.yaml"
MERGED_BLOCKS = ("high", "low", "rate", "forecast", "stuck", "glitch", "anomaly")  # a point overrides these key by key, not as a whole


class ConfigError(Exception):
    """Every problem found in a configuration file, one line each: `file: key.path: what is wrong`."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


def load_standards(path: Path = STANDARDS) -> dict[str, dict[str, Any]]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["kinds"]


def load_plant(path: str | Path, overrides: dict[str, Any] | None = None) -> Plant:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except UnicodeDecodeError as e:
        raise ConfigError(str(path), [f"not UTF-8 text (byte {e.start}); save the file as UTF-8"]) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(str(path), [f"{where}not valid YAML ({getattr(e, 'problem', e)})"]) from None
    if not isinstance(raw, dict):
        raise ConfigError(str(path), ["top level must be a mapping with site, name, areas, points"])
    for key, value in (overrides or {}).items():
        _set_path(raw, key, value)
    return parse_plant(raw, str(path))


def parse_plant(raw: dict[str, Any], source: str = "<config>") -> Plant:
    problems: list[str] = []
    standards = load_standards()
    points = raw.get("points")
    if isinstance(points, list):
        raw = {**raw, "points": [_with_preset(p, i, standards, problems) for i, p in enumerate(points)]}
    unknown_kind = {i for i, p in enumerate(points or []) if isinstance(p, dict) and "kind" in p
                    and p["kind"] not in standards}
    secrets = [(f"users[{i}].token", u, "token") for i, u in enumerate(raw.get("users") or []) if isinstance(u, dict)]
    if isinstance(raw.get("broker"), dict):
        secrets.append(("broker.password", raw["broker"], "password"))
    if isinstance(raw.get("influx"), dict):
        secrets.append(("influx.token", raw["influx"], "token"))
    notify = raw.get("notify")
    channels = notify.get("channels") if isinstance(notify, dict) else None
    for i, ch in enumerate(channels if isinstance(channels, list) else []):
        if isinstance(ch, dict):  # any channel setting may come from the environment (keys, secrets, passwords)
            secrets += [(f"notify.channels[{i}].{k}", ch, k) for k in ch]
    for where, node, key in secrets:  # `env:NAME` keeps a secret out of the file
        if isinstance(node.get(key), str) and node[key].startswith("env:"):
            var = node[key][4:]
            if var not in os.environ:
                problems.append(f"{where}: environment variable {var} is not set")
            else:
                node[key] = os.environ[var]
    references = _reference_problems(raw)
    problems += references
    try:
        plant = Plant.model_validate(raw)
    except ValidationError as e:
        # a cross-reference error raised by the model itself has no key path; ours above do
        problems += [_describe(err, raw) for err in e.errors() if not (references and err["loc"] == ())
                     and not _follows_unknown_kind(err, unknown_kind)]
    if problems:
        raise ConfigError(source, list(dict.fromkeys(problems)))
    return plant


def _follows_unknown_kind(err: dict, unknown: set[int]) -> bool:
    """A point whose kind is unknown misses what the preset would have given: one error says it all."""
    loc = err["loc"]
    return err["type"] == "missing" and len(loc) >= 2 and loc[0] == "points" and loc[1] in unknown


def _reference_problems(raw: dict[str, Any]) -> list[str]:
    """Duplicate ids and unknown areas, found on the raw file so they are reported with every other error."""
    problems: list[str] = []
    areas = raw.get("areas") if isinstance(raw.get("areas"), list) else []
    known = {a.get("id") for a in areas if isinstance(a, dict)}
    seen: set = set()
    for i, p in enumerate(raw.get("points") if isinstance(raw.get("points"), list) else []):
        if not isinstance(p, dict):
            continue
        where = f"points[{i}] (id={p.get('id')})"
        if p.get("id") in seen:
            problems.append(f"{where}.id: duplicate point id {p.get('id')!r}")
        seen.add(p.get("id"))
        if "active_when" in p and p["active_when"] not in {q.get("id") for q in raw["points"] if isinstance(q, dict)}:
            problems.append(f"{where}.active_when: {p['active_when']!r} is not a point")
        if "area" in p and p["area"] not in known:
            problems.append(f"{where}.area: area {p['area']!r} is not in areas "
                            f"({', '.join(sorted(str(a) for a in known))})")
    return problems


def _with_preset(point: Any, index: int, standards: dict, problems: list[str]) -> Any:
    """A point inherits unit, range and limits from its `kind` (a standard preset); its own keys win."""
    if not isinstance(point, dict) or "kind" not in point:
        return point
    preset = standards.get(point["kind"])
    if preset is None:
        problems.append(f"points[{index}] (id={point.get('id')}).kind: unknown kind {point['kind']!r}; "
                        f"known kinds: {', '.join(sorted(standards))}")
        return point
    merged = {k: v for k, v in preset.items() if k not in ("standard", "note")}
    for key, value in point.items():
        if key in MERGED_BLOCKS and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _describe(err: dict, raw: dict) -> str:
    loc = err["loc"]
    parts: list[str] = []
    node: Any = raw
    for item in loc:
        if isinstance(item, int):
            label = f"[{item}]"
            if isinstance(node, list) and item < len(node) and isinstance(node[item], dict) and "id" in node[item]:
                label += f" (id={node[item]['id']})"
            parts.append(label)
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(("." if parts else "") + str(item))
            node = node.get(item) if isinstance(node, dict) else None
    path = "".join(parts) or "(top level)"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key (check its spelling)"
    return f"{path}: {msg}"


def _set_path(raw: dict, dotted: str, value: Any) -> None:
    node = raw
    *head, last = dotted.split(".")
    for key in head:
        node = node.setdefault(key, {})
    node[last] = value
