"""The alert book: one alert per (point, rule) episode, and an append-only event log, both in SQLite.

An episode is raised at a tier, moves up and down tiers, and clears when its detector reports normal. An
operator acknowledges it (who, when, a note). A higher tier inside an acknowledged episode needs a new
acknowledgement: the operator acknowledged the lesser danger. Cleared alerts stay listed until acknowledged.

The ISA-18.2 states around that (every change is an event with who, when and why):
- shelved / out of service / suppressed by design (alerting/suppression.py): recorded, not notified, shown
  apart on the wall;
- latched: an interlock-grade point's alarm stays after the return to normal until an operator resets it;
- chattering: an alarm raised `chatter.raises` times within `chatter.window_s` is not raised again and again;
  its return to normal is held for `chatter.hold_s` instead, so it stays visible (whatever its tier) and a
  higher tier is still raised and notified as usual;
- the closed loop of orange and red warnings (alerting/handling.py) with overdue steps.
"""
from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from dataclasses import asdict, dataclass
from pathlib import Path

from alerting.actions import PROCESS_RULES, AckError, AlarmActions
from alerting.handling import Handling, Loop, Step, StepError  # noqa: F401 (re-exported)
from alerting.suppression import KIND_ZH, Suppression, Suppressions
from config.alarms import STEP_EN, STEP_ZH, AlarmConfig
from config.model import Plant, Point, Tier
from detectors.finding import Finding
from ingest.sqlite import connect

__all__ = ["AckError", "Alert", "AlertBook", "AlertEvent", "StepError", "Suppression", "Loop", "Step"]

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
ADDED_COLUMNS = {"suppressed": "TEXT", "suppressed_note": "TEXT", "chattering": "INTEGER NOT NULL DEFAULT 0",
                 "shown": "INTEGER NOT NULL DEFAULT 1"}
COLUMNS = ("id, point, area, rule, tier, max_tier, state, raised_at, changed_at, cleared_at, acked_by, acked_at, "
           "ack_note, value, reason_zh, reason_en, suppressed, suppressed_note, chattering, shown")


@dataclass(slots=True)
class Alert:
    id: int
    point: str
    area: str
    rule: str
    tier: Tier
    max_tier: Tier
    state: str  # active | latched (back to normal, waiting for a reset) | cleared
    raised_at: float
    changed_at: float
    cleared_at: float | None
    acked_by: str | None
    acked_at: float | None
    ack_note: str | None
    value: float | None
    reason_zh: str
    reason_en: str
    suppressed: str | None = None  # shelved | out_of_service | by_design
    suppressed_note: str | None = None
    chattering: bool = False
    shown: bool = True  # was live (unsuppressed) at some moment

    @property
    def listed(self) -> bool:
        """On the operators' list: active or latched, or cleared but not yet acknowledged (an alarm that was
        suppressed all its life needs nobody's acknowledgement)."""
        return self.state != "cleared" or (self.acked_at is None and self.shown)

    @property
    def live(self) -> bool:
        """Counts as a live alarm: its condition stands and it is not suppressed (a latched alarm is back to
        normal, waiting for a reset: listed, not live)."""
        return self.state == "active" and self.suppressed is None

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
    kind: str  # see EVENT_KINDS
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


EVENT_KINDS = ("raised", "tier_up", "tier_down", "cleared", "acked", "latched", "realarm", "chattering",
               "shelved", "unshelved", "out_of_service", "in_service", "suppressed", "unsuppressed", "step",
               "overdue")


class AlertBook(AlarmActions):
    def __init__(self, path: str | Path, points: dict[str, Point], synchronous: str = "NORMAL",
                 alarms: AlarmConfig | None = None, gateways: dict[str, list[str]] | None = None):
        self.points = points
        self.cfg = alarms or AlarmConfig()
        self.gateways = gateways or {}
        self.latching = {p.id for p in points.values() if (p.interlock if p.latch is None else p.latch)}
        self.lines = defaultdict(list)  # status point -> the points whose process alarms it gates
        for p in points.values():
            if p.active_when:
                self.lines[p.active_when].append(p.id)
        self._db = connect(path, synchronous)
        self._db.executescript(SCHEMA)
        have = {r[1] for r in self._db.execute("PRAGMA table_info(alerts)")}
        for col, decl in ADDED_COLUMNS.items():  # books written before these states existed
            if col not in have:
                self._db.execute(f"ALTER TABLE alerts ADD COLUMN {col} {decl}")
        self._lock = threading.RLock()  # one connection, used by the pipeline's writer and by the API's threads
        self.suppressions = Suppressions(self._db)
        self.handling = Handling(self._db, self.cfg.handling)
        self._raises: dict[tuple[str, str], deque] = defaultdict(deque)  # raise times, for chattering
        self._held: dict[tuple[str, str], tuple[float, Finding]] = {}  # chattering: clear held until
        self._reload()

    @classmethod
    def for_plant(cls, plant: Plant, path: str | Path = ":memory:", synchronous: str = "NORMAL") -> "AlertBook":
        return cls(path, plant.point_map(), synchronous, plant.alarms,
                   {g: [p.id for p in pts] for g, pts in plant.gateways().items()})

    # --- reads ----------------------------------------------------------------------------------------------
    def listed(self) -> list[Alert]:
        with self._lock:
            return sorted(self._listed.values(), key=lambda a: (-a.tier, -a.changed_at))

    def open_tiers(self) -> dict[tuple[str, str], Tier]:
        """What each detector should assume after a restart (a latched alarm's detector is back to normal)."""
        with self._lock:
            return {k: a.tier for k, a in self._open.items() if a.state == "active"}

    def get(self, alert_id: int) -> Alert | None:
        with self._lock:
            rows = self._select("WHERE id=?", (alert_id,))
        return rows[0] if rows else None

    def last_seq(self) -> int:
        with self._lock:
            return self._db.execute("SELECT coalesce(max(seq), 0) FROM alert_events").fetchone()[0]

    def events_since(self, seq: int, limit: int = 10_000) -> list[AlertEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, alert_id, kind, tier, ts, value, actor, note, reason_zh, reason_en, alert_json "
                "FROM alert_events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)).fetchall()
        return [AlertEvent(s, aid, k, Tier(t), ts, v, actor, note, zh, en, Alert.from_json(json.loads(a)))
                for s, aid, k, t, ts, v, actor, note, zh, en, a in rows]

    def counts_by_tier(self) -> dict[str, int]:
        """Live alarms per tier (suppressed ones are counted apart, in `suppressed_counts`)."""
        with self._lock:
            out = {t.label: 0 for t in (Tier.RED, Tier.ORANGE, Tier.YELLOW, Tier.BLUE)}
            for a in self._open.values():
                if a.live:
                    out[a.tier.label] += 1
            return out

    def open_suppressions(self) -> list[Suppression]:
        with self._lock:
            return sorted(self.suppressions.open.values(), key=lambda s: s.id)

    def suppression_history(self, limit: int = 500) -> list[Suppression]:
        with self._lock:
            return self.suppressions.select("WHERE id IN (SELECT id FROM suppressions ORDER BY id DESC LIMIT ?)",
                                            (limit,))

    def loop(self, alert_id: int) -> dict | None:
        """The closed loop of one alert (open or closed), or None if it never needed one."""
        with self._lock:
            loop = self.handling.loops.get(alert_id)
            if loop is None:
                overdue = [r[0] for r in self._db.execute(
                    "SELECT note FROM alert_events WHERE alert_id=? AND kind='overdue' ORDER BY seq", (alert_id,))]
                loop = self.handling.stored(alert_id, overdue)
            return None if loop is None else self._with_subject(loop.to_json(self.cfg.handling))

    def open_loops(self) -> list[dict]:
        with self._lock:
            return [self._with_subject(loop.to_json(self.cfg.handling)) for loop in
                    sorted(self.handling.loops.values(), key=lambda lp: lp.since)]

    def _with_subject(self, loop: dict) -> dict:
        a = self._listed.get(loop["alert_id"]) or self.get(loop["alert_id"])
        return {**loop, "point": a.point, "area": a.area, "rule": a.rule} if a else loop

    # --- writes: findings and time ---------------------------------------------------------------------------
    def apply(self, findings: list[Finding]) -> list[AlertEvent]:
        """Turns detector findings into alert transitions, all in one transaction."""
        if not findings:
            return []
        return self._write(lambda: [ev for f in findings for ev in self._transition(f)])

    def tick(self, now: float) -> list[AlertEvent]:
        """Time passes: shelving and out-of-service expire, held chattering alarms clear, loop steps go overdue."""
        with self._lock:
            if not (self.suppressions.expired(now) or any(u <= now for u, _ in self._held.values())
                    or self.handling.due(now)):
                return []
        return self._write(lambda: self._tick(now))

    def close(self) -> None:
        self._db.close()

    # --- transitions ---------------------------------------------------------------------------------------------
    def _transition(self, f: Finding) -> list[AlertEvent]:
        key = (f.point, f.rule)
        alert = self._open.get(key)
        if alert is None:
            if f.tier == Tier.NORMAL:
                return []
            self._count_raise(key, f.ts)
            out = self._breakthrough(f)
            s = self.suppressions.matching(f.point, f.rule)
            area = self.points[f.point].area if f.point in self.points else f.area
            cur = self._db.execute(
                "INSERT INTO alerts(point, area, rule, tier, max_tier, state, raised_at, changed_at, value, "
                "reason_zh, reason_en, suppressed, suppressed_note, shown) VALUES (?,?,?,?,?, 'active', ?,?,?,?,?,?,?,?)",
                (f.point, area, f.rule, int(f.tier), int(f.tier), f.ts, f.ts, f.value, f.reason_zh, f.reason_en,
                 s and s.kind, s and s.label_zh(), int(s is None)))
            alert = Alert(cur.lastrowid, f.point, area, f.rule, f.tier, f.tier, "active", f.ts, f.ts, None,
                          None, None, None, f.value, f.reason_zh, f.reason_en, s and s.kind, s and s.label_zh(),
                          False, s is None)
            self._open[key] = alert
            self._listed[alert.id] = alert
            if s is None:
                self.handling.track(alert.id, f.ts, alert.max_tier)
            out.append(self._event(alert, "raised", f.tier, f.ts, f.value, None, None, f.reason_zh, f.reason_en))
            return out + self._gateway_changed(alert)
        if f.tier == Tier.NORMAL:
            if alert.state == "latched":
                return []
            if self._chattering(key, f.ts):
                self._held[key] = (f.ts + self.cfg.chatter.hold_s, f)
                if alert.chattering:  # still chattering: the hold starts again, nothing new to say
                    return []
                alert.chattering = True
                self._save(alert)
                c = self.cfg.chatter
                return [self._event(alert, "chattering", alert.tier, f.ts, f.value, None, None,
                                    f"报警抖动（{c.window_s:g}秒内{c.raises}次以上），恢复延迟{c.hold_s / 60:g}分钟确认",
                                    f"chattering ({c.raises}+ in {c.window_s:g} s): return to normal held "
                                    f"{c.hold_s / 60:g} min")]
            return self._normal(alert, f, f.ts)
        out = []
        if key in self._held:
            del self._held[key]
            self._count_raise(key, f.ts)
        out += self._breakthrough(f)
        if alert.state == "latched":
            alert.state = "active"
            alert.tier, alert.max_tier = f.tier, max(alert.max_tier, f.tier)
            alert.changed_at, alert.value, alert.reason_zh, alert.reason_en = f.ts, f.value, f.reason_zh, f.reason_en
            alert.acked_by = alert.acked_at = alert.ack_note = None
            self._save(alert)
            self._track(alert, f.ts)
            return out + [self._event(alert, "realarm", f.tier, f.ts, f.value, None, None, f.reason_zh, f.reason_en)]
        if f.tier == alert.tier:
            return out
        kind = "tier_up" if f.tier > alert.tier else "tier_down"
        alert.changed_at, alert.value, alert.reason_zh, alert.reason_en = f.ts, f.value, f.reason_zh, f.reason_en
        alert.tier = f.tier
        alert.max_tier = max(alert.max_tier, f.tier)
        if kind == "tier_up":
            alert.acked_by = alert.acked_at = alert.ack_note = None
            self._track(alert, f.ts)
        self._save(alert)
        return out + [self._event(alert, kind, f.tier, f.ts, f.value, None, None, f.reason_zh, f.reason_en)]

    def _normal(self, alert: Alert, f: Finding, at: float, held: bool = False) -> list[AlertEvent]:
        """Back to normal: a latching point's alarm latches, any other clears."""
        key = (alert.point, alert.rule)
        self._held.pop(key, None)
        alert.changed_at, alert.value = at, f.value
        alert.reason_zh = f.reason_zh + ("（抖动已平息）" if held else "")
        alert.reason_en = f.reason_en + (" (chattering over)" if held else "")
        alert.chattering = False
        if alert.point in self.latching and alert.rule in PROCESS_RULES:  # a sensor back from silence needs no reset
            alert.state = "latched"
            self._save(alert)
            return [self._event(alert, "latched", Tier.NORMAL, at, f.value, None, None,
                                alert.reason_zh + "，联锁报警保持，待复位", alert.reason_en + "; latched until reset")]
        alert.state, alert.cleared_at = "cleared", at
        del self._open[key]
        if not alert.listed:
            self._listed.pop(alert.id, None)
        self._save(alert)
        ev = self._event(alert, "cleared", Tier.NORMAL, at, f.value, None, None, alert.reason_zh, alert.reason_en)
        return [ev] + self._gateway_changed(alert)

    def _tick(self, now: float) -> list[AlertEvent]:
        out: list[AlertEvent] = []
        for s in self.suppressions.expired(now):
            out += self._end(s, now, None, f"{KIND_ZH[s.kind]}到期")
        for key, (until, f) in list(self._held.items()):
            if until <= now and key in self._open:
                out += self._normal(self._open[key], f, now, held=True)
        for loop, step in self.handling.due(now):
            loop.overdue.append(step)
            a = self._alert(loop.alert_id)
            limit = self.cfg.handling.limits_min[step][loop.tier.label]
            out.append(self._event(a, "overdue", loop.tier, now, a.value, None, step,
                                   f"{STEP_ZH[step]}超时（时限{limit:g}分钟），逐级上报",
                                   f"{STEP_EN[step]} overdue (limit {limit:g} min): escalated"))
        return out

    # --- helpers -------------------------------------------------------------------------------------------------
    def _write(self, fn) -> list[AlertEvent]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")  # before memory is trusted: nothing shown that is not on disk
            try:
                out = fn()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                self._reload()
                raise
            return out

    def _count_raise(self, key: tuple[str, str], ts: float) -> None:
        q = self._raises[key]
        q.append(ts)
        while q and q[0] < ts - self.cfg.chatter.window_s:
            q.popleft()

    def _chattering(self, key: tuple[str, str], ts: float) -> bool:
        q = self._raises.get(key)
        return bool(q) and self.cfg.chatter.hold_s > 0 and \
            sum(1 for t in q if t >= ts - self.cfg.chatter.window_s) >= self.cfg.chatter.raises

    def _track(self, a: Alert, at: float) -> None:
        if a.suppressed is None:
            self.handling.track(a.id, at, a.max_tier)

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
            "ack_note=?, value=?, reason_zh=?, reason_en=?, suppressed=?, suppressed_note=?, chattering=?, shown=? "
            "WHERE id=?",
            (int(a.tier), int(a.max_tier), a.state, a.changed_at, a.cleared_at, a.acked_by, a.acked_at, a.ack_note,
             a.value, a.reason_zh, a.reason_en, a.suppressed, a.suppressed_note, int(a.chattering), int(a.shown),
             a.id))

    def _select(self, where: str, args: tuple = ()) -> list[Alert]:
        rows = self._db.execute(f"SELECT {COLUMNS} FROM alerts {where}", args).fetchall()
        return [Alert(i, p, ar, r, Tier(t), Tier(mt), *rest[:-2], bool(rest[-2]), bool(rest[-1]))
                for i, p, ar, r, t, mt, *rest in rows]

    def _reload(self) -> None:
        self._listed = {a.id: a for a in self._select(
            "WHERE state != 'cleared' OR (acked_at IS NULL AND shown)")}
        self._open = {(a.point, a.rule): a for a in self._listed.values() if a.state != "cleared"}
        self._held = {k: v for k, v in self._held.items() if k in self._open}
        self.suppressions.reload()
        overdue: dict[int, list[str]] = defaultdict(list)
        for aid, step in self._db.execute(
                "SELECT alert_id, note FROM alert_events WHERE kind='overdue' AND alert_id IN "
                "(SELECT alert_id FROM handling_loops) ORDER BY seq"):
            overdue[aid].append(step)
        self.handling.reload(overdue)
