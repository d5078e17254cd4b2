"""Per-reply statistics of the play-through, and each generation metric as a statistic the bootstrap can resample.

Every reply metric of the report is a corpus-level number (distinct-n over all replies, a rate over all n-grams,
chrF over the whole set). To put an interval on it, eval/bootstrap.py recomputes it on resampled sets of replies;
for that each reply keeps the pieces the metric is built from (its n-grams, its letter counts, its chrF
statistics). The words, n-grams, letters and the loop test are taken from the evaluate modules themselves
(eval/metrics/), so the resampled numbers and the reported ones come from one implementation (a test pins that
the full set gives the reported values).

    mean_length, mean_new_tokens           characters and new tokens per reply
    empty_share, cut_action_share          replies left empty / whose invented `> action` was cut
    looping_share                          replies stuck in a loop (eval/metrics/looping)
    distinct_1, distinct_2                 unique word uni/bigrams / all, over all replies
    repeated_4gram_rate                    repeated word 4-grams within a reply / all 4-grams
    cyrillic_share                         Cyrillic letters / all letters
    chrf                                   sacrebleu chrF (n=6, beta=2) of the replies against the gold replies
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cache
from typing import Sequence

import numpy as np

from eval.bootstrap import Statistic, per_row, ratio
from eval.text_metrics import load_metric

# A preset whose replies are more than this share empty has failed: it never wins a column.
FAILED_EMPTY_SHARE = 0.5


@cache
def metric_module(name: str):
    """The Python module of the evaluate metric eval/metrics/<name> (its helper functions)."""
    return sys.modules[type(load_metric(name)).__module__]


@cache
def _chrf():
    from sacrebleu.metrics import CHRF

    return CHRF()


@dataclass(frozen=True)
class ReplyStats:
    text: str
    gold: str
    new_tokens: int
    cut_action: bool
    looping: bool
    unigrams: frozenset
    bigrams: frozenset
    unigram_count: int
    bigram_count: int
    repeated_4grams: int
    all_4grams: int
    cyrillic_letters: int
    letters: int
    chrf_stats: tuple[int, ...]  # sacrebleu's sufficient statistics of this reply against its gold reply

    def item_fields(self) -> dict:
        """What items.jsonl keeps of a reply (besides the reply and gold texts)."""
        return {"length": len(self.text), "new_tokens": self.new_tokens, "empty": not self.text.strip(),
                "cut_action": self.cut_action, "looping": self.looping, "repeated_4grams": self.repeated_4grams,
                "all_4grams": self.all_4grams, "cyrillic_letters": self.cyrillic_letters, "letters": self.letters,
                "chrf": _chrf().sentence_score(self.text, [self.gold]).score}


def reply_stats(text: str, gold: str, new_tokens: int, cut_action: bool) -> ReplyStats:
    distinct, repeated = metric_module("distinct_n"), metric_module("repeated_ngrams")
    cyrillic, looping = metric_module("cyrillic_share"), metric_module("looping")
    words = distinct.words(text)
    unigrams, bigrams = distinct.ngrams(words, 1), distinct.ngrams(words, 2)
    fourgrams = repeated.ngrams(repeated.words(text), 4)
    return ReplyStats(text=text, gold=gold, new_tokens=int(new_tokens), cut_action=bool(cut_action),
                      looping=bool(looping.loops(text)), unigrams=frozenset(unigrams), bigrams=frozenset(bigrams),
                      unigram_count=len(unigrams), bigram_count=len(bigrams),
                      repeated_4grams=len(fourgrams) - len(set(fourgrams)), all_4grams=len(fourgrams),
                      cyrillic_letters=len(cyrillic._CYRILLIC.findall(text)),
                      letters=len(cyrillic._LETTER.findall(text)),
                      chrf_stats=tuple(_chrf()._extract_corpus_statistics([text], [[gold]])[0]))


def _distinct(sets: Sequence[frozenset], counts: Sequence[int]) -> Statistic:
    """Distinct-n of the replies a resample draws, each drawn reply counted once: a reply drawn twice would add
    n-grams but no new ones, pulling every resample below the reported value (a bias, not uncertainty)."""
    sizes = np.asarray(counts, dtype=np.float64)

    def value(drawn: np.ndarray) -> float:
        present = drawn > 0
        total = float(present @ sizes)
        union = frozenset().union(*(s for s, k in zip(sets, present) if k))
        return len(union) / total if total else 0.0

    return per_row(value)


def corpus_chrf(stats_rows: np.ndarray, drawn: np.ndarray) -> float:
    """chrF of a (re)sampled set from its replies' sufficient statistics (as sacrebleu's own paired bootstrap)."""
    return float(_chrf()._compute_score_from_stats(list(drawn @ stats_rows)).score) if drawn.any() else 0.0


def statistics(replies: Sequence[ReplyStats]) -> dict[str, Statistic]:
    """Each generation metric of the report as a function of how often each reply is drawn."""
    texts_empty = [float(not r.text.strip()) for r in replies]
    chrf_rows = np.asarray([r.chrf_stats for r in replies], dtype=np.float64).reshape(len(replies), -1)

    def zero_when_empty(statistic: Statistic) -> Statistic:  # the evaluate modules give 0.0 for "nothing to count"
        return lambda drawn: np.nan_to_num(statistic(drawn), nan=0.0)

    return {
        "mean_length": ratio([len(r.text) for r in replies]),
        "mean_new_tokens": ratio([r.new_tokens for r in replies]),
        "empty_share": ratio(texts_empty),
        "distinct_1": _distinct([r.unigrams for r in replies], [r.unigram_count for r in replies]),
        "distinct_2": _distinct([r.bigrams for r in replies], [r.bigram_count for r in replies]),
        "repeated_4gram_rate": zero_when_empty(ratio([r.repeated_4grams for r in replies],
                                                     [r.all_4grams for r in replies])),
        "cyrillic_share": zero_when_empty(ratio([r.cyrillic_letters for r in replies],
                                                [r.letters for r in replies])),
        "cut_action_share": ratio([float(r.cut_action) for r in replies]),
        "looping_share": ratio([float(r.looping) for r in replies]),
        "chrf": per_row(lambda drawn: corpus_chrf(chrf_rows, drawn)),
    }


def generation_metrics(replies: Sequence[ReplyStats]) -> dict:
    """The point values of a preset's replies: the evaluate modules' numbers, chrF from sacrebleu, and `failed`."""
    from eval.text_metrics import text_metrics

    texts = [r.text for r in replies]
    metrics = text_metrics(texts, [r.new_tokens for r in replies], [r.cut_action for r in replies])
    metrics["looping_share"] = load_metric("looping").compute(predictions=texts)["looping_share"]
    metrics["chrf"] = corpus_chrf(np.asarray([r.chrf_stats for r in replies], dtype=np.float64).reshape(
        len(replies), -1), np.ones(len(replies))) if replies else 0.0
    metrics["failed"] = metrics["empty_share"] > FAILED_EMPTY_SHARE
    return metrics
