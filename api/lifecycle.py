"""Alarm lifecycle routes: shelve, unshelve, reset, out of service, and the closed loop's steps.

Who may do what: an operator shelves, unshelves, resets and records handling steps; closing a warning out and
taking a point out of service need an engineer. Every call is written through the pipeline's one writer and
lands in the alert book's event log (who, when, why); the websocket pushes it to every wall at once.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, HTTPException, Query

from alerting.book import AckError, StepError
from api.auth import current_user, require
from api.models import AckIn, AlertOut, LoopOut, OutOfServiceIn, ShelveIn, StepIn, SuppressionOut
from config.model import Role, User

if TYPE_CHECKING:
    from api.app import ApiContext

log = logging.getLogger("riskwatch.api")


def lifecycle_router(ctx: "ApiContext") -> APIRouter:
    r = APIRouter(tags=["lifecycle"])
    book = ctx.book

    async def write(fn, *args):
        try:
            out = await ctx.write(fn, *args)
        except KeyError as e:
            raise HTTPException(404, f"no such alert or point: {e.args[0]}") from None
        except (AckError, StepError) as e:
            raise HTTPException(409, str(e)) from None
        events = out if isinstance(out, list) else [out]
        ctx.hub.alert_events(events)
        ctx.hub.suppressions([s.to_json() for s in book.open_suppressions()])
        return out

    @r.post("/api/alerts/{alert_id}/shelve", response_model=AlertOut)
    async def shelve(alert_id: int, body: ShelveIn, user: User = Depends(require(Role.OPERATOR))) -> dict:
        ev = await write(book.shelve, alert_id, user.name, time.time(), body.reason, body.minutes)
        log.info("alert %d shelved by %s for %g min", alert_id, user.name, body.minutes)
        return ev.alert.to_json()

    @r.post("/api/alerts/{alert_id}/unshelve", response_model=AlertOut)
    async def unshelve(alert_id: int, body: AckIn, user: User = Depends(require(Role.OPERATOR))) -> dict:
        ev = await write(book.unshelve, alert_id, user.name, time.time(), body.note)
        log.info("alert %d unshelved by %s", alert_id, user.name)
        return ev.alert.to_json()

    @r.post("/api/alerts/{alert_id}/reset", response_model=AlertOut)
    async def reset(alert_id: int, body: AckIn, user: User = Depends(require(Role.OPERATOR))) -> dict:
        ev = await write(book.reset, alert_id, user.name, time.time(), body.note)
        log.info("latched alert %d reset by %s", alert_id, user.name)
        return ev.alert.to_json()

    @r.post("/api/alerts/{alert_id}/steps", response_model=LoopOut)
    async def step(alert_id: int, body: StepIn, user: User = Depends(require(Role.OPERATOR))) -> dict:
        if body.step == "close" and user.role.rank < Role.ENGINEER.rank:
            raise HTTPException(403, "closing a warning out (销号) needs the engineer role")
        await write(book.step, alert_id, body.step, user.name, time.time(), body.note, body.photo)
        log.info("alert %d: step %s by %s", alert_id, body.step, user.name)
        return await asyncio.to_thread(book.loop, alert_id)

    @r.get("/api/alerts/{alert_id}/loop", response_model=LoopOut)
    def loop(alert_id: int, user: User = Depends(current_user)) -> dict:
        out = book.loop(alert_id)
        if out is None:
            raise HTTPException(404, f"alert {alert_id} does not exist or carries no handling loop")
        return out

    @r.get("/api/loops", response_model=list[LoopOut])
    def loops(user: User = Depends(current_user)) -> list[dict]:
        """Warnings whose closed loop is not closed out yet, oldest first."""
        return book.open_loops()

    @r.get("/api/suppressions", response_model=list[SuppressionOut])
    def suppressions(history: bool = Query(False, description="also ended ones (latest 500)"),
                     user: User = Depends(current_user)) -> list[dict]:
        found = book.suppression_history() if history else book.open_suppressions()
        return [s.to_json() for s in found]

    @r.post("/api/suppressions/{suppression_id}/end", response_model=list[SuppressionOut])
    async def end_suppression(suppression_id: int, body: AckIn,
                              user: User = Depends(require(Role.OPERATOR))) -> list[dict]:
        """Ends a shelf (operator) or an out-of-service record (engineer) early, alarm or no alarm."""
        s = next((x for x in book.open_suppressions() if x.id == suppression_id), None)
        if s is not None and s.kind == "out_of_service" and user.role.rank < Role.ENGINEER.rank:
            raise HTTPException(403, "returning a point to service needs the engineer role")
        await write(book.end_suppression, suppression_id, user.name, time.time(), body.note)
        log.info("suppression %d ended by %s", suppression_id, user.name)
        return [x.to_json() for x in book.open_suppressions()]

    @r.post("/api/points/{point_id}/out-of-service", response_model=list[SuppressionOut])
    async def out_of_service(point_id: str, body: OutOfServiceIn,
                             user: User = Depends(require(Role.ENGINEER))) -> list[dict]:
        rules = tuple(body.rules) if body.rules else None
        await write(book.out_of_service, point_id, user.name, time.time(), body.reason, body.hours, rules)
        log.info("%s taken out of service by %s for %g h", point_id, user.name, body.hours)
        return [s.to_json() for s in book.open_suppressions() if s.point == point_id]

    @r.post("/api/points/{point_id}/return-to-service", response_model=list[SuppressionOut])
    async def return_to_service(point_id: str, body: AckIn, user: User = Depends(require(Role.ENGINEER))) -> list[dict]:
        await write(book.return_to_service, point_id, user.name, time.time(), body.note)
        log.info("%s returned to service by %s", point_id, user.name)
        return [s.to_json() for s in book.open_suppressions() if s.point == point_id]

    return r
