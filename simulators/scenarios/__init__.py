"""Scenarios, one per file: an accident rebuilt from its report, or a stretch of life that must raise nothing.
Adding a scenario is adding a file here that defines SCENARIO (or SCENARIOS)."""
from __future__ import annotations

import importlib
import pkgutil

from simulators.scenarios.base import Scenario, Series, Truth


def all_scenarios() -> dict[str, Scenario]:
    found: dict[str, Scenario] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for sc in getattr(module, "SCENARIOS", [getattr(module, "SCENARIO", None)]):
            if sc is not None:
                if sc.name in found:
                    raise ValueError(f"two scenarios are named {sc.name!r}")
                found[sc.name] = sc
    return found


__all__ = ["Scenario", "Series", "Truth", "all_scenarios"]
