"""The alarm-system quality report: GET /api/quality (engineers and above) and its page, GET /quality.

Include it in the app with `app.include_router(quality_router(lambda: ctx.book))`.
"""
from __future__ import annotations

import time
from datetime import timedelta, timezone
from pathlib import Path
from typing import Callable, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from alerting.book import AlertBook, AlertEvent
from alerting.quality import DEFAULT_SHIFTS, Shift, report
from api.auth import require
from config.model import Role, User

STATIC = Path(__file__).parent / "static"
DAY_S = 86400.0
MAX_RANGE_S = 92 * DAY_S
PAGE = 2000  # events per read: the book's lock is held for one page at a time

Level = Literal["acceptable", "manageable", "overloaded"]


class Durations(BaseModel):
    count: int = Field(description="how many were measured")
    median_s: float | None
    p90_s: float | None
    max_s: float | None


class AckDurations(Durations):
    never_acked: int = Field(description="annunciations not acknowledged (yet)")


class ClearDurations(Durations):
    not_cleared: int = Field(description="alarms not cleared (yet)")


class Metrics(BaseModel):
    """The yardsticks of one console over one span: the whole period, or a shift of a day."""

    start: float
    end: float
    hours: float
    alarms: int = Field(description="raised events")
    tier_ups: int = Field(description="escalations of an alarm already raised: further annunciations")
    annunciations: int = Field(description="alarms + tier_ups")
    by_tier: dict[str, int] = Field(description="annunciations by tier (the priority mix)")
    per_10min_avg: float
    per_10min_peak: int = Field(description="most alarms in any sliding 10-min window")
    floods: int
    flood_s: float
    flood_pct: float
    chattering: int = Field(description="(point, rule) pairs with 3+ transitions within 60 s")
    fleeting: int = Field(description="alarms cleared within fleeting_s of being raised")
    stale: int = Field(description="alarms active at the span's end and raised more than 24 h before it")
    ack: dict[str, AckDurations] = Field(description="time to acknowledge, by the annunciated tier")
    clear: dict[str, ClearDurations] = Field(description="time to clear, by the alarm's highest tier")
    overdue_steps: dict = Field(description="closed-loop steps that went overdue: {total, by_step}")
    suppressed: int = Field(0, description="alarms raised while suppressed (not annunciated, not in the rates)")


class ShiftMetrics(Metrics):
    day: str = Field(description="local date the shift starts on")
    shift: str


class Yardstick(BaseModel):
    value: float
    level: Level
    limit: float | None = None
    acceptable: float | None = None
    manageable: float | None = None


class Verdict(BaseModel):
    level: Level = Field(description="the worst of the three")
    average_per_10min: Yardstick
    peak_10min: Yardstick
    flood_time_pct: Yardstick


class Flood(BaseModel):
    start: float
    end: float
    duration_s: float
    alarms: int = Field(description="alarms counted in the flooded windows")
    peak: int


class Chattering(BaseModel):
    point: str
    rule: str
    first_ts: float
    times: int = Field(description="transitions that completed a 3-in-60-s run")


class Fleeting(BaseModel):
    alert_id: int
    point: str
    rule: str
    raised_at: float
    duration_s: float


class Stale(BaseModel):
    alert_id: int
    point: str
    rule: str
    tier: str
    raised_at: float
    active_s: float
    acked: bool


class Noisy(BaseModel):
    point: str
    rule: str
    area: str
    alarms: int
    tier_ups: int
    fleeting: int
    max_tier: str
    chattering: bool


class AreaQuality(BaseModel):
    area: str
    summary: Metrics
    verdict: Verdict
    floods: list[Flood]
    chattering: list[Chattering]
    fleeting: list[Fleeting]
    stale: list[Stale]
    top: list[Noisy]
    shifts: list[ShiftMetrics]


class QualityReport(BaseModel):
    start: float
    end: float
    tz: str
    definitions: dict
    areas: list[AreaQuality]
    top: list[Noisy] = Field(description="the noisiest (point, rule) pairs of the whole plant")
    notes: dict[str, str]


def events_for(book: AlertBook, start: float, end: float) -> list[AlertEvent]:
    """The events a report on [start, end) needs: every event of the episodes raised in it (acknowledged or
    cleared however late), and of earlier episodes still active at its start (standing alarms)."""
    kept: list[AlertEvent] = []
    earlier: dict[int, list[AlertEvent]] = {}
    seq = 0
    while page := book.events_since(seq, PAGE):
        seq = page[-1].seq
        for e in page:
            raised, cleared = e.alert.raised_at, e.alert.cleared_at
            if raised >= end:
                continue
            if raised >= start:
                kept.append(e)
            elif cleared is not None and cleared < start:
                earlier.pop(e.alert_id, None)  # over before the period began
            else:
                earlier.setdefault(e.alert_id, []).append(e)
    return [e for evs in earlier.values() for e in evs] + kept


def parse_tz(text: str) -> timezone:
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 14 or minutes > 59:
        raise HTTPException(422, f"bad UTC offset {text!r}")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def quality_router(book: Callable[[], AlertBook], shifts: tuple[Shift, ...] = DEFAULT_SHIFTS,
                   plant_tz: str = "+08:00") -> APIRouter:
    """`shifts` and `plant_tz`: the plant's crews (notify.shifts) and UTC offset (notify.timezone)."""
    router = APIRouter(tags=["quality"])

    @router.get("/api/quality", response_model=QualityReport)
    def quality(start: float | None = Query(None, description="epoch seconds; default end - 24 h"),
                end: float | None = Query(None, description="epoch seconds; default now"),
                area: str | None = Query(None, description="one console (area id); default all"),
                tz: str | None = Query(None, pattern=r"^[-+ ]\d{2}:\d{2}$", description="UTC offset for days "
                                       "and shifts; default the plant's ('+' may arrive as a space)"),
                user: User = Depends(require(Role.ENGINEER))) -> dict:
        end = time.time() if end is None else end
        start = end - DAY_S if start is None else start
        if start >= end:
            raise HTTPException(422, "start must be before end")
        if end - start > MAX_RANGE_S:
            raise HTTPException(422, f"at most {MAX_RANGE_S / DAY_S:.0f} days at a time")
        alert_book = book()
        events = events_for(alert_book, start, end)
        areas = {p.area for p in alert_book.points.values()} | {e.alert.area for e in events}
        if area is not None and area not in areas:
            raise HTTPException(404, f"unknown area {area!r}")
        return report(events, start, end, [area] if area else sorted(areas), shifts, parse_tz(tz or plant_tz))

    @router.get("/quality", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "quality.html")

    return router
