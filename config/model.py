"""The typed configuration of a plant: areas, points and their tiered limits, users, broker, store, API."""
from __future__ import annotations

from enum import Enum, IntEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator


class Tier(IntEnum):
    """Warning tiers, highest first in the national scheme: red (I) > orange (II) > yellow (III) > blue (IV)."""

    NORMAL = 0
    BLUE = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4

    @property
    def zh(self) -> str:
        return TIER_ZH[self]

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> "Tier":
        return cls[name.upper()]


TIER_ZH = {Tier.NORMAL: "正常", Tier.BLUE: "蓝色", Tier.YELLOW: "黄色", Tier.ORANGE: "橙色", Tier.RED: "红色"}
ALARM_TIERS = (Tier.BLUE, Tier.YELLOW, Tier.ORANGE, Tier.RED)


class Sector(str, Enum):
    DUST = "dust"
    ALUMINIUM_CASTING = "aluminium_casting"
    STEEL = "steel"
    CONFINED_SPACE = "confined_space"
    AMMONIA = "ammonia"


class Role(str, Enum):
    """Who may do what: each role includes every power of the roles before it."""

    DISPLAY = "display"
    OPERATOR = "operator"
    ENGINEER = "engineer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Limits(_Strict):
    """One side of a point's tiered limits. High side: blue < yellow < orange < red; low side: the reverse."""

    blue: float | None = None
    yellow: float | None = None
    orange: float | None = None
    red: float | None = None

    def by_tier(self) -> list[tuple[Tier, float]]:
        return [(t, getattr(self, t.label)) for t in ALARM_TIERS if getattr(self, t.label) is not None]


class RateRule(_Strict):
    """Rate of change: a robust (Theil-Sen) slope over the last window_s of readings, in units per per_s, against
    tiered limits on how fast the value may rise and/or fall (both as positive magnitudes)."""

    window_s: float = Field(600.0, gt=0, description="the slope is fitted on this much of the latest readings")
    per_s: float = Field(600.0, gt=0, description="the slope's time unit: 600 = per 10 min")
    step_s: float | None = Field(None, gt=0, description="readings are binned (median) and the slope evaluated at "
                                 "most this often; default window_s / 30")
    rise: Limits | None = Field(None, description="limits on the rate of rise, per per_s (blue < ... < red)")
    fall: Limits | None = Field(None, description="limits on the rate of fall, per per_s, as positive magnitudes")
    deadband: float = Field(0.0, ge=0, description="a tier clears only once the rate is this far below its limit")
    on_delay_s: float = Field(60.0, ge=0, description="the rate must stay beyond a limit this long")
    off_delay_s: float = Field(300.0, ge=0, description="the rate must stay back inside this long to clear")

    @field_validator("rise", "fall")
    @classmethod
    def _magnitudes_ascending(cls, limits: Limits | None) -> Limits | None:
        if limits is None:
            return limits
        values = [v for _, v in limits.by_tier()]
        if not values:
            raise ValueError("give at least one of blue, yellow, orange, red")
        if values != sorted(values) or len(set(values)) != len(values) or values[0] <= 0:
            raise ValueError(f"rate limits are positive magnitudes, strictly ordered blue < yellow < orange < red, "
                             f"got {limits.model_dump(exclude_none=True)}")
        return limits

    @model_validator(mode="after")
    def _some_limit(self) -> "RateRule":
        if self.rise is None and self.fall is None:
            raise ValueError("give rise and/or fall limits")
        return self


class Horizons(_Strict):
    """Forecast horizons in minutes: a tier is raised when the limit is forecast within its horizon."""

    blue: float | None = Field(None, gt=0)
    yellow: float | None = Field(None, gt=0)
    orange: float | None = Field(None, gt=0)
    red: float | None = Field(None, gt=0)

    def by_tier(self) -> list[tuple[Tier, float]]:
        return [(t, getattr(self, t.label)) for t in ALARM_TIERS if getattr(self, t.label) is not None]


class ForecastRule(_Strict):
    """Time to threshold: a line fitted on the last window_s of readings, extrapolated at the conservative end of
    its slope's confidence interval (noise alone forecasts nothing) to the point's `target` limit."""

    window_s: float = Field(1800.0, gt=0, description="the trend is fitted on this much of the latest readings")
    step_s: float | None = Field(None, gt=0, description="readings are binned (median) and the trend evaluated at "
                                 "most this often; default window_s / 30")
    target: Literal["blue", "yellow", "orange", "red"] = Field(
        "red", description="the limit forecast: the point's limit at this tier (or its highest one below it)")
    within_min: Horizons = Field(Horizons(yellow=60, orange=20),
                                 description="tier by how soon the target is forecast: shorter horizon, higher tier")
    confidence: float = Field(0.95, gt=0.5, lt=1, description="two-sided confidence of the slope's interval")
    on_delay_s: float = Field(120.0, ge=0, description="the forecast must hold this long before its tier is raised")
    off_delay_s: float = Field(600.0, ge=0, description="the forecast must stay beyond the horizon this long to clear")

    @field_validator("within_min")
    @classmethod
    def _horizons_descending(cls, h: Horizons) -> Horizons:
        values = [v for _, v in h.by_tier()]
        if not values:
            raise ValueError("give at least one of blue, yellow, orange, red (minutes)")
        if values != sorted(values, reverse=True) or len(set(values)) != len(values):
            raise ValueError(f"horizons must shrink as the tier rises (blue > yellow > orange > red minutes), "
                             f"got {h.model_dump(exclude_none=True)}")
        return h


class Area(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    name: str
    name_en: str = ""
    sector: Sector


class Point(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_.~-]+$", max_length=64)
    name: str
    name_en: str = ""
    area: str
    kind: str | None = None
    unit: str
    interval_s: float = Field(gt=0, description="expected reporting interval")
    range: tuple[float, float] = Field(description="physical range of the sensor; readings outside are rejected")
    high: Limits | None = None
    low: Limits | None = None
    deadband: float = Field(0.0, ge=0, description="hysteresis: a tier clears only this far inside its limit")
    on_delay_s: float = Field(0.0, ge=0, description="a limit must be exceeded this long before the tier is raised")
    off_delay_s: float = Field(0.0, ge=0, description="a tier clears only after this long back inside its limit")
    stale_factor: float = Field(3.0, gt=1, description="silent for more than this many intervals = offline")
    interlock: bool = Field(False, description="interlock-grade point: losing it is a red alarm")
    active_when: str | None = Field(None, description="id of a 0/1 status point: the limits apply only while it "
                                    "reads 1 (casting active, fan running); a stop clears the alarm")
    active_after_s: float = Field(0.0, ge=0, description="with active_when: the limits apply only once the status "
                                  "has read 1 this long (start-up; the casting level window starts 300-500 mm in)")
    rate: RateRule | None = Field(None, description="rate-of-change limits (rule 'rate')")
    forecast: ForecastRule | None = Field(None, description="time-to-threshold warning (rule 'forecast'); needs "
                                          "high and/or low limits")

    @field_validator("high", "low")
    @classmethod
    def _limits_ordered(cls, limits: Limits | None, info: ValidationInfo) -> Limits | None:
        if limits is None:
            return limits
        values = [v for _, v in limits.by_tier()]
        if not values:
            raise ValueError("give at least one of blue, yellow, orange, red")
        rising = info.field_name == "high"
        if values != sorted(values, reverse=not rising) or len(set(values)) != len(values):
            want = "blue < yellow < orange < red" if rising else "blue > yellow > orange > red"
            raise ValueError(f"limits must be strictly ordered {want}, got {limits.model_dump(exclude_none=True)}")
        if "range" in info.data:
            lo, hi = info.data["range"]
            outside = [v for v in values if not lo <= v <= hi]
            if outside:
                raise ValueError(f"limit {outside[0]} lies outside the physical range [{lo}, {hi}]")
        return limits

    @field_validator("range")
    @classmethod
    def _range_ordered(cls, r: tuple[float, float]) -> tuple[float, float]:
        if r[0] >= r[1]:
            raise ValueError(f"range must be [min, max] with min < max, got [{r[0]}, {r[1]}]")
        return r

    @model_validator(mode="after")
    def _forecast_has_limits(self) -> "Point":
        if self.forecast is not None and self.high is None and self.low is None:
            raise ValueError("forecast needs high and/or low limits to forecast (or set forecast: null)")
        return self

    @model_validator(mode="after")
    def _sides_apart(self) -> "Point":
        if self.high and self.low and min(v for _, v in self.high.by_tier()) <= max(v for _, v in self.low.by_tier()):
            raise ValueError("every high limit must lie above every low limit")
        return self


class User(_Strict):
    name: str
    role: Role
    token: str = Field(min_length=16, description="bearer token; 'env:NAME' reads it from the environment")


class BrokerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=0, le=65535)
    client_id: str = "riskwatch-ingest"
    username: str | None = None
    password: str | None = None
    receive_maximum: int = Field(1000, ge=1, le=65535, description="unacknowledged QoS 1 messages in flight")
    topic_prefix: str = "rw/v1"


class IngestConfig(_Strict):
    max_message_bytes: int = Field(262_144, gt=0)
    max_future_s: float = Field(300.0, ge=0, description="reject readings stamped further ahead than this")
    max_past_s: float = Field(7 * 86400.0, gt=0, description="reject readings stamped further back than this")
    batch_max: int = Field(1000, gt=0, description="messages committed per store transaction at most")


class StoreConfig(_Strict):
    path: str = "riskwatch.db"
    synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL", description="NORMAL survives a killed process; FULL also survives power loss, slower")


class ApiConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    value_push_interval_s: float = Field(1.0, gt=0, description="live values pushed at most this often per point")


class Plant(_Strict):
    site: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    name: str
    name_en: str = ""
    areas: list[Area]
    points: list[Point]
    users: list[User] = []
    broker: BrokerConfig = BrokerConfig()
    ingest: IngestConfig = IngestConfig()
    store: StoreConfig = StoreConfig()
    api: ApiConfig = ApiConfig()

    @field_validator("areas")
    @classmethod
    def _unique_areas(cls, areas: list[Area]) -> list[Area]:
        _unique([a.id for a in areas], "area id")
        return areas

    @field_validator("users")
    @classmethod
    def _unique_tokens(cls, users: list[User]) -> list[User]:
        _unique([u.name for u in users], "user name")
        return users

    @model_validator(mode="after")
    def _references(self) -> "Plant":
        _unique([p.id for p in self.points], "point id")
        known = {a.id for a in self.areas}
        ids = {p.id for p in self.points}
        for p in self.points:
            if p.area not in known:
                raise ValueError(f"point {p.id!r} names area {p.area!r}, which is not in areas ({', '.join(sorted(known))})")
            if p.active_when is not None and p.active_when not in ids:
                raise ValueError(f"point {p.id!r}: active_when names {p.active_when!r}, which is not a point")
        return self

    def point_map(self) -> dict[str, Point]:
        return {p.id: p for p in self.points}

    def area_map(self) -> dict[str, Area]:
        return {a.id: a for a in self.areas}

    def scaled(self, copies: int) -> "Plant":
        """The same plant with every point repeated `copies` times (ids `<id>~<k>`), for load tests and benchmarks."""
        if copies <= 1:
            return self
        points = [p.model_copy(update={"id": f"{p.id}~{k}",
                                       "active_when": p.active_when and f"{p.active_when}~{k}"})
                  for k in range(copies) for p in self.points]
        return self.model_copy(update={"points": points})


def _unique(ids: list[str], what: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"duplicate {what} {i!r}")
        seen.add(i)
