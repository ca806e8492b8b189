"""Request and response bodies: the API is described by its types, so /docs tells the truth."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from config.model import Limits

TierName = Literal["blue", "yellow", "orange", "red"]


class Me(BaseModel):
    name: str
    role: str


class AreaOut(BaseModel):
    id: str
    name: str
    name_en: str
    sector: str


class PointInfo(BaseModel):
    id: str
    name: str
    name_en: str
    area: str
    unit: str
    interval_s: float
    range: tuple[float, float]
    high: Limits | None
    low: Limits | None
    interlock: bool
    stale_factor: float


class SubjectOut(BaseModel):
    """Something alerts are raised on that is not a point: a gateway (`gateway:<id>`), a composite rule
    (`rule:<id>`)."""

    id: str
    name: str
    name_en: str
    area: str


class PlantOut(BaseModel):
    site: str
    name: str
    name_en: str
    areas: list[AreaOut]
    points: list[PointInfo]
    subjects: list[SubjectOut] = Field(default_factory=list, description="alert subjects that are not points")


class Latest(BaseModel):
    ts: float = Field(description="seconds since the Unix epoch")
    value: float


class PointOut(PointInfo):
    latest: Latest | None


class HistoryOut(BaseModel):
    point: str
    start: float
    end: float
    bucket_s: float = Field(description="0: raw readings as [ts, value]; else buckets as [ts, min, max, mean, count]")
    rows: list[list[float]]


class AlertOut(BaseModel):
    id: int
    point: str
    area: str
    rule: str
    tier: TierName
    max_tier: TierName
    state: Literal["active", "latched", "cleared"] = Field(
        description="latched: an interlock-grade alarm back to normal, waiting for an operator's reset")
    raised_at: float
    changed_at: float
    cleared_at: float | None
    acked_by: str | None
    acked_at: float | None
    ack_note: str | None
    value: float | None
    reason_zh: str
    reason_en: str
    suppressed: Literal["shelved", "out_of_service", "by_design"] | None = None
    suppressed_note: str | None = None
    chattering: bool = False
    shown: bool = Field(True, description="was live (not suppressed) at some moment")


class EventOut(BaseModel):
    seq: int
    alert_id: int
    point: str
    area: str
    rule: str
    kind: Literal["raised", "tier_up", "tier_down", "cleared", "acked", "latched", "realarm", "chattering",
                  "shelved", "unshelved", "out_of_service", "in_service", "suppressed", "unsuppressed", "step",
                  "overdue"]
    tier: Literal["normal", "blue", "yellow", "orange", "red"]
    ts: float
    value: float | None
    actor: str | None
    note: str | None
    reason_zh: str
    reason_en: str
    alert: AlertOut


class AckIn(BaseModel):
    note: str = Field("", max_length=500)


class ShelveIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)
    minutes: float = Field(gt=0, description="until the alarm returns by itself; at most alarms.shelve_max_h")


class OutOfServiceIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)
    hours: float = Field(gt=0, description="at most alarms.out_of_service_max_h")
    rules: list[str] | None = Field(None, description="only these rules of the point; default: all")


class StepIn(BaseModel):
    step: Literal["ack", "verify", "handle", "feedback", "close"]
    note: str = Field("", max_length=2000)
    photo: str | None = Field(None, max_length=500, description="a reference to a photo (file name or URL)")


class SuppressionOut(BaseModel):
    id: int
    kind: Literal["shelved", "out_of_service", "by_design"]
    point: str
    rules: list[str] | None
    started_at: float
    started_by: str | None
    reason: str
    until: float | None
    max_tier: TierName | None
    ended_at: float | None
    ended_by: str | None
    end_reason: str | None


class StepOut(BaseModel):
    step: str
    step_zh: str
    step_en: str
    actor: str
    at: float
    note: str | None
    photo: str | None


class LoopOut(BaseModel):
    alert_id: int
    point: str | None = None
    area: str | None = None
    rule: str | None = None
    tier: TierName
    since: float = Field(description="when the warning first needed the loop: deadlines count from here")
    steps: list[StepOut]
    next_step: str | None
    next_step_zh: str | None
    deadline: float | None = Field(description="when the next step is due (epoch s)")
    overdue: list[str] = Field(description="steps that went overdue, in order (each escalated one level)")
    closed: bool


class RejectedOut(BaseModel):
    id: int
    received_at: float
    reason: str
    detail: str
    topic: str
    point: str | None
    payload: str


class BrokerHealth(BaseModel):
    connected: bool
    address: str
    connects: int
    last_error: str | None


class ReadingsHealth(BaseModel):
    messages: int
    accepted: int
    duplicates: int
    rejected: int
    rejected_by_reason: dict[str, int]
    backlog: int = Field(description="messages received and not yet committed")
    store_errors: int
    last_commit_age_s: float | None = Field(description="seconds since the last commit; None before the first")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    problems: list[Literal["broker_down", "mqtt_thread_stopped", "store_failing", "alert_book_failing",
                           "ingest_behind", "notifications_undelivered", "notifications_late",
                           "influx_spool_near_full", "influx_failing", "uplink_rejected", "uplink_behind"]] = Field(
        description="why the status is degraded")
    broker: BrokerHealth
    readings: ReadingsHealth
    alerts: dict[str, int] = Field(description="active alerts by tier")
    notifications: dict[str, int] = Field(default_factory=dict,
                                          description="outbox rows by state: pending, sent, merged, failed, unknown")
    suppressed: int = Field(0, description="open suppressions: shelved alarms, points out of service, by design")
    influx: dict | None = Field(None, description="the InfluxDB forwarder and its spool, when configured")
    uplink: dict | None = Field(None, description="the provincial uplink's queue, when configured")
