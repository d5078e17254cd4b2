"""The report's metrics, computed with the `evaluate` modules in eval/metrics/ (the one place gamio loads them).

The modules are self-contained so researchers can load them outside gamio; gamio loads them the same way, by
absolute path, so the report and a researcher's numbers come from one implementation. Each module is loaded
once per process (`evaluate.load` costs an import of evaluate, seconds, then milliseconds per module) and kept
in memory: `keep_in_memory=True` means computing writes no arrow cache files, so two eval runs at once never
collide on them. Loading copies the module script into the Hugging Face modules cache (~/.cache/huggingface by
default), never into the repository, and reads nothing from the network.

    text_metrics        play-through replies: lengths, empty replies, distinct-1/2, repeated 4-grams,
                        Cyrillic share, replies whose invented `> action` line was cut
    likelihood_metrics  test split: perplexity, bits per character and their totals
"""
from __future__ import annotations

import functools
import logging
import time
from pathlib import Path
from typing import Sequence

log = logging.getLogger(__name__)

METRICS_DIR = Path(__file__).resolve().parent / "metrics"


@functools.cache
def load_metric(name: str, config_name: str | None = None):
    """The evaluate module eval/metrics/<name>, loaded once per process."""
    import evaluate

    started = time.perf_counter()
    module = evaluate.load(str(METRICS_DIR / name), config_name, keep_in_memory=True)
    log.debug("loaded metric %s (%s) in %.2f s", name, config_name or "default", time.perf_counter() - started)
    return module


def text_metrics(texts: Sequence[str], new_tokens: Sequence[int], cut_action: Sequence[bool]) -> dict:
    """Metrics of the replies to the play-through prompts: `texts` as the player reads them, the number of new
    tokens the model generated for each, and whether cleanup cut an invented `> action` line from it."""
    texts = list(texts)
    if not len(texts) == len(new_tokens) == len(cut_action):
        raise ValueError(f"text_metrics: {len(texts)} texts, {len(new_tokens)} token counts, "
                         f"{len(cut_action)} cut flags; one of each per reply")
    n = max(1, len(texts))
    return {"samples": len(texts),
            "mean_length": sum(len(t) for t in texts) / n,
            "mean_new_tokens": sum(new_tokens) / n,
            "empty_share": sum(not t.strip() for t in texts) / n,
            **load_metric("distinct_n").compute(predictions=texts, n=[1, 2]),
            **load_metric("repeated_ngrams").compute(predictions=texts, n=4),
            **load_metric("cyrillic_share").compute(predictions=texts),
            "cut_action_share": sum(cut_action) / n}


def likelihood_metrics(nll_nats: Sequence[float], tokens: Sequence[int], characters: Sequence[int],
                       targets_cut: int) -> dict:
    """Corpus-level likelihood of scored texts, one value per text in each sequence: summed NLL (nats), scored
    tokens, characters; `targets_cut` counts the texts shortened to fit the context."""
    scores = load_metric("bits_per_char").compute(nll_nats=list(nll_nats), tokens=list(tokens),
                                                  characters=list(characters))
    return {"perplexity": scores["perplexity"], "bits_per_char": scores["bits_per_char"],
            "nll_bits": scores["nll_bits"], "tokens": scores["tokens"], "characters": scores["characters"],
            "samples": len(nll_nats), "targets_cut": targets_cut}
