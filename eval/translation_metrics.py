"""BLEU and chrF of the translators in use, on the parallel set, with sacrebleu (no network, no hub metrics).

A ru->en translator is scored on the Russian sentences against their English originals, an en->ru one the
other way round. Corpus-level scores with sacrebleu's defaults (BLEU 13a tokenisation, chrF n=6, beta=2), so
they match numbers published with sacrebleu. Note: the offline `tiny` Marian models are trained on this very
set, so their scores show the pipeline works, not how well they would translate new text.
"""
from __future__ import annotations

import time
from typing import Sequence

from eval.eval_sets import ParallelPair


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
    import sacrebleu

    bleu = sacrebleu.corpus_bleu(list(hypotheses), [list(references)])
    chrf = sacrebleu.corpus_chrf(list(hypotheses), [list(references)])
    return {"bleu": float(bleu.score), "chrf": float(chrf.score)}


def score_translator(translator, pairs: Sequence[ParallelPair], direction: str) -> tuple[dict, list[str], float]:
    """(metrics, hypotheses, seconds) for one translator on the parallel pairs."""
    sources = [p.ru if direction == "ru-en" else p.en for p in pairs]
    references = [p.en if direction == "ru-en" else p.ru for p in pairs]
    started = time.perf_counter()
    hypotheses = translator.translate(sources)
    seconds = time.perf_counter() - started
    metrics = corpus_scores(hypotheses, references)
    metrics.update(direction=direction, pairs=len(pairs))
    return metrics, hypotheses, seconds
