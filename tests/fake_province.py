"""A loopback stand-in for the Hebei dust platform (interface V1.1): a real HTTP server on 127.0.0.1 that opens
the envelope with its own DES (pure Python, below: independent of the `cryptography` package the adapter uses, so
a bug in one cannot cancel itself in the other), checks every field the way the platform would, keeps what it
took, and answers the way we assume it does (config/uplink.py): {"code": 0, "msg": "成功"}, else 1001 unknown
enterprise, 1002 unknown gateway, 1003 cannot decrypt, 1004 bad data, 500 busy.

It is idempotent by timestamp, as the platform is: a reading for a (gateway, point, ts) it already holds is
counted as a repeat, not stored twice; an event for an (oname, ts, scd) likewise. A test can make it go `down()`
(HTTP 503 from its front), `down("refused")` (nothing listens), `busy()`, `lose_replies(n)` (it takes the next n
requests but the connection drops before the answer), `answer_next(code, msg)`, or refuse every request with a
record at a given ts (`refuse_ts`).
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler

from loopback import LoopbackHTTP

# --- DES (FIPS 46-3), table-driven, from the standard's tables --------------------------------------------------
_IP = [58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6,
       64, 56, 48, 40, 32, 24, 16, 8, 57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
       61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7]
_FP = [_IP.index(i) + 1 for i in range(1, 65)]
_P = [16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9,
      19, 13, 30, 6, 22, 11, 4, 25]
_PC1 = [57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
        63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4]
_PC2 = [14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
        41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32]
_SHIFTS = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1]
_S = [
    [14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, 0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
     4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, 15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13],
    [15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, 3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
     0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, 13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9],
    [10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, 13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
     13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, 1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12],
    [7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, 13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
     10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, 3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14],
    [2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, 14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
     4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, 11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3],
    [12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, 10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
     9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, 4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13],
    [4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, 13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
     1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, 6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12],
    [13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, 1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
     7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, 2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11],
]


def _permute(value: int, table: list[int], width: int) -> int:
    out = 0
    for pos in table:
        out = (out << 1) | ((value >> (width - pos)) & 1)
    return out


# S-box i followed by P, for each 6-bit input: one lookup per S-box per round
_SP = [[_permute(box[(((x >> 4) & 2) | (x & 1)) * 16 + ((x >> 1) & 15)] << (28 - 4 * i), _P, 32)
        for x in range(64)] for i, box in enumerate(_S)]


def _bytewise(table: list[int]) -> list[list[int]]:
    """A 64-bit permutation as 8 lookups, one per input byte."""
    return [[_permute(b << (56 - 8 * i), table, 64) for b in range(256)] for i in range(8)]


_IP8, _FP8 = _bytewise(_IP), _bytewise(_FP)


def _permute8(value: int, tables: list[list[int]]) -> int:
    out = 0
    for i, t in enumerate(tables):
        out |= t[(value >> (56 - 8 * i)) & 255]
    return out


def _subkeys(key: bytes) -> list[list[int]]:
    cd = _permute(int.from_bytes(key, "big"), _PC1, 64)
    c, d = cd >> 28, cd & 0xFFFFFFF
    keys = []
    for s in _SHIFTS:
        c = ((c << s) | (c >> (28 - s))) & 0xFFFFFFF
        d = ((d << s) | (d >> (28 - s))) & 0xFFFFFFF
        k = _permute((c << 28) | d, _PC2, 56)
        keys.append([(k >> (42 - 6 * i)) & 63 for i in range(8)])
    return keys


def des_block(block: int, subkeys: list[list[int]]) -> int:
    x = _permute8(block, _IP8)
    left, right = x >> 32, x & 0xFFFFFFFF
    for k in subkeys:
        wide = ((right & 1) << 33) | (right << 1) | (right >> 31)  # E: bit 32, bits 1..32, bit 1
        f = 0
        for i in range(8):
            f |= _SP[i][((wide >> (28 - 4 * i)) & 63) ^ k[i]]
        left, right = right, left ^ f
    return _permute8((right << 32) | left, _FP8)


def des_cbc(key: bytes, iv: bytes, data: bytes, decrypt: bool) -> bytes:
    """DES-CBC without padding (the caller pads / unpads)."""
    keys = _subkeys(key)
    if decrypt:
        keys = keys[::-1]
    prev, out = int.from_bytes(iv, "big"), bytearray()
    for k in range(0, len(data), 8):
        block = int.from_bytes(data[k:k + 8], "big")
        if decrypt:
            out += (des_block(block, keys) ^ prev).to_bytes(8, "big")
            prev = block
        else:
            prev = des_block(block ^ prev, keys)
            out += prev.to_bytes(8, "big")
    return bytes(out)


def pkcs5_unpad(data: bytes) -> bytes:
    n = data[-1] if data else 0
    if not 1 <= n <= 8 or data[-n:] != bytes([n]) * n:
        raise ValueError("bad padding")
    return data[:-n]


def pkcs5_pad(data: bytes) -> bytes:
    n = 8 - len(data) % 8
    return data + bytes([n]) * n


# --- the platform ----------------------------------------------------------------------------------------------
TS = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
SCD = {"0", "1", "2", "3", "4"}


class Rejection(Exception):
    def __init__(self, code: int, msg: str):
        super().__init__(msg)
        self.code, self.msg = code, msg


@dataclass
class Taken:
    """One request the platform took."""

    kind: str               # rtsData | eventsData
    wgbm: str
    records: list[dict]
    plain: str              # the decrypted JSON, as it came


@dataclass
class FakeProvince(LoopbackHTTP):
    qybm: str
    key: bytes
    iv: bytes
    points: dict[str, str]  # tnm -> the wgbm it is registered under
    base_path: str = "/api/dust"
    hex_upper: bool = True
    taken: list[Taken] = field(default_factory=list)
    readings: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (wgbm, tnm, ts) -> val
    events: list[tuple[str, dict]] = field(default_factory=list)             # (wgbm, record), first copy of each
    repeats: int = 0          # records it already held (a replay): not stored again
    requests: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)             # (code, msg) of each rejection
    refuse_ts: set[str] = field(default_factory=set)  # a request with a record at one of these ts is refused
    mode: str = "up"
    port: int = 0

    def __post_init__(self):
        self._lock = threading.Lock()
        self._scripted: list[tuple[int, str]] = []
        self._lose = 0
        self._event_keys: set[tuple] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_path}"

    # --- what a test can do ------------------------------------------------------------------------------------
    def down(self, how: str = "503") -> None:
        if how == "refused":
            self._close()
        self.mode = "down" if how == "503" else how

    def up(self) -> None:
        if self._server is None:
            self._listen()
        self.mode = "up"

    def busy(self) -> None:
        self.up()
        self.mode = "busy"

    def lose_replies(self, n: int) -> None:
        self._lose = n

    def answer_next(self, code: int, msg: str) -> None:
        self._scripted.append((code, msg))

    def values(self, tnm: str) -> list[tuple[str, str]]:
        """(ts, val) the platform holds for one point, in time order."""
        return sorted((ts, v) for (_, t, ts), v in self.readings.items() if t == tnm)

    # --- the platform's side -------------------------------------------------------------------------------------
    def handle(self, path: str, body: bytes) -> tuple[int, dict]:
        kind = {f"{self.base_path}/rtsData": "rtsData", f"{self.base_path}/eventsData": "eventsData"}.get(path)
        if kind is None:
            return 404, {"code": 404, "msg": "not found"}
        try:
            envelope = json.loads(body.decode("utf-8"))
            if not isinstance(envelope, dict) or set(envelope) != {"qybm", "wgbm", "data"}:
                raise Rejection(1004, "数据格式错误: envelope must have exactly qybm, wgbm, data")
            if not all(isinstance(v, str) for v in envelope.values()):
                raise Rejection(1004, "数据格式错误: envelope fields are strings")
            if not re.fullmatch(r"\d{12}", envelope["qybm"]) or envelope["qybm"] != self.qybm:
                raise Rejection(1001, "企业编码不存在")
            wgbm = envelope["wgbm"]
            if wgbm not in set(self.points.values()):
                raise Rejection(1002, "网关编码不存在")
            records, plain = self._open(envelope["data"], kind)
            check = self._check_reading if kind == "rtsData" else self._check_event
            for r in records:
                check(r, wgbm)
                if r["ts"] in self.refuse_ts:
                    raise Rejection(1004, f"数据格式错误: ts {r['ts']}")
        except Rejection as e:
            self.refused.append((e.code, e.msg))
            return 200, {"code": e.code, "msg": e.msg}
        except (UnicodeDecodeError, ValueError):
            self.refused.append((1004, "not JSON"))
            return 200, {"code": 1004, "msg": "数据格式错误: not JSON"}
        self.taken.append(Taken(kind, wgbm, records, plain))
        for r in records:
            if kind == "rtsData":
                k = (wgbm, r["tnm"], r["ts"])
                if k in self.readings:
                    self.repeats += 1
                self.readings.setdefault(k, r["val"])
            else:
                k = (r["oname"], r["ts"], r["scd"])
                if k in self._event_keys:
                    self.repeats += 1
                else:
                    self._event_keys.add(k)
                    self.events.append((wgbm, r))
        return 200, {"code": 0, "msg": "成功"}

    def _open(self, data: str, kind: str) -> tuple[list[dict], str]:
        if (data.upper() if self.hex_upper else data.lower()) != data or len(data) % 2:
            raise Rejection(1003, "数据解密失败: hex case")
        try:
            sealed = base64.b64decode(bytes.fromhex(data), validate=True)
            if not sealed or len(sealed) % 8:
                raise ValueError("not whole DES blocks")
            plain = pkcs5_unpad(des_cbc(self.key, self.iv, sealed, decrypt=True)).decode("utf-8")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise Rejection(1003, "数据解密失败") from None
        inner = json.loads(plain)
        if not isinstance(inner, dict) or set(inner) != {kind} or not isinstance(inner[kind], list) or not inner[kind]:
            raise Rejection(1004, f"数据格式错误: expected {{\"{kind}\": [...]}}")
        if not all(isinstance(r, dict) for r in inner[kind]):
            raise Rejection(1004, "数据格式错误: records are objects")
        return inner[kind], plain

    def _check_reading(self, r: dict, wgbm: str) -> None:
        if set(r) != {"tnm", "ts", "val"} or not all(isinstance(v, str) for v in r.values()):
            raise Rejection(1004, f"数据格式错误: rtsData record {r}")
        self._check_point(r["tnm"], wgbm)
        self._check_ts(r["ts"])
        if not NUMBER.match(r["val"]):
            raise Rejection(1004, f"数据格式错误: val {r['val']!r}")

    def _check_event(self, r: dict, wgbm: str) -> None:
        if set(r) != {"ts", "oname", "avx", "scd", "threshold", "content"} or \
                not all(isinstance(v, str) for v in r.values()):
            raise Rejection(1004, f"数据格式错误: eventsData record {r}")
        self._check_point(r["oname"], wgbm)
        self._check_ts(r["ts"])
        if r["scd"] not in SCD:
            raise Rejection(1004, f"数据格式错误: scd {r['scd']!r}")
        for name in ("avx", "threshold"):
            if not NUMBER.match(r[name]):
                raise Rejection(1004, f"数据格式错误: {name} {r[name]!r}")
        if not r["content"].strip():
            raise Rejection(1004, "数据格式错误: content empty")

    def _check_point(self, tnm: str, wgbm: str) -> None:
        if self.points.get(tnm) != wgbm:
            raise Rejection(1004, f"数据格式错误: point {tnm!r} is not registered under gateway {wgbm!r}")

    @staticmethod
    def _check_ts(ts: str) -> None:
        if not TS.match(ts):
            raise Rejection(1004, f"数据格式错误: ts {ts!r}")
        datetime.strptime(ts, "%Y-%m-%d %H:%M:%S")  # a real date: ValueError otherwise

    # --- HTTP ------------------------------------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        with self._lock:
            self.requests += 1
            if self.mode == "down":
                return self._reply(h, 503, b"<html><body>503 Service Unavailable</body></html>", "text/html")
            if self.mode == "busy":
                status, answer = 200, {"code": 500, "msg": "系统繁忙"}
            elif self._scripted:
                code, msg = self._scripted.pop(0)
                status, answer = 200, {"code": code, "msg": msg}
            else:
                status, answer = self.handle(h.path, body)
            if self._lose and answer.get("code") == 0:
                self._lose -= 1
                h.close_connection = True
                h.connection.shutdown(2)  # taken, but the answer never arrives
                return None
        self._reply(h, status, json.dumps(answer, ensure_ascii=False).encode("utf-8"), "application/json")

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, payload: bytes, ctype: str) -> None:
        h.send_response(status)
        h.send_header("Content-Type", f"{ctype}; charset=UTF-8")
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)
