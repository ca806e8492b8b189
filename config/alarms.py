"""Alarm lifecycle settings (`alarms:` in the plant file): shelving, out of service, chattering, closed loop.

Defaults follow ../shared/domain.md section 2 (handling limits) and ISA-18.2 / EEMUA 191 practice (section 7).
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

TierName = Literal["blue", "yellow", "orange", "red"]
STEPS = ("ack", "verify", "handle", "feedback", "close")  # 签收 -> 核查 -> 处置 -> 反馈 -> 销号
STEP_ZH = {"ack": "签收", "verify": "现场核查", "handle": "处置", "feedback": "反馈", "close": "销号"}
STEP_EN = {"ack": "acknowledge", "verify": "verify on site", "handle": "handle", "feedback": "feedback",
           "close": "close out"}

# Minutes from the alarm being raised by which each step must be done. ack and feedback are domain.md's
# proposed limits; verify, handle and close are ours (between them), overridable.
DEFAULT_LIMITS_MIN: dict[str, dict[str, float]] = {
    "ack": {"red": 5, "orange": 5, "yellow": 15, "blue": 30},
    "verify": {"red": 30, "orange": 60, "yellow": 240, "blue": 480},
    "handle": {"red": 60, "orange": 720, "yellow": 1440, "blue": 2880},
    "feedback": {"red": 120, "orange": 1440, "yellow": 4320, "blue": 10080},
    "close": {"red": 1440, "orange": 2880, "yellow": 10080, "blue": 20160},
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatterRule(_Strict):
    raises: int = Field(3, ge=2, description="an alarm raised this many times within window_s is chattering")
    window_s: float = Field(60.0, gt=0, description="ISA-18.2 counts chattering as 3 or more in 60 s")
    hold_s: float = Field(300.0, ge=0, description="a chattering alarm's return to normal is held this long; "
                          "it stays on the list (never hidden, whatever its tier) instead of being raised again")


class HandlingConfig(_Strict):
    tiers: list[TierName] = Field(["orange", "red"], description="alarms that reached these tiers carry the "
                                  "closed loop (ack, verify, handle, feedback, close)")
    limits_min: dict[str, dict[TierName, float]] = Field(
        DEFAULT_LIMITS_MIN, description="per step and tier: minutes from the raise; an overdue step escalates "
        "one level (duty operator -> safety manager -> site head -> regulator)")

    @field_validator("limits_min")
    @classmethod
    def _known_steps(cls, limits: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        unknown = set(limits) - set(STEPS)
        if unknown:
            raise ValueError(f"unknown steps {sorted(unknown)}; steps are {', '.join(STEPS)}")
        return {s: {**DEFAULT_LIMITS_MIN[s], **limits.get(s, {})} for s in STEPS}

    def limit_s(self, step: str, tier: str) -> float:
        return self.limits_min[step][tier] * 60


class AlarmConfig(_Strict):
    shelve_max_h: float = Field(8.0, gt=0, description="longest an operator may shelve an alarm (one shift)")
    shelve_tiers: list[TierName] = Field(["blue", "yellow", "orange"], description="tiers an operator may "
                                         "shelve; a shelved alarm that rises above its shelved tier returns at once")
    out_of_service_max_h: float = Field(168.0, gt=0, description="longest an engineer may take a point out of "
                                        "service for maintenance")
    chatter: ChatterRule = ChatterRule()
    handling: HandlingConfig = HandlingConfig()
