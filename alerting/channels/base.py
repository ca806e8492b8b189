"""What every channel is given and what it answers: the contract between the notifier and a provider module.

A channel sends one message and says what happened in terms the notifier can act on: delivered; failed but
worth retrying (network error, 5xx, throttled, with the provider's own wait if it gave one); or failed for good
(bad credentials, bad number, template rejected). Channels block (urllib / smtplib): the notifier runs them on
its own threads, never on the event loop. A channel never logs or returns a secret.

A message to several recipients can reach some and not others (an SMS provider answers per number). The channel
then says who did get it (`delivered_to`, in the terms of `Message.to`), and the rest of the answer (retry,
throttled, the wait, the code) is about the others only: the notifier marks the message sent to those who got it
and decides again for the others alone, because sending an SMS again to a phone that already has it is a defect.
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
    ok: bool                          # delivered to every recipient
    retry: bool = False               # transient: try again later (possibly through another channel meanwhile)
    throttled: bool = False           # the provider said "too fast": hold this channel, not just this message
    retry_after_s: float | None = None
    provider_code: str = ""           # the provider's own code ("0", "OK", "45009", "LimitExceeded...")
    detail: str = ""                  # one line for the operator; never a secret
    delivered_to: tuple[str, ...] = ()  # of Message.to, as given, those that did get it: on a failure, a partial
                                        # delivery (the fields above are then about the others); on ok, everyone
                                        # (a channel may leave it empty then)

    @classmethod
    def delivered(cls, code: str = "", detail: str = "", to: tuple[str, ...] = ()) -> "SendResult":
        return cls(True, provider_code=code, detail=detail, delivered_to=to)

    def partial(self, to: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        """(delivered, not delivered) among `to` when this failure reached some of them and not all, else None.

        >>> SendResult(False, retry=True, delivered_to=("13900005678",)).partial(("13800001234", "13900005678"))
        (('13900005678',), ('13800001234',))
        >>> SendResult(False, retry=True).partial(("13800001234",)) is None
        True
        """
        got = set(self.delivered_to)
        sent, rest = tuple(r for r in to if r in got), tuple(r for r in to if r not in got)
        return (sent, rest) if not self.ok and sent and rest else None


def masked(number: str) -> str:
    """A phone number as an operator may read it in a log or an error text: 138****1234.

    >>> [masked(n) for n in ("13800001234", "+8613800001234", "008613800001234", "1380000")]
    ['138****1234', '138****1234', '138****1234', '****']
    """
    digits = "".join(c for c in number if c.isdigit())
    national = digits[2:] if len(digits) == 13 and digits.startswith("86") else \
        digits[4:] if len(digits) == 15 and digits.startswith("0086") else digits
    return national[:3] + "****" + national[-4:] if len(national) >= 8 else "****"


class Channel(Protocol):
    name: str                 # the configured name ("duty-sms")
    kind: str                 # the module ("aliyun_sms")
    per_minute: int | None    # the provider's rate limit for this sender (a WeCom / DingTalk robot: 20)
    max_chars: int            # longest text the provider accepts (the notifier cuts before sending)

    def send(self, msg: Message) -> SendResult: ...
