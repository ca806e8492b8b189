"""电子邮件 (e-mail) over SMTP with smtplib: plain, STARTTLS or SMTPS, optional login, UTF-8 subject and body.

The reply codes of RFC 5321 decide: 421 (the server closes the channel: too many connections or messages) holds
the channel; another 4xx (451 local error, 452 no storage) retries; a 5xx (550 no such mailbox, 535 authentication
failed, 554 rejected) is for good, as is a server that does not offer STARTTLS or AUTH when the configuration asks
for them. A refused connection or a timeout retries. The Message-ID is made from the outbox key, so a resend after
a lost answer carries the same id and the recipient's client can tell it is the same alarm.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from alerting.channels.base import Message, SendResult
from alerting.channels.wire import scrub
from config.channels import Email

log = logging.getLogger("riskwatch.alerting.channels")

MAX_CHARS = 10_000  # no protocol limit on a body; an alarm mail is read on a phone


def message_id(key: str, sender: str) -> str:
    """The same Message-ID for the same outbox key, always a valid msg-id (RFC 5322 dot-atom on the left).

    >>> message_id("rw-42", "alarm@plant.example.cn")
    '<riskwatch.rw-42@plant.example.cn>'
    >>> message_id("rw 42/红", "alarm@plant.example.cn")
    '<riskwatch.kc2a08c6ab4a83884b84e872b1c42b73f@plant.example.cn>'
    """
    domain = sender.rpartition("@")[2].strip(" <>") or "riskwatch.invalid"
    local = key if re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*", key) else \
        "k" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"<riskwatch.{local}@{domain}>"


def masked(address: str) -> str:
    """An address as an operator may read it in a log: z***@plant.cn."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


class EmailChannel:
    kind = "email"

    def __init__(self, cfg: Email):
        self.name = cfg.name
        self.per_minute = cfg.per_minute  # the relay's own limit, when the plant knows it
        self.max_chars = MAX_CHARS
        self._cfg = cfg

    def __repr__(self) -> str:
        return (f"EmailChannel(name={self.name!r}, host={self._cfg.host!r}, port={self._cfg.port}, "
                f"security={self._cfg.security!r}, username={self._cfg.username!r})")

    def message(self, msg: Message) -> EmailMessage:
        m = EmailMessage()  # the default policy writes non-ASCII headers as RFC 2047 encoded words
        m["From"] = self._cfg.sender
        m["To"] = ", ".join(msg.to)
        m["Subject"] = msg.title
        m["Date"] = formatdate(localtime=True)
        m["Message-ID"] = message_id(msg.key, self._cfg.sender)
        m["X-Riskwatch-Tier"] = msg.tier.label
        m.set_content(msg.text, charset="utf-8")
        return m

    def send(self, msg: Message) -> SendResult:
        to = list(dict.fromkeys(a.strip() for a in msg.to if a.strip()))
        if not to:
            return SendResult(False, detail="no e-mail address to send to")
        secrets = self._secrets()
        try:
            with self._connect() as smtp:
                if self._cfg.username:
                    smtp.login(self._cfg.username, self._cfg.password.get_secret_value() if self._cfg.password else "")
                refused = smtp.send_message(self.message(msg), from_addr=self._cfg.sender, to_addrs=to)
        except smtplib.SMTPRecipientsRefused as e:  # every recipient refused
            result = _refused(e.recipients, len(to), secrets)
        except smtplib.SMTPResponseException as e:  # 421 on connect, 535 on login, 5xx / 4xx on MAIL or DATA
            result = _reply(e.smtp_code, e.smtp_error, secrets)
        except smtplib.SMTPNotSupportedError as e:  # STARTTLS or AUTH asked for but not offered
            result = SendResult(False, detail=scrub(f"server does not support it: {e}", *secrets))
        except ssl.SSLCertVerificationError as e:
            result = SendResult(False, detail=scrub(f"certificate not trusted: {e.verify_message}", *secrets))
        except (smtplib.SMTPException, OSError) as e:  # refused, reset, timed out, hung up
            result = SendResult(False, retry=True, detail=scrub(f"no answer: {type(e).__name__}: {e}", *secrets))
        else:
            result = _refused(refused, len(to), secrets, msg.to) if refused else \
                SendResult.delivered("250", f"{len(to)} recipients, {message_id(msg.key, self._cfg.sender)}")
        log.debug("%s %s: %s %s", self.kind, self.name, result.provider_code or "-", result.detail)
        return result

    def _connect(self) -> smtplib.SMTP:
        cfg = self._cfg
        if cfg.security == "ssl":
            return smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_s, context=ssl.create_default_context())
        smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
        if cfg.security == "starttls":
            try:
                smtp.starttls(context=ssl.create_default_context())
            except BaseException:
                smtp.close()
                raise
        return smtp

    def _secrets(self) -> tuple[str, ...]:
        """The password and the forms it takes on the wire (AUTH PLAIN and LOGIN send it base64-encoded)."""
        if not self._cfg.password:
            return ()
        password = self._cfg.password.get_secret_value()
        plain = f"\0{self._cfg.username or ''}\0{password}".encode("utf-8")
        return password, base64.b64encode(password.encode("utf-8")).decode(), base64.b64encode(plain).decode()


def _reply(code: int, text: bytes | str, secrets: tuple[str, ...]) -> SendResult:
    words = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else str(text)
    detail = scrub(f"SMTP {code} {words}", *secrets)
    if code == 421:
        return SendResult(False, retry=True, throttled=True, provider_code="421", detail=detail)
    return SendResult(False, retry=not 500 <= code < 600, provider_code=str(code), detail=detail)


def _refused(refused: dict[str, tuple[int, bytes]], total: int, secrets: tuple[str, ...],
             to: tuple[str, ...] = ()) -> SendResult:
    """Some or all recipients refused at RCPT: retry only if every refusal was temporary. The others (of `to`, as
    the message named them) have it: they are `delivered_to`, so that a retry does not mail them again."""
    outcomes = [_reply(code, text, secrets) for code, text in refused.values()]
    named = "; ".join(f"{masked(a)} {o.detail.replace(a, masked(a))}" for a, o in zip(refused, outcomes))
    return SendResult(False, retry=all(o.retry for o in outcomes), throttled=any(o.throttled for o in outcomes),
                      provider_code=outcomes[0].provider_code,
                      delivered_to=tuple(a for a in to if a.strip() and a.strip() not in refused),
                      detail=scrub(f"{total - len(refused)}/{total} accepted; refused: {named}", *secrets))
