"""GET /api/jobs/<id>/stream: a turn as it is written, as Server-Sent Events.

    event: queued   {"position"}        (again whenever the position changes)
    event: running  {}
    event: token    {"text": appended}  ─┐ with ids: a reconnect sends Last-Event-ID and continues after it
    event: reset    {"text": all so far}─┤ (applying them in order gives the final turn.result exactly)
    event: done     {"turn": ...}       ─┤
    event: failed   {"error": ...}      ─┘
    : ping                              (a heartbeat comment every 15 s)

A client that disconnects does not cancel the job. The stream holds a request thread, so it takes one of the
client's long-poll slots; beyond the cap the stream says where the job stands and ends at once (EventSource
reconnects after `retry`), which is the long-poll fallback's behaviour too.
"""
from __future__ import annotations

import json

from flask import Blueprint, Response, request, stream_with_context

from serving.http import client, service
from serving.store import FINAL
from serving.views import job_view

stream_api = Blueprint("stream_api", __name__)
HEARTBEAT_S, POSITION_POLL_S, RETRY_MS = 15.0, 1.0, 2000


def sse(kind: str, data: dict, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def final_events(job: dict, sent_text: bool) -> list[str]:
    """How a finished job ends a stream whose events the hub no longer holds (a restart, an old job)."""
    view = job_view(job)
    if job["status"] == "failed":
        return [sse("failed", {"error": view.get("error")})]
    out = [] if sent_text or "turn" not in view else [sse("reset", {"text": view["turn"]["result"]})]
    return out + [sse("done", {"turn": view.get("turn"), **({"undone": True} if view.get("undone") else {})})]


def job_stream(job_id: str, after: int, granted: bool):
    svc = service()
    hub, worker = svc.worker.hub, svc.worker
    yield f"retry: {RETRY_MS}\n\n"
    position, sent_text = None, after > 0
    while True:
        job = svc.store.job(job_id)
        now = worker.position(job_id)
        if now is not None and now != position:
            position = now
            yield sse("queued", {"position": now})
        if not granted:
            if job["status"] in FINAL:
                yield from final_events(job, sent_text)
            return
        if job["status"] in FINAL and not hub.known(job_id):
            yield from final_events(job, sent_text)
            return
        events, finished = hub.wait(job_id, after, POSITION_POLL_S if now is not None else HEARTBEAT_S)
        for event_id, kind, data in events:
            after = event_id
            if kind == "done":
                yield sse("done", {"turn": job_view(svc.store.job(job_id)).get("turn")}, event_id)
                return
            sent_text = sent_text or kind in ("token", "reset")
            yield sse(kind, data, event_id)
            if kind == "failed":
                return
        if not events and finished:  # finished, and everything was sent before this connection
            yield from final_events(svc.store.job(job_id), sent_text)
            return
        if not events and now is None:
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
