"""Notifications: who is told what, when nobody answers, and how it gets through without a message storm.

Two halves around the durable outbox (alerting/outbox.py):
- `Planner` reads the alert book's event log from where it left off and decides notifications: a raised or
  higher-tier alert goes to the on-duty people of level 0 of every route that takes its tier and area; an alert
  nobody acknowledges is escalated one level at a time (`escalate_after_min`); red repeats until acknowledged; a
  return to normal is sent for the tiers in `notify_clear`. Every decision carries a dedup key, so deciding again
  (after a restart, on every tick) never adds a second copy.
- `Dispatcher` sends due rows: per-channel rate limits (a WeCom or DingTalk robot takes 20 a minute), several
  due rows for the same recipients become one digest when the channel cannot take them one by one (a storm),
  retries with backoff, a channel that says "too fast" is held, and after `max_attempts` (or a permanent error)
  the row falls back to the route's next channel; on the last one it keeps retrying (at most every 5 min). A
  message that reached some recipients and not others is marked sent for those, and only the others go on, in a
  row of their own, by the same rules (an SMS sent twice to a duty phone is a defect).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from string import Template
from typing import Callable

from alerting.book import Alert, AlertBook, AlertEvent
from alerting.channels.base import Channel, Message, SendResult
from alerting.outbox import Note, Outbox
from config.model import Plant, Tier
from config.alarms import STEP_ZH
from config.notify import LEVEL_ZH, LEVELS, NotifyConfig, Person

log = logging.getLogger("riskwatch.notify")

ADDRESS = {"aliyun_sms": "phone", "tencent_sms": "phone", "email": "email", "wecom_app": "wecom_user",
           "wecom_robot": "phone", "dingtalk_robot": "phone", "webhook": "name"}
NEEDS_ADDRESS = {"aliyun_sms", "tencent_sms", "email", "wecom_app"}  # robots and webhooks post to a group
STATE_ZH = {"raised": "新报警", "tier_up": "升级", "escalated": "无人确认·逐级上报", "repeat": "重复提醒",
            "cleared": "已解除", "test": "测试消息", "realarm": "再次报警", "unshelved": "搁置到期仍在报警",
            "in_service": "恢复投用仍在报警", "unsuppressed": "抑制解除仍在报警", "overdue": "处置超时·逐级上报"}
RETURNING = ("unshelved", "in_service", "unsuppressed")  # a suppression ended and the alarm is still on
DEFAULT_TEMPLATE = "【${tier}预警·${state}】${site}${area}：${subject}，${reason}（${time}）。请立即处置并在系统中确认。"
CLEAR_TEMPLATE = "【已解除】${site}${area}：${subject}，${reason}（${time}）。"
DIGEST_AT = 3  # due rows for the same recipients on one channel sent as one digest from this many
MAX_BACKOFF_S = 300.0


class Planner:
    def __init__(self, plant: Plant, book: AlertBook, outbox: Outbox):
        self.plant = plant
        self.cfg: NotifyConfig = plant.notify
        self.book = book
        self.outbox = outbox
        self.tz = timezone(timedelta(hours=int(self.cfg.timezone[:3]), minutes=int(self.cfg.timezone[0] + self.cfg.timezone[4:])))
        self.areas = plant.area_map()
        self.points = plant.point_map()
        self.subjects = {f"gateway:{g}": (f"网关 {g}", f"Gateway {g}") for g in plant.gateways()}
        self.subjects.update({f"rule:{r.id}": (r.name, r.name_en or r.id) for r in plant.rules})
        self.kinds = {c.name: c.kind for c in self.cfg.channels}
        self._since: dict[int, float] = {}  # alert id -> when its current unacknowledged tier began

    # --- deciding --------------------------------------------------------------------------------------------
    def run_once(self, now: float) -> int:
        """Reads new events, then escalations and repeats due at `now`; returns new decisions."""
        new = 0
        while True:
            cursor = self.outbox.cursor()
            events = self.book.events_since(cursor, 1000)
            if not events:
                break
            notes = [n for ev in events for n in self.on_event(ev)]
            new += self.outbox.decide(notes, cursor=events[-1].seq)
        return new + self.outbox.decide(self.on_tick(now))

    def on_event(self, ev: AlertEvent) -> list[Note]:
        a = ev.alert
        if a.suppressed:  # shelved, out of service or suppressed by design: recorded, nobody is told
            return []
        if ev.kind in RETURNING and (a.state != "active" or a.acked_at is not None):
            return []
        if ev.kind == "overdue":
            return self._overdue(ev)
        if ev.kind in ("raised", "tier_up", "realarm") + RETURNING:
            self._since[a.id] = ev.ts
            first = self.cfg.initial_levels.get(ev.tier.label, 0)
            return self._notes(a, ev.kind, ev.tier, levels=list(range(first + 1)), dedup=f"a{a.id}:e{ev.seq}",
                               at=ev.ts)
        if ev.kind == "cleared" and a.shown and a.max_tier.label in self.cfg.notify_clear:
            told = self._levels_told(a, a.max_tier, ev.ts)
            return self._notes(a, "cleared", a.max_tier, levels=told, dedup=f"a{a.id}:cleared", at=ev.ts)
        return []

    def on_tick(self, now: float) -> list[Note]:
        out: list[Note] = []
        for a in self.book.listed():
            if a.state != "active" or a.acked_at is not None or a.suppressed:
                continue
            since = self._since.setdefault(a.id, a.raised_at)
            first = self.cfg.initial_levels.get(a.tier.label, 0)
            steps = self.cfg.escalate_after_min.get(a.tier.label, [])
            for k, after in enumerate(steps, first + 1):
                if k < len(LEVELS) and now - since >= after * 60:
                    out += self._notes(a, "escalated", a.tier, [k], f"a{a.id}:t{int(a.tier)}:L{k}", at=now,
                                       waited_min=after)
            if a.tier == Tier.RED:
                every = self.cfg.repeat_red_min * 60
                k = int((now - since) // every)
                if k >= 1:  # to the levels told before this repeat (one escalated at this moment just heard it)
                    out += self._notes(a, "repeat", a.tier, self._levels_told(a, a.tier, since + k * every - 1e-6),
                                       f"a{a.id}:repeat{k}", at=now)
        return out

    def _overdue(self, ev: AlertEvent) -> list[Note]:
        """The n-th overdue step of a warning's closed loop goes n levels above the duty operator (and to them)."""
        loop = self.book.loop(ev.alert_id)
        overdue = loop["overdue"] if loop else [ev.note]
        n = overdue.index(ev.note) + 1 if ev.note in overdue else len(overdue)
        level = min(n, len(LEVELS) - 1)
        a = ev.alert
        step = STEP_ZH.get(ev.note or "", ev.note or "")
        return self._notes(a, "overdue", a.max_tier, sorted({0, level}), f"a{a.id}:overdue:{ev.note}", at=ev.ts,
                           state=f"{step}超时·上报{LEVEL_ZH[LEVELS[level]]}")

    def _levels_told(self, a: Alert, tier: Tier, now: float) -> list[int]:
        since = self._since.get(a.id, a.raised_at)
        first = self.cfg.initial_levels.get(tier.label, 0)
        steps = self.cfg.escalate_after_min.get(tier.label, [])
        return list(range(first + 1)) + [k for k, after in enumerate(steps, first + 1)
                                         if k < len(LEVELS) and now - since >= after * 60]

    def _notes(self, a: Alert, kind: str, tier: Tier, levels: list[int], dedup: str, at: float,
               waited_min: float | None = None, state: str | None = None) -> list[Note]:
        out = []
        for r, route in enumerate(self.cfg.routes):
            if tier.label not in route.tiers or not ("*" in route.areas or a.area in route.areas):
                continue
            channel, fallback = route.channels[0], tuple(route.channels[1:])
            title, text, params = self.render(a, kind, tier, at, waited_min, state)
            if self.kinds[channel] not in NEEDS_ADDRESS:  # a group robot: one message, @ everyone it concerns
                people = [p for level in levels for p in self.on_duty(level, a.area, at)]
                out.append(Note(f"{dedup}:r{r}:L{'-'.join(map(str, levels))}:{channel}", a.id, kind, channel,
                                self.addresses(channel, people), tier, title, text, params, at, fallback))
                continue
            for level in levels:
                to = self.addresses(channel, self.on_duty(level, a.area, at))
                if to:
                    out.append(Note(f"{dedup}:r{r}:L{level}:{channel}", a.id, kind, channel, to, tier, title, text,
                                    params, at, fallback))
        return out

    def on_duty(self, level: int, area: str, at: float) -> list[Person]:
        local = datetime.fromtimestamp(at, self.tz)
        minute = local.hour * 60 + local.minute
        shifts = {s.id: s for s in self.cfg.shifts}
        return [p for p in self.cfg.people if p.level == LEVELS[level] and ("*" in p.areas or area in p.areas)
                and (not p.shifts or any(shifts[s].covers(minute) for s in p.shifts))]

    def addresses(self, channel: str, people: list[Person]) -> tuple[str, ...]:
        attr = ADDRESS[self.kinds[channel]]
        return tuple(v for p in people if (v := getattr(p, attr)))

    def render(self, a: Alert, kind: str, tier: Tier, at: float, waited_min: float | None = None,
               state: str | None = None) -> tuple[str, str, dict[str, str]]:
        area = self.areas[a.area].name if a.area in self.areas else a.area
        subject = self.points[a.point].name if a.point in self.points else self.subjects.get(a.point, (a.point,))[0]
        state = state or (STATE_ZH[kind] if waited_min is None else f"{waited_min:g}分钟无人确认")
        fields = {"site": self.plant.name, "tier": tier.zh, "area": area, "subject": subject,
                  "reason": a.reason_zh, "time": datetime.fromtimestamp(at, self.tz).strftime("%m-%d %H:%M:%S"),
                  "value": "" if a.value is None else f"{a.value:.4g}", "state": state}
        template = CLEAR_TEMPLATE if kind == "cleared" else \
            self.cfg.templates.get(tier.label) or self.cfg.templates.get("default") or DEFAULT_TEMPLATE
        text = Template(template).safe_substitute(fields)  # ${name} only: no attribute access, no code
        title = f"【已解除】{area}" if kind == "cleared" else f"【{tier.zh}预警】{area}"
        params = {k: fields[k][:20] for k in ("site", "tier", "area", "subject", "state")}
        params["reason"] = fields["reason"][:30]
        return title, text, params


class Dispatcher:
    def __init__(self, outbox: Outbox, channels: dict[str, Channel], max_attempts: int = 4,
                 clock: Callable[[], float] = time.time):
        self.outbox = outbox
        self.channels = channels
        self.max_attempts = max_attempts
        self.clock = clock
        self._sent: dict[str, deque[float]] = {c: deque() for c in channels}
        self._held_until: dict[str, float] = {}
        self.results: deque[tuple[float, str, SendResult]] = deque(maxlen=200)
        # what /healthz shows, refreshed by the notifier's own thread after each round: health never waits on
        # the outbox (whose writes can wait up to busy_timeout on a stalled disk)
        self.stats: dict = {"by_state": {}, "late": 0, "undelivered_1h": 0}

    def room(self, channel: str, now: float) -> int:
        """Messages the channel may still take in this minute."""
        ch = self.channels[channel]
        if self._held_until.get(channel, 0) > now:
            return 0
        sent = self._sent[channel]
        while sent and sent[0] <= now - 60:
            sent.popleft()
        return (ch.per_minute or 10**9) - len(sent)

    async def send_due(self) -> int:
        """Sends what is due now, off the event loop; returns how many messages went out."""
        return await asyncio.to_thread(self.send_due_now)

    def refresh_stats(self) -> None:
        now = self.clock()
        self.stats = {"by_state": self.outbox.counts(), "late": self.outbox.late(now),
                      "undelivered_1h": self.outbox.undelivered_since(now - 3600)}

    def send_due_now(self) -> int:
        """Blocking: database and providers. One channel after another (notification volumes are small and
        rate-limited; a provider that hangs costs its timeout)."""
        now = self.clock()
        due = self.outbox.due(now)
        by_channel: dict[str, list[Note]] = {}
        for n in due:
            if n.channel not in self.channels:
                self.outbox.mark_failed([n.id], f"channel {n.channel!r} is not configured", "")
                continue
            by_channel.setdefault(n.channel, []).append(n)
        sent = 0
        for channel, notes in by_channel.items():
            room = self.room(channel, now)
            if room <= 0:
                continue
            for batch in self._batches(notes, room):
                sent += self._send(channel, batch, now)
        return sent

    def _batches(self, notes: list[Note], room: int) -> list[list[Note]]:
        """One message per row while the channel has room; in a storm, rows for the same recipients go as one
        digest (highest tier first), so nothing waits behind the rate limit and nothing is dropped."""
        groups: dict[tuple[str, ...], list[Note]] = {}
        for n in notes:
            groups.setdefault(n.recipients, []).append(n)
        if len(notes) <= room and all(len(g) < DIGEST_AT for g in groups.values()):
            return [[n] for n in notes][:room]
        return list(groups.values())[:room]

    def _send(self, channel: str, batch: list[Note], now: float) -> int:
        ch = self.channels[channel]
        if len(batch) == 1:
            note = batch[0]
        else:
            note = self._digest(channel, batch, now)
        msg = Message(key=f"rw-{note.id}", tier=note.tier, title=note.title, text=_cut(note.text, ch.max_chars),
                      to=note.recipients, params=note.params)
        self.outbox.mark_sending([note.id])
        try:
            result = ch.send(msg)
        except Exception as e:  # a channel bug must not stop the others: treat as transient
            log.exception("channel %s failed to send", channel)
            result = SendResult(False, retry=True, detail=f"{type(e).__name__}")
        self._sent[channel].append(now)
        self.results.append((now, channel, result))
        attempts = note.attempts + 1
        if result.ok:
            self.outbox.mark_sent([note.id], self.clock(), result.provider_code)
            return 1
        split = result.partial(note.recipients)
        if result.throttled:
            self._held_until[channel] = now + (result.retry_after_s or 60.0)
        retry_at = self._retry_at(note, result, attempts, now)
        if split is None:
            log.warning("notification %s on %s failed (%s %s)", note.id, channel, result.provider_code, result.detail)
            if retry_at is not None:
                self.outbox.mark_retry([note.id], retry_at, result.detail, result.provider_code)
            else:
                self.outbox.mark_failed([note.id], result.detail, result.provider_code,
                                        self._fallback(note, note.dedup, note.recipients, now))
            return 0
        # some got it: the row is sent for them; the others alone go on, retried or handed over as a whole failure
        # would be, in a row of their own written in the same transaction
        sent_to, rest_to = split
        rest = Note(f"{note.dedup}~rest{attempts}", note.alert_id, note.kind, channel, rest_to, note.tier, note.title,
                    note.text, note.params, now if retry_at is None else retry_at, note.route,
                    state="failed" if retry_at is None else "pending", attempts=attempts, last_error=result.detail,
                    provider_code=result.provider_code, created_at=note.created_at)
        log.warning("notification %s on %s reached %d of %d recipients; the others go on as %s (%s %s)", note.id,
                    channel, len(sent_to), len(note.recipients), rest.dedup, result.provider_code, result.detail)
        self.outbox.mark_partial(note.id, self.clock(), f"partial:{result.provider_code}",
                                 f"partial: {len(sent_to)}/{len(note.recipients)} delivered, the others go on as "
                                 f"{rest.dedup}: {result.detail}", rest,
                                 None if retry_at is not None else self._fallback(note, rest.dedup, rest_to, now))
        return 1

    def _retry_at(self, note: Note, result: SendResult, attempts: int, now: float) -> float | None:
        """When to try this channel again, or None: failed for good here. A transient failure is retried with
        backoff; after max_attempts the route's next channel takes over, and the last channel of a route never
        gives up (a health problem is shown while it is late)."""
        if result.retry and (attempts < self.max_attempts or not note.route):
            return now + (result.retry_after_s or min(5.0 * 2 ** (attempts - 1), MAX_BACKOFF_S))
        return None

    @staticmethod
    def _fallback(note: Note, dedup: str, recipients: tuple[str, ...], now: float) -> Note | None:
        """The row that takes `recipients` on the route's next channel, if the route has one."""
        if not note.route:
            return None
        nxt, rest = note.route[0], note.route[1:]
        return Note(f"{dedup}>{nxt}", note.alert_id, note.kind, nxt, recipients, note.tier, note.title, note.text,
                    note.params, now, rest)

    def _digest(self, channel: str, batch: list[Note], now: float) -> Note:
        batch = sorted(batch, key=lambda n: (-n.tier, n.id))
        counts = {}
        for n in batch:
            counts[n.tier.zh] = counts.get(n.tier.zh, 0) + 1
        summary = "、".join(f"{k}{v}条" for k, v in counts.items())
        lines = [_line(i, n) for i, n in enumerate(batch, 1)]
        head = f"报警汇总：{len(batch)} 条（{summary}），详见监控大屏\n"
        limit = self.channels[channel].max_chars - 40
        text = head
        for k, line in enumerate(lines):
            if len(text) + len(line) + 1 > limit:
                text += f"……另有 {len(lines) - k} 条"
                break
            text += line + "\n"
        digest = Note(f"digest:{batch[0].id}:{len(batch)}", None, "digest", channel, batch[0].recipients,
                      batch[0].tier, f"【报警汇总】{len(batch)} 条，最高{batch[0].tier.zh}", text,
                      batch[0].params, now, batch[0].route)
        self.outbox.decide([digest])
        stored = self.outbox.rows("WHERE dedup=?", (digest.dedup,))[0]
        digest.id, digest.attempts = stored["id"], stored["attempts"]
        self.outbox.mark_merged([n.id for n in batch], digest.id)
        return digest


def _line(i: int, n: Note) -> str:
    """One alert in a digest, short: 1. 红色 抛光车间除尘系统·灰斗温度 新报警：灰斗温度 99 高于红色阈值 80"""
    p = n.params
    if not p.get("area"):
        return f"{i}. {n.title}"
    return f"{i}. {n.tier.zh} {p['area']}·{p.get('subject', '')} {p.get('state', '')}：{p.get('reason', '')}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:max(limit - 1, 0)] + "…"


async def run(planner: Planner, dispatcher: Dispatcher, period_s: float = 1.0) -> None:
    """Decide and send until cancelled; a failure in one round is logged and the next round tries again."""
    while True:
        try:
            now = dispatcher.clock()
            await asyncio.to_thread(planner.run_once, now)
            await dispatcher.send_due()
            await asyncio.to_thread(dispatcher.refresh_stats)
        except Exception:
            log.exception("notification round failed; the next one will try again")
        await asyncio.sleep(period_s)
