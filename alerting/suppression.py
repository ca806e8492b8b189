"""Suppressions: an alarm shelved by an operator, a point out of service, or an alarm suppressed by design.

A suppression covers a subject (a point, or a point's rules) for a while. It is a record with who began it,
when, why and until when, and who ended it, when and why; records are never deleted, and an ended record
cannot be changed (the table enforces it). The alert book consults them: an alarm on a suppressed subject is
still recorded, but it is not on the operators' list as a live alarm and nobody is notified, and the wall
shows the suppression itself.

- shelved (搁置): by an operator, for one alarm (point + rule), with a reason and an expiry. Expiry returns the
  alarm unacknowledged; an operator's unshelve returns it acknowledged. A shelved alarm that rises above the
  tier it was shelved at returns at once.
- out_of_service (停用): by an engineer, for a point (all its rules), for maintenance, with an expiry.
- by_design (设计抑制): by riskwatch itself: a gateway offline suppresses its points' silence alarms; a
  line stopped suppresses its process alarms. Ends when the cause ends.
"""
from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass

from config.model import Tier

KINDS = ("out_of_service", "shelved", "by_design")  # strongest first: it is the one an alarm shows
KIND_ZH = {"shelved": "搁置", "out_of_service": "停用维护", "by_design": "设计抑制"}
HEALTH_RULES = ("stale", "stuck", "glitch", "range", "disagree")

SCHEMA = """
CREATE TABLE IF NOT EXISTS suppressions (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, point TEXT NOT NULL, rules TEXT,  -- NULL: every rule
    started_at REAL NOT NULL, started_by TEXT, reason TEXT NOT NULL, until REAL, max_tier INTEGER,
    ended_at REAL, ended_by TEXT, end_reason TEXT
);
CREATE INDEX IF NOT EXISTS suppressions_open ON suppressions(ended_at);
CREATE TRIGGER IF NOT EXISTS suppressions_keep BEFORE DELETE ON suppressions
    BEGIN SELECT RAISE(ABORT, 'suppressions are kept'); END;
CREATE TRIGGER IF NOT EXISTS suppressions_end_once BEFORE UPDATE ON suppressions WHEN OLD.ended_at IS NOT NULL
    BEGIN SELECT RAISE(ABORT, 'an ended suppression cannot change'); END;
"""


@dataclass(slots=True)
class Suppression:
    id: int
    kind: str
    point: str
    rules: tuple[str, ...] | None
    started_at: float
    started_by: str | None
    reason: str
    until: float | None
    max_tier: Tier | None  # shelved: the tier it covers; above it the alarm returns
    ended_at: float | None = None
    ended_by: str | None = None
    end_reason: str | None = None

    def covers(self, point: str, rule: str) -> bool:
        return point == self.point and (self.rules is None or rule in self.rules)

    def label_zh(self) -> str:
        who = f"{self.started_by}：" if self.started_by else ""
        return f"{KIND_ZH[self.kind]}（{who}{self.reason}）"

    def to_json(self) -> dict:
        d = asdict(self)
        d["rules"] = list(self.rules) if self.rules is not None else None
        d["max_tier"] = self.max_tier.label if self.max_tier is not None else None
        return d


class Suppressions:
    """The open suppressions in memory, all of them on disk. Callers hold the book's lock and transaction."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db
        db.executescript(SCHEMA)
        self.open: dict[int, Suppression] = {}
        self.version = 0  # bumped at every change of the open ones: whoever shows them knows when to say so again
        self.reload()

    def reload(self) -> None:
        self.open = {s.id: s for s in self.select("WHERE ended_at IS NULL")}
        self.version += 1

    def select(self, where: str = "", args: tuple = ()) -> list[Suppression]:
        rows = self._db.execute(
            "SELECT id, kind, point, rules, started_at, started_by, reason, until, max_tier, ended_at, ended_by, "
            f"end_reason FROM suppressions {where} ORDER BY id", args).fetchall()
        return [Suppression(i, k, p, tuple(r.split(",")) if r is not None else None, sa, sb, why, until,
                            Tier(mt) if mt is not None else None, ea, eb, er)
                for i, k, p, r, sa, sb, why, until, mt, ea, eb, er in rows]

    def matching(self, point: str, rule: str) -> Suppression | None:
        """The strongest open suppression covering (point, rule), if any."""
        best = None
        for s in self.open.values():
            if s.covers(point, rule) and (best is None or KINDS.index(s.kind) < KINDS.index(best.kind)):
                best = s
        return best

    def find(self, kind: str, point: str, rules: tuple[str, ...] | None) -> Suppression | None:
        return next((s for s in self.open.values() if (s.kind, s.point, s.rules) == (kind, point, rules)), None)

    def begin(self, kind: str, point: str, rules: tuple[str, ...] | None, at: float, by: str | None, reason: str,
              until: float | None, max_tier: Tier | None = None) -> Suppression:
        cur = self._db.execute(
            "INSERT INTO suppressions(kind, point, rules, started_at, started_by, reason, until, max_tier) "
            "VALUES (?,?,?,?,?,?,?,?)", (kind, point, ",".join(rules) if rules is not None else None, at, by, reason,
                                         until, int(max_tier) if max_tier is not None else None))
        s = Suppression(cur.lastrowid, kind, point, rules, at, by, reason, until, max_tier)
        self.open[s.id] = s
        self.version += 1
        return s

    def end(self, s: Suppression, at: float, by: str | None, reason: str) -> None:
        self._db.execute("UPDATE suppressions SET ended_at=?, ended_by=?, end_reason=? WHERE id=?",
                         (at, by, reason, s.id))
        s.ended_at, s.ended_by, s.end_reason = at, by, reason
        self.open.pop(s.id, None)
        self.version += 1

    def expired(self, now: float) -> list[Suppression]:
        return [s for s in self.open.values() if s.until is not None and now >= s.until]
