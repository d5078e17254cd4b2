"""Likelihood of the gold result given the prompt: perplexity and bits per character.

For each sample the prompt is fitted to the model's context by the shared budget (leaving room for the
result, as a game turn would), and the model scores the result's tokens after it:

    nll          = - sum over result tokens of ln p(token | prompt, earlier result tokens)   (nats)
    perplexity   = exp(total nll / total result tokens)        per the model's own tokens
    bits_per_char = total nll / ln 2 / total result characters

Perplexity depends on the tokenizer (a bigger vocabulary has fewer, harder tokens); bits per character does
not, which is what makes models with different vocabularies comparable. Totals are summed over the whole set
before dividing (a long result weighs more than a short one), like a corpus-level perplexity. The division is
done by the `bits_per_char` evaluate module (eval/metrics/, loaded by eval/text_metrics.py), the same code a
researcher can run outside gamio.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from adventure.budget import build_prompt, encode_text
from adventure.story_format import Sample
from eval.text_metrics import likelihood_metrics


@dataclass(frozen=True)
class ScoredText:
    prompt_ids: list[int]
    target_ids: list[int]
    characters: int  # characters of the (possibly shortened) result the target ids encode
    target_cut: bool  # the result alone did not fit the context and was shortened


@dataclass(frozen=True)
class Likelihood:
    """Per scored sample (in input order): summed NLL of its result (nats), result tokens, result characters."""
    item_nll_nats: tuple[float, ...]
    item_tokens: tuple[int, ...]
    item_characters: tuple[int, ...]
    targets_cut: int

    @property
    def samples(self) -> int:
        return len(self.item_nll_nats)

    @property
    def tokens(self) -> int:
        return sum(self.item_tokens)

    @property
    def characters(self) -> int:
        return sum(self.item_characters)

    @property
    def perplexity(self) -> float:
        return self.metrics()["perplexity"]

    @property
    def bits_per_char(self) -> float:
        return self.metrics()["bits_per_char"]

    def metrics(self) -> dict:
        return likelihood_metrics(self.item_nll_nats, self.item_tokens, self.item_characters, self.targets_cut)


def prepare(tokenizer, sample: Sample, context_length: int, max_turns: int = 10) -> ScoredText:
    """Prompt and result ids for one sample; the result keeps at most 3/4 of the context."""
    target = sample.target
    target_ids = encode_text(tokenizer, target)
    limit = max(1, context_length * 3 // 4)
    cut = len(target_ids) > limit
    if cut:  # the longest prefix of the result text that fits, so characters and tokens stay in step
        lo, hi = 0, len(target)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if len(encode_text(tokenizer, target[:mid])) <= limit else (lo, mid - 1)
        target = target[:lo]
        target_ids = encode_text(tokenizer, target)
    prompt = build_prompt(tokenizer, sample.world, sample.history, sample.action, context_length=context_length,
                          max_new_tokens=len(target_ids), max_turns=max_turns)
    return ScoredText(prompt.input_ids, target_ids, len(target), cut)


def likelihood(engine, samples: Sequence[Sample], *, batch_size: int = 8, max_turns: int = 10) -> Likelihood:
    """Corpus-level likelihood of the gold results of `samples`, scored by `engine` (adventure/engines: each
    engine scores with its own model, e.g. ct2 in its compute type; the report names the engine)."""
    items = [prepare(engine.tokenizer, s, engine.context_length, max_turns) for s in samples]
    items = [i for i in items if i.target_ids]  # an empty result has nothing to score
    nll = engine.score([(i.prompt_ids, i.target_ids) for i in items], batch_size=batch_size)
    return Likelihood(item_nll_nats=tuple(nll), item_tokens=tuple(len(i.target_ids) for i in items),
                      item_characters=tuple(i.characters for i in items),
                      targets_cut=sum(i.target_cut for i in items))
