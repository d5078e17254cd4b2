"""Generation on the play-through set: what a player would read, and how long each turn takes.

Each prompt is generated on its own (batch of one, as a game turn is), with a seed derived from the report seed
and the prompt's index, so an output never depends on its neighbours or on the order of the run. English
models go through their translators inside the timed turn, as in the game. Text metrics are measured on the
cleaned, player-facing text; wall-clock numbers are returned apart (they go under `timing` in the report).

    mean_length          mean characters of a reply
    distinct_1/2         unique word uni/bigrams / all word uni/bigrams, over all replies (variety)
    repeated_4gram_rate  word 4-grams that repeat an earlier 4-gram of the same reply / all 4-grams (loops)
    cyrillic_share       Cyrillic letters / all letters (a Russian game should read Russian)
    cut_action_share     replies in which cleanup cut an invented `> action` line
"""
from __future__ import annotations

import logging
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from adventure.budget import build_prompt
from adventure.generate import generate_results
from adventure.generation import GenerationSettings
from adventure.story_format import Sample

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w+")
_LETTER = re.compile(r"[^\W\d_]")
_CYRILLIC = re.compile(r"[\u0400-\u04FF]")


@dataclass(frozen=True)
class Turn:
    text: str  # the reply as the player reads it
    model_text: str  # the cleaned reply in the model's language
    cut_action: bool
    new_tokens: int
    seconds: float


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i: i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> float:
    grams = [g for t in texts for g in ngrams(words(t), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repeated_ngram_rate(texts: Sequence[str], n: int = 4) -> float:
    repeated = total = 0
    for text in texts:
        counts = Counter(ngrams(words(text), n))
        total += sum(counts.values())
        repeated += sum(c - 1 for c in counts.values())
    return repeated / total if total else 0.0


def cyrillic_share(texts: Sequence[str]) -> float:
    letters = sum(len(_LETTER.findall(t)) for t in texts)
    return sum(len(_CYRILLIC.findall(t)) for t in texts) / letters if letters else 0.0


def text_metrics(turns: Sequence[Turn]) -> dict:
    texts = [t.text for t in turns]
    n = max(1, len(turns))
    return {"samples": len(turns),
            "mean_length": sum(len(t) for t in texts) / n,
            "mean_new_tokens": sum(t.new_tokens for t in turns) / n,
            "empty_share": sum(not t.strip() for t in texts) / n,
            "distinct_1": distinct_n(texts, 1),
            "distinct_2": distinct_n(texts, 2),
            "repeated_4gram_rate": repeated_ngram_rate(texts, 4),
            "cyrillic_share": cyrillic_share(texts),
            "cut_action_share": sum(t.cut_action for t in turns) / n}


def percentile(values: Sequence[float], q: float) -> float:
    """adventure.stats.percentile (q in 0..100, as /healthz and the benches); 0.0 without turns, like the rest."""
    from adventure.stats import percentile as shared_percentile

    return shared_percentile(values, q) or 0.0


def timing_metrics(turns: Sequence[Turn]) -> dict:
    seconds = [t.seconds for t in turns]
    total = sum(seconds)
    return {"latency_p50_s": percentile(seconds, 50), "latency_p95_s": percentile(seconds, 95),
            "tokens_per_s": sum(t.new_tokens for t in turns) / total if total > 0 else 0.0, "seconds": total}


def play_turns(wrapped, samples: Sequence[Sample], settings: GenerationSettings, seed: int,
               max_turns: int = 10, progress=None) -> list[Turn]:
    """One reply per play-through prompt with `settings`; see the module docstring."""
    wrapped._english.clear()  # every setting pays the same translation cost in its timings
    turns = []
    for index, sample in enumerate(samples):
        started = time.perf_counter()
        side = wrapped.to_model_side([sample], max_turns)[0]
        prompt = build_prompt(wrapped.tokenizer, side.world, side.history, side.action,
                              context_length=wrapped.context_length, max_new_tokens=settings.max_new_tokens,
                              max_turns=max_turns)
        out = generate_results(wrapped.model, wrapped.tokenizer, [prompt.input_ids], settings,
                               seed=seed * 1000 + index)[0]
        text = wrapped.to_player_side([out.cleaned.text])[0] if out.cleaned.text else ""
        turns.append(Turn(text=text, model_text=out.cleaned.text, cut_action=out.cleaned.cut_action,
                          new_tokens=out.new_tokens, seconds=time.perf_counter() - started))
        if progress is not None:
            progress.update(1)
    return turns
