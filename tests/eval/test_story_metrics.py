"""Story metrics that garbage cannot game: loops, chrF, failed presets, the common scored text, action following."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from adventure.paths import SAMPLE_STORIES_DIR
from adventure.story_format import samples_from_trees
from adventure.trees import load_trees
from eval.assemble import best_preset
from eval.likelihood import common_replies, encode_pair, other_action_indices
from eval.reply_stats import generation_metrics, reply_stats, statistics
from eval.text_metrics import load_metric

LOOPS = ["ворворворворвор", "те те те", "Он ушёл. Он ушёл. Он ушёл.", "и пошёл и пошёл и пошёл дальше",
         "нет, нет, нет!", "the the the end", "abcabcabc", "Дверь. ааааааааааа", "ха-ха-ха-ха",
         "Ты идёшь. Ты идёшь. Ты идёшь. Ты идёшь."]
NOT_LOOPS = ["", "Дверь открылась, и ты входишь в тёмный коридор.", "Тук-тук. Кто там?", "...", "!!! ??? ...",
             "Ты говоришь: «нет, нет». Он молчит.", "мама мыла раму", "1111 2222"]


@pytest.mark.parametrize("text", LOOPS)
def test_character_and_word_loops_are_caught(text):
    assert load_metric("looping").compute(predictions=[text])["looping"] == [True]


@pytest.mark.parametrize("text", NOT_LOOPS)
def test_ordinary_text_and_punctuation_runs_are_not_loops(text):
    assert load_metric("looping").compute(predictions=[text])["looping"] == [False]


def test_the_gold_replies_of_the_corpus_almost_never_loop():
    replies = [s.target for s in samples_from_trees(load_trees(SAMPLE_STORIES_DIR), history_turns=1)]
    share = load_metric("looping").compute(predictions=replies)["looping_share"]
    assert len(replies) > 200 and share < 0.02


def test_untrained_garbage_is_not_rewarded():
    garbage = ["ворворворворворвор", "те те те те те", "ворворвор вор вор вор"]
    good = ["Дверь скрипит, и в щель тянет холодом.", "Старик кивает и молча уходит в темноту.",
            "Ты находишь на столе письмо без подписи."]
    gold = good
    bad_metrics = generation_metrics([reply_stats(t, g, 10, False) for t, g in zip(garbage, gold)])
    good_metrics = generation_metrics([reply_stats(t, g, 10, False) for t, g in zip(good, gold)])
    assert bad_metrics["looping_share"] == 1.0 and good_metrics["looping_share"] == 0.0
    assert bad_metrics["chrf"] < good_metrics["chrf"]
    assert bad_metrics["repeated_4gram_rate"] >= 0.0  # the old loop measure misses "ворворвор": looping does not


def test_a_mostly_empty_preset_fails_and_never_wins():
    gold = ["Дверь открыта."] * 4
    empty = generation_metrics([reply_stats(t, g, 0, False) for t, g in zip(["", "", "", "Дверь открыта."], gold)])
    fine = generation_metrics([reply_stats(t, g, 5, False) for t, g in zip(["Дверь.", "Окно.", "Стол.", "Кот."],
                                                                            gold)])
    assert empty["failed"] and not fine["failed"]
    assert empty["chrf"] > fine["chrf"]  # the one reply it made is perfect ...
    assert best_preset({"greedy": empty, "gamio": fine})["preset"] == "gamio"  # ... but a failed preset never wins
    assert best_preset({"greedy": empty})["preset"] is None


WORDS = st.sampled_from(["дверь", "ты", "вор", "the", "кот", "и", "Ёж", "x1", "", " ", ".", "\n"])
TEXTS = st.lists(st.lists(WORDS, max_size=12).map(" ".join), min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(texts=TEXTS)
def test_resampled_metrics_on_the_full_set_are_the_reported_values(texts):
    gold = ["дверь кот ты"] * len(texts)
    replies = [reply_stats(t, g, len(t), i % 2 == 0) for i, (t, g) in enumerate(zip(texts, gold))]
    reported = generation_metrics(replies)
    full = np.ones((1, len(replies)), dtype=np.int64)
    for name, statistic in statistics(replies).items():
        assert statistic(full)[0] == pytest.approx(reported[name], abs=1e-9), name


def test_every_model_scores_the_same_characters_cut_by_characters():
    from adventure.tiny import build_tiny_tokenizer

    samples = samples_from_trees(load_trees(SAMPLE_STORIES_DIR), history_turns=2)[:40]
    texts = [s.prompt + s.target for s in samples]
    small, large = build_tiny_tokenizer(texts, 300), build_tiny_tokenizer(texts, 2000)  # two vocabularies
    replies = common_replies(samples, [(small, 128), (large, 512)], max_chars=None)
    assert replies == common_replies(samples, [(large, 512), (small, 128)], max_chars=None)  # order-free
    for sample, reply in zip(samples, replies):
        assert sample.target.startswith(reply)
        assert len(small("\n" + reply)["input_ids"]) <= 96  # 3/4 of the smaller context
    assert any(r != s.target for r, s in zip(replies, samples))  # some were cut, by characters
    capped = common_replies(samples, [(large, 512)], max_chars=50)
    assert all(len(r) <= 50 for r in capped)


def test_pairs_are_encoded_as_lm_eval_does_the_line_break_belongs_to_the_reply():
    from adventure.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(["Мир.\n> идти\nТы идёшь.\n"] * 20, 300)
    context, scored = encode_pair(tokenizer, "Мир.\n> идти\n", "Ты идёшь.")
    whole = tokenizer("Мир.\n> идти\nТы идёшь.", add_special_tokens=False)["input_ids"]
    assert context + scored == whole
    assert tokenizer.decode(scored).startswith("\n")


def test_action_following_swaps_in_a_different_action_of_the_set():
    samples = samples_from_trees(load_trees(SAMPLE_STORIES_DIR), history_turns=2)[:30]
    chosen = other_action_indices(samples, seed=5)
    assert chosen == other_action_indices(samples, seed=5)
    for i, j in enumerate(chosen):
        assert j is not None and samples[j].action.strip() != samples[i].action.strip()
    assert chosen != other_action_indices(samples, seed=6)
