"""Likelihood of the gold reply given the prompt: bits per character, perplexity, and action following.

Each sample is scored as the game would show it to the model: the prompt (world, last turns, `> action`) fitted
to the model's context by the shared budget, then the gold reply. The pair is tokenized exactly as
lm-evaluation-harness does (`TemplateLM._encode_pair`), so that `lm_eval` on gamio's exported task gives the same
numbers (eval/lm_eval_export.py): the prompt's trailing line break moves to the front of the scored text, and the
scored tokens are those of prompt + text after the prompt's own tokens. So a sample's bits are those of the reply
with the line break that opens it (the same for every model, so no model gains by it), per character of the reply:

    nll           = - sum over scored tokens of ln p(token | prompt, earlier tokens)          (nats)
    bits_per_char = total nll / ln 2 / total reply characters
    perplexity    = exp(total nll / total scored tokens)          per the model's own tokens

Fairness: bits/char compares models only if they score the same text. The reply is therefore cut by characters,
never by a model's tokens: to the longest prefix that every Russian-side model of the report can score within
3/4 of its context (and to `likelihood.max_chars`, if set), once, before any model scores it; so every
Russian-side model scores exactly the same characters. Totals are summed over the set before dividing (a long
reply weighs more than a short one); the division is done by the `bits_per_char` evaluate module (eval/metrics/).

Action following: the same gold reply scored after a randomly chosen *other* action of the same set (seeded, the
same for every model), minus the real one, in bits per character. A model that ignores the player's action gains
nothing from the real action (about 0); one that reads it scores the reply better after it (> 0).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

from adventure.budget import build_prompt, encode_text
from adventure.errors import GamioError
from adventure.story_format import Sample
from eval.eval_sets import sample_id
from eval.text_metrics import likelihood_metrics

# The reply may use at most this share of a model's context; the rest is left for the prompt.
REPLY_SHARE = 3 / 4


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) as lm-evaluation-harness encodes a loglikelihood request."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = encode_text(tokenizer, context + continuation)
    context_ids = encode_text(tokenizer, context)
    return context_ids, whole[len(context_ids):]


def _fits(tokenizer, context_length: int, text: str) -> bool:
    return len(encode_text(tokenizer, "\n" + text)) <= max(1, int(context_length * REPLY_SHARE))


def common_replies(samples: Sequence[Sample], models: Sequence[tuple[object, int]],
                   max_chars: int | None) -> list[str]:
    """The reply text every model in `models` ((tokenizer, context length) pairs) scores, per sample: the gold
    reply cut to `max_chars` characters, then to the longest prefix that fits every model (by characters)."""
    replies = []
    for sample in samples:
        reply = sample.target[:max_chars] if max_chars else sample.target
        for tokenizer, context_length in models:
            if _fits(tokenizer, context_length, reply):
                continue
            lo, hi = 0, len(reply)  # the longest prefix that fits: binary search over its length in characters
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if _fits(tokenizer, context_length, reply[:mid]) else (lo, mid - 1)
            reply = reply[:lo]
        replies.append(reply)
    return replies


def other_action_indices(samples: Sequence[Sample], seed: int) -> list[int | None]:
    """For each sample, a seeded random other sample of the set whose action differs (None if there is none)."""
    chosen = []
    for i, sample in enumerate(samples):
        others = [j for j, s in enumerate(samples) if s.action.strip() != sample.action.strip()]
        chosen.append(random.Random(f"{seed}:action_following:{sample_id(sample)}").choice(others)
                      if others else None)
    return chosen


@dataclass(frozen=True)
class ScoredItem:
    """One sample as one model scored it."""
    sample_id: str
    story_id: str
    chars: int  # characters of the scored reply (its opening line break is scored, not counted)
    tokens: int  # the model's tokens of that text
    nll_nats: float
    other_nll_nats: float | None = None  # the same text after another sample's action (action following)

    @property
    def bits(self) -> float:
        return self.nll_nats / 0.6931471805599453

    @property
    def other_bits(self) -> float | None:
        return None if self.other_nll_nats is None else self.other_nll_nats / 0.6931471805599453


def prompt_text(tokenizer, context_length: int, sample: Sample, reply: str, action: str, max_turns: int) -> str:
    """The prompt a sample's reply is scored after: the shared budget, leaving room for the reply."""
    room = len(encode_text(tokenizer, "\n" + reply)) + 1
    return build_prompt(tokenizer, sample.world, sample.history, action, context_length=context_length,
                        max_new_tokens=room, max_turns=max_turns).text


def _pairs(tokenizer, context_length: int, samples: Sequence[Sample], replies: Sequence[str],
           actions: Sequence[str], max_turns: int) -> tuple[list[tuple[list[int], list[int]]], list[int]]:
    """(context ids, scored ids) per sample, and the characters of each scored reply."""
    pairs, chars = [], []
    for sample, reply, action in zip(samples, replies, actions):
        prompt = prompt_text(tokenizer, context_length, sample, reply, action, max_turns)
        context_ids, scored_ids = encode_pair(tokenizer, prompt, reply)
        if len(context_ids) + len(scored_ids) > context_length:
            raise GamioError(f"sample {sample_id(sample)}: prompt and reply take "
                             f"{len(context_ids) + len(scored_ids)} tokens, more than the model's {context_length}")
        pairs.append((context_ids, scored_ids))
        chars.append(len(reply))
    return pairs, chars


def score_items(engine, samples: Sequence[Sample], replies: Sequence[str], *, batch_size: int = 8,
                max_turns: int = 10, other_actions: Sequence[str | None] | None = None) -> list[ScoredItem]:
    """Every sample's reply scored by `engine` (adventure/engines: each scores with its own model, e.g. ct2 in its
    compute type); with `other_actions` (one per sample, None: none), also after that action instead of the
    sample's own (action following). Samples whose reply is empty are skipped, for every model alike (the replies
    are common to all models)."""
    kept = [i for i, reply in enumerate(replies) if reply.strip()]
    samples, replies = [samples[i] for i in kept], [replies[i] for i in kept]
    tokenizer, context_length = engine.tokenizer, engine.context_length
    pairs, chars = _pairs(tokenizer, context_length, samples, replies, [s.action for s in samples], max_turns)
    nll = engine.score(pairs, batch_size=batch_size)
    other_nll: list[float | None] = [None] * len(samples)
    if other_actions is not None:
        rows = [(n, other_actions[i]) for n, i in enumerate(kept) if other_actions[i] is not None]
        alt, _ = _pairs(tokenizer, context_length, [samples[n] for n, _ in rows], [replies[n] for n, _ in rows],
                     [action for _, action in rows], max_turns)
        for (n, _), value in zip(rows, engine.score(alt, batch_size=batch_size)):
            other_nll[n] = float(value)
    return [ScoredItem(sample_id=sample_id(s), story_id=s.tree_id, chars=c, tokens=len(pair[1]),
                       nll_nats=float(v), other_nll_nats=o)
            for s, c, pair, v, o in zip(samples, chars, pairs, nll, other_nll)]


def likelihood_summary(items: Sequence[ScoredItem], cut: int) -> dict:
    """The corpus-level numbers of a model's scored items (`cut`: replies shortened to fit)."""
    metrics = likelihood_metrics([i.nll_nats for i in items], [i.tokens for i in items], [i.chars for i in items],
                                 cut)
    scored = [i for i in items if i.other_nll_nats is not None]
    if scored:
        chars = sum(i.chars for i in scored)
        metrics["action_following"] = (sum(i.other_bits for i in scored) - sum(i.bits for i in scored)) / chars
    return metrics
