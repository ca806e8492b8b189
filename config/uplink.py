"""The provincial uplink: the `uplink:` block of a plant file, read by alerting/uplink/.

riskwatch sends readings and alarms to a provincial supervision platform in that province's published format
(`province`: one module in alerting/uplink/ each; today only Hebei's dust platform interface V1.1, domain.md
section 5). Only the points listed in `points` are uploaded, each under its platform point code; a point not
listed is never sent. A listed point goes through the platform gateway code (wgbm) that `gateways` gives its
riskwatch gateway (`Point.gateway`, else its area's), else through `default_gateway`.

Where the interface text we have is silent, these are assumptions, each a setting here:
- endpoints: POST {url}{readings_path} for rtsData and {url}{events_path} for eventsData;
- the encrypted JSON is `{"rtsData": [...]}` or `{"eventsData": [...]}`, UTF-8, compact;
- DES-CBC with PKCS#5 padding, the IV equal to the key unless `iv` is set (as the Java samples do), Base64
  (standard alphabet, padded), then hex, upper case unless `hex_upper` is false;
- `ts` is Beijing time (`timezone` +08:00; China keeps no daylight saving) as YYYY-MM-DD HH:mm:ss;
- every value is a string with the point's `decimals` (the published example "27.20" has 2, the default), and so
  are `scd` and `threshold`;
- `scd` per riskwatch rule and tier (`levels`): high side orange 3 (above high), red 4 (above high-high); low
  side orange 2 (below low), red 1 (below low-low); 0 is back to normal. The standards' first- and second-level
  alarms are riskwatch's orange and red; blue and yellow are earlier warnings of our own and are not sent unless
  a tier is added here;
- the platform answers `{"code": 0, "msg": "..."}` (200 is read as success too); a code in `retry_codes` is
  retried (by default the busy codes and the ones we assume for unknown enterprise 1001, unknown gateway 1002 and
  cannot decrypt 1003: our setup, not the data), any other code (e.g. 1004, bad data) rejects that batch for
  good: it is kept, marked failed and shown in health. No answer, HTTP 408/429/5xx, or a reply without a code
  is retried too. Batches wait in the queue for as long as the platform is away (at least once).
"""
from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

TIER_NAMES = ("blue", "yellow", "orange", "red")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PointCode(_Strict):
    """How one riskwatch point is known on the platform. In the file, a bare string is the code."""

    code: str = Field(min_length=1, max_length=64, pattern=r"^\S+$", description="the platform point code (tnm)")
    decimals: int | None = Field(None, ge=0, le=6, description="decimals of its values; default: default_decimals")


def _default_levels() -> dict[str, dict[str, int]]:
    return {"high": {"orange": 3, "red": 4}, "low": {"orange": 2, "red": 1}}


def _secret_from_env(value):
    """`env:NAME` reads the secret from the environment (the plant file keeps no key)."""
    if isinstance(value, str) and value.startswith("env:"):
        name = value[4:]
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return os.environ[name]
    return value


class UplinkConfig(_Strict):
    enabled: bool = True
    province: Literal["hebei"] = Field("hebei", description="the platform's format: a module in alerting/uplink/")
    url: str = Field(pattern=r"^https?://\S+$", description="the platform's base URL, e.g. https://host:port/api")
    readings_path: str = Field("/rtsData", pattern=r"^/\S*$", description="appended to url for real-time data "
                               "(rtsData); an assumption: set it from the platform's access document")
    events_path: str = Field("/eventsData", pattern=r"^/\S*$", description="appended to url for alarm and clear "
                             "events (eventsData); an assumption as above")
    enterprise_code: str = Field(pattern=r"^\d{12}$", description="the enterprise code (qybm), 12 digits")
    key: SecretStr = Field(description="the DES key the platform issued: 8 bytes (Java's DESKeySpec reads the "
                           "first 8 of a longer string: give those); write env:NAME to read it from the environment")
    iv: SecretStr | None = Field(None, description="the DES-CBC IV, 8 bytes; default: the key itself")
    hex_upper: bool = Field(True, description="hex digits of the data field in upper case")
    timezone: str = Field("+08:00", pattern=r"^[+-]\d\d:\d\d$", description="UTC offset of the platform's ts "
                          "(Beijing time)")
    gateways: dict[str, str] = Field({}, description="riskwatch gateway id -> platform gateway code (wgbm)")
    default_gateway: str | None = Field(None, min_length=1, max_length=64, description="the gateway code of "
                                        "listed points whose riskwatch gateway is not in gateways")
    points: dict[str, PointCode] = Field(description="riskwatch point id -> platform point code (tnm), or "
                                         "{code, decimals}; points not listed are not uploaded")
    default_decimals: int = Field(2, ge=0, le=6)
    period_s: float = Field(300.0, gt=0, le=300, description="real-time batches this often (the platform wants "
                            "at least every 5 min)")
    alarm_period_s: float = Field(10.0, gt=0, description="points with an alarm the platform was told of are "
                                  "sent this often")
    timeout_s: float = Field(10.0, gt=0, description="per request")
    max_batch: int = Field(500, ge=1, description="records per request at most")
    backfill_s: float = Field(86400.0, ge=0, description="after riskwatch itself was down, the real-time batches "
                              "it missed are built from the stored readings up to this far back")
    event_name: Literal["code", "name"] = Field("code", description="what eventsData's oname carries: the "
                                                "point's platform code, or its Chinese name")
    levels: dict[str, dict[str, int]] = Field(
        default_factory=_default_levels, description="scd per riskwatch rule (high, low, stale, ...) and tier; a "
        "rule or tier not listed is not sent as an event; 0 (back to normal) is implied")
    ok_codes: list[int] = Field([0, 200], description="reply codes meaning the batch was taken")
    retry_codes: list[int] = Field([-1, 500, 503, 1001, 1002, 1003], description="reply codes retried: the "
                                   "platform busy, or our codes or key not (yet) accepted, which is no fault of "
                                   "the data; any other code rejects the batch for good")

    @field_validator("key", "iv", mode="before")
    @classmethod
    def _from_env(cls, value):
        return _secret_from_env(value)

    @field_validator("key", "iv")
    @classmethod
    def _eight_bytes(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode("utf-8")) != 8:
            raise ValueError("must be exactly 8 bytes (DES)")
        return value

    @field_validator("points", mode="before")
    @classmethod
    def _bare_codes(cls, points):
        if isinstance(points, dict):
            return {k: {"code": v} if isinstance(v, str) else v for k, v in points.items()}
        return points

    @field_validator("gateways")
    @classmethod
    def _gateway_codes(cls, gateways: dict[str, str]) -> dict[str, str]:
        bad = [g for g, code in gateways.items() if not code or len(code) > 64 or code != code.strip()]
        if bad:
            raise ValueError(f"gateway {bad[0]!r}: give a non-empty platform gateway code")
        return gateways

    @field_validator("levels")
    @classmethod
    def _level_table(cls, levels: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        for rule, tiers in levels.items():
            for tier, code in tiers.items():
                if tier not in TIER_NAMES:
                    raise ValueError(f"levels.{rule}: {tier!r} is not a tier ({', '.join(TIER_NAMES)})")
                if code == 0:
                    raise ValueError(f"levels.{rule}.{tier}: 0 means back to normal; leave the tier out instead")
        return levels

    @model_validator(mode="after")
    def _fast_not_slower(self) -> "UplinkConfig":
        if self.alarm_period_s > self.period_s:
            raise ValueError(f"alarm_period_s ({self.alarm_period_s:g}) must not exceed period_s ({self.period_s:g})")
        codes = [p.code for p in self.points.values()]
        twice = sorted({c for c in codes if codes.count(c) > 1})
        if twice:
            raise ValueError(f"point code {twice[0]!r} is given to more than one point")
        return self

    def gateway_code(self, gateway: str | None) -> str | None:
        """The platform gateway code of a riskwatch gateway (None: a point without one)."""
        return self.gateways.get(gateway, self.default_gateway) if gateway else self.default_gateway

    def decimals(self, point: str) -> int:
        d = self.points[point].decimals
        return self.default_decimals if d is None else d

    def problems(self, point_gateways: dict[str, str | None]) -> list[str]:
        """What does not fit the plant: `point_gateways` is every point id -> its riskwatch gateway (or None)."""
        out = [f"uplink.points: {p!r} is not a point of the plant" for p in self.points if p not in point_gateways]
        out += [f"uplink.points: {p!r} reports through gateway {point_gateways[p]!r}, which has no code in "
                f"uplink.gateways (and no default_gateway is set)" for p in self.points
                if p in point_gateways and self.gateway_code(point_gateways[p]) is None]
        known = {g for g in point_gateways.values() if g}
        out += [f"uplink.gateways: {g!r} is not a gateway of the plant" for g in self.gateways if g not in known]
        return out
