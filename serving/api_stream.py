"""GET /api/jobs/<id>/stream: a turn as it is written, as Server-Sent Events.

    event: queued   {"position"}        (again whenever the position changes)
    event: running  {}
    event: token    {"text": appended}  ─┐ with ids: a reconnect sends Last-Event-ID and continues after it
    event: reset    {"text": all so far}─┤ (applying them in order gives the final turn.result exactly)
    event: done     {"turn": ...}       ─┤
    event: failed   {"error": ...}      ─┘
    : ping                              (a comment after 15 s without an event, queued or running)

A client that disconnects does not cancel the job. A fresh connection (no Last-Event-ID) to a finished job gets
the whole text in one `reset`, then `done`. The stream holds a request thread, so it takes one of the
client's long-poll slots; beyond the cap the stream says where the job stands and ends at once (EventSource
reconnects after `retry`), which is the long-poll fallback's behaviour too.
"""
from __future__ import annotations

import json
import time

from flask import Blueprint, Response, request, stream_with_context

from serving.http import client, service
from serving.store import FINAL
from serving.views import job_view

stream_api = Blueprint("stream_api", __name__)
HEARTBEAT_S, POSITION_POLL_S, RETRY_MS = 15.0, 1.0, 2000


def sse(kind: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def done_event(view: dict, event_id: int | None = None) -> str:
    return sse("done", {"turn": view.get("turn"), **({"undone": True} if view.get("undone") else {})}, event_id)


def final_events(job: dict, with_text: bool) -> list[str]:
    """How a finished job ends a stream from the store: `with_text` (a fresh connection, or a job the hub no
    longer holds after a restart or long ago, so what the client saw is unknown) starts with the whole text in
    one `reset`, which is right whatever the client holds."""
    view = job_view(job)
    if job["status"] == "failed":
        return [sse("failed", {"error": view.get("error")})]
    out = [sse("reset", {"text": view["turn"]["result"]})] if with_text and "turn" in view else []
    return out + [done_event(view)]


def job_stream(job_id: str, after: int, granted: bool):
    """The job's events after id `after`. Not `granted` (over the long-poll caps): what there is now, then the
    end, as a long-poll with wait=0 would answer. The store is read only at the start and the end: a stream
    must cost the worker's batch nothing while tokens flow."""
    svc = service()
    hub, worker = svc.worker.hub, svc.worker
    yield f"retry: {RETRY_MS}\n\n"
    job = svc.store.job(job_id)
    if job["status"] in FINAL and (after == 0 or not hub.known(job_id)):
        yield from final_events(job, with_text=True)
        return
    position, quiet_since = None, time.monotonic()
    while True:
        now = worker.position(job_id)
        if now is not None and now != position:
            position, quiet_since = now, time.monotonic()
            yield sse("queued", {"position": now})
        waiting = now is not None or not hub.known(job_id)  # a job recovered after a restart is not in the hub yet
        timeout = 0 if not granted else min(POSITION_POLL_S, HEARTBEAT_S) if waiting else HEARTBEAT_S
        events, finished = hub.wait(job_id, after, timeout)
        for event_id, kind, data in events:
            after, quiet_since = event_id, time.monotonic()
            if kind == "done":
                yield done_event(job_view(svc.store.job(job_id)), event_id)
                return
            yield sse(kind, data, event_id)
            if kind == "failed":
                return
        if not events and (finished or (waiting and now is None)):
            job = svc.store.job(job_id)  # finished before this connection saw it end, or unknown to the hub
            if job["status"] in FINAL:
                yield from final_events(job, with_text=not hub.known(job_id))
                return
        if not granted:
            return
        if time.monotonic() - quiet_since >= HEARTBEAT_S:  # proxies close a connection that says nothing
            quiet_since = time.monotonic()
            yield ": ping\n\n"


@stream_api.get("/api/jobs/<job_id>/stream")
def stream(job_id: str):
    svc = service()
    svc.store.job(job_id)  # 404 before the stream starts
    raw = request.headers.get("Last-Event-ID") or request.args.get("last_event_id") or "0"
    after = int(raw) if raw.isdigit() else 0
    who = client()

    def events():
        with svc.clients.long_polls.slot(who) as granted:
            yield from job_stream(job_id, after, granted)

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
