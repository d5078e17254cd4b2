"""Stream event ids identify the run of a job (issue 24): after `kill -9` the restarted server runs the job
again and numbered its events from 1 again, so a reconnect with the killed run's Last-Event-ID got the new
run's later tokens appended to the old partial text. Now such a reconnect starts with a `reset`."""
from __future__ import annotations

import json

from serving.queue.streams import StreamHub
from tests.helpers.serving import Gate, new_game


def parse(chunks) -> list[dict]:
    """SSE text -> [{"id"?, "event", "data"}] (comments and `retry:` skipped)."""
    events = []
    text = "".join(c.decode() if isinstance(c, bytes) else c for c in chunks)
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            events.append({**({"id": int(fields["id"])} if "id" in fields else {}), "event": fields["event"],
                           "data": json.loads(fields["data"])})
    return events


def replay(events: list[dict], shown: str) -> str:
    for event in events:
        if event["event"] == "token":
            shown += event["data"]["text"]
        elif event["event"] == "reset":
            shown = event["data"]["text"]
    return shown


def test_a_reconnect_from_a_killed_run_starts_with_a_reset(make_app):
    client, service = make_app()
    game_id, auth, _ = new_game(client)
    gate = Gate(service.worker)
    try:
        job_id = client.post(f"/api/games/{game_id}/turns", json={"action": "иду к воротам"},
                             headers=auth).get_json()["job_id"]
        killed = StreamHub()  # the process killed while it streamed this job's first run
        killed.publish(job_id, "running", {})
        killed.publish(job_id, "token", {"text": "Старый текст первого запуска. "})
        seen, _ = killed.wait(job_id, 0, 0)
        old_text, last_id = replay([{"event": k, "data": d} for _, k, d in seen], ""), seen[-1][0]
        assert gate.entered.wait(60)  # this process runs the job again
        response = client.get(f"/api/jobs/{job_id}/stream", headers={"Last-Event-ID": str(last_id)},
                              buffered=False)
        chunks = iter(response.response)
        first = []
        while not parse(first):
            first.append(next(chunks))
        gate.close()
        events = parse(first + [chunk for chunk in chunks])
    finally:
        gate.close()
    final = events[-1]["data"]["turn"]["result"]
    assert events[0]["event"] == "reset" and events[0]["data"]["text"] == ""
    assert replay(events, old_text) == final and events[-1]["event"] == "done"
    assert all(service.worker.hub.same_attempt(e["id"]) and e["id"] != last_id for e in events if "id" in e)
    again = parse(client.get(f"/api/jobs/{job_id}/stream", headers={"Last-Event-ID": str(last_id)}).get_data(
        as_text=True))  # the job is done: the killed run's id gets the whole text, then done
    assert [e["event"] for e in again] == ["reset", "done"] and replay(again, old_text) == final
    mid = next(i for i, e in enumerate(events) if "id" in e)  # an id of this run still resumes after it
    resumed = parse(client.get(f"/api/jobs/{job_id}/stream", headers={"Last-Event-ID": str(events[mid]["id"])}
                               ).get_data(as_text=True))
    assert all(e["id"] > events[mid]["id"] for e in resumed if "id" in e)
    assert replay(resumed, replay(events[:mid + 1], old_text)) == final
