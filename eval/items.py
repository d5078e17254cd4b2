"""items.jsonl: what every number of a report was computed from, one line per (set, model, preset, sample).

    likelihood (set "test" / "validation"):
        set, model, sample_id, story_id, chars, tokens, nll_nats, bits
        test only, with action following: other_action_of (the sample whose action was used), bits_other_action
    generation (set "playthrough"):
        set, model, preset, sample_id, story_id, reply, gold, length, new_tokens, empty, cut_action, looping,
        repeated_4grams, all_4grams, cyrillic_letters, letters, chrf (sentence chrF against the gold reply)

So `sum(bits) / sum(chars)` over a model's test lines is its bits/char, `(sum(bits_other_action) - sum(bits)) /
sum(chars)` its action following, and every reply metric is recomputed from the replies (distinct-n, chrF) or
from the counts. Lines are in the report's order (sets, models, presets, samples), keys sorted, no wall-clock
values: the file is byte-identical between runs of the same config.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from eval.likelihood import ScoredItem
from eval.scoring import EvalSets, ModelRun, playthrough_ids

FILE_NAME = "items.jsonl"


def likelihood_lines(set_name: str, model: str, items: list[ScoredItem], sets: EvalSets) -> Iterable[dict]:
    other_of = {}
    if set_name == "test":
        from eval.eval_sets import sample_id

        other_of = {sample_id(s): (sample_id(sets.test[j]) if j is not None else None)
                    for s, j in zip(sets.test, sets.other_action)}
    for item in items:
        line = {"set": set_name, "model": model, "sample_id": item.sample_id, "story_id": item.story_id,
                "chars": item.chars, "tokens": item.tokens, "nll_nats": item.nll_nats, "bits": item.bits}
        if item.other_nll_nats is not None:
            line.update(other_action_of=other_of.get(item.sample_id), bits_other_action=item.other_bits)
        yield line


def item_lines(order: list[str], runs: dict[str, ModelRun], sets: EvalSets) -> Iterable[dict]:
    for set_name in ("test", "validation"):
        for model in order:
            yield from likelihood_lines(set_name, model, runs[model].likelihood.get(set_name, []), sets)
    ids, stories = playthrough_ids(sets)
    for model in order:
        for preset, replies in runs[model].plays.items():
            for sid, story, reply in zip(ids, stories, replies):
                yield {"set": "playthrough", "model": model, "preset": preset, "sample_id": sid, "story_id": story,
                       "reply": reply.text, "gold": reply.gold, **reply.item_fields()}


def write_items(path: Path, order: list[str], runs: dict[str, ModelRun], sets: EvalSets) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for line in item_lines(order, runs, sets):
            fh.write(json.dumps(line, ensure_ascii=False, sort_keys=True, allow_nan=False) + "\n")
    return path


def read_items(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
