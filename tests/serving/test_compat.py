"""The OpenAI- and Kobold-compatible endpoints over real HTTP (waitress in this process), on the default engine
(ct2): the real `openai` client (models, completions, chat, streaming, its error classes), KoboldCpp's request
and response shapes as SillyTavern and Kobold Lite use them, error bodies per API, 429 + Retry-After, and raw
jobs batched with game turns in one worker batch."""
from __future__ import annotations

import json
import threading
import time

import openai
import pytest
import requests

from serving.client import Player, sse_events
from serving.compat.openai import chat_prompt
from tests.helpers.serving import Gate, live_server

MAX_TOKENS = 12  # api.max_tokens: asking for more gets this many
PROMPT = "Вы идёте по лесу, и"  # the trained tiny model continues it with words (greedy), not newlines
GREEDY = {"temperature": 0, "max_tokens": 10}


@pytest.fixture(scope="module")
def server(trained_artifacts, tmp_path_factory):
    with live_server([f"model={trained_artifacts / 'models' / 'tiny'}", "engine.threads=1",
                      f"paths.artifacts={tmp_path_factory.mktemp('compat')}", f"api.max_tokens={MAX_TOKENS}",
                      "generation.max_new_tokens=8", "limits.turns_per_minute=10000",
                      "limits.max_queued_per_client=4", "limits.max_body_bytes=16384"]) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with openai.OpenAI(base_url=server[0] + "v1", api_key="anything", max_retries=0, timeout=120) as c:
        yield c  # closed first: a kept-alive connection would hold the server's thread at its stop


@pytest.fixture
def gate(server):
    gate = Gate(server[1].worker)
    yield gate
    gate.close()


def middle_word(text: str) -> str:
    words = text.split()
    assert len(words) >= 3, text  # the greedy reply has something to stop at
    return words[len(words) // 2]


def post(server, path: str, body, **kwargs) -> requests.Response:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body, ensure_ascii=False).encode("utf-8")
    return requests.post(server[0] + path.lstrip("/"), data=data, timeout=120,
                         headers={"Content-Type": "application/json", **kwargs.pop("headers", {})}, **kwargs)


# ---- OpenAI, through the real client ------------------------------------------------------------------------

def test_models_list(client, server):
    assert [m.id for m in client.models.list()] == [server[1].choice.name]


def test_completions_n_stop_and_the_max_tokens_cap(client):
    plain = client.completions.create(model="gamio", prompt=PROMPT, n=2, max_tokens=500, temperature=0.9)
    assert [c.index for c in plain.choices] == [0, 1] and plain.object == "text_completion"
    assert plain.usage.completion_tokens <= 2 * MAX_TOKENS  # 500 asked, capped by api.max_tokens
    assert any(c.finish_reason == "length" for c in plain.choices)
    greedy = client.completions.create(model="gamio", prompt=PROMPT, **GREEDY).choices[0].text
    stop = middle_word(greedy)
    cut = client.completions.create(model="gamio", prompt=PROMPT, stop=[stop], **GREEDY).choices[0]
    assert cut.text == greedy[: greedy.index(stop)] and cut.finish_reason == "stop"


def test_streamed_completion_equals_the_plain_one(client):
    plain = client.completions.create(model="gamio", prompt=PROMPT, **GREEDY).choices[0]
    chunks = list(client.completions.create(model="gamio", prompt=PROMPT, stream=True, **GREEDY))
    assert len([c for c in chunks if c.choices[0].text]) > 1  # it arrived in pieces
    assert "".join(c.choices[0].text for c in chunks) == plain.text
    assert chunks[-1].choices[0].finish_reason == plain.finish_reason


def test_chat_plain_and_streamed(client):
    messages = [{"role": "system", "content": "Тёмный лес."}, {"role": "user", "content": "иду на север"}]
    plain = client.chat.completions.create(model="gamio", messages=messages, **GREEDY).choices[0]
    assert plain.message.role == "assistant" and plain.finish_reason in ("stop", "length")
    assert "\n>" not in plain.message.content  # the reply ends where the player's next move would begin
    chunks = list(client.chat.completions.create(model="gamio", messages=messages, stream=True, **GREEDY))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == plain.message.content
    assert chunks[-1].choices[0].finish_reason == plain.finish_reason
    newer = client.chat.completions.create(model="gamio", messages=messages, temperature=0, max_completion_tokens=10)
    assert newer.choices[0].message.content == plain.message.content


def test_an_empty_prompt_and_more_tokens_than_the_context_are_answered(client, server, monkeypatch):
    empty = client.completions.create(model="gamio", prompt="", max_tokens=4)  # continues the start token
    assert empty.usage.prompt_tokens == 1 and empty.choices[0].text
    monkeypatch.setattr(server[1].api, "max_tokens", 10**6)  # only the context is left to cap it
    context = server[1].viewer.engine.context_length
    long = client.completions.create(model="gamio", prompt=PROMPT, max_tokens=10 * context, temperature=0.8)
    assert 0 < long.usage.completion_tokens < context and long.usage.total_tokens <= context


def test_the_chat_template():
    assert chat_prompt([{"role": "system", "content": "Лес. "}, {"role": "system", "content": "Ночь."},
                        {"role": "user", "content": "иду\n вперёд"}, {"role": "assistant", "content": " Темно. "},
                        {"role": "user", "content": [{"type": "text", "text": "жду"}]}]
                       ) == "Лес.\n\nНочь.\n> иду вперёд\nТемно.\n> жду\n"


def test_openai_errors(client, server):
    with pytest.raises(openai.BadRequestError) as bad_type:
        client.completions.create(model="gamio", prompt=PROMPT, max_tokens="many")  # type: ignore[arg-type]
    assert "max_tokens" in bad_type.value.message
    with pytest.raises(openai.BadRequestError):
        client.post("/completions", body=b'{"prompt": "x",', cast_to=object)  # malformed JSON
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gamio", messages=[{"role": "robot", "content": "x"}])
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="gamio", prompt=PROMPT, n=99)
    # Over the body limit (waitress' own 413), broken JSON, a lone surrogate no tokenizer can encode.
    for body in ({"prompt": "x" * 20000}, "[1, 2", '{"prompt": "a\\ud800"}', '{"messages": [{"role": "user", '
                                                                              '"content": "\\udfff"}]}'):
        response = post(server, "v1/completions", body)
        assert 400 <= response.status_code < 500
        assert set(response.json()["error"]) >= {"message", "type", "code"}
    unknown = requests.get(server[0] + "v1/engines", timeout=30)
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "invalid_request_error"


def test_api_keys(server, monkeypatch):
    url, service = server
    monkeypatch.setattr(service.api, "keys", ["secret-1", "secret-2"])
    with openai.OpenAI(base_url=url + "v1", api_key="wrong", max_retries=0) as wrong, pytest.raises(
            openai.AuthenticationError):
        wrong.models.list()
    with openai.OpenAI(base_url=url + "v1", api_key="secret-2", max_retries=0) as right:
        assert right.models.list().data
    refused = requests.get(url + "api/v1/model", timeout=30)
    assert refused.status_code == 401 and refused.json()["detail"]["type"] == "unauthorized"
    assert requests.get(url + "api/v1/model", headers={"Authorization": "Bearer secret-1"}, timeout=30).ok
    version = requests.get(url + "api/extra/version", timeout=30)  # open: it tells clients a key is needed
    assert version.ok and version.json()["protected"] is True
    assert requests.post(url + "api/games", json={}, timeout=30).status_code == 201  # the game API stays open


def test_browser_clients_of_other_origins_only_when_configured(server, monkeypatch):
    url, service = server
    lite = {"Origin": "https://lite.koboldai.net", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type"}
    closed = requests.options(url + "api/v1/generate", headers=lite, timeout=30)
    assert "Access-Control-Allow-Origin" not in closed.headers  # by default no other site may use the model
    monkeypatch.setattr(service.api, "cors_origins", ["https://lite.koboldai.net"])
    monkeypatch.setattr(service.api, "keys", ["secret"])
    preflight = requests.options(url + "api/v1/generate", headers=lite, timeout=30)  # no key on a preflight
    assert preflight.ok and preflight.headers["Access-Control-Allow-Origin"] == "https://lite.koboldai.net"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    refused = requests.get(url + "api/v1/model", headers={"Origin": lite["Origin"]}, timeout=30)
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == lite["Origin"]
    other = requests.options(url + "v1/completions", headers={**lite, "Origin": "https://evil.example"}, timeout=30)
    assert "Access-Control-Allow-Origin" not in other.headers


# ---- Kobold (KoboldCpp's shapes) -----------------------------------------------------------------------------

def test_kobold_info_routes(server):
    url, service = server
    get = lambda path: requests.get(url + path, timeout=30).json()  # noqa: E731
    assert get("api/v1/model") == {"result": f"gamio/{service.choice.name}"}
    assert get("api/v1/info/version") == {"result": "1.2.5"}
    version = get("api/extra/version")
    assert version["result"] == "KoboldCpp" and isinstance(version["version"], str) and version["protected"] is False
    context = service.viewer.engine.context_length
    assert get("api/v1/config/max_context_length") == {"value": context} == get("api/extra/true_max_context_length")
    assert get("api/v1/config/max_length") == {"value": MAX_TOKENS}
    count = post(server, "api/extra/tokencount", {"prompt": PROMPT}).json()
    assert count["value"] == len(count["ids"]) > 5


def test_kobold_generate_with_every_field(server):
    body = {"prompt": PROMPT, "max_length": 8, "max_context_length": 400, "temperature": 0.7, "top_p": 0.9,
            "top_k": 40, "rep_pen": 1.1, "stop_sequence": ["\n>"]}
    response = post(server, "api/v1/generate", body)
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert isinstance(result["text"], str) and result["finish_reason"] in ("stop", "length")
    assert "\n>" not in result["text"] and result["completion_tokens"] <= 8
    greedy = {"prompt": PROMPT, "max_length": 10, "temperature": 0}
    text = post(server, "api/v1/generate", greedy).json()["results"][0]["text"]
    stop = middle_word(text)
    cut = post(server, "api/v1/generate", {**greedy, "stop_sequence": [stop]}).json()["results"][0]
    assert cut == {**cut, "text": text[: text.index(stop)], "finish_reason": "stop"}


def test_kobold_clamps_a_prompt_far_over_the_context(server):
    long = "Вы стоите у ворот старого замка, а над стеной кружат вороны. " * 100  # ~12 KB, thousands of tokens
    response = post(server, "api/v1/generate", {"prompt": long, "max_length": 6, "max_context_length": 64})
    assert response.status_code == 200 and response.json()["results"][0]["prompt_tokens"] <= 64 - 6
    response = post(server, "api/v1/generate", {"prompt": long, "max_length": 6})  # the model's own context
    assert response.status_code == 200 and response.json()["results"][0]["prompt_tokens"] <= 512


def test_kobold_stream(server):
    body = {"prompt": PROMPT, "max_length": 10, "temperature": 0}
    plain = post(server, "api/v1/generate", body).json()["results"][0]
    with post(server, "api/extra/generate/stream", body, stream=True) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = list(sse_events(response))
    assert {e["event"] for e in events} == {"message"}
    data = [json.loads(e["data"]) for e in events]
    assert all(d["finish_reason"] is None for d in data[:-1]) and data[-1] == {"token": "", "finish_reason": "length"}
    assert len(data) > 2 and "".join(d["token"] for d in data) == plain["text"]


def test_kobold_errors(server):
    for body in ({"prompt": PROMPT, "max_length": "ten"}, {"prompt": ["a"]}, {"prompt": "x", "rep_pen": None,
                                                                               "top_k": 1.5}, "{", {"prompt": "x" * 20000},
                 '{"prompt": "\\ud800", "max_context_length": 100}'):
        response = post(server, "api/v1/generate", body)
        assert 400 <= response.status_code < 500, (body, response.status_code)
        assert set(response.json()["detail"]) == {"msg", "type"}, response.text


# ---- one queue with the game ---------------------------------------------------------------------------------

def in_thread(call):
    out: list = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    return thread, out


def wait_until(condition, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_clients_share_of_the_queue_is_429_in_each_apis_shape(server, gate, client):
    url, service = server
    kobold = lambda: post(server, "api/v1/generate", {"prompt": PROMPT, "max_length": 4})  # noqa: E731
    waiting = [in_thread(kobold) for _ in range(4)]  # limits.max_queued_per_client=4: all held by the gate
    assert gate.entered.wait(30)
    # The first batch may have taken more than one request (they arrive together): the rest are queued.
    wait_until(lambda: service.worker.queue_depth + gate.batches[0] == 4)
    refused = kobold()
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["detail"]["type"] == "service_busy"
    with pytest.raises(openai.RateLimitError) as limited:
        client.completions.create(model="gamio", prompt=PROMPT, max_tokens=4)
    assert limited.value.response.headers["Retry-After"] and limited.value.body["type"] == "rate_limit_error"
    gate.opened.set()
    for thread, out in waiting:
        thread.join(120)
        assert out[0].status_code == 200


def test_raw_requests_share_a_batch_with_game_turns(server, gate):
    url, service = server
    players = [Player(url) for _ in range(2)]
    for p in players:
        p.new_game("Тёмный лес.")
    holder = players[0].submit("жду")["job_id"]  # holds the worker while the next two queue up
    assert gate.entered.wait(30)
    turn = players[1].submit("иду")["job_id"]
    thread, out = in_thread(lambda: post(server, "v1/completions", {"prompt": PROMPT, "max_tokens": 4}))
    wait_until(lambda: service.worker.queue_depth == 2)
    gate.opened.set()
    thread.join(120)
    assert out[0].status_code == 200 and players[1].wait_job(turn)["status"] == "done"
    assert players[0].wait_job(holder)["status"] == "done"
    assert gate.batches[:2] == [1, 2]
    assert sorted(row.raw is not None for row in gate.rows[1]) == [False, True]  # one game turn, one raw prompt
