"""The closed loop (闭环) of an orange or red warning: ack -> verify on site -> handle -> feedback -> close out.

Each step is a row with who, when, notes and an optional photo reference; rows are never changed or deleted,
and closing is itself a step. Steps are taken in order; close-out needs the alarm back to normal. Every step
has a deadline counted from the raise (config/alarms.py, from domain.md section 2); a step not done by its
deadline is overdue once, and each overdue step escalates the warning one level further up.
"""
from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field

from config.alarms import STEP_EN, STEP_ZH, STEPS, HandlingConfig
from config.model import Tier

SCHEMA = """
CREATE TABLE IF NOT EXISTS handling_steps (
    id INTEGER PRIMARY KEY, alert_id INTEGER NOT NULL REFERENCES alerts(id), step TEXT NOT NULL,
    actor TEXT NOT NULL, at REAL NOT NULL, note TEXT, photo TEXT
);
CREATE INDEX IF NOT EXISTS handling_by_alert ON handling_steps(alert_id);
CREATE TABLE IF NOT EXISTS handling_loops (  -- since: when the alarm first needed the loop (and was live)
    alert_id INTEGER PRIMARY KEY REFERENCES alerts(id), since REAL NOT NULL, tier INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS handling_steps_append_only_u BEFORE UPDATE ON handling_steps
    BEGIN SELECT RAISE(ABORT, 'handling_steps is append-only'); END;
CREATE TRIGGER IF NOT EXISTS handling_steps_append_only_d BEFORE DELETE ON handling_steps
    BEGIN SELECT RAISE(ABORT, 'handling_steps is append-only'); END;
"""


class StepError(Exception):
    pass


@dataclass(slots=True)
class Step:
    step: str
    actor: str
    at: float
    note: str | None = None
    photo: str | None = None

    def to_json(self) -> dict:
        return {**asdict(self), "step_zh": STEP_ZH[self.step], "step_en": STEP_EN[self.step]}


@dataclass(slots=True)
class Loop:
    """One alert's closed loop so far."""
    alert_id: int
    since: float  # deadlines count from here: when the alarm first needed the loop and was live
    tier: Tier  # the highest tier the alarm reached: it sets the deadlines
    steps: list[Step] = field(default_factory=list)
    overdue: list[str] = field(default_factory=list)  # steps that went overdue, in order

    @property
    def done(self) -> set[str]:
        return {s.step for s in self.steps}

    @property
    def next_step(self) -> str | None:
        return next((s for s in STEPS if s not in self.done), None)

    def deadline(self, cfg: HandlingConfig, step: str | None = None) -> float | None:
        step = step or self.next_step
        return None if step is None else self.since + cfg.limit_s(step, self.tier.label)

    def to_json(self, cfg: HandlingConfig) -> dict:
        nxt = self.next_step
        return {"alert_id": self.alert_id, "tier": self.tier.label, "since": self.since,
                "steps": [s.to_json() for s in self.steps], "next_step": nxt,
                "next_step_zh": STEP_ZH.get(nxt or "", None), "deadline": self.deadline(cfg),
                "overdue": list(self.overdue), "closed": nxt is None}


class Handling:
    """Open loops in memory; callers hold the book's lock and transaction."""

    def __init__(self, db: sqlite3.Connection, cfg: HandlingConfig):
        self._db = db
        self.cfg = cfg
        db.executescript(SCHEMA)
        self.loops: dict[int, Loop] = {}

    def needs_loop(self, max_tier: Tier) -> bool:
        return max_tier != Tier.NORMAL and max_tier.label in self.cfg.tiers

    def reload(self, overdue: dict[int, list[str]]) -> None:
        self.loops = {}
        for aid, since, tier in self._db.execute(
                "SELECT alert_id, since, tier FROM handling_loops WHERE alert_id NOT IN "
                "(SELECT alert_id FROM handling_steps WHERE step='close')").fetchall():
            self.loops[aid] = Loop(aid, since, Tier(tier), self.steps_of(aid), list(overdue.get(aid, [])))

    def stored(self, alert_id: int, overdue: list[str]) -> Loop | None:
        """A loop open or closed, from disk."""
        row = self._db.execute("SELECT since, tier FROM handling_loops WHERE alert_id=?", (alert_id,)).fetchone()
        return None if row is None else Loop(alert_id, row[0], Tier(row[1]), self.steps_of(alert_id), overdue)

    def steps_of(self, alert_id: int) -> list[Step]:
        return [Step(*r) for r in self._db.execute(
            "SELECT step, actor, at, note, photo FROM handling_steps WHERE alert_id=? ORDER BY id", (alert_id,))]

    def track(self, alert_id: int, at: float, max_tier: Tier) -> None:
        """A live alert reached (or was raised at) a tier: from `at` on it carries the loop."""
        if not self.needs_loop(max_tier):
            return
        loop = self.loops.get(alert_id)
        if loop is None:
            if self._db.execute("SELECT 1 FROM handling_loops WHERE alert_id=?", (alert_id,)).fetchone():
                return  # closed out already
            self._db.execute("INSERT INTO handling_loops(alert_id, since, tier) VALUES (?,?,?)",
                             (alert_id, at, int(max_tier)))
            self.loops[alert_id] = Loop(alert_id, at, max_tier, self.steps_of(alert_id))
        elif max_tier > loop.tier:
            loop.tier = max_tier
            self._db.execute("UPDATE handling_loops SET tier=? WHERE alert_id=?", (int(max_tier), alert_id))

    def record(self, alert_id: int, step: str, actor: str, at: float, note: str | None, photo: str | None,
               cleared: bool) -> Step:
        loop = self.loops.get(alert_id)
        if step not in STEPS:
            raise StepError(f"unknown step {step!r}; steps are {', '.join(STEPS)}")
        if loop is None:
            raise StepError(f"alert {alert_id} has no open handling loop (closed, or below the tiers "
                            f"{', '.join(self.cfg.tiers)})")
        if step != loop.next_step:
            raise StepError(f"the next step of alert {alert_id} is {loop.next_step} ({STEP_ZH[loop.next_step]}), "
                            f"not {step}")
        if step == "close" and not cleared:
            raise StepError(f"alert {alert_id} is still active: close it out once it is back to normal")
        self._db.execute("INSERT INTO handling_steps(alert_id, step, actor, at, note, photo) VALUES (?,?,?,?,?,?)",
                         (alert_id, step, actor, at, note, photo))
        s = Step(step, actor, at, note, photo)
        loop.steps.append(s)
        if loop.next_step is None:
            del self.loops[alert_id]
        return s

    def due(self, now: float) -> list[tuple[Loop, str]]:
        """Loops whose next step has just gone overdue (each step reported once)."""
        out = []
        for loop in self.loops.values():
            step = loop.next_step
            if step is not None and step not in loop.overdue and now >= loop.deadline(self.cfg, step):
                out.append((loop, step))
        return out
