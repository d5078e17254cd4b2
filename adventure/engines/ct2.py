"""The CTranslate2 engine: the story model converted once (adventure/engines/ct2_models.py), decoded in C++.

How each GenerationSettings field maps to `Generator.generate_batch`:
    max_new_tokens       max_length, with include_prompt_in_result=False (the prompt is forwarded at once)
    do_sample            false: sampling_topk=1 (greedy, or beam search with num_beams > 1)
    temperature/top_k/top_p   sampling_temperature / sampling_topk (0: no limit) / sampling_topp, when sampling
    num_beams            beam_size; with do_sample that is beam sampling, as the seed's preset asks
    repetition_penalty   repetition_penalty. CTranslate2 penalises the tokens of its decoding loop: the new
                         tokens (and a batch's prompt tokens beyond its shortest prompt, which it feeds one by
                         one); transformers also penalises every prompt token. Same setting, milder effect.
    bad_words_ids        suppress_sequences, spelled as the tokenizer's token strings
    stop_strings         matched in each row's decoded new text: with num_beams=1 a per-token callback stops the
                         row as soon as one appears; beam search has no per-token callback in CTranslate2, so a
                         beam row is cut after the fact. Either way the text is cut before the stop string.
Rows are decoded like the hf engine's (adventure.engines.base.finish_row): up to EOS, special tokens skipped.

Batches: CTranslate2 forwards a batch's prompts at once only up to the shortest one and feeds the rest token by
token, one decoding step each. So rows whose prompt lengths differ by more than max_new_tokens (where that would
cost more steps than a second call) are generated in separate calls, shortest first (see length_groups).

Seeds: CTranslate2 seeds the sampler of each of its worker threads from the global seed the first time that thread
samples, and never again. So `seed` fixes the first call of a freshly loaded engine and, through it, the whole
sequence of calls that follows (a rerun of the same calls gives the same text: eval reports stay byte-identical);
a later call's seed changes nothing, and a row's sample depends on the calls made before it.

Streaming: `generate(..., on_progress=f)` calls f(row, the row's token ids so far) for every new token of every row
(row: the index in `prompts`), as it is generated when num_beams=1; beam search has no per-token callback in
CTranslate2, so its rows are reported once, after the batch (the chosen hypothesis). When f returns true, that row
stops at once (num_beams=1: a player stopped the turn; the other rows go on).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Sequence

from adventure.engines.base import Generation, Progress, finish_row, first_stop
from adventure.engines.ct2_models import converted_model, ct2_device, local_folder, resolve_compute_type
from adventure.generation import GenerationSettings
from adventure.models import context_length, load_tokenizer, model_folder_hint, resolve_model_spec

log = logging.getLogger(__name__)
OnToken = Callable[[int, int], None]


class CT2Engine:
    name = "ct2"

    def __init__(self, generator, tokenizer, context: int, description: str):
        self.generator, self.tokenizer, self.context_length = generator, tokenizer, context
        self.description = description

    @classmethod
    def load(cls, cfg, spec: str, artifacts: Path, *, option: str = "model") -> "CT2Engine":
        import ctranslate2
        from transformers import AutoConfig

        device, index = ct2_device(str(cfg.device), "engine")
        compute_type = resolve_compute_type(str(cfg.compute_type), device, "engine")
        source = resolve_model_spec(spec, artifacts)
        folder = local_folder(source.location, source.is_local, model_folder_hint(option, source.location))
        tokenizer = load_tokenizer(source, option)
        model_dir = converted_model(folder, compute_type, artifacts)
        generator = ctranslate2.Generator(str(model_dir), device=device, device_index=index,
                                          compute_type=compute_type, intra_threads=int(cfg.threads or 0),
                                          inter_threads=int(cfg.inter_threads))
        log.info("ct2 engine: %s on %s (%s)", source.location, cfg.device, compute_type)
        return cls(generator, tokenizer, context_length(AutoConfig.from_pretrained(folder)),
                   f"ct2 {compute_type} on {device}")

    # ---- generation ----------------------------------------------------------------------------------------

    def options(self, settings: GenerationSettings) -> dict:
        """generate_batch keyword arguments for `settings` (see the module docstring)."""
        sampling = {"sampling_topk": settings.top_k, "sampling_topp": settings.top_p,
                    "sampling_temperature": settings.temperature} if settings.do_sample else {"sampling_topk": 1}
        suppress = [self.tokenizer.convert_ids_to_tokens(list(ids)) for ids in settings.bad_words_ids]
        return dict(sampling, max_length=settings.max_new_tokens, beam_size=settings.num_beams,
                    repetition_penalty=settings.repetition_penalty, include_prompt_in_result=False,
                    suppress_sequences=suppress or None)

    def generate(self, prompts: Sequence[Sequence[int]], settings: GenerationSettings, *,
                 seed: int | None = None, on_progress: Progress | None = None) -> list[Generation]:
        import ctranslate2

        on_token = None
        if on_progress is not None:
            so_far: dict[int, list[int]] = {}

            def on_token(row: int, token_id: int) -> bool:
                so_far.setdefault(row, []).append(token_id)
                return bool(on_progress(row, list(so_far[row])))  # true: the caller wants no more of this row

        if seed is not None:
            ctranslate2.set_random_seed(seed)  # takes effect only for a worker thread that has not sampled yet
        out: list[Generation | None] = [None] * len(prompts)
        for rows in length_groups([len(p) for p in prompts], settings.max_new_tokens):
            for row, generation in zip(rows, self._generate([prompts[i] for i in rows], settings, rows, on_token)):
                out[row] = generation
        return out  # type: ignore[return-value]

    def _generate(self, prompts, settings: GenerationSettings, rows: list[int], on_token: OnToken | None):
        # An empty prompt still needs a start token: GPT-2 starts a text after <|endoftext|>.
        start = [self.tokenizer.eos_token] if self.tokenizer.eos_token else []
        tokens = [self.tokenizer.convert_ids_to_tokens(list(p)) or start for p in prompts]
        streamed = settings.num_beams == 1 and bool(on_token or settings.stop_strings)
        callback = RowStopper(self.tokenizer, settings.stop_strings, rows, on_token) if streamed else None
        results = self.generator.generate_batch(tokens, callback=callback, **self.options(settings))
        finished = [finish_row(self.tokenizer, r.sequences_ids[0], settings.stop_strings) for r in results]
        if on_token and not streamed:
            for row, result, generation in zip(rows, results, finished):
                for token_id in result.sequences_ids[0][: generation.new_tokens]:
                    on_token(row, token_id)
        return finished

    # ---- likelihood ----------------------------------------------------------------------------------------

    def score(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], *, batch_size: int = 8) -> list[float]:
        """Summed NLL (nats) of each pair's target given its prompt, from CTranslate2's own scoring (its log
        probabilities of every token after the first, in the engine's compute type)."""
        sequences = [self.tokenizer.convert_ids_to_tokens(list(p) + list(t)) for p, t in pairs]
        results = self.generator.score_batch(sequences, max_batch_size=batch_size, max_input_length=0)
        # log_probs[k] is the log probability of token k + 1: the target starts at index len(prompt) - 1.
        return [-float(sum(r.log_probs[max(len(p) - 1, 0):])) for r, (p, _t) in zip(results, pairs)]

    def close(self) -> None:
        self.generator = None


def length_groups(lengths: Sequence[int], spread: int) -> list[list[int]]:
    """Row indices grouped shortest first, each group's lengths within `spread` of its shortest (see the module
    docstring: a longer spread costs more decoding steps than a separate call). One-token prompts (an empty prompt
    gets one) are grouped only with each other: CTranslate2 4.x returns the longer rows' prompt tokens with their
    result when a batch's shortest prompt is one token long."""
    lengths = [max(n, 1) for n in lengths]
    groups: list[list[int]] = []
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        shortest = lengths[groups[-1][0]] if groups else 0
        if groups and lengths[i] - shortest <= spread and (shortest > 1 or lengths[i] == 1):
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


class RowStopper:
    """The per-token callback of a greedy / sampled batch: reports each new token, and stops a row once its
    decoded text holds a stop string (CTranslate2 stops a batch index when its callback returns True)."""

    def __init__(self, tokenizer, stop_strings: Sequence[str], rows: list[int], on_token: OnToken | None):
        self.tokenizer, self.stop_strings, self.rows, self.on_token = tokenizer, list(stop_strings), rows, on_token
        self.ids: dict[int, list[int]] = {}

    def __call__(self, step) -> bool:
        if step.token_id == self.tokenizer.eos_token_id:  # the end, not text (finish_row drops it too)
            return False
        ids = self.ids.setdefault(step.batch_id, [])
        ids.append(step.token_id)
        if self.on_token is not None and self.on_token(self.rows[step.batch_id], step.token_id):
            return True  # the caller stopped this row (a player cancelled the turn)
        if not self.stop_strings:
            return False
        return first_stop(self.tokenizer.decode(ids, skip_special_tokens=True), self.stop_strings) is not None
