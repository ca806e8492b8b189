"""What people (and plant states) do to alarms: acknowledge, shelve, take out of service, reset a latched
alarm, record the closed loop's steps; and the suppressions by design. The alert book mixes this in: every
method here runs inside the book's lock and one transaction (`_write`), and returns the events it logged.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from alerting.handling import Step
from alerting.suppression import KIND_ZH, Suppression
from config.alarms import STEP_EN, STEP_ZH
from config.model import Tier
from detectors.finding import Finding

if TYPE_CHECKING:
    from alerting.book import Alert, AlertEvent

PROCESS_RULES = ("high", "low", "rate", "forecast", "anomaly")  # what a stopped line suppresses
# what an alarm shows when a suppression of each kind begins / ends
BEGIN_KIND = {"shelved": "shelved", "out_of_service": "out_of_service", "by_design": "suppressed"}
END_KIND = {"shelved": "unshelved", "out_of_service": "in_service", "by_design": "unsuppressed"}


class AckError(Exception):
    """A request that does not fit the alarm's state (already acknowledged, not latched, may not be shelved)."""


class AlarmActions:
    def line_state(self, changes: list[tuple[str, bool, float]]) -> list[AlertEvent]:
        """A status point (production on, casting active) changed: (status point, running, ts). A stopped line
        suppresses the process alarms of the points it gates, by design."""
        changes = [c for c in changes if c[0] in self.lines]
        if not changes:
            return []

        def run() -> list[AlertEvent]:
            out: list[AlertEvent] = []
            for status, running, ts in changes:
                name = self.points[status].name if status in self.points else status
                for pid in self.lines[status]:
                    s = self.suppressions.find("by_design", pid, PROCESS_RULES)
                    if not running and s is None:
                        out += self._begin("by_design", pid, PROCESS_RULES, ts, None, f"{name} 停止", None)
                    elif running and s is not None:
                        out += self._end(s, ts, None, f"{name} 运行")
            return out
        return self._write(run)

    def ack(self, alert_id: int, actor: str, at: float, note: str = "") -> AlertEvent:
        def run() -> list[AlertEvent]:
            alert = self._listed.get(alert_id)
            if alert is None:
                stored = self.get(alert_id)
                if stored is None:
                    raise KeyError(alert_id)
                raise AckError(f"alert {alert_id} is already acknowledged by {stored.acked_by}" if stored.acked_by
                               else f"alert {alert_id} is closed")
            if alert.acked_at is not None:
                raise AckError(f"alert {alert_id} is already acknowledged by {alert.acked_by}")
            return self._ack(alert, actor, at, note)
        return self._write(run)[0]

    def shelve(self, alert_id: int, actor: str, at: float, reason: str, minutes: float) -> AlertEvent:
        def run() -> list[AlertEvent]:
            a = self._need_listed(alert_id)
            if a.state == "cleared":
                raise AckError(f"alert {alert_id} is back to normal: nothing to shelve")
            if a.suppressed:
                raise AckError(f"alert {alert_id} is already {KIND_ZH[a.suppressed]} ({a.suppressed})")
            if a.tier.label not in self.cfg.shelve_tiers:
                raise AckError(f"a {a.tier.label} alarm may not be shelved (shelve_tiers: "
                               f"{', '.join(self.cfg.shelve_tiers)}); an engineer may take the point out of service")
            if not reason.strip():
                raise AckError("a reason is required to shelve an alarm")
            if not 0 < minutes <= self.cfg.shelve_max_h * 60:
                raise AckError(f"shelve for 1 to {self.cfg.shelve_max_h * 60:g} minutes")
            return self._begin("shelved", a.point, (a.rule,), at, actor, reason.strip(), at + minutes * 60, a.tier)
        return self._write(run)[0]

    def unshelve(self, alert_id: int, actor: str, at: float, note: str = "") -> AlertEvent:
        """An operator's unshelve returns the alarm acknowledged (by that operator)."""
        def run() -> list[AlertEvent]:
            a = self._need_listed(alert_id)
            s = self.suppressions.find("shelved", a.point, (a.rule,))
            if s is None:
                raise AckError(f"alert {alert_id} is not shelved")
            why = note.strip() or "人工解除搁置"
            out = self._end(s, at, actor, why, ack_as=actor)
            if not any(e.alert_id == alert_id for e in out):  # the alarm had already cleared: say so on it
                out.append(self._event(a, "unshelved", a.tier, at, a.value, actor, why, f"解除搁置：{why}",
                                       f"unshelved: {why}"))
            return out
        evs = self._write(run)
        return next(e for e in evs if e.alert_id == alert_id)

    def end_suppression(self, suppression_id: int, actor: str, at: float, note: str = "") -> list[AlertEvent]:
        """Ends a shelf or an out-of-service record early, whether or not an alarm stands under it."""
        def run() -> list[AlertEvent]:
            s = self.suppressions.open.get(suppression_id)
            if s is None:
                done = self.suppressions.select("WHERE id=?", (suppression_id,))
                if not done:
                    raise KeyError(suppression_id)
                who = done[0].ended_by or "by its expiry"
                raise AckError(f"suppression {suppression_id} already ended ({who}, {done[0].end_reason or ''})")
            if s.kind == "by_design":
                raise AckError("a suppression by design ends when its cause ends")
            why = note.strip() or ("人工解除搁置" if s.kind == "shelved" else "恢复投用")
            return self._end(s, at, actor, why, ack_as=actor if s.kind == "shelved" else None)
        return self._write(run)

    def out_of_service(self, point: str, actor: str, at: float, reason: str, hours: float,
                       rules: tuple[str, ...] | None = None) -> list[AlertEvent]:
        def run() -> list[AlertEvent]:
            if point not in self.points and not point.startswith(("gateway:", "rule:")):
                raise KeyError(point)
            if self.suppressions.find("out_of_service", point, rules):
                raise AckError(f"{point} is already out of service")
            if not reason.strip():
                raise AckError("a reason is required to take a point out of service")
            if not 0 < hours <= self.cfg.out_of_service_max_h:
                raise AckError(f"out of service for at most {self.cfg.out_of_service_max_h:g} hours")
            return self._begin("out_of_service", point, rules, at, actor, reason.strip(), at + hours * 3600)
        return self._write(run)

    def return_to_service(self, point: str, actor: str, at: float, note: str = "") -> list[AlertEvent]:
        def run() -> list[AlertEvent]:
            found = [s for s in self.suppressions.open.values() if s.kind == "out_of_service" and s.point == point]
            if not found:
                raise AckError(f"{point} is not out of service")
            return [ev for s in found for ev in self._end(s, at, actor, note.strip() or "恢复投用")]
        return self._write(run)

    def reset(self, alert_id: int, actor: str, at: float, note: str = "") -> AlertEvent:
        """An operator resets a latched alarm once it is back to normal (and acknowledges it if nobody had)."""
        def run() -> list[AlertEvent]:
            a = self._need_listed(alert_id)
            if a.state != "latched":
                raise AckError(f"alert {alert_id} is {'still active' if a.state == 'active' else 'not latched'}: "
                               "only a latched alarm back to normal can be reset")
            out = [] if a.acked_at is not None else self._ack(a, actor, at, note)
            a.state, a.cleared_at, a.changed_at = "cleared", at, at
            del self._open[(a.point, a.rule)]
            self._listed.pop(a.id, None)
            self._save(a)
            return out + [self._event(a, "cleared", a.tier, at, a.value, actor, note or None,
                                      f"{actor} 已复位", f"reset by {actor}")]
        return self._write(run)[-1]

    def step(self, alert_id: int, step: str, actor: str, at: float, note: str = "", photo: str | None = None
             ) -> AlertEvent:
        """A step of the closed loop. `ack` is the acknowledgement itself."""
        def run() -> list[AlertEvent]:
            if step == "ack":
                a = self._listed.get(alert_id)
                if a is not None and a.acked_at is None:
                    return self._ack(a, actor, at, note)
            a = self._alert(alert_id)
            s = self.handling.record(alert_id, step, actor, at, note or None, photo, a.state == "cleared")
            return [self._step_event(a, s)]
        return self._write(run)[-1]

    def _ack(self, alert: Alert, actor: str, at: float, note: str) -> list[AlertEvent]:
        alert.acked_by, alert.acked_at, alert.ack_note = actor, at, note or None
        self._save(alert)
        ev = self._event(alert, "acked", alert.tier, at, alert.value, actor, note or None,
                         f"{actor} 已确认", f"acknowledged by {actor}")
        if alert.state == "cleared":
            self._listed.pop(alert.id, None)
        loop = self.handling.loops.get(alert.id)
        if loop is not None and loop.next_step == "ack":
            self.handling.record(alert.id, "ack", actor, at, note or None, None, alert.state == "cleared")
        return [ev]

    def _begin(self, kind: str, point: str, rules, at: float, by: str | None, reason: str, until: float | None,
               max_tier: Tier | None = None) -> list[AlertEvent]:
        s = self.suppressions.begin(kind, point, rules, at, by, reason, until, max_tier)
        out = []
        for a in list(self._listed.values()):
            if a.state != "cleared" and s.covers(a.point, a.rule) and self.suppressions.matching(a.point, a.rule) is s:
                a.suppressed, a.suppressed_note = kind, s.label_zh()
                self._save(a)
                out.append(self._event(a, BEGIN_KIND[kind], a.tier, at, a.value, by, reason,
                                       f"{KIND_ZH[kind]}：{reason}", f"{kind.replace('_', ' ')}: {reason}"))
        return out

    def _end(self, s: Suppression, at: float, by: str | None, reason: str, ack_as: str | None = None
             ) -> list[AlertEvent]:
        """Ends a suppression. Its alarms come back unacknowledged (an operator's unshelve: acknowledged); one that
        returned to normal meanwhile, and is listed because it was live before and nobody acknowledged it, comes
        back as returned-to-normal unacknowledged (an operator's unshelve acknowledges it, which closes it)."""
        self.suppressions.end(s, at, by, reason)
        out = []
        for a in list(self._listed.values()):
            if a.suppressed != s.kind or not s.covers(a.point, a.rule):
                continue
            other = self.suppressions.matching(a.point, a.rule)
            a.suppressed, a.suppressed_note = (other.kind, other.label_zh()) if other else (None, None)
            if other is None:
                a.shown = True
                a.acked_by, a.acked_at, a.ack_note = (ack_as, at, reason) if ack_as else (None, None, None)
                if a.state != "cleared":
                    self._track(a, at)
                elif ack_as:
                    self._listed.pop(a.id, None)
            self._save(a)
            out.append(self._event(a, END_KIND[s.kind], a.tier, at, a.value, by, reason,
                                   f"解除{KIND_ZH[s.kind]}：{reason}", f"{END_KIND[s.kind].replace('_', ' ')}: {reason}"))
        return out

    def _breakthrough(self, f: Finding) -> list[AlertEvent]:
        """A shelved alarm rising above the tier it was shelved at returns at once."""
        s = self.suppressions.find("shelved", f.point, (f.rule,))
        if s is None or s.max_tier is None or f.tier <= s.max_tier:
            return []
        return self._end(s, f.ts, None, f"升级为{f.tier.zh}，自动解除搁置")

    def _gateway_changed(self, alert: Alert) -> list[AlertEvent]:
        """A gateway offline suppresses its points' silence alarms, by design, until it is back."""
        if alert.rule != "stale" or not alert.point.startswith("gateway:"):
            return []
        gw = alert.point.split(":", 1)[1]
        out: list[AlertEvent] = []
        for pid in self.gateways.get(gw, []):
            s = self.suppressions.find("by_design", pid, ("stale",))
            if alert.state == "active" and s is None:
                out += self._begin("by_design", pid, ("stale",), alert.changed_at, None, f"网关 {gw} 离线", None)
            elif alert.state == "cleared" and s is not None:
                out += self._end(s, alert.changed_at, None, f"网关 {gw} 恢复")
        return out

    def _need_listed(self, alert_id: int) -> Alert:
        a = self._listed.get(alert_id)
        if a is None:
            if self.get(alert_id) is None:
                raise KeyError(alert_id)
            raise AckError(f"alert {alert_id} is closed")
        return a

    def _alert(self, alert_id: int) -> Alert:
        a = self._listed.get(alert_id) or self.get(alert_id)
        if a is None:
            raise KeyError(alert_id)
        return a

    def _step_event(self, a: Alert, s: Step) -> AlertEvent:
        note = f"{s.note}" if s.note else None
        return self._event(a, "step", a.tier, s.at, a.value, s.actor, note,
                           f"{s.actor} 完成{STEP_ZH[s.step]}" + (f"：{s.note}" if s.note else ""),
                           f"{STEP_EN[s.step]} by {s.actor}" + (f": {s.note}" if s.note else ""))
