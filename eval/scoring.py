"""One model through every set: likelihood on test (with action following) and validation, then one reply per
play-through prompt for every generation preset. What each number is computed from is kept (ModelRun), so the
report can put intervals on it, compare models item by item, and write items.jsonl."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from adventure.models import tokenizer_and_context
from adventure.story_format import Sample
from eval.eval_sets import sample_id
from eval.generation_metrics import play_turns, timing_metrics
from eval.likelihood import ScoredItem, common_replies, other_action_indices, score_items
from eval.model_set import EvalModel
from eval.reply_stats import ReplyStats, reply_stats
from eval.subjects import model_side_samples


@dataclass(frozen=True)
class EvalSets:
    test: list[Sample]
    validation: list[Sample]
    playthrough: list[Sample]
    test_replies: list[str]  # the common scored replies of the Russian-side models (eval/likelihood.py)
    validation_replies: list[str]
    other_action: list[int | None]  # per test sample, the sample whose action replaces its own (action following)


@dataclass
class ModelRun:
    likelihood: dict[str, list[ScoredItem]] = field(default_factory=dict)  # set -> scored items
    replies_cut: dict[str, int] = field(default_factory=dict)  # set -> gold replies shortened to fit
    plays: dict[str, list[ReplyStats]] = field(default_factory=dict)  # preset -> replies, in play-through order
    timing: dict = field(default_factory=dict)


def build_sets(test, validation, playthrough, models: list[EvalModel], artifacts, max_chars, seed,
               action_following: bool) -> EvalSets:
    """Fix the scored reply of every sample once, for every Russian-side model alike (tokenizers only)."""
    limits = []
    for model in models:
        if model.comparable:
            spec = model.source.location if model.source.is_local else model.spec
            _source, tokenizer, context = tokenizer_and_context(spec, artifacts, option=f"models[{model.name}].spec")
            limits.append((tokenizer, context))
    return EvalSets(test=test, validation=validation, playthrough=playthrough,
                    test_replies=common_replies(test, limits, max_chars),
                    validation_replies=common_replies(validation, limits, max_chars),
                    other_action=other_action_indices(test, seed) if action_following else [None] * len(test))


def _score_set(pipeline, model: EvalModel, samples: list[Sample], replies: list[str], others, cfg,
               max_turns: int) -> tuple[list[ScoredItem], int]:
    """(scored items, replies cut) of one set. English models score the translated set, cut to their own context
    (their numbers are not comparable with the Russian side anyway)."""
    side = model_side_samples(pipeline, samples, max_turns)
    if not model.comparable:
        engine = pipeline.engine
        replies = common_replies(side, [(engine.tokenizer, engine.context_length)], cfg.likelihood.max_chars)
    other_actions = [side[j].action if j is not None else None for j in others] if others is not None else None
    items = score_items(pipeline.engine, side, replies, batch_size=int(cfg.likelihood.batch_size),
                        max_turns=max_turns, other_actions=other_actions)
    return items, sum(r != s.target for r, s in zip(replies, side))


def evaluate_model(model: EvalModel, pipeline, sets: EvalSets, presets, cfg, steering, progress) -> ModelRun:
    run = ModelRun(timing={"playthrough": {}})
    max_turns = int(cfg.playthrough.max_turns)
    started = time.perf_counter()
    for name, samples, replies, others in (("test", sets.test, sets.test_replies, sets.other_action),
                                           ("validation", sets.validation, sets.validation_replies, None)):
        if samples:
            run.likelihood[name], run.replies_cut[name] = _score_set(pipeline, model, samples, replies, others,
                                                                     cfg, max_turns)
    run.timing["likelihood_seconds"] = time.perf_counter() - started
    progress.update(1)
    for preset in presets:
        turns = play_turns(pipeline, sets.playthrough, preset, int(cfg.seed), max_turns, steering)
        run.plays[preset.name] = [reply_stats(t.text, s.target, t.new_tokens, t.cut_action)
                                  for t, s in zip(turns, sets.playthrough)]
        run.timing["playthrough"][preset.name] = timing_metrics(turns)
        progress.update(1)
    return run


def playthrough_ids(sets: EvalSets) -> tuple[list[str], list[str]]:
    return [sample_id(s) for s in sets.playthrough], [s.tree_id for s in sets.playthrough]
