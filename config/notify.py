"""Who is told what, through which channel, and when nobody answers: the `notify:` block of a plant file.

People sit at escalation levels (0 duty operator, 1 safety manager, 2 site head, 3 regulator). A route says
which tiers in which areas are sent, through which channels in order of preference (the next one is the fallback
when one fails). A new alert goes at once to levels 0..`initial_levels[tier]` (domain.md section 2: yellow adds
the safety manager, orange the site head and the county supervisor, red everyone); one not acknowledged within
`escalate_after_min[tier][k]` minutes goes one level further each step. Red repeats every `repeat_red_min` until
acknowledged.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config.channels import ChannelConfig

TIER_NAMES = ("blue", "yellow", "orange", "red")
LEVELS = ("duty_operator", "safety_manager", "site_head", "regulator")
LEVEL_ZH = {"duty_operator": "值班员", "safety_manager": "安全管理人员", "site_head": "主要负责人", "regulator": "监管部门"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Shift(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    start: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="local time HH:MM")
    end: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="local time HH:MM; before start = overnight")

    def covers(self, minute_of_day: int) -> bool:
        a, b = _minutes(self.start), _minutes(self.end)
        return a <= minute_of_day < b if a < b else minute_of_day >= a or minute_of_day < b


class Person(_Strict):
    name: str
    level: Literal["duty_operator", "safety_manager", "site_head", "regulator"]
    shifts: list[str] = Field([], description="shift ids this person is on duty in; empty = always")
    areas: list[str] = Field(["*"], description="areas this person answers for")
    phone: str | None = Field(None, pattern=r"^\+?\d{6,15}$")
    email: str | None = None
    wecom_user: str | None = None

    @property
    def level_index(self) -> int:
        return LEVELS.index(self.level)


class Route(_Strict):
    tiers: list[Literal["blue", "yellow", "orange", "red"]]
    areas: list[str] = ["*"]
    channels: list[str] = Field(min_length=1, description="in order of preference: the next is the fallback")


def _default_escalation() -> dict[str, list[float]]:
    return {"blue": [30], "yellow": [15, 60]}  # domain.md section 2: acknowledge blue <= 30 min, yellow <= 15


def _default_initial() -> dict[str, int]:
    return {"blue": 0, "yellow": 1, "orange": 3, "red": 3}


class NotifyConfig(_Strict):
    timezone: str = Field("+08:00", pattern=r"^[+-]\d\d:\d\d$", description="for shifts, as a UTC offset")
    channels: list[ChannelConfig] = []
    shifts: list[Shift] = [Shift(id="day", start="08:00", end="20:00"), Shift(id="night", start="20:00", end="08:00")]
    people: list[Person] = []
    routes: list[Route] = []
    initial_levels: dict[str, int] = Field(default_factory=_default_initial,
                                           description="per tier: levels 0..N told as soon as an alert is raised")
    escalate_after_min: dict[str, list[float]] = Field(
        default_factory=_default_escalation,
        description="per tier: minutes unacknowledged after which the next level is told too, one per step")
    repeat_red_min: float = Field(5.0, gt=0, description="a red alert is sent again this often until acknowledged")
    notify_clear: list[Literal["blue", "yellow", "orange", "red"]] = Field(
        ["orange", "red"], description="tiers whose return to normal is sent too (to whoever was told)")
    max_attempts: int = Field(4, ge=1, description="tries on one channel before the route's next channel")
    templates: dict[str, str] = Field({}, description="per tier (or 'default'): the text, with ${site} ${tier} "
                                      "${area} ${subject} ${reason} ${time} ${value} ${state}")

    @field_validator("escalate_after_min")
    @classmethod
    def _known_tiers(cls, v: dict[str, list[float]]) -> dict[str, list[float]]:
        for tier, steps in v.items():
            if tier not in TIER_NAMES:
                raise ValueError(f"unknown tier {tier!r} (use {', '.join(TIER_NAMES)})")
            if steps != sorted(steps) or any(s < 0 for s in steps) or len(steps) > len(LEVELS) - 1:
                raise ValueError(f"{tier}: minutes must be ascending, >= 0, at most {len(LEVELS) - 1} steps")
        return v

    @field_validator("initial_levels")
    @classmethod
    def _levels(cls, v: dict[str, int]) -> dict[str, int]:
        for tier, n in v.items():
            if tier not in TIER_NAMES or not 0 <= n < len(LEVELS):
                raise ValueError(f"initial_levels: {tier}: {n} (tiers {', '.join(TIER_NAMES)}; levels 0-3)")
        return v

    @field_validator("templates")
    @classmethod
    def _template_keys(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if k not in (*TIER_NAMES, "default")]
        if bad:
            raise ValueError(f"templates: unknown key {bad[0]!r} (use a tier name or 'default')")
        return v

    @model_validator(mode="after")
    def _references(self) -> "NotifyConfig":
        names = [c.name for c in self.channels]
        if len(set(names)) != len(names):
            raise ValueError("channel names must be unique")
        shifts = {s.id for s in self.shifts}
        for i, r in enumerate(self.routes):
            for c in r.channels:
                if c not in names:
                    raise ValueError(f"routes[{i}] names channel {c!r}, which is not in channels "
                                     f"({', '.join(names) or 'none'})")
        for p in self.people:
            for s in p.shifts:
                if s not in shifts:
                    raise ValueError(f"person {p.name!r} names shift {s!r}, which is not in shifts")
        return self


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)
