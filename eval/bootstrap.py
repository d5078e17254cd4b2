"""Uncertainty of every report number: a seeded bootstrap that resamples *stories*, and paired comparisons.

Why stories, not samples: the samples of one story share its world, its history and its style, so they are not
independent draws; resampling samples would pretend a test set of 34 turns from one story is 34 independent
observations and give intervals far too narrow. Each resample is two-stage (a cluster bootstrap): it draws the
set's stories with replacement (as many as the set has), then, for each drawn story, as many of its items with
replacement as it has. The first stage carries the variation between stories, the second the variation between
the turns of a story. A metric is then recomputed from the drawn items' own statistics (sums, so a corpus-level
ratio such as bits/char stays a ratio of sums).

    interval     the 2.5th and 97.5th percentiles of the metric over the resamples (percentile bootstrap, 95%)
    comparison   model B against the reference A on the *same items*: the same resample draws for both, so the
                 story-to-story variation they share cancels out; delta = B - A, its percentile interval, and a
                 two-sided p-value: twice the smaller tail share of resampled deltas at or beyond 0, with the
                 usual +1 correction (p is never 0 and never above 1).

What the interval does not cover: with k stories it can only reflect the variation between those k stories; with
fewer than MIN_STORIES the report warns. With one story only the turn-to-turn variation of that story is left, so
the interval is far too optimistic about other stories (the warning says so). It also does not cover the sampling of replies (one draw per
prompt and preset) beyond what the prompts' spread shows.

The draws depend only on (seed, set name, story ids), so two runs give the same intervals to the bit, and every
model of a set is resampled with the same draws.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

MIN_STORIES = 5
LEVEL = 95

# A metric over a resample: item draw counts (resamples x items) -> one value per resample.
Statistic = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class StoryResamples:
    """The draws of one set: how often each item is taken in each resample (row 0 is the full set, once each)."""
    counts: np.ndarray  # (1 + resamples, items), int
    stories: int

    @property
    def full(self) -> np.ndarray:
        return self.counts[:1]

    @property
    def resampled(self) -> np.ndarray:
        return self.counts[1:]


def story_resamples(story_of_item: Sequence[str], resamples: int, seed: int, set_name: str) -> StoryResamples:
    """Seeded story-level draws for the items of one set, given each item's story id."""
    stories = sorted(set(story_of_item))
    index = {story: i for i, story in enumerate(stories)}
    item_story = np.array([index[s] for s in story_of_item], dtype=np.int64)
    # The seed of the draws: the report seed, the set and its stories (never Python's per-process hash()).
    digest = hashlib.sha256("\0".join([str(seed), set_name, *stories]).encode("utf-8")).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
    counts = np.zeros((resamples, len(item_story)), dtype=np.int64)
    if stories:
        # Stage 1: how often each story is drawn; stage 2: that many times its size, drawn among its items.
        story_counts = rng.multinomial(len(stories), [1 / len(stories)] * len(stories), size=resamples)
        for s in range(len(stories)):
            members = np.flatnonzero(item_story == s)
            counts[:, members] = rng.multinomial(story_counts[:, s] * len(members),
                                                 [1 / len(members)] * len(members))
    full = np.ones((1, len(item_story)), dtype=np.int64)
    return StoryResamples(counts=np.vstack([full, counts]), stories=len(stories))


def ratio(numerator: Sequence[float], denominator: Sequence[float] | None = None) -> Statistic:
    """sum(numerator) / sum(denominator) over the drawn items (denominator None: the number of items drawn)."""
    num = np.asarray(numerator, dtype=np.float64)
    den = np.ones_like(num) if denominator is None else np.asarray(denominator, dtype=np.float64)

    def statistic(counts: np.ndarray) -> np.ndarray:
        top, bottom = counts @ num, counts @ den
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1), np.nan)

    return statistic


def mapped(statistic: Statistic, function: Callable[[np.ndarray], np.ndarray]) -> Statistic:
    """A statistic passed through `function` (e.g. perplexity = exp(nats per token))."""
    return lambda counts: function(statistic(counts))


def per_row(function: Callable[[np.ndarray], float]) -> Statistic:
    """A statistic that is no sum (distinct n-grams, chrF, BLEU): `function(item counts)` per resample."""
    return lambda counts: np.array([function(row) for row in counts], dtype=np.float64)


def _percentiles(values: np.ndarray) -> list[float] | None:
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    tail = (100 - LEVEL) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return [float(lo), float(hi)]


def interval(statistic: Statistic, draws: StoryResamples) -> list[float] | None:
    """The 95% percentile interval of a metric (None when it is undefined on every resample)."""
    return _percentiles(statistic(draws.resampled))


def paired(candidate: Statistic, reference: Statistic, draws: StoryResamples) -> dict:
    """{delta, ci95, p_value} of candidate - reference on the same items and the same draws."""
    delta = float(candidate(draws.full)[0] - reference(draws.full)[0])
    deltas = candidate(draws.resampled) - reference(draws.resampled)
    deltas = deltas[np.isfinite(deltas)]
    if not np.isfinite(delta) or not len(deltas):
        return {"delta": None, "ci95": None, "p_value": None}
    n = len(deltas)
    below = (np.count_nonzero(deltas <= 0) + 1) / (n + 1)
    above = (np.count_nonzero(deltas >= 0) + 1) / (n + 1)
    return {"delta": delta, "ci95": _percentiles(deltas), "p_value": float(min(1.0, 2 * min(below, above)))}
