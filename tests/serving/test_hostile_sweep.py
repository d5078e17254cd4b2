"""A full hostile run (issue 24, "Done when"): every route of the app's url_map × every bad-input class, through
Flask's test client on the tiny model. Classes: lone surrogate escapes in every JSON string and as keys, wrong JSON
types (list, object, number, null, bool, string, NaN, 2^63, 10^30) for every field at any depth, non-JSON, empty,
not-an-object, invalid UTF-8, deeply nested and oversized bodies, unknown fields, over-long strings, hostile URL
parameters and query strings (Unicode digits, huge integers, invalid percent-encoding, over-long), wrong and
missing tokens, and a method the route does not have.

It asserts, collecting every failure into one message: no 5xx; an error of a JSON route is JSON with its error
key; and a refused request (4xx) leaves the database (games, turns, jobs, votes: every table but the rate-limit
counters, which count attempts by design), the game view and the export exactly as they were. A request that
is accepted may change things: its job is waited for and the sweep goes on with a fresh copy of the game.

A route missing from ROUTES below fails the test: a new route must say how its URL is filled."""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest

from serving.launch import ONE_ADDRESS_MANY_PLAYERS
from serving.web.pages import JSON_PREFIXES
from tests.helpers.serving import new_game, wait_done

LONE = "__LONE__"  # stands for a lone surrogate; written into the raw JSON as the escape \ud800
BAD_PATH = ["²", "٣", str(2**63), str(10**30), "-1", "x" * 5000, "%ED%A0%80", "..%2F..%2Fetc%2Fpasswd", "%00",
            "%20"]
BAD_QUERY = ["²", "٣", "٣٣", str(2**63), str(10**30), "-1", "nan", "inf", "-inf", "1e400", "9" * 5000,
             "x" * 20000, "%ED%A0%80", "", "%00", "0x10"]
WRONG_TYPES = {"list": [1], "object": {"x": 1}, "number": 1.5, "null": None, "bool": True, "string": "x",
               "nan": float("nan"), "2^63": 2**63, "10^30": 10**30, "negative": -1}
OVER_LONG = "ж" * 20000  # over every field's limit, under the 64 KiB body limit
TOKENS = {"none": None, "wrong": "Bearer wrong", "scheme": "Basic abc", "blank": "Bearer ",
          "long": "Bearer " + "x" * 8000, "other game": "other"}


@dataclass
class Route:
    """How to fill one route: its URL parameters (kind of each), a valid body (None: the route reads none),
    its query parameters with valid values, and whether a game token opens it."""
    params: dict = field(default_factory=dict)
    body: dict | None = None
    query: dict = field(default_factory=dict)
    token: bool = False


def routes(world) -> dict:
    """endpoint -> Route: the sweep's table of every route (a valid request of each)."""
    game, turn = {"game_id": "game"}, {"game_id": "game", "index": "index"}
    sampling = {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "n": 1}
    return {
        "static": Route({"filename": "file"}), "play_page": Route(), "api.healthz": Route(),
        "api.create_game": Route(body={"world": "Ты в лесу.", "arena": False}),
        "api.get_game": Route(game, token=True),
        "api.play_turn": Route(game, {"action": "иду", "mode": "do", "n": 1, "max_new_tokens": 2}, token=True),
        "api.cancel_job": Route({"job_id": "job"}, {}), "api.undo": Route(game, {}, token=True),
        "api.retry": Route(game, {}, token=True), "api.get_job": Route({"job_id": "job"}, query={"wait": "0"}),
        "steering_api.presets": Route(),
        "steering_api.patch_game": Route(game, {
            "memory": "m", "authors_note": "n", "authors_note_depth": 1, "world_info": [{"keys": ["k"], "text": "t"}],
            "preset": world.preset, "banned_words": ["слово"], "stop": ["стоп"]}, token=True),
        "steering_api.context": Route(game, query={"action": "иду", "mode": "do"}, token=True),
        "story_api.choose": Route(turn, {"variant": 0}, token=True),
        "story_api.edit_turn": Route(turn, {"action": "иду", "result": "текст"}, token=True),
        "story_api.redo": Route(game, {}, token=True),
        "story_api.export": Route(game, query={"format": "json"}, token=True),
        "story_api.import_game": Route(body=world.exported),
        "story_api.share": Route(game, {}, token=True), "story_api.unshare": Route(game, token=True),
        "story_api.shared": Route({"share_id": "share"}), "story_api.shared_page": Route({"share_id": "share"}),
        "stream_api.stream": Route({"job_id": "job"}, query={"last_event_id": "1"}),
        "info_api.scenarios": Route(), "info_api.info": Route(),
        "tokens_api.turn_tokens": Route(turn, query={"variant": "0", "top": "5"}, token=True),
        "openai_api.models": Route(),
        "openai_api.completions": Route(body={"prompt": "a", "max_tokens": 2, "stop": ["x"], "stream": False,
                                              "repetition_penalty": 1.0, **sampling}),
        "openai_api.chat_completions": Route(body={"messages": [{"role": "user", "content": "a"}], "max_tokens": 2,
                                                   "max_completion_tokens": 2, "stop": "x", **sampling}),
        **{endpoint: Route() for endpoint in ("kobold_api.kobold_model", "kobold_api.kobold_version",
                                              "kobold_api.koboldcpp_version", "kobold_api.kobold_max_context",
                                              "kobold_api.koboldcpp_max_context", "kobold_api.kobold_max_length")},
        "kobold_api.koboldcpp_tokencount": Route(body={"prompt": "a"}),
        **{endpoint: Route(body={"prompt": "a", "max_length": 2, "max_context_length": 100, "rep_pen": 1.0,
                                 "stop_sequence": ["x"], **sampling})
           for endpoint in ("kobold_api.kobold_generate", "kobold_api.kobold_stream")},
    }


class World:
    """The things URL parameters name: a played game (its token, a finished job, a share), another game, and
    the export they are copied from whenever an accepted request changed the game."""

    def __init__(self, client, service):
        self.client, self.service = client, service
        self.played, self.played_auth, _ = new_game(client)
        job = client.post(f"/api/games/{self.played}/turns", json={"action": "иду"}, headers=self.played_auth)
        assert wait_done(client, job.get_json()["job_id"])["status"] == "done"
        self.job = job.get_json()["job_id"]
        steering = {"memory": "м", "authors_note": "н", "world_info": [{"keys": ["к"], "text": "т"}],
                    "stop": ["с"]}  # so that the import's body has every steering field to spoil
        assert client.patch(f"/api/games/{self.played}", json=steering, headers=self.played_auth).status_code == 200
        self.exported = client.get(f"/api/games/{self.played}/export", headers=self.played_auth).get_json()
        self.preset = service.default_preset
        self.other_auth = new_game(client)[1]
        self.fresh()

    def fresh(self) -> None:
        made = self.client.post("/api/games/import", json=self.exported)
        assert made.status_code == 201, made.get_json()
        self.game, self.auth = made.get_json()["game_id"], {"Authorization": f"Bearer {made.get_json()['token']}"}
        self.share = self.client.post(f"/api/games/{self.game}/share", headers=self.auth).get_json()["share_id"]

    def target(self, method: str) -> tuple[str, dict]:
        """(game id, auth) a request of `method` goes to: reads go to the played game (its turn has the prompt
        the token view needs), changes to the copy, which is replaced whenever one is accepted."""
        return (self.played, self.played_auth) if method == "GET" else (self.game, self.auth)

    def value(self, kind: str, method: str) -> str:
        return {"game": self.target(method)[0], "job": self.job, "share": self.share, "index": "0",
                "file": "play.js"}[kind]

    def state(self) -> tuple:
        """Every row of every table (but the rate-limit counters), the game's view and its export."""
        conn = self.service.store.database.conn
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = {t: sorted(repr(tuple(row)) for row in conn.execute(f"SELECT * FROM {t}"))
                for t in tables if t != "rate_limits"}
        views = [self.client.get(f"/api/games/{self.game}{tail}", headers=self.auth).get_data()
                 for tail in ("", "/export")]
        return rows, views


# ---- the bad inputs --------------------------------------------------------------------------------------------

def nodes(value, path=()):
    """Every field of a JSON value at any depth (its path), containers included."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield (*path, key)
        yield from nodes(item, (*path, key))


def replaced(body, path, value=None, key=None):
    """A copy of `body` with the field at `path` set to `value`, or renamed to `key`."""
    body = copy.deepcopy(body)
    *head, last = path
    parent = body
    for step in head:
        parent = parent[step]
    if key is not None:
        parent[key] = parent.pop(last)
    else:
        parent[last] = value
    return body


def raw(body) -> bytes:
    return json.dumps(body).replace(LONE, "\\ud800").encode()


def body_cases(body: dict):
    """(input class, label, raw body, content type) of every bad body of a route whose valid body is `body`."""
    json_type = "application/json"
    whole = [("non-JSON", b"{not json", json_type), ("empty body", b"", json_type), ("text/plain", b"{}", "text/plain"),
             ("invalid UTF-8", b'{"a": "\xff\xfe"}', json_type), ("deep nesting", b"[" * 100_000, json_type),
             ("over max_body_bytes", raw({"x": "y" * 70_000}), json_type),
             ("unknown field", raw({**body, "zzz_unknown": 1}), json_type)]
    yield from ((kind, kind, data, content_type) for kind, data, content_type in whole)
    yield from (("body of a wrong type", f"body is {kind}", raw(value), json_type)
                for kind, value in WRONG_TYPES.items() if kind != "object")
    yield "lone surrogate key", "lone surrogate as a key", raw({**body, LONE: 1}), json_type
    for path in nodes(body):
        where = ".".join(map(str, path))
        yield "lone surrogate", f"lone surrogate in {where}", raw(replaced(body, path, f"a{LONE}")), json_type
        yield "over-long string", f"over-long {where}", raw(replaced(body, path, OVER_LONG)), json_type
        if isinstance(path[-1], str):
            yield "lone surrogate key", f"lone surrogate as key {where}", raw(replaced(body, path, key=LONE)), json_type
        yield from ((f"wrong type: {kind}", f"{kind} as {where}", raw(replaced(body, path, value)), json_type)
                    for kind, value in WRONG_TYPES.items())


@dataclass
class Case:
    kind: str  # the input class
    label: str
    method: str
    path: str
    data: bytes = b""
    content_type: str | None = None
    headers: dict = field(default_factory=dict)


def url(rule: str, values: dict, query: dict) -> str:
    path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: values[m.group(1)], rule)
    return path + ("?" + "&".join(f"{k}={v if '%' in v else quote(v)}" for k, v in query.items()) if query else "")


def cases(rule, method: str, spec: Route, world: World):
    """Every bad request of one route and method (the valid request first: it must not be a 5xx either)."""
    values = {name: world.value(kind, method) for name, kind in spec.params.items()}
    auth, good = world.target(method)[1], url(rule.rule, values, spec.query)
    body = raw(spec.body) if spec.body else b""
    yield Case("valid", "valid", method, good, body, "application/json", auth)
    for name in spec.params:
        yield from (Case("bad URL parameter", f"URL {name}={bad[:12]}", method,
                         url(rule.rule, {**values, name: bad}, spec.query), headers=auth) for bad in BAD_PATH)
    for name in [*spec.query, "zzz_unknown"]:
        yield from (Case("bad query string", f"query {name}={bad[:12]}", method,
                         url(rule.rule, values, {**spec.query, name: bad}), headers=auth) for bad in BAD_QUERY)
    if "last_event_id" in spec.query:
        yield from (Case("bad Last-Event-ID", f"Last-Event-ID: {bad[:12]}", method, good,
                         headers={"Last-Event-ID": bad}) for bad in BAD_QUERY[:12])
    if spec.token:
        for kind, header in TOKENS.items():
            header = world.other_auth["Authorization"] if kind == "other game" else header
            yield Case("wrong or missing token", f"token {kind}", method, good, body, "application/json",
                       {"Authorization": header} if header is not None else {})
    if method != "GET":
        for kind, label, data, content_type in body_cases(spec.body or {}):
            yield Case(kind, label, method, good, data, content_type, auth)
    other = next(m for m in ("DELETE", "PUT", "GET") if m not in rule.methods)
    yield Case("wrong method", f"method {other}", other, good, headers=auth)


# ---- the sweep -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def app(make_app):
    return make_app(*ONE_ADDRESS_MANY_PLAYERS, "limits.tools_per_minute=100000", "api.max_tokens=2")


CONFLICTS = {"api.cancel_job", "story_api.redo"}  # valid, and 409: the job is over; nothing was undone


def send(client, case: Case):
    response = client.open(case.path, method=case.method, data=case.data, content_type=case.content_type,
                           headers=case.headers)
    response.get_data()  # a stream to its end, then closed: its request context ends here
    response.close()
    return response


def json_error(response) -> bool:
    body = response.get_json(silent=True)
    return isinstance(body, dict) and ("error" in body or "detail" in body)


def test_every_route_and_bad_input_class_gives_no_5xx_and_refusals_change_nothing(app):
    client, service = app
    world = World(client, service)
    table = routes(world)
    rules = [rule for rule in client.application.url_map.iter_rules()]
    assert not {r.endpoint for r in rules} - table.keys(), "routes without an entry in the sweep's table"
    assert not table.keys() - {r.endpoint for r in rules}, "sweep entries of routes that no longer exist"
    failures, sent, classes = [], 0, set()
    for rule in rules:
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for case in cases(rule, method, table[rule.endpoint], world):
                before = world.state()
                response = send(client, case)
                sent += 1
                if case.kind == "valid" and response.status_code >= 400 and rule.endpoint not in CONFLICTS:
                    failures.append(f"{where} is the sweep's valid request: fix its entry in routes()")
                classes.add(case.kind)
                where = f"{method} {rule.rule} [{case.label}]: {response.status_code}"
                if response.status_code >= 500:
                    failures.append(f"{where} {response.get_data(as_text=True)[:200]}")
                elif response.status_code >= 400:
                    page = case.method == "GET" and not case.path.startswith(JSON_PREFIXES)
                    if not page and not json_error(response):
                        failures.append(f"{where} not a JSON error: {response.get_data(as_text=True)[:120]}")
                    if world.state() != before:
                        failures.append(f"{where} refused, but it changed the database or the game")
                elif case.method != "GET":  # accepted: let its job finish and go on with a fresh game
                    job = (response.get_json(silent=True) or {}).get("job_id")
                    if job:
                        wait_done(client, job)
                    world.fresh()
    print(f"hostile sweep: {sent} requests, {len(rules)} routes, {len(classes)} input classes: {sorted(classes)}")
    assert not failures, f"{len(failures)} of {sent} hostile requests failed:\n" + "\n".join(failures)
