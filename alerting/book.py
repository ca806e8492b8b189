"""The alert book: one alert per (point, rule) episode, and an append-only event log, both in SQLite.

An episode is raised at a tier, moves up and down tiers, and clears when its detector reports normal. An
operator acknowledges it (who, when, a note). A higher tier inside an acknowledged episode needs a new
acknowledgement: the operator acknowledged the lesser danger. Cleared alerts stay listed until acknowledged.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from config.model import Point, Tier
from detectors.finding import Finding

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, point TEXT NOT NULL, area TEXT NOT NULL, rule TEXT NOT NULL,
    tier INTEGER NOT NULL, max_tier INTEGER NOT NULL, state TEXT NOT NULL,
    raised_at REAL NOT NULL, changed_at REAL NOT NULL, cleared_at REAL,
    acked_by TEXT, acked_at REAL, ack_note TEXT, value REAL, reason_zh TEXT NOT NULL, reason_en TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_listed ON alerts(state, acked_at);
CREATE TABLE IF NOT EXISTS alert_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, alert_id INTEGER NOT NULL REFERENCES alerts(id),
    kind TEXT NOT NULL, tier INTEGER NOT NULL, ts REAL NOT NULL, value REAL, actor TEXT, note TEXT,
    reason_zh TEXT NOT NULL, reason_en TEXT NOT NULL,
    alert_json TEXT NOT NULL  -- the alert as it was after this event: a replay shows what a live push showed
);
CREATE TRIGGER IF NOT EXISTS alert_events_append_only_u BEFORE UPDATE ON alert_events
    BEGIN SELECT RAISE(ABORT, 'alert_events is append-only'); END;
CREATE TRIGGER IF NOT EXISTS alert_events_append_only_d BEFORE DELETE ON alert_events
    BEGIN SELECT RAISE(ABORT, 'alert_events is append-only'); END;
"""


@dataclass(slots=True)
class Alert:
    id: int
    point: str
    area: str
    rule: str
    tier: Tier
    max_tier: Tier
    state: str  # active | cleared
    raised_at: float
    changed_at: float
    cleared_at: float | None
    acked_by: str | None
    acked_at: float | None
    ack_note: str | None
    value: float | None
    reason_zh: str
    reason_en: str

    @property
    def listed(self) -> bool:
        """On the operators' list: active, or cleared but not yet acknowledged."""
        return self.state == "active" or self.acked_at is None

    def to_json(self) -> dict:
        d = asdict(self)
        d["tier"], d["max_tier"] = self.tier.label, self.max_tier.label
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Alert":
        return cls(**{**d, "tier": Tier.parse(d["tier"]), "max_tier": Tier.parse(d["max_tier"])})


@dataclass(slots=True)
class AlertEvent:
    seq: int
    alert_id: int
    kind: str  # raised | tier_up | tier_down | cleared | acked
    tier: Tier
    ts: float
    value: float | None
    actor: str | None
    note: str | None
    reason_zh: str
    reason_en: str
    alert: Alert

    def to_json(self) -> dict:
        return {"seq": self.seq, "alert_id": self.alert_id, "point": self.alert.point, "area": self.alert.area,
                "rule": self.alert.rule, "kind": self.kind, "tier": self.tier.label, "ts": self.ts,
                "value": self.value, "actor": self.actor, "note": self.note, "reason_zh": self.reason_zh,
                "reason_en": self.reason_en, "alert": self.alert.to_json()}


class AckError(Exception):
    pass


class AlertBook:
    def __init__(self, path: str | Path, points: dict[str, Point], synchronous: str = "NORMAL"):
        self.points = points
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()  # one connection, used by the pipeline's writer and by the API's threads
        self._listed: dict[int, Alert] = {a.id: a for a in self._select("WHERE state='active' OR acked_at IS NULL")}
        self._open: dict[tuple[str, str], Alert] = {(a.point, a.rule): a for a in self._listed.values()
                                                    if a.state == "active"}

    # --- reads ----------------------------------------------------------------------------------------------
    def listed(self) -> list[Alert]:
        with self._lock:
            return sorted(self._listed.values(), key=lambda a: (-a.tier, -a.changed_at))

    def open_tiers(self) -> dict[tuple[str, str], Tier]:
        with self._lock:
            return {k: a.tier for k, a in self._open.items()}

    def get(self, alert_id: int) -> Alert | None:
        with self._lock:
            rows = self._select("WHERE id=?", (alert_id,))
        return rows[0] if rows else None

    def last_seq(self) -> int:
        with self._lock:
            return self._db.execute("SELECT coalesce(max(seq), 0) FROM alert_events").fetchone()[0]

    def events_since(self, seq: int, limit: int = 10_000) -> list[AlertEvent]:
        with self._lock:
            return self._events_since(seq, limit)

    def _events_since(self, seq: int, limit: int) -> list[AlertEvent]:
        rows = self._db.execute(
            "SELECT seq, alert_id, kind, tier, ts, value, actor, note, reason_zh, reason_en, alert_json "
            "FROM alert_events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)).fetchall()
        return [AlertEvent(s, aid, k, Tier(t), ts, v, actor, note, zh, en, Alert.from_json(json.loads(a)))
                for s, aid, k, t, ts, v, actor, note, zh, en, a in rows]

    def counts_by_tier(self) -> dict[str, int]:
        with self._lock:
            out = {t.label: 0 for t in (Tier.RED, Tier.ORANGE, Tier.YELLOW, Tier.BLUE)}
            for a in self._open.values():
                out[a.tier.label] += 1
            return out

    # --- writes ---------------------------------------------------------------------------------------------
    def apply(self, findings: list[Finding]) -> list[AlertEvent]:
        """Turns detector findings into alert transitions, all in one transaction."""
        if not findings:
            return []
        with self._lock:
            events: list[AlertEvent] = []
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for f in findings:
                    ev = self._transition(f)
                    if ev is not None:
                        events.append(ev)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                self._reload()
                raise
            return events

    def _transition(self, f: Finding) -> AlertEvent | None:
        key = (f.point, f.rule)
        alert = self._open.get(key)
        if alert is None:
            if f.tier == Tier.NORMAL:
                return None
            area = self.points[f.point].area if f.point in self.points else f.area
            cur = self._db.execute(
                "INSERT INTO alerts(point, area, rule, tier, max_tier, state, raised_at, changed_at, value, "
                "reason_zh, reason_en) VALUES (?,?,?,?,?, 'active', ?,?,?,?,?)",
                (f.point, area, f.rule, int(f.tier), int(f.tier), f.ts, f.ts, f.value, f.reason_zh, f.reason_en))
            alert = Alert(cur.lastrowid, f.point, area, f.rule, f.tier, f.tier, "active", f.ts, f.ts, None,
                          None, None, None, f.value, f.reason_zh, f.reason_en)
            self._open[key] = alert
            self._listed[alert.id] = alert
            return self._event(alert, "raised", f.tier, f.ts, f.value, None, None, f.reason_zh, f.reason_en)
        if f.tier == alert.tier:
            return None
        alert.changed_at, alert.value, alert.reason_zh, alert.reason_en = f.ts, f.value, f.reason_zh, f.reason_en
        if f.tier == Tier.NORMAL:
            kind = "cleared"
            alert.state, alert.cleared_at = "cleared", f.ts
            del self._open[key]
            if alert.acked_at is not None:
                self._listed.pop(alert.id, None)
        else:
            kind = "tier_up" if f.tier > alert.tier else "tier_down"
            alert.tier = f.tier
            alert.max_tier = max(alert.max_tier, f.tier)
            if kind == "tier_up":
                alert.acked_by = alert.acked_at = alert.ack_note = None
        self._save(alert)
        return self._event(alert, kind, f.tier, f.ts, f.value, None, None, f.reason_zh, f.reason_en)

    def ack(self, alert_id: int, actor: str, at: float, note: str = "") -> AlertEvent:
        with self._lock:
            alert = self._listed.get(alert_id)
            if alert is None:
                stored = self.get(alert_id)
                if stored is None:
                    raise KeyError(alert_id)
                raise AckError(f"alert {alert_id} is already acknowledged by {stored.acked_by}" if stored.acked_by
                               else f"alert {alert_id} is closed")
            if alert.acked_at is not None:
                raise AckError(f"alert {alert_id} is already acknowledged by {alert.acked_by}")
            self._db.execute("BEGIN IMMEDIATE")  # before touching memory: no ack shown that is not on disk
            try:
                alert.acked_by, alert.acked_at, alert.ack_note = actor, at, note or None
                self._save(alert)
                ev = self._event(alert, "acked", alert.tier, at, alert.value, actor, note or None,
                                 f"{actor} 已确认", f"acknowledged by {actor}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                self._reload()
                raise
            if alert.state == "cleared":
                self._listed.pop(alert.id, None)
            return ev

    def close(self) -> None:
        self._db.close()

    # --- helpers --------------------------------------------------------------------------------------------
    def _event(self, alert: Alert, kind: str, tier: Tier, ts: float, value, actor, note, zh: str, en: str) -> AlertEvent:
        snapshot = Alert(**{k: getattr(alert, k) for k in Alert.__slots__})
        cur = self._db.execute(
            "INSERT INTO alert_events(alert_id, kind, tier, ts, value, actor, note, reason_zh, reason_en, alert_json) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)", (alert.id, kind, int(tier), ts, value, actor, note, zh, en,
                                              json.dumps(snapshot.to_json(), ensure_ascii=False)))
        return AlertEvent(cur.lastrowid, alert.id, kind, tier, ts, value, actor, note, zh, en, snapshot)

    def _save(self, a: Alert) -> None:
        self._db.execute(
            "UPDATE alerts SET tier=?, max_tier=?, state=?, changed_at=?, cleared_at=?, acked_by=?, acked_at=?, "
            "ack_note=?, value=?, reason_zh=?, reason_en=? WHERE id=?",
            (int(a.tier), int(a.max_tier), a.state, a.changed_at, a.cleared_at, a.acked_by, a.acked_at, a.ack_note,
             a.value, a.reason_zh, a.reason_en, a.id))

    def _select(self, where: str, args: tuple = ()) -> list[Alert]:
        rows = self._db.execute(
            "SELECT id, point, area, rule, tier, max_tier, state, raised_at, changed_at, cleared_at, acked_by, "
            f"acked_at, ack_note, value, reason_zh, reason_en FROM alerts {where}", args).fetchall()
        return [Alert(i, p, ar, r, Tier(t), Tier(mt), *rest) for i, p, ar, r, t, mt, *rest in rows]

    def _reload(self) -> None:
        self._listed = {a.id: a for a in self._select("WHERE state='active' OR acked_at IS NULL")}
        self._open = {(a.point, a.rule): a for a in self._listed.values() if a.state == "active"}
