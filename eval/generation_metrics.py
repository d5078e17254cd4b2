"""Generation on the play-through set: what a player would read, and how long each turn takes.

Each prompt is one game turn through adventure/turns.py (the server's own pipeline), generated on its own with a
seed derived from the report seed and the prompt's index, so with engine=hf an output never depends on its neighbours
or on the order of the run (engine=ct2 seeds its sampler once per model, at the first prompt: its outputs follow the
run's order, which is fixed, so reports stay byte-identical). English models go through their translators inside the timed turn, as in the game. Text metrics are measured on the
cleaned, player-facing text; wall-clock numbers are returned apart (they go under `timing` in the report).

    mean_length          mean characters of a reply
    distinct_1/2         unique word uni/bigrams / all word uni/bigrams, over all replies (variety)
    repeated_4gram_rate  word 4-grams that repeat an earlier 4-gram of the same reply / all 4-grams (loops)
    cyrillic_share       Cyrillic letters / all letters (a Russian game should read Russian)
    cut_action_share     replies in which cleanup cut an invented `> action` line
(computed by eval/text_metrics.py with the evaluate modules in eval/metrics/)
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from typing import Sequence

from adventure.generation import GenerationSettings
from adventure.steering import NO_STEERING, Steering
from adventure.story_format import Sample
from adventure.turns import TurnFailure, TurnInput

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Turn:
    text: str  # the reply as the player reads it
    model_text: str  # the cleaned reply in the model's language
    cut_action: bool
    new_tokens: int
    seconds: float


def percentile(values: Sequence[float], q: float) -> float:
    """adventure.stats.percentile (q in 0..100, as /healthz and the benches); 0.0 without turns, like the rest."""
    from adventure.stats import percentile as shared_percentile

    return shared_percentile(values, q) or 0.0


def timing_metrics(turns: Sequence[Turn]) -> dict:
    seconds = [t.seconds for t in turns]
    total = sum(seconds)
    return {"latency_p50_s": percentile(seconds, 50), "latency_p95_s": percentile(seconds, 95),
            "tokens_per_s": sum(t.new_tokens for t in turns) / total if total > 0 else 0.0, "seconds": total}


def play_turns(pipeline, samples: Sequence[Sample], settings: GenerationSettings, seed: int,
               max_turns: int = 10, steering: Steering = NO_STEERING) -> list[Turn]:
    """One reply per play-through prompt with `settings`, each through the game's own turn pipeline.

    English models get the English shadow of each game's world and history first, untimed, as the game stores
    it; the timed turn then translates the new action, generates and translates the reply back, as a game turn
    does."""
    from adventure.errors import GamioError
    from eval.subjects import turn_inputs

    inputs = [replace(t, settings=settings, steering=steering) for t in turn_inputs(list(samples), max_turns)]
    if pipeline.english:
        sides = pipeline.model_side(inputs)
        inputs = [replace(i, world_en=s.world_en, history_en=s.history_en, steering_en=s.steering_en)
                  if isinstance(s, TurnInput) else i
                  for i, s in zip(inputs, sides)]
    turns = []
    for index, turn in enumerate(inputs):
        started = time.perf_counter()
        out = pipeline.run([turn], seed=seed * 1000 + index)[0]
        seconds = time.perf_counter() - started
        if isinstance(out, TurnFailure):
            raise GamioError(f"play-through prompt {index} ({settings.name}) failed: {out.reason}")
        turns.append(Turn(text=out.result, model_text=out.model_text, cut_action=out.cut_action,
                          new_tokens=out.new_tokens, seconds=seconds))
    return turns
