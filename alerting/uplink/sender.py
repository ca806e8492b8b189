"""The uplink sender: fills the durable queue from the store and the alert book, and drains it to the platform.

One round, `run_once(now)` (about once a second from `run`; tests call it with their own clock):
1. **Events, at once.** The alert event log is read from the queue's cursor (as the notification planner reads
   it). An alarm change on an uploaded point that changes what the platform shows (its level, from the format's
   table: raised, up, down, cleared) becomes an events batch for the point's gateway. What the platform was told
   per alert is kept in the queue, so a return to normal is sent exactly for the alarms that were sent. The
   platform mirrors the measurement: a latched interlock alarm is back to normal for it (a re-alarm is sent
   again), and alarms operators shelved or took out of service are sent all the same: shelving quiets the wall
   and the notifications, not the regulator.
2. **Readings, on the clock.** At every multiple of `period_s` (aligned to the epoch, so a restart rebuilds the
   same instants and the queue drops the copies) each gateway gets a batch with every uploaded point's last
   reading at that instant; a reading older than the point's stale limit is not sent (a silent sensor stays
   silent on the platform: the platform sees no fresh value, not a repeated old one). At every multiple of
   `alarm_period_s` in between, the points with an alarm the platform was told of get a batch of their readings
   newer than the previous instant. Instants missed while riskwatch was down are built from the stored
   readings, up to `backfill_s` back.
3. **Send.** Per gateway and kind (events first), oldest first; after an outage several batches go merged into
   one request, up to `max_batch` records. A transient failure (no answer, 5xx, platform busy) holds that lane
   with backoff (5 s doubling to 5 min) and the order is kept; a rejection for good marks that batch failed and
   the lane goes on (a merged request that is rejected is halved until the batch at fault stands alone).
   A batch is marked sent only after the platform's answer: a crash in between sends it again, at least once.

`stats` (refreshed by the round itself, so /healthz never waits on the queue) says what is queued, how old the
oldest is, what was sent, failed attempts, rejected batches and the last error; never the key.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Callable

from alerting.book import Alert, AlertBook
from alerting.channels.wire import Reply, exchange
from alerting.uplink import build_format
from alerting.uplink.base import AlarmChange, Format, Outcome, Request, Sample, local_time, utc_offset
from alerting.uplink.queue import Batch, Told, UplinkQueue
from config.model import Plant, Point, Tier
from config.uplink import UplinkConfig
from ingest.store import SQLiteStore

log = logging.getLogger("riskwatch.uplink")

SETTLE_S = 2.0           # an instant is sampled this long after it: readings stamped just before it have arrived
FIRST_BACKOFF_S = 5.0
MAX_BACKOFF_S = 300.0
KEEP_SENT_S = 7 * 86400.0
REQUESTS_PER_LANE = 20   # per round: a long backlog is replayed over a few rounds, other gateways in between
CHANGES = ("raised", "tier_up", "tier_down", "realarm", "latched", "cleared")  # what moves the platform's level


@dataclass(frozen=True)
class Uploaded:
    code: str       # platform point code
    gateway: str    # platform gateway code
    decimals: int


class Sender:
    def __init__(self, plant: Plant, cfg: UplinkConfig, store: SQLiteStore, book: AlertBook, queue: UplinkQueue,
                 fmt: Format | None = None, post: Callable[[Request], Reply] | None = None):
        self.cfg = cfg
        self.fmt = fmt or build_format(cfg)
        self.store, self.book, self.queue = store, book, queue
        self.post = post or (lambda r: exchange("POST", r.url, r.body, r.headers, cfg.timeout_s))
        self.points = plant.point_map()
        self.tz = utc_offset(cfg.timezone)
        gateway_of = {p.id: gw for gw, pts in plant.gateways().items() for p in pts}
        problems = cfg.problems({p: gateway_of.get(p) for p in self.points})
        self.uploaded: dict[str, Uploaded] = {}
        for pid, pc in cfg.points.items():
            code = cfg.gateway_code(gateway_of.get(pid))
            if pid in self.points and code is not None:
                self.uploaded[pid] = Uploaded(pc.code, code, cfg.decimals(pid))
        self.unsent = sorted(set(cfg.points) - set(self.uploaded))
        for problem in problems:
            log.warning("%s", problem)
        self.by_gateway: dict[str, list[str]] = {}
        for pid, up in self.uploaded.items():
            self.by_gateway.setdefault(up.gateway, []).append(pid)
        self._told = queue.told()
        self.failures = 0
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_sent_at: float | None = None
        self._pruned_at = 0.0
        self.stats: dict = {"queued": 0, "oldest_age_s": None, "sent": 0, "rejected": 0, "failures": 0,
                            "last_error": None, "last_error_at": None, "last_sent_at": None,
                            "points": len(self.uploaded), "unsent_points": self.unsent}

    # --- one round -------------------------------------------------------------------------------------------
    def run_once(self, now: float) -> int:
        """Events, readings, sending; returns how many batches the platform took."""
        self.follow_events(now)
        self.sample(now)
        sent = self.send(now)
        if now - self._pruned_at > 3600:
            self.queue.prune(now - KEEP_SENT_S)
            self._pruned_at = now
        self.refresh_stats(now)
        return sent

    # --- 1. events -------------------------------------------------------------------------------------------
    def follow_events(self, now: float) -> int:
        """Alarm changes since the cursor become events batches; returns how many batches were new."""
        state = self.queue.state()
        if "cursor" not in state:
            return self._start(now)
        cursor, new = int(state["cursor"]), 0
        while True:
            events = self.book.events_since(cursor, 1000)
            if not events:
                return new
            told: dict[int, Told | None] = {}
            changes = []
            for ev in events:
                tier = Tier.NORMAL if ev.kind == "cleared" else ev.tier
                if ev.kind in CHANGES and (ch := self._change(ev.alert, tier, ev.ts, ev.value, ev.reason_zh, told)):
                    changes.append((f"#{ev.seq}", ev.alert.point, ch))
            cursor = events[-1].seq
            new += self.queue.commit(self._event_batches(changes, now), {"cursor": cursor}, told)
            self._remember(told)

    def _start(self, now: float) -> int:
        """First round ever: the log from now on, and the alarms standing now (the platform has not heard of them)."""
        cursor = self.book.last_seq()
        told: dict[int, Told | None] = {}
        changes = [(f"#a{a.id}", a.point, ch) for a in self.book.listed() if a.state == "active"
                   and (ch := self._change(a, a.tier, a.changed_at, a.value, a.reason_zh, told))]
        new = self.queue.commit(self._event_batches(changes, now), {"cursor": cursor}, told)
        self._remember(told)
        return new + self.follow_events(now)

    def _change(self, alert: Alert, tier: Tier, ts: float, value: float | None, reason: str,
                told: dict[int, Told | None]) -> AlarmChange | None:
        up = self.uploaded.get(alert.point)
        if up is None:
            return None
        prev = told[alert.id] if alert.id in told else self._told.get(alert.id)
        level = self.fmt.level(alert.rule, tier)
        if level == (prev.level if prev else 0):
            return None
        told[alert.id] = Told(alert.point, alert.rule, level, int(tier)) if level else None
        p = self.points[alert.point]
        limit = _limit(p, alert.rule, tier if level else Tier(prev.tier))  # a clear names the limit it was told
        return AlarmChange(up.code, p.name, p.unit, ts, value, alert.rule, tier, level, limit, up.decimals, reason)

    def _event_batches(self, changes: list[tuple[str, str, AlarmChange]], now: float) -> list[Batch]:
        by_gateway: dict[str, list[tuple[str, AlarmChange]]] = {}
        for key, point, ch in changes:
            by_gateway.setdefault(self.uploaded[point].gateway, []).append((key, ch))
        out = []
        for gw, items in by_gateway.items():
            for k in range(0, len(items), self.cfg.max_batch):
                part = items[k:k + self.cfg.max_batch]
                key, first = part[0]
                out.append(Batch("events", gw, f"{self._when(first.ts)} {key}", [self.fmt.alarm(c) for _, c in part],
                                 now))
        return out

    def _remember(self, told: dict[int, Told | None]) -> None:
        for alert_id, t in told.items():
            if t is None:
                self._told.pop(alert_id, None)
            else:
                self._told[alert_id] = t

    # --- 2. readings -----------------------------------------------------------------------------------------
    def sample(self, now: float) -> int:
        """Readings batches for the instants due since the last round; returns how many were new."""
        state = self.queue.state()
        period, fast = _ms(self.cfg.period_s), _ms(self.cfg.alarm_period_s)
        at = int((now - SETTLE_S) * 1000)
        due, fast_due = at // period * period, at // fast * fast
        last, fast_last = state.get("readings_slot"), state.get("alarm_slot")
        oldest = -(-(at - _ms(self.cfg.backfill_s)) // period) * period
        first = due if last is None else max(int(last) + period, oldest)
        latest = self.store.latest()
        batches = [(slot, b) for slot in range(first, due + 1, period) for gw, pids in self.by_gateway.items()
                   for b in self._readings(gw, pids, slot, latest, None, now)]
        alarmed = {t.point for t in self._told.values() if t.level and t.point in self.uploaded}
        if alarmed:
            fast_first = fast_due if fast_last is None else max(int(fast_last) + fast, fast_due - period + fast)
            for slot in range(fast_first, fast_due + 1, fast):
                if slot % period == 0:
                    continue  # that instant's full batch has them
                for gw, pids in self.by_gateway.items():
                    batches += [(slot, b) for b in self._readings(gw, [p for p in pids if p in alarmed], slot, latest,
                                                                  slot - fast, now)]
        batches.sort(key=lambda sb: sb[0])  # queued (and so sent) in time order, back-filled instants too
        done = {"readings_slot": max(due, int(last)) if last is not None else due, "alarm_slot": fast_due}
        return self.queue.commit([b for _, b in batches], done)

    def _readings(self, gateway: str, pids: list[str], slot: int, latest: dict[str, tuple[int, float]],
                  newer_than: int | None, now: float) -> list[Batch]:
        records = []
        for pid in pids:
            p, up = self.points[pid], self.uploaded[pid]
            oldest = max(slot - _ms(p.stale_factor * p.interval_s), newer_than if newer_than is not None else -1)
            got = latest.get(pid)
            if got is not None and got[0] > slot:  # newer readings came since: look that instant up
                rows = self.store.readings(pid, oldest + 1, slot)
                got = rows[-1] if rows else None
            if got is None or got[0] <= oldest:
                continue
            records.append(self.fmt.reading(Sample(up.code, got[0] / 1000, got[1], up.decimals)))
        when = self._when(slot / 1000)
        size = self.cfg.max_batch
        return [Batch("readings", gateway, when if k == 0 else f"{when} #{k // size + 1}", records[k:k + size], now)
                for k in range(0, len(records), size)]

    # --- 3. sending ------------------------------------------------------------------------------------------
    def send(self, now: float) -> int:
        sent = 0
        for gateway, kind in self.queue.lanes():
            rows = self.queue.pending(gateway, kind)
            i, cap, requests = 0, None, 0
            while i < len(rows) and requests < REQUESTS_PER_LANE and rows[i].next_try <= now:
                take = self._merge(rows, i, now, cap)
                outcome = self._post(kind, gateway, take)
                requests += 1
                ids = [b.id for b in take]
                if outcome.ok:
                    self.queue.mark_sent(ids, now, outcome.code)
                    sent, i, self.last_sent_at = sent + len(take), i + len(take), now
                    continue
                self.failures += 1
                self.last_error, self.last_error_at = f"{kind} {gateway}: {outcome.detail}", now
                log.warning("uplink %s batch for %s not taken (%s): %s", kind, gateway,
                            "will retry" if outcome.retry else "rejected", outcome.detail)
                if outcome.retry:
                    wait = min(FIRST_BACKOFF_S * 2 ** rows[i].attempts, MAX_BACKOFF_S)
                    self.queue.mark_retry(ids, now + wait, outcome.detail, outcome.code)
                    break
                if len(take) > 1:
                    cap = max(len(take) // 2, 1)  # one of them is at fault: halve until it stands alone
                    continue
                self.queue.mark_failed(ids, outcome.detail, outcome.code)
                i, cap = i + 1, None
        return sent

    def _merge(self, rows: list[Batch], i: int, now: float, cap: int | None) -> list[Batch]:
        take, n = [rows[i]], len(rows[i].records)
        for b in rows[i + 1:]:
            if b.next_try > now or n + len(b.records) > self.cfg.max_batch or len(take) == cap:
                break
            take.append(b)
            n += len(b.records)
        return take

    def _post(self, kind: str, gateway: str, batches: list[Batch]) -> Outcome:
        records = [r for b in batches for r in b.records]
        try:
            return self.fmt.outcome(self.post(self.fmt.request(kind, gateway, records)))
        except Exception as e:  # a bug or an odd answer must not stop the other lanes: transient
            log.exception("uplink request failed")
            return Outcome(False, retry=True, detail=type(e).__name__)

    # --- health ----------------------------------------------------------------------------------------------
    def refresh_stats(self, now: float) -> None:
        counts, oldest = self.queue.counts(), self.queue.oldest_pending()
        self.stats = {"queued": counts.get("pending", 0),
                      "oldest_age_s": None if oldest is None else round(max(now - oldest, 0.0), 1),
                      "sent": counts.get("sent", 0), "rejected": counts.get("failed", 0), "failures": self.failures,
                      "last_error": self.last_error, "last_error_at": self.last_error_at,
                      "last_sent_at": self.last_sent_at, "points": len(self.uploaded), "unsent_points": self.unsent}

    def _when(self, ts: float) -> str:
        return local_time(ts, self.tz)


def _limit(p: Point, rule: str, tier: Tier) -> float | None:
    side = p.high if rule == "high" else p.low if rule == "low" else None
    return getattr(side, tier.label) if side is not None and tier != Tier.NORMAL else None


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


async def run(sender: Sender, clock: Callable[[], float] = time.time, tick_s: float = 1.0) -> None:
    """Rounds until cancelled, off the event loop; a failed round is logged and the next one tries again."""
    while True:
        try:
            await asyncio.to_thread(sender.run_once, clock())
        except Exception:
            log.exception("uplink round failed; the next one will try again")
        await asyncio.sleep(tick_s)
