"""Hebei dust platform, interface V1.1 (domain.md section 5): the envelope, the records and the replies.

    POST {url}{readings_path | events_path}
    Content-Type: application/json; charset=utf-8

    {"qybm": "130100000001", "wgbm": "GW01", "data": HEX(BASE64(DES-CBC(json)))}

    json, readings: {"rtsData": [{"tnm": "T001", "ts": "2024-11-23 08:00:00", "val": "27.20"}, ...]}
    json, events:   {"eventsData": [{"ts": "2024-11-23 08:01:40", "oname": "T001", "avx": "83.2", "scd": "4",
                                     "threshold": "80.0", "content": "灰斗温度 红色报警 83.2℃ ≥ 80.0℃"}, ...]}

What the interface text leaves open is decided in config/uplink.py (its docstring lists each assumption, every
one a setting): DES-CBC with PKCS#5 padding and IV = key unless set, standard Base64, upper-case hex, Beijing
time, values and codes as strings with the point's decimals, `scd` from the `levels` table (0 = back to normal).

Replies, as we assume them: `{"code": 0, "msg": "成功"}` (or 200) is taken. A code in `retry_codes` (platform busy
500/503/-1; and the codes we assume for "unknown enterprise" 1001, "unknown gateway" 1002 and "cannot decrypt"
1003, which say our setup is not accepted yet, not that the data is bad) is retried. Any other code (e.g. 1004
"data format error") rejects that batch for good. No answer, HTTP 408/429/5xx, or an answer without a readable
code (a proxy's page, a wrong path) is retried too: the data is not at fault, and at-least-once must not drop it.

DES: single DES is what the platform asks for; `cryptography` offers it as TripleDES keyed K|K|K (encrypt-
decrypt-encrypt with one key is DES), in its `decrepit` module for ciphers kept for compatibility only.
"""
from __future__ import annotations

import base64

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from alerting.channels.wire import Reply, json_body, scrub
from alerting.uplink.base import AlarmChange, Outcome, Request, Sample, local_time, utc_offset
from config.model import Tier
from config.uplink import UplinkConfig

INNER = {"readings": "rtsData", "events": "eventsData"}
RETRY_HTTP = {408, 429}


def des_cbc_encrypt(key: bytes, iv: bytes, plain: bytes) -> bytes:
    """DES-CBC with PKCS#5 padding: what Java's "DES/CBC/PKCS5Padding" produces.

    >>> des_cbc_encrypt(bytes.fromhex("0123456789abcdef"), bytes.fromhex("1234567890abcdef"),
    ...                 b"Now is the time for all ").hex()[:48]  # FIPS 81, CBC example
    'e5c7cdde872bf27c43e934008c389c0f683788499a7c05f6'
    """
    if len(key) != 8 or len(iv) != 8:
        raise ValueError("DES needs an 8-byte key and an 8-byte IV")
    padder = padding.PKCS7(64).padder()
    padded = padder.update(plain) + padder.finalize()
    enc = Cipher(TripleDES(key * 3), modes.CBC(iv)).encryptor()
    return enc.update(padded) + enc.finalize()


def des_cbc_decrypt(key: bytes, iv: bytes, sealed: bytes) -> bytes:
    dec = Cipher(TripleDES(key * 3), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(64).unpadder()
    return unpadder.update(dec.update(sealed) + dec.finalize()) + unpadder.finalize()


class HebeiFormat:
    name = "hebei"

    def __init__(self, cfg: UplinkConfig):
        self.cfg = cfg
        self.tz = utc_offset(cfg.timezone)
        self._key = cfg.key.get_secret_value().encode("utf-8")
        self._iv = cfg.iv.get_secret_value().encode("utf-8") if cfg.iv else self._key
        self._secrets = tuple({s for k in (self._key, self._iv) for s in (k.decode("utf-8"), k.hex(), k.hex().upper())})

    def __repr__(self) -> str:
        return f"HebeiFormat(url={self.cfg.url!r}, qybm={self.cfg.enterprise_code!r})"

    # --- records ------------------------------------------------------------------------------------------
    def level(self, rule: str, tier: Tier) -> int:
        return 0 if tier == Tier.NORMAL else self.cfg.levels.get(rule, {}).get(tier.label, 0)

    def reading(self, s: Sample) -> dict:
        return {"tnm": s.code, "ts": local_time(s.ts, self.tz), "val": f"{s.value:.{s.decimals}f}"}

    def alarm(self, a: AlarmChange) -> dict:
        avx = "" if a.value is None else f"{a.value:.{a.decimals}f}"
        threshold = "" if a.limit is None else f"{a.limit:.{a.decimals}f}"
        return {"ts": local_time(a.ts, self.tz), "oname": a.code if self.cfg.event_name == "code" else a.name,
                "avx": avx, "scd": str(a.level), "threshold": threshold, "content": content(a, avx, threshold)}

    # --- the wire -----------------------------------------------------------------------------------------
    def seal(self, plain: bytes) -> str:
        """HEX(BASE64(DES-CBC(plain)))."""
        text = base64.b64encode(des_cbc_encrypt(self._key, self._iv, plain)).hex()
        return text.upper() if self.cfg.hex_upper else text

    def unseal(self, data: str) -> bytes:
        """The inverse, for diagnosing a platform's complaint (the tests decrypt with their own DES)."""
        return des_cbc_decrypt(self._key, self._iv, base64.b64decode(bytes.fromhex(data), validate=True))

    def request(self, kind: str, gateway: str, records: list[dict]) -> Request:
        inner = json_body({INNER[kind]: records})
        body = json_body({"qybm": self.cfg.enterprise_code, "wgbm": gateway, "data": self.seal(inner)})
        path = self.cfg.readings_path if kind == "readings" else self.cfg.events_path
        return Request(self.cfg.url.rstrip("/") + path, body, {"Content-Type": "application/json; charset=utf-8"})

    def outcome(self, reply: Reply) -> Outcome:
        if reply.status <= 0:
            why = "no answer" if reply.status == 0 else "not sent"
            return Outcome(False, retry=True, detail=scrub(f"{why}: {reply.error}", *self._secrets))
        status = str(reply.status)
        if reply.status >= 500 or reply.status in RETRY_HTTP:
            return Outcome(False, retry=True, code=status, detail=self._detail(reply))
        answer = reply.json()
        code = _int(answer.get("code")) if answer else None
        if code is None:  # not the platform speaking (a proxy, a wrong path): our setup, not the data
            return Outcome(False, retry=True, code=status, detail=self._detail(reply))
        detail = scrub(f"HTTP {status} code {code} {answer.get('msg', '')}", *self._secrets)
        if code in self.cfg.ok_codes and 200 <= reply.status < 300:
            return Outcome(True, code=str(code), detail=detail)
        return Outcome(False, retry=code in self.cfg.retry_codes or code in self.cfg.ok_codes, code=str(code),
                       detail=detail)

    def _detail(self, reply: Reply) -> str:
        return scrub(f"HTTP {reply.status} {reply.body[:300].decode('utf-8', 'replace')}", *self._secrets)


def content(a: AlarmChange, avx: str, threshold: str) -> str:
    """The operator's line on the platform, Chinese: 灰斗温度 红色报警 83.2℃ ≥ 80.0℃ / 灰斗温度 报警解除 68.0℃."""
    if a.level == 0:
        return f"{a.name} 报警解除" + (f" {avx}{a.unit}" if avx else "")
    if a.rule in ("high", "low") and avx and threshold:
        return f"{a.name} {a.tier.zh}报警 {avx}{a.unit} {'≥' if a.rule == 'high' else '≤'} {threshold}{a.unit}"
    return f"{a.name} {a.tier.zh}报警" + (f"：{a.reason}" if a.reason else "")


def _int(v) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return int(v)
    return None
