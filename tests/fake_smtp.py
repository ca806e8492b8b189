"""A small real SMTP relay on loopback (RFC 5321 without STARTTLS): EHLO/HELO, AUTH PLAIN and LOGIN, MAIL, RCPT
(550 for a mailbox it does not know), DATA, RSET, NOOP, QUIT. It records each message it queued, with the
envelope, and can be told to answer a stage with a given reply (421, 451, 535, ...) or to stay silent.
"""
from __future__ import annotations

import base64
import binascii
import email
import re
import socketserver
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import default

HOST = "relay.plant.example.cn"


@dataclass(frozen=True)
class Mail:
    mail_from: str
    rcpt_to: tuple[str, ...]
    data: bytes
    user: str | None         # who logged in, and how
    mechanism: str | None

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=default)


class FakeSmtp:
    """`users` {name: password}: AUTH offered (and required) when not empty. `mailboxes`: the addresses RCPT takes
    (None: any). `replies` {stage: (code, text)} answers that stage instead of the server: stages "connect", "ehlo",
    "auth", "mail", "rcpt", "data" (the DATA command), "message" (after the final dot); (0, "") stays silent."""

    def __init__(self, users: dict[str, str] | None = None, mailboxes: set[str] | None = None,
                 mechanisms: tuple[str, ...] = ("PLAIN", "LOGIN")):
        self.users = {"alarm@plant.example.cn": "smtp-Pa55/word+Qx7"} if users is None else users
        self.mailboxes = mailboxes
        self.mechanisms = mechanisms
        self.replies: dict[str, tuple[int, str]] = {}
        self.received: list[Mail] = []
        self.commands: list[str] = []   # every command line, AUTH payloads elided
        self.errors: list[BaseException] = []  # the fake's own bugs: raised when it stops
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 10

            def handle(self):
                try:
                    _Session(fake, self.rfile, self.wfile).run()
                except OSError:  # the client hung up or timed out
                    pass
                except Exception as e:
                    fake.errors.append(e)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, exc_type, *exc):
        self._server.shutdown()
        self._server.server_close()
        if self.errors and exc_type is None:
            raise AssertionError(f"the fake failed: {self.errors!r}")

    @property
    def port(self) -> int:
        return self._server.server_address[1]


class _Session:
    def __init__(self, fake: FakeSmtp, rfile, wfile):
        self.fake, self.rfile, self.wfile = fake, rfile, wfile
        self.helo = False
        self.user: str | None = None
        self.mechanism: str | None = None
        self.reset()

    def reset(self) -> None:
        self.mail_from: str | None = None
        self.rcpt_to: list[str] = []

    def reply(self, code: int, *lines: str) -> None:
        lines = lines or ("",)
        out = "".join(f"{code}{'-' if i < len(lines) - 1 else ' '}{line}\r\n" for i, line in enumerate(lines))
        self.wfile.write(out.encode("utf-8"))
        self.wfile.flush()

    def forced(self, stage: str) -> bool | None:
        """None when the stage is not forced; else answers it as told and says if the session is over (421, silence)."""
        if stage not in self.fake.replies:
            return None
        code, text = self.fake.replies[stage]
        if code == 0:
            self.rfile.read()  # silent until the client gives up and hangs up
            return True
        self.reply(code, text)
        return code == 421

    def line(self) -> str | None:
        raw = self.rfile.readline(4096)
        return raw.decode("utf-8", errors="surrogateescape").rstrip("\r\n") if raw else None

    def run(self) -> None:
        if self.forced("connect") is not None:
            return
        self.reply(220, f"{HOST} ESMTP riskwatch-fake")
        while (line := self.line()) is not None:
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            self.fake.commands.append(f"{verb} {arg.split()[0]}" if verb == "AUTH" and arg else line)
            handler = getattr(self, f"do_{verb}", None)
            if handler is None:
                self.reply(502, "5.5.2 Error: command not recognized")
            elif handler(arg.strip()):
                return

    def do_EHLO(self, arg: str) -> bool:
        if not arg:
            self.reply(501, "5.5.4 Syntax: EHLO hostname")
            return False
        if (over := self.forced("ehlo")) is not None:
            return over
        self.helo = True
        self.reset()
        auth = [f"AUTH {' '.join(self.fake.mechanisms)}"] if self.fake.users else []
        self.reply(250, HOST, "PIPELINING", "SIZE 10240000", "8BITMIME", *auth)
        return False

    def do_HELO(self, arg: str) -> bool:
        self.helo = True
        self.reset()
        self.reply(250, HOST)
        return False

    def do_AUTH(self, arg: str) -> bool:
        mechanism, _, initial = arg.partition(" ")
        mechanism = mechanism.upper()
        if not self.helo or self.user or mechanism not in self.fake.mechanisms or not self.fake.users:
            self.reply(503 if mechanism in self.fake.mechanisms else 504, "5.5.1 AUTH not possible now")
            return False
        try:
            if mechanism == "PLAIN":
                _, user, password = self.decoded(initial or self.challenge("")).split("\0")
            else:
                user = self.decoded(initial or self.challenge("VXNlcm5hbWU6"))    # "Username:"
                password = self.decoded(self.challenge("UGFzc3dvcmQ6"))           # "Password:"
        except (ValueError, binascii.Error):
            self.reply(501, "5.5.2 Cannot decode response")
            return False
        if (over := self.forced("auth")) is not None:
            return over
        if self.fake.users.get(user) != password:
            self.reply(535, "5.7.8 Error: authentication failed")
            return False
        self.user, self.mechanism = user, mechanism
        self.reply(235, "2.7.0 Authentication successful")
        return False

    def challenge(self, prompt: str) -> str:
        self.reply(334, prompt)
        answer = self.line() or ""
        if answer == "*":
            raise ValueError("cancelled")
        return answer

    @staticmethod
    def decoded(b64: str) -> str:
        return base64.b64decode(b64, validate=True).decode("utf-8")

    def do_MAIL(self, arg: str) -> bool:
        m = re.fullmatch(r"FROM:\s*<([^>]*)>.*", arg, re.IGNORECASE)
        if not self.helo or self.mail_from is not None:
            self.reply(503, "5.5.1 Error: send EHLO first, one MAIL per transaction")
        elif self.fake.users and not self.user:
            self.reply(530, "5.7.0 Authentication required")
        elif not m:
            self.reply(501, "5.5.4 Syntax: MAIL FROM:<address>")
        elif (over := self.forced("mail")) is not None:
            return over
        else:
            self.mail_from = m.group(1)
            self.reply(250, "2.1.0 Ok")
        return False

    def do_RCPT(self, arg: str) -> bool:
        m = re.fullmatch(r"TO:\s*<([^>]+)>.*", arg, re.IGNORECASE)
        if self.mail_from is None:
            self.reply(503, "5.5.1 Error: need MAIL command")
        elif not m:
            self.reply(501, "5.5.4 Syntax: RCPT TO:<address>")
        elif (over := self.forced("rcpt")) is not None:
            return over
        elif self.fake.mailboxes is not None and m.group(1).lower() not in self.fake.mailboxes:
            self.reply(550, f"5.1.1 <{m.group(1)}>: Recipient address rejected: User unknown in local recipient table")
        else:
            self.rcpt_to.append(m.group(1))
            self.reply(250, "2.1.5 Ok")
        return False

    def do_DATA(self, arg: str) -> bool:
        if not self.rcpt_to:
            self.reply(554 if self.mail_from else 503, "5.5.1 Error: no valid recipients")
            return False
        if (over := self.forced("data")) is not None:
            return over
        self.reply(354, "End data with <CR><LF>.<CR><LF>")
        lines = []
        while (raw := self.rfile.readline(10_000)) not in (b".\r\n", b""):
            if not raw.endswith(b"\r\n") or len(raw) > 1000:
                self.reply(500, "5.5.2 Line too long or without CRLF (RFC 5322 2.1.1)")
                return True
            lines.append(raw[1:] if raw.startswith(b"..") else raw)
        data = b"".join(lines)
        head = data.split(b"\r\n\r\n", 1)[0]
        if not head.isascii():
            self.reply(554, "5.6.7 Header with 8-bit characters; SMTPUTF8 is not offered (encode as RFC 2047)")
        elif missing := [h for h in ("From", "To", "Subject", "Date", "Message-ID")
                         if not re.search(rb"^" + h.encode() + rb":", head, re.MULTILINE | re.IGNORECASE)]:
            self.reply(554, f"5.6.0 Message lacks {', '.join(missing)}")
        elif (over := self.forced("message")) is not None:
            self.reset()
            return over
        else:
            self.fake.received.append(Mail(self.mail_from, tuple(self.rcpt_to), data, self.user, self.mechanism))
            self.reply(250, f"2.0.0 Ok: queued as Q{len(self.fake.received):05d}")
        self.reset()
        return False

    def do_RSET(self, arg: str) -> bool:
        self.reset()
        self.reply(250, "2.0.0 Ok")
        return False

    def do_NOOP(self, arg: str) -> bool:
        self.reply(250, "2.0.0 Ok")
        return False

    def do_QUIT(self, arg: str) -> bool:
        self.reply(221, "2.0.0 Bye")
        return True
