"""HTTP and websocket API, and the wall display page. Every route but /healthz and the page needs a token."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

from fastapi import Depends, FastAPI, HTTPException, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from alerting.book import AckError, AlertBook
from api.auth import current_user, find_user, require
from api.hub import Hub
from api.lifecycle import lifecycle_router
from alerting.quality import DEFAULT_SHIFTS, Shift
from api.quality import quality_router
from api.models import (AckIn, AlertOut, AreaOut, EventOut, Health, HistoryOut, Me, PlantOut, PointInfo, PointOut,
                        RejectedOut, SubjectOut)
from config.model import Plant, Role, User
from ingest.store import ReadingStore

log = logging.getLogger("riskwatch.api")
STATIC = Path(__file__).parent / "static"
WS_AUTH_TIMEOUT_S = 10


REPLAY_LIMIT = 10_000  # events a reconnecting client may ask back; further behind, it gets a fresh snapshot


@dataclass
class ApiContext:
    plant: Plant
    store: ReadingStore
    book: AlertBook
    hub: Hub
    health: Callable[[], Health]
    write: Callable[..., Awaitable]  # runs a database write in the pipeline's one writer, in its order


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(title="riskwatch", version="0.1.0",
                  description="Real-time risk monitoring and early warning. Authorise with a bearer token.")
    app.state.users = ctx.plant.users
    plant = ctx.plant
    points = plant.point_map()

    def point_info(p) -> dict:
        return PointInfo.model_validate(p, from_attributes=True).model_dump()

    app.include_router(lifecycle_router(ctx))  # shelve, reset, out of service, closed-loop steps
    crews = tuple(Shift(s.id, s.start, s.end) for s in plant.notify.shifts) or DEFAULT_SHIFTS
    app.include_router(quality_router(lambda: ctx.book, crews, plant.notify.timezone))  # the alarm-system quality report: /api/quality, /quality

    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz() -> Health:
        return ctx.health()

    @app.get("/api/me", response_model=Me)
    def me(user: User = Depends(current_user)) -> Me:
        return Me(name=user.name, role=user.role.value)

    @app.get("/api/plant", response_model=PlantOut)
    def plant_info(user: User = Depends(current_user)) -> PlantOut:
        return PlantOut(site=plant.site, name=plant.name, name_en=plant.name_en,
                        areas=[AreaOut(id=a.id, name=a.name, name_en=a.name_en, sector=a.sector.value)
                               for a in plant.areas],
                        points=[point_info(p) for p in plant.points], subjects=subjects())

    def subjects() -> list[SubjectOut]:
        out = [SubjectOut(id=f"gateway:{g}", name=f"网关 {g}", name_en=f"Gateway {g}", area=pts[0].area)
               for g, pts in plant.gateways().items()]
        out += [SubjectOut(id=f"rule:{r.id}", name=r.name, name_en=r.name_en or r.id, area=r.area)
                for r in getattr(plant, "rules", [])]
        return out

    @app.get("/api/points", response_model=list[PointOut])
    def point_list(user: User = Depends(current_user)) -> list[PointOut]:
        latest = ctx.store.latest()
        out = []
        for p in plant.points:
            ts_value = latest.get(p.id)
            out.append(PointOut(**point_info(p),
                                latest={"ts": ts_value[0] / 1000, "value": ts_value[1]} if ts_value else None))
        return out

    @app.get("/api/points/{point_id}/history", response_model=HistoryOut)
    def history(point_id: str, start: float | None = Query(None, description="epoch seconds; default end - 1 h"),
                end: float | None = Query(None, description="epoch seconds; default now"),
                max_points: int = Query(2000, ge=10, le=20000),
                user: User = Depends(current_user)) -> HistoryOut:
        if point_id not in points:
            raise HTTPException(404, f"unknown point {point_id!r}")
        end = time.time() if end is None else end
        start = end - 3600 if start is None else start
        if start >= end:
            raise HTTPException(422, "start must be before end")
        h = ctx.store.history(point_id, int(start * 1000), int(end * 1000), max_points)
        return HistoryOut(point=point_id, start=start, end=end, bucket_s=h.bucket_s, rows=[list(r) for r in h.rows])

    @app.get("/api/alerts/active", response_model=list[AlertOut])
    def active(user: User = Depends(current_user)) -> list[dict]:
        return [a.to_json() for a in ctx.book.listed()]

    @app.get("/api/alerts/events", response_model=list[EventOut])
    def events(since: int = Query(0, ge=0), limit: int = Query(500, ge=1, le=10000),
               user: User = Depends(current_user)) -> list[dict]:
        return [e.to_json() for e in ctx.book.events_since(since, limit)]

    @app.post("/api/alerts/{alert_id}/ack", response_model=AlertOut)
    async def ack(alert_id: int, body: AckIn, user: User = Depends(require(Role.OPERATOR))) -> dict:
        try:
            ev = await ctx.write(ctx.book.ack, alert_id, user.name, time.time(), body.note)
        except KeyError:
            raise HTTPException(404, f"no alert {alert_id}") from None
        except AckError as e:
            raise HTTPException(409, str(e)) from None
        ctx.hub.alert_events([ev])
        log.info("alert %d acknowledged by %s", alert_id, user.name)
        return ev.alert.to_json()

    @app.get("/api/rejected", response_model=list[RejectedOut])
    def rejected(limit: int = Query(100, ge=1, le=5000), reason: str | None = None,
                 user: User = Depends(require(Role.ENGINEER))) -> list[dict]:
        return ctx.store.rejected(limit, reason)

    @app.websocket("/ws")
    async def ws(sock: WebSocket) -> None:
        await sock.accept()
        try:
            first = json.loads(await asyncio.wait_for(sock.receive_text(), WS_AUTH_TIMEOUT_S))
            user = find_user(plant.users, first.get("token") if isinstance(first, dict) else None)
            since = first.get("since") if isinstance(first, dict) else None
        except (asyncio.TimeoutError, ValueError, WebSocketDisconnect):
            user, since = None, None
        if user is None:
            await sock.close(code=4401, reason="missing or unknown token")
            return
        await _serve_socket(sock, ctx, user, since if isinstance(since, int) else None)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


async def _serve_socket(sock: WebSocket, ctx: ApiContext, user: User, since: int | None) -> None:
    client = ctx.hub.join()  # join first: nothing published while we read the log can fall between the two
    try:
        last = await asyncio.to_thread(ctx.book.last_seq)
        if since is not None and not (last - REPLAY_LIMIT <= since <= last):
            since = None  # from another database (reset, restore) or too far behind: start afresh
        sent = last if since is None else since
        await sock.send_json({"type": "hello", "seq": sent, "user": {"name": user.name, "role": user.role.value}})
        if since is not None:
            sent = await _replay(sock, ctx, sent, last)
        alerts, sups, latest = await asyncio.to_thread(
            lambda: (ctx.book.listed(), ctx.book.open_suppressions(), ctx.store.latest()))
        await sock.send_json({"type": "snapshot", "seq": sent, "alerts": [a.to_json() for a in alerts],
                              "suppressions": [s.to_json() for s in sups],
                              "values": {p: {"ts": t / 1000, "value": v} for p, (t, v) in latest.items()}})
        receiver = asyncio.create_task(_drain_incoming(sock))
        try:
            while not receiver.done():
                msg = await client.queue.get()
                if client.dropped:
                    await sock.close(code=4408, reason="too slow; reconnect with your last seq")
                    return
                if msg["type"] == "alert_event":
                    if msg["seq"] <= sent:
                        continue  # already sent from the log
                    if msg["seq"] > sent + 1:  # pushed out of order: send what lies between from the log
                        sent = await _replay(sock, ctx, sent, msg["seq"] - 1)
                    sent = msg["seq"]
                await sock.send_json(msg)
        finally:
            receiver.cancel()
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        ctx.hub.leave(client)


async def _replay(sock: WebSocket, ctx: ApiContext, after: int, upto: int) -> int:
    """Sends the logged events after `after` up to `upto`; returns the last seq sent."""
    while after < upto:
        events = await asyncio.to_thread(ctx.book.events_since, after, min(1000, upto - after))
        if not events:
            break
        for ev in events:
            await sock.send_json({"type": "alert_event", "seq": ev.seq, "event": ev.to_json()})
            after = ev.seq
    return after


async def _drain_incoming(sock: WebSocket) -> None:
    """Notices a client going away (and ignores anything it says after the first message)."""
    try:
        while True:
            await sock.receive_text()
    except (WebSocketDisconnect, RuntimeError):
        return
