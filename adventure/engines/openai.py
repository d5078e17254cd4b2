"""engine=openai: any OpenAI-compatible completions server generates (`vllm serve`, SGLang, llama.cpp's server,
KoboldCpp, TGI); gamio keeps the game tier (games, prompts built with the local tokenizer of `model=`, cleanup,
translation, queue, SQLite). Several inference replicas behind one load balancer can so serve one gamio.

One POST {base_url}/completions per row; the rows of a batch (and of batches running at once: the server batches
continuously) go out together, at most `max_concurrency` at a time. How GenerationSettings map to the request:
    max_new_tokens       max_tokens (n=1: each variant is a row of its own)
    do_sample            false: temperature 0 (greedy on every server named above)
    temperature, top_p   as they are, when sampling
    top_k                top_k when > 0 (an extension: vLLM, SGLang, llama.cpp, KoboldCpp; others ignore it)
    repetition_penalty   repetition_penalty when != 1 (vLLM, SGLang, TGI; llama.cpp calls it repeat_penalty and
                         KoboldCpp rep_pen: add them with engine.extra_body)
    stop_strings         stop (the text is cut before a stop string here too, for servers that ignore it)
    bad_words_ids        single-token sequences as logit_bias -100 (servers without logit_bias ignore it); longer
                         ones cannot be sent portably: the turn pipeline cuts the reply before a banned word
    seed                 seed, per row (servers without per-request seeds ignore it)
    num_beams > 1        refused at start (adventure.engines.check_decoding): no portable beam search
The prompt goes as text decoded from the local token ids (`prompt_format=text`, any server; the server tokenizes
it again, so it must serve the same model) or as the token ids themselves (`token_ids`: vLLM, SGLang).

Failures: each request has `timeout_s` (no answer, or a streamed answer still unfinished by then: a slow or hung
server never holds a worker), connection errors, timeouts, 429 and 5xx are retried `retries` times with backoff;
then that row fails alone with the reason (the game's job fails with it), never the batch, never the worker.
`health()` asks {base_url}/models (short timeout): /healthz shows the remote's state and answers 503 while it is
unreachable, ok again as soon as it answers, without a restart.
"""
from __future__ import annotations

import json
import logging
import queue
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

from adventure.engines.base import Generation, PerThread, Progress, first_stop, row_seed
from adventure.errors import GamioError
from adventure.generation import GenerationSettings
from adventure.models import tokenizer_and_context

log = logging.getLogger(__name__)
HEALTH_CACHE_S = 1.0  # /healthz may be polled often (load balancers): at most one request to the remote a second


class RemoteError(RuntimeError):
    """A row the inference server did not generate (after the retries): its reason, without the server's URL."""


class _Retry(Exception):
    """A failure worth another try: no connection, no answer in time, 429 or 5xx."""


class OpenAIEngine:
    name = "openai"
    beams = False  # check_decoding refuses num_beams > 1
    continuous = True  # the server batches continuously; calls from several threads are fine

    def __init__(self, cfg, tokenizer, context: int, session=None):
        import requests

        self.base_url = str(cfg.base_url).rstrip("/")
        self.remote_model = cfg.model
        self.timeout_s, self.retries = float(cfg.timeout_s), int(cfg.retries)
        self.backoff_s, self.health_timeout_s = float(cfg.retry_backoff_s), float(cfg.health_timeout_s)
        self.prompt_format, self.stream = str(cfg.prompt_format), bool(cfg.stream)
        self.extra_body = dict(cfg.extra_body or {})
        self.tokenizer, self.context_length = tokenizer, context
        self.description = f"openai-compatible server ({self.remote_model or 'its first model'})"
        self.session = session or requests.Session()
        self.headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
        self.pool = ThreadPoolExecutor(int(cfg.max_concurrency), thread_name_prefix="gamio-openai")
        self._tokenizers = PerThread(tokenizer)  # the pool's threads tokenize at once
        self._health: tuple[float, dict] | None = None

    @classmethod
    def load(cls, cfg, spec: str, artifacts: Path, *, option: str = "model") -> "OpenAIEngine":
        """Only the tokenizer and config of `spec` load here (no weights): the remote server has the model."""
        source, tokenizer, context = tokenizer_and_context(spec, artifacts, option)
        engine = cls(cfg, tokenizer, context)
        state = engine.health()
        log.info("openai engine: %s, tokenizer of %s; remote %s", engine.base_url, source.location, state["state"])
        return engine

    # ---- generation ----------------------------------------------------------------------------------------

    def model_name(self) -> str:
        """engine.model, or the remote's first model (asked once)."""
        if not self.remote_model:
            models = self._models(self.timeout_s)
            if not models:
                raise RemoteError("the inference server lists no model; set engine.model")
            self.remote_model = models[0]
        return self.remote_model

    def body(self, prompt: Sequence[int], settings: GenerationSettings, seed: int | None, stream: bool) -> dict:
        """The completions request of one row (see the module docstring)."""
        if settings.num_beams > 1:
            raise ValueError(f"engine=openai cannot run num_beams={settings.num_beams} (beam sampling)")
        ids = list(prompt) or [self.tokenizer.eos_token_id]  # GPT-2 starts a text after <|endoftext|>
        body = {"model": self.model_name(), "max_tokens": settings.max_new_tokens, "n": 1, "stream": stream,
                "prompt": ids if self.prompt_format == "token_ids" else self._tokenizers.get().decode(ids)}
        if settings.do_sample:
            body.update(temperature=settings.temperature, top_p=settings.top_p)
            if settings.top_k > 0:
                body["top_k"] = settings.top_k
        else:
            body["temperature"] = 0.0
        if settings.repetition_penalty != 1.0:
            body["repetition_penalty"] = settings.repetition_penalty
        if settings.stop_strings:
            body["stop"] = list(settings.stop_strings)
        single = [ids[0] for ids in settings.bad_words_ids if len(ids) == 1]
        if single:
            body["logit_bias"] = {str(token): -100 for token in single}
        if seed is not None:
            body["seed"] = seed
        return {**body, **self.extra_body}

    def generate(self, prompts: Sequence[Sequence[int]], settings: GenerationSettings, *,
                 seed: int | None = None, on_progress: Progress | None = None) -> list[Generation | Exception]:
        """Every row as its own request, at once; a row that fails is returned as its exception (it fails alone).
        Streamed text is reported through `on_progress` in the caller's thread, never in the pool's."""
        stream = self.stream and on_progress is not None
        events: queue.Queue = queue.Queue()  # (row, text so far), or None when a row is over
        futures = []
        for row, prompt in enumerate(prompts):
            report = (lambda text, row=row: events.put((row, text))) if stream else None
            futures.append(self.pool.submit(self._row, prompt, settings, row_seed(seed, row), report))
            futures[-1].add_done_callback(lambda _: events.put(None))
        left = len(futures)
        while left:
            event = events.get()
            if event is None:
                left -= 1
            else:
                on_progress(event[0], self._ids(event[1]))
        out: list[Generation | Exception] = []
        for future in futures:
            try:
                out.append(future.result())
            except Exception as exc:  # noqa: BLE001 - this row fails, the others are kept
                out.append(exc)
        return out

    def _ids(self, text: str) -> list[int]:
        return self._tokenizers.get()(text, add_special_tokens=False)["input_ids"]

    def _row(self, prompt, settings: GenerationSettings, seed, report: Callable[[str], None] | None) -> Generation:
        text = self._with_retries(lambda: self.body(prompt, settings, seed, report is not None), report)["text"]
        cut = first_stop(text, settings.stop_strings)
        text = text if cut is None else text[:cut]
        ids = self._ids(text)
        return Generation(text, len(ids), tuple(ids))

    def _with_retries(self, make_body: Callable[[], dict], report) -> dict:
        tries = self.retries + 1
        for attempt in range(tries):
            try:
                return self._complete(make_body(), report)
            except _Retry as exc:
                log.warning("inference server %s: %s (try %d of %d)", self.base_url, exc, attempt + 1, tries)
                if attempt + 1 == tries:
                    raise RemoteError(f"the inference server failed: {exc} ({tries} tries)") from None
                time.sleep(self.backoff_s * 2 ** attempt)
        raise AssertionError("unreachable")

    def _complete(self, body: dict, report) -> dict:
        """One request: the completion's choice ({"text": ...}; streamed: `report(text so far)` after every
        chunk)."""
        import requests

        deadline = time.monotonic() + self.timeout_s
        try:
            with self.session.post(f"{self.base_url}/completions", json=body, headers=self.headers, stream=True,
                                   timeout=(min(self.timeout_s, 10.0), self.timeout_s)) as response:
                if response.status_code == 429 or response.status_code >= 500:
                    raise _Retry(f"HTTP {response.status_code} {_reason(response)}")
                if response.status_code >= 400:
                    raise RemoteError(f"the inference server refused the request: HTTP {response.status_code} "
                                      f"{_reason(response)}")
                if not body["stream"]:
                    return _choice(json.loads(_read(response, deadline, self.timeout_s)))
                text = ""
                for line in response.iter_lines():
                    _check_deadline(deadline, self.timeout_s)
                    data = line.decode("utf-8").removeprefix("data:").strip() if line else ""
                    if not data or data == "[DONE]":
                        continue
                    chunk = _choice(json.loads(data)).get("text") or ""
                    if chunk:
                        text += chunk
                        report(text)
                return {"text": text}
        except requests.Timeout:
            raise _Retry(f"no answer within {self.timeout_s:g} s") from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise _Retry(_connection_problem(exc)) from None  # ChunkedEncodingError: cut off mid-answer
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise RemoteError(f"the inference server's answer cannot be read: {type(exc).__name__}: {exc}") from None

    # ---- likelihood ----------------------------------------------------------------------------------------

    def score(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], *, batch_size: int = 8) -> list[float]:
        """Summed NLL (nats) of each target, from the server's prompt log-probabilities (echo + logprobs; the
        prompt goes as token ids so that the numbers line up with the local tokens: vLLM, SGLang)."""
        def one(pair) -> float:
            prompt, target = list(pair[0]), list(pair[1])
            body = {"model": self.model_name(), "prompt": prompt + target, "max_tokens": 1, "echo": True,
                    "logprobs": 0, "temperature": 0.0, "stream": False}
            logprobs = self._with_retries(lambda: body, None).get("logprobs") or {}
            values = (logprobs.get("token_logprobs") or [])[len(prompt): len(prompt) + len(target)]
            if len(values) != len(target) or any(v is None for v in values):
                raise GamioError("engine=openai: the inference server gave no prompt log-probabilities (echo with "
                                 "logprobs); score with engine=hf or engine=vllm")
            return -float(sum(values))

        return list(self.pool.map(one, pairs))

    def health(self) -> dict:
        """{"ok", "state", "models"}: whether the server answers {base_url}/models now (cached for a second)."""
        now = time.monotonic()
        if self._health is not None and now - self._health[0] < HEALTH_CACHE_S:
            return self._health[1]
        try:
            models = self._models(self.health_timeout_s)
            missing = self.remote_model and self.remote_model not in models
            state = {"ok": not missing, "models": models,
                     "state": f"does not serve engine.model={self.remote_model}" if missing else "ok"}
        except (_Retry, RemoteError) as exc:
            state = {"ok": False, "state": f"unreachable: {exc}", "models": []}
        self._health = (time.monotonic(), state)
        return state

    def _models(self, timeout_s: float) -> list[str]:
        import requests

        try:
            response = self.session.get(f"{self.base_url}/models", headers=self.headers, timeout=timeout_s)
        except requests.Timeout:
            raise _Retry(f"no answer within {timeout_s:g} s") from None
        except requests.ConnectionError as exc:
            raise _Retry(_connection_problem(exc)) from None
        if response.status_code != 200:
            raise RemoteError(f"HTTP {response.status_code} {_reason(response)}")
        try:
            return [str(m["id"]) for m in response.json().get("data", [])]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise RemoteError("its model list cannot be read") from None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.session.close()


def _choice(answer: dict) -> dict:
    if "error" in answer and not answer.get("choices"):
        raise RemoteError(f"the inference server answered an error: {str(answer['error'])[:200]}")
    return answer["choices"][0]


def _reason(response) -> str:
    return (response.reason or "").strip()[:100]


def _check_deadline(deadline: float, timeout_s: float) -> None:
    if time.monotonic() > deadline:
        raise _Retry(f"no complete answer within {timeout_s:g} s")


def _read(response, deadline: float, timeout_s: float) -> bytes:
    """The whole body, but never past the deadline (a server may trickle bytes forever)."""
    chunks = []
    for chunk in response.iter_content(65536):
        _check_deadline(deadline, timeout_s)
        chunks.append(chunk)
    return b"".join(chunks)


def _connection_problem(exc: Exception) -> str:
    """requests' connection errors name the host and port: players read only what went wrong."""
    text = str(exc)
    for words, said in (("refused", "connection refused"), ("reset", "connection reset"),
                        ("RemoteDisconnected", "connection closed by the server"),
                        ("Name or service not known", "unknown host"), ("timed out", "connection timed out")):
        if words in text:
            return said
    return "cannot connect"
