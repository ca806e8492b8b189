"""Forwarding accepted readings to InfluxDB (2.x, 3.x, or anything speaking its v2 write API): the `influx:` block.

Every accepted reading is still committed to the embedded SQLite store first; this block adds a copy in InfluxDB,
sent through a local spool so that an unreachable or slow server never slows the pipeline and loses nothing.
Each reading becomes one line `{measurement},{tags} {field}={value} {ts_ms}`. Write the token as `env:NAME`.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

TagName = Literal["point", "site", "area", "sector", "unit", "kind", "gateway"]
PLACEHOLDER = re.compile(r"\{(\w+)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InfluxConfig(_Strict):
    url: str = Field(pattern=r"^https?://[^\s/]+", description="e.g. http://influx.plant.lan:8086 (3.x: :8181)")
    token: SecretStr = Field(description="API token with write access to the bucket; 'env:NAME' reads it from "
                             "the environment")
    org: str = Field("", description="organisation name or id (InfluxDB 2.x); 3.x ignores it")
    bucket: str = Field(min_length=1, description="the bucket (InfluxDB 2.x) or the database (3.x)")
    measurement: str = Field("riskwatch", min_length=1, description="may name tags: 'rw_{sector}' gives one "
                             "measurement per sector")
    field: str = Field("value", min_length=1, pattern=r"^[^\s,=\"\\]+$", description="the field holding the value")
    tags: list[TagName] = Field(["point", "site", "area", "sector", "unit"],
                                description="tags on every line; the point id is always the series key")
    batch_size: int = Field(5000, ge=1, le=100_000, description="lines per HTTP request at most")
    flush_interval_s: float = Field(1.0, gt=0, le=300, description="a partial batch waits at most this long")
    timeout_s: float = Field(10.0, gt=0, description="per request; a slower answer counts as a failure")
    max_backoff_s: float = Field(60.0, gt=0, description="longest wait between retries of a failing server")
    spool_path: str | None = Field(None, description="the local spool (SQLite); default: beside the store, "
                                   "'<store path>.influx-spool'")
    spool_max_rows: int = Field(2_000_000, ge=1, description="readings the spool holds (~50 bytes each); beyond, "
                                "per-point gaps are recorded and back-filled from the store")
    near_full_fraction: float = Field(0.8, gt=0, le=1, description="the spool is reported near full from here")
    gzip: bool = True
    verify_ssl: bool = True

    @field_validator("tags")
    @classmethod
    def _point_is_a_tag(cls, tags: list[str]) -> list[str]:
        if "point" not in tags:  # without it every point would overwrite every other at the same instant
            raise ValueError("tags must include 'point'")
        if len(set(tags)) != len(tags):
            raise ValueError("a tag is listed twice")
        return tags

    @field_validator("measurement")
    @classmethod
    def _known_placeholders(cls, measurement: str) -> str:
        unknown = set(PLACEHOLDER.findall(measurement)) - set(TagName.__args__)
        if unknown:
            raise ValueError(f"measurement names unknown placeholders {sorted(unknown)}; "
                             f"known: {', '.join(TagName.__args__)}")
        return measurement

    def spool_file(self, store_path: str) -> Path:
        return Path(self.spool_path) if self.spool_path else Path(f"{store_path}.influx-spool")
