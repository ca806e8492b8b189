"""What every channel is given and what it answers: the contract between the notifier and a provider module.

A channel sends one message and says what happened in terms the notifier can act on: delivered; failed but
worth retrying (network error, 5xx, throttled, with the provider's own wait if it gave one); or failed for good
(bad credentials, bad number, template rejected). Channels block (urllib / smtplib): the notifier runs them on
its own threads, never on the event loop. A channel never logs or returns a secret.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from config.model import Tier


@dataclass(frozen=True)
class Message:
    key: str            # the outbox id: a provider-side idempotency key where the provider has one
    tier: Tier
    title: str          # short, Chinese first: 【红色预警】1号深井铸造
    text: str           # plain text body, Chinese first, already cut to fit the notifier's template
    to: tuple[str, ...] = ()  # addresses in the channel's own terms: phone numbers, e-mail addresses, WeCom
                              # user ids, or mobiles to @mention in a group robot
    params: dict[str, str] = field(default_factory=dict)  # template variables for SMS providers whose texts
                                                          # are pre-approved templates (site, tier, area, ...)


@dataclass(frozen=True)
class SendResult:
    ok: bool
    retry: bool = False               # transient: try again later (possibly through another channel meanwhile)
    throttled: bool = False           # the provider said "too fast": hold this channel, not just this message
    retry_after_s: float | None = None
    provider_code: str = ""           # the provider's own code ("0", "OK", "45009", "LimitExceeded...")
    detail: str = ""                  # one line for the operator; never a secret

    @classmethod
    def delivered(cls, code: str = "", detail: str = "") -> "SendResult":
        return cls(True, provider_code=code, detail=detail)


class Channel(Protocol):
    name: str                 # the configured name ("duty-sms")
    kind: str                 # the module ("aliyun_sms")
    per_minute: int | None    # the provider's rate limit for this sender (a WeCom / DingTalk robot: 20)
    max_chars: int            # longest text the provider accepts (the notifier cuts before sending)

    def send(self, msg: Message) -> SendResult: ...
