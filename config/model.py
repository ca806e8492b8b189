"""The typed configuration of a plant: areas, points and their tiered limits, users, broker, store, API."""
from __future__ import annotations

import difflib
from contextvars import ContextVar
from enum import Enum, IntEnum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from config.alarms import AlarmConfig
from config.influx import InfluxConfig
from config.uplink import UplinkConfig
from config.notify import NotifyConfig
from config.expr import Call, ExprError, Node, Ref, Status, momentary, parse, rename, render, walk


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


class AnomalyRule(_Strict):
    """The statistical anomaly detector on this point (rule 'anomaly', detectors/anomaly/): no limits to set, it
    learns the point's own normal (its first few hundred readings, then continuously) and scores how unusual
    each reading is; the score maps to a tier, capped here since the detector knows unusual, not dangerous."""

    max_tier: Literal["blue", "yellow", "orange", "red"] = Field(
        "yellow", description="the highest tier an anomaly raises (limits and composite rules speak for danger)")

    @property
    def cap(self) -> Tier:
        return Tier.parse(self.max_tier)


class StuckRule(_Strict):
    """A sensor that stops changing: every reading within `band` of the others for `after_s` (rule 'stuck')."""

    after_s: float = Field(gt=0, description="no change beyond band for this long = stuck")
    band: float = Field(0.0, ge=0, description="readings whose max - min stays within this count as unchanged")
    ignore_below: float | None = Field(None, description="a run of readings all at or below this cannot be stuck "
                                       "(a gas detector reading 0 in clean air; a stopped pump's 0 flow)")


class GlitchRule(_Strict):
    """Single-sample glitches: one reading far from both neighbours, which agree with each other, is a glitch (a
    loose wire, EMI), not a step; `count` of them within `window_s` raise a blue sensor-health alarm (rule
    'glitch'). A real step stays, so it is left to the threshold, rate and anomaly rules."""

    jump: float = Field(gt=0, description="how far a reading must stand from both neighbours")
    count: int = Field(3, ge=1, description="glitches within window_s that raise the alarm")
    window_s: float = Field(600.0, gt=0)


class RedundancyRule(_Strict):
    """Two sensors measuring the same thing must agree: |this - point| beyond tolerance for for_s raises rule
    'disagree' (one of them is failing; the plant does not know which reading to trust)."""

    point: str = Field(description="id of the redundant sensor")
    tolerance: float = Field(gt=0, description="largest difference between the two that is still agreement")
    for_s: float = Field(60.0, ge=0, description="the disagreement must last this long (and clear after as long)")


class CompositeRule(_Strict):
    """A condition over several points, their alarms and the plant's state, in the rule language of
    config/expr.py (parsed, never eval'd). The rule raises `tier` once `when` has held for_s and clears once it
    has been false off_delay_s. A condition on missing data is unknown, never true: silence is rule 'stale'."""

    id: str = Field(pattern=r"^[A-Za-z0-9_.~-]+$", max_length=64)
    name: str
    name_en: str = ""
    area: str
    tier: Literal["blue", "yellow", "orange", "red"] = Field(description="the tier raised while the condition holds")
    when: str = Field(description="the condition, e.g. 'dust1.production and not dust1.fan_on'")
    for_s: float = Field(0.0, ge=0, description="the condition must hold this long before the tier is raised")
    off_delay_s: float = Field(0.0, ge=0, description="the condition must be false this long to clear")

    # what rules may name (point id -> range and limits; area ids) while the Plant around them is validated, so
    # a mistake is reported at its own key path (rules[2].when) along with every other problem in the file
    _scope: ClassVar[ContextVar] = ContextVar("composite_rule_scope", default=None)

    @property
    def condition(self) -> Node:
        return parse(self.when)

    @property
    def level(self) -> Tier:
        return Tier.parse(self.tier)

    @field_validator("when")
    @classmethod
    def _readable(cls, when: str) -> str:
        node = parse(when)  # an ExprError is a ValueError: reported with its column
        scope = cls._scope.get()
        if scope is not None:
            cls.check(node, when, *scope)
        return when

    @field_validator("id")
    @classmethod
    def _not_a_point(cls, rule_id: str) -> str:
        scope = cls._scope.get()
        if scope is not None and rule_id in scope[0]:
            raise ValueError(f"rule id {rule_id!r} is also a point id: give the rule its own")
        return rule_id

    @field_validator("area")
    @classmethod
    def _known_area(cls, area: str) -> str:
        scope = cls._scope.get()
        if scope is not None and area not in scope[1]:
            raise ValueError(f"area {area!r} is not in areas ({', '.join(sorted(scope[1]))})")
        return area

    @model_validator(mode="after")
    def _can_hold(self) -> "CompositeRule":
        if self.for_s > 0 and momentary(self.condition):
            raise ValueError("the condition uses rose(), true for one moment only, so it never holds for_s: set "
                             "for_s 0 and keep the alert up with off_delay_s")
        return self

    @staticmethod
    def check(node: Node, text: str, points: dict[str, dict[str, Any]], areas: set[str]) -> None:
        """Every point named exists, a point read as a condition is a 0/1 status point, every limit read is
        configured, every area named exists; else ExprError at the first fault."""
        for n in walk(node):
            if isinstance(n, Ref) and n.point not in points:
                near = difflib.get_close_matches(n.point, list(points), 1, 0.8)
                raise ExprError(f"unknown point {n.point!r}" + (f"; did you mean {near[0]!r}?" if near else ""),
                                n.col, text)
            if isinstance(n, Status) and points.get(n.ref.point, {}).get("range") not in (None, (0.0, 1.0)):
                raise ExprError(f"{n.ref.point} is not a 0/1 status point: compare it (e.g. {n.ref.point} > 5)",
                                n.col, text)
            if isinstance(n, Call) and n.func in ("limit", "low_limit") and n.args[0].point in points:
                side, tier = ("high" if n.func == "limit" else "low"), n.args[1].name
                limits = points[n.args[0].point][side]
                if tier not in limits:
                    have = ", ".join(f"{t} {v:g}" for t, v in limits.items()) or "none"
                    raise ExprError(f"{n.args[0].point} has no {side} {tier} limit ({side} limits: {have}; "
                                    f"limit() reads the high side, low_limit() the low)", n.col, text)
            if isinstance(n, Call) and n.func == "any_alarm" and n.args[0].value not in areas | {"*"}:
                raise ExprError(f"unknown area {n.args[0].value!r} (areas: {', '.join(sorted(areas))}, or \"*\")",
                                n.args[0].col, text)

    @staticmethod
    def scope_of(data: Any) -> tuple[dict[str, dict[str, Any]], set[str]] | None:
        """What rules may name, read from a plant being validated (raw mappings or models alike)."""
        if not isinstance(data, dict):
            return None

        def get(node: Any, key: str) -> Any:
            return node.get(key) if isinstance(node, dict) else getattr(node, key, None)

        def limits(node: Any) -> dict[str, float]:
            return {t: v for t in ("blue", "yellow", "orange", "red") if node is not None
                    and isinstance(v := get(node, t), (int, float))}

        points: dict[str, dict[str, Any]] = {}
        for p in data.get("points") if isinstance(data.get("points"), list) else []:
            r = get(p, "range")
            ok = isinstance(r, (list, tuple)) and len(r) == 2 and all(isinstance(x, (int, float)) for x in r)
            if isinstance(get(p, "id"), str):
                points[get(p, "id")] = {"range": (float(r[0]), float(r[1])) if ok else None,
                                        "high": limits(get(p, "high")), "low": limits(get(p, "low"))}
        areas = data.get("areas") if isinstance(data.get("areas"), list) else []
        return points, {a for a in (get(x, "id") for x in areas) if isinstance(a, str)}


class Area(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    name: str
    name_en: str = ""
    sector: Sector
    gateway: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$",
                                description="the gateway its points report through unless a point names its own")


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
    latch: bool | None = Field(None, description="its process alarms (high, low, rate, forecast, anomaly) stay until "
                               "an operator resets them after the return to normal; default: on for interlock-grade "
                               "points")
    active_when: str | None = Field(None, description="id of a 0/1 status point: the limits apply only while it "
                                    "reads 1 (casting active, fan running); a stop clears the alarm")
    active_after_s: float = Field(0.0, ge=0, description="with active_when: the limits apply only once the status "
                                  "has read 1 this long (start-up; the casting level window starts 300-500 mm in)")
    rate: RateRule | None = Field(None, description="rate-of-change limits (rule 'rate')")
    forecast: ForecastRule | None = Field(None, description="time-to-threshold warning (rule 'forecast'); needs "
                                          "high and/or low limits")
    gateway: str | None = Field(None, pattern=r"^[A-Za-z0-9_.~-]+$",
                                description="the gateway (data collector) the point reports through; default: its "
                                "area's. Points of one gateway falling silent together raise one gateway alarm")
    stuck: StuckRule | None = Field(None, description="stuck-sensor check (rule 'stuck')")
    glitch: GlitchRule | None = Field(None, description="single-sample glitch check (rule 'glitch')")
    redundant: RedundancyRule | None = Field(None, description="agreement with a redundant sensor (rule 'disagree')")
    anomaly: AnomalyRule | None = Field(None, description="statistical anomaly detection (rule 'anomaly')")

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
    raw_retention_days: float | None = Field(
        180, gt=0, description="raw readings older than this are deleted once rolled up (six months, the common "
                               "local-storage rule); null keeps them forever")
    rollup_1m_retention_days: float | None = Field(
        730, gt=0, description="per-minute rollups (min, max, mean, count, last) kept this long; null = forever; "
                               "at least raw_retention_days")
    rollup_1h_retention_days: float | None = Field(
        None, gt=0, description="per-hour rollups kept this long; null (default) = forever; at least "
                                "rollup_1m_retention_days")
    maintain_interval_s: float = Field(
        60, gt=0, description="how often the writer rolls up complete minutes and deletes expired data; alerts and "
                              "their events are never rolled up nor deleted")

    @model_validator(mode="after")
    def _coarser_kept_longer(self) -> "StoreConfig":
        # a coarser level is derived from the finer one, so it must outlive it (null = forever outlives all)
        chain = [("raw_retention_days", self.raw_retention_days),
                 ("rollup_1m_retention_days", self.rollup_1m_retention_days),
                 ("rollup_1h_retention_days", self.rollup_1h_retention_days)]
        for (fine, f), (coarse, c) in zip(chain, chain[1:]):
            if c is not None and (f is None or c < f):
                raise ValueError(f"{coarse} ({c}) must be at least {fine} ({'forever' if f is None else f})")
        return self


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
    notify: NotifyConfig = NotifyConfig()
    alarms: AlarmConfig = AlarmConfig()
    influx: InfluxConfig | None = Field(None, description="also forward accepted readings to InfluxDB (config/influx.py)")
    uplink: UplinkConfig | None = Field(None, description="provincial platform uplink (alerting/uplink/)")
    rules: list[CompositeRule] = Field([], description="composite rules over several points (config/expr.py)")

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
            if p.redundant is not None and (p.redundant.point not in ids or p.redundant.point == p.id):
                raise ValueError(f"point {p.id!r}: redundant.point names {p.redundant.point!r}, which is not "
                                 f"another point")
        if self.uplink is not None:
            gw = {p.id: g for g, pts in self.gateways().items() for p in pts}
            problems = self.uplink.problems({p.id: gw.get(p.id) for p in self.points})
            if problems:
                raise ValueError("uplink: " + "; ".join(problems))
        return self

    @model_validator(mode="wrap")
    @classmethod
    def _rules_see_the_plant(cls, data: Any, handler: Any) -> "Plant":
        token = CompositeRule._scope.set(CompositeRule.scope_of(data))
        try:
            return handler(data)
        finally:
            CompositeRule._scope.reset(token)

    @field_validator("rules")
    @classmethod
    def _unique_rules(cls, rules: list[CompositeRule]) -> list[CompositeRule]:
        _unique([r.id for r in rules], "rule id")
        return rules

    @model_validator(mode="after")
    def _rule_references(self) -> "Plant":
        """Again on the validated plant: rules built in code were never checked against it."""
        points, areas = CompositeRule.scope_of({"points": self.points, "areas": self.areas})
        for r in self.rules:
            if r.id in points or r.area not in areas:
                raise ValueError(f"rule {r.id!r}: its id is a point's, or its area {r.area!r} is not in areas")
            try:
                CompositeRule.check(r.condition, r.when, points, areas)
            except ExprError as e:
                raise ValueError(f"rule {r.id!r}: {e}") from None
        return self

    def point_map(self) -> dict[str, Point]:
        return {p.id: p for p in self.points}

    def area_map(self) -> dict[str, Area]:
        return {a.id: a for a in self.areas}

    def gateways(self) -> dict[str, list[Point]]:
        """Each gateway's points: a point's own `gateway`, else its area's."""
        areas = self.area_map()
        out: dict[str, list[Point]] = {}
        for p in self.points:
            gw = p.gateway or (areas[p.area].gateway if p.area in areas else None)
            if gw:
                out.setdefault(gw, []).append(p)
        return out

    def scaled(self, copies: int) -> "Plant":
        """The same plant with every point repeated `copies` times (ids `<id>~<k>`), for load tests and benchmarks."""
        if copies <= 1:
            return self
        gateway = {p.id: gw for gw, pts in self.gateways().items() for p in pts}
        points = [p.model_copy(update={"id": f"{p.id}~{k}",
                                       "gateway": f"{gateway[p.id]}~{k}" if p.id in gateway else None,
                                       "active_when": p.active_when and f"{p.active_when}~{k}",
                                       "redundant": p.redundant and p.redundant.model_copy(
                                           update={"point": f"{p.redundant.point}~{k}"})})
                  for k in range(copies) for p in self.points]
        rules = [r.model_copy(update={"id": f"{r.id}~{k}",
                                      "when": render(rename(r.condition, lambda pid, k=k: f"{pid}~{k}"))})
                 for k in range(copies) for r in self.rules]
        return self.model_copy(update={"points": points, "rules": rules})


def _unique(ids: list[str], what: str) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"duplicate {what} {i!r}")
        seen.add(i)
