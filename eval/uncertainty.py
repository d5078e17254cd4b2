"""Intervals on every metric of `results`, and the paired comparisons with the recommended model.

The numbers of one model on one set come with the items they were computed from (scored samples, or replies);
eval/bootstrap.py resamples those items by story. Models are compared on the items both have (the same sample
ids, in the set's order), with the same draws, so a comparison is paired.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from eval.bootstrap import (MIN_STORIES, Statistic, StoryResamples, interval, mapped, paired, ratio,
                            story_resamples)
from eval.likelihood import ScoredItem
from eval.reply_stats import ReplyStats, statistics

CI_SUFFIX = "_ci95"


@dataclass(frozen=True)
class Scored:
    """What one model's numbers on one set (or one preset of the play-through) were computed from."""
    sample_ids: tuple[str, ...]
    story_ids: tuple[str, ...]
    statistics: Callable[[Sequence[int]], dict[str, Statistic]]  # item positions -> {metric: statistic}

    def subset(self, sample_ids: Sequence[str]) -> dict[str, Statistic]:
        position = {s: i for i, s in enumerate(self.sample_ids)}
        return self.statistics([position[s] for s in sample_ids])


def likelihood_scored(items: Sequence[ScoredItem]) -> Scored:
    def stats(keep: Sequence[int]) -> dict[str, Statistic]:
        chosen = [items[i] for i in keep]
        out = {"bits_per_char": ratio([i.bits for i in chosen], [i.chars for i in chosen]),
               "perplexity": mapped(ratio([i.nll_nats for i in chosen], [i.tokens for i in chosen]), _exp),
               "nll_bits": lambda drawn, bits=np.asarray([i.bits for i in chosen]): drawn @ bits}
        if any(i.other_nll_nats is not None for i in chosen):  # items without another action count for neither
            swapped = [i.other_nll_nats is not None for i in chosen]
            out["action_following"] = ratio([(i.other_bits - i.bits) if s else 0.0 for i, s in zip(chosen, swapped)],
                                            [i.chars if s else 0 for i, s in zip(chosen, swapped)])
        return out

    return Scored(tuple(i.sample_id for i in items), tuple(i.story_id for i in items), stats)


def replies_scored(sample_ids: Sequence[str], story_ids: Sequence[str], replies: Sequence[ReplyStats]) -> Scored:
    return Scored(tuple(sample_ids), tuple(story_ids),
                  lambda keep: statistics([replies[i] for i in keep]))


def _exp(values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.exp(values)


class Bootstrap:
    """The draws of a report, made once per (set, items) and shared by every model and metric."""

    def __init__(self, resamples: int, seed: int):
        self.resamples, self.seed = resamples, seed
        self._draws: dict[tuple, StoryResamples] = {}

    def draws(self, set_name: str, story_ids: Sequence[str]) -> StoryResamples:
        key = (set_name, tuple(story_ids))
        if key not in self._draws:
            self._draws[key] = story_resamples(story_ids, self.resamples, self.seed, set_name)
        return self._draws[key]

    def with_intervals(self, set_name: str, metrics: dict, scored: Scored) -> dict:
        """`metrics` with `<metric>_ci95: [lo, hi]` after every metric that has a statistic."""
        draws = self.draws(set_name, scored.story_ids)
        stats = scored.subset(scored.sample_ids)
        out = {}
        for key, value in metrics.items():
            out[key] = value
            if key in stats:
                out[key + CI_SUFFIX] = interval(stats[key], draws)
        return out

    def compare(self, set_name: str, candidate: Scored, reference: Scored) -> dict:
        """{metric: {delta, ci95, p_value, items, stories}} of candidate - reference on their common items."""
        ref_ids = set(reference.sample_ids)
        common = [s for s in candidate.sample_ids if s in ref_ids]
        if not common:
            return {}
        story = dict(zip(candidate.sample_ids, candidate.story_ids))
        draws = self.draws(set_name, [story[s] for s in common])
        mine, theirs = candidate.subset(common), reference.subset(common)
        return {metric: dict(paired(mine[metric], theirs[metric], draws), items=len(common), stories=draws.stories)
                for metric in mine if metric in theirs}


def few_stories_warnings(sets: dict) -> list[str]:
    """A warning per set whose intervals rest on fewer than MIN_STORIES stories."""
    warnings = []
    for name, info in sets.items():
        stories = info.get("stories")
        if isinstance(stories, list) and len(stories) < MIN_STORIES:
            warnings.append(f"the {name} set has {len(stories)} stor{'y' if len(stories) == 1 else 'ies'} "
                            f"(< {MIN_STORIES}): its intervals only reflect the variation between "
                            f"{'turns of one story' if len(stories) == 1 else 'these stories'} and say little "
                            f"about new stories; use a dataset with more stories per split for a decision")
    return warnings
