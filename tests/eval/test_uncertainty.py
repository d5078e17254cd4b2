"""The story-level bootstrap behind every interval and paired comparison (eval/bootstrap.py, eval/uncertainty.py)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from eval.bootstrap import interval, paired, ratio, story_resamples
from eval.likelihood import ScoredItem
from eval.uncertainty import Bootstrap, few_stories_warnings, likelihood_scored


def items(story_values: dict[str, list[float]], chars: int = 10) -> list[ScoredItem]:
    """Scored items whose bits/char are the given values, story by story."""
    out = []
    for story, values in story_values.items():
        for n, value in enumerate(values):
            out.append(ScoredItem(sample_id=f"{story}:{n}", story_id=story, chars=chars, tokens=5,
                                  nll_nats=value * chars * np.log(2)))
    return out


def test_resamples_draw_whole_stories_never_single_samples():
    # Story a: 3 turns of 1.0 bits/char, story b: 1 turn of 0.0. Any resample is a mixture of whole stories.
    scored = items({"a": [1.0, 1.0, 1.0], "b": [0.0]})
    draws = story_resamples([i.story_id for i in scored], 2000, seed=1, set_name="test")
    values = set(np.round(likelihood_scored(scored).subset([i.sample_id for i in scored])["bits_per_char"](
        draws.resampled), 9))
    assert values == {0.0, 0.75, 1.0}  # bb, ab/ba, aa: a sample-level bootstrap would give 1/4, 1/2, 2/3 ... too
    assert draws.full.tolist() == [[1, 1, 1, 1]]


def test_one_story_leaves_only_the_spread_of_its_turns_and_the_report_warns():
    scored = items({"only": [0.2, 1.4, 3.0, 0.7]})
    boot = Bootstrap(500, seed=3)
    metrics = boot.with_intervals("test", {"bits_per_char": 1.325}, likelihood_scored(scored))
    lo, hi = metrics["bits_per_char_ci95"]
    assert lo < 1.325 < hi and hi - lo < 3.0
    warnings = few_stories_warnings({"test": {"stories": ["only"]}, "validation": {"stories": list("abcde")}})
    assert len(warnings) == 1 and "test set has 1 story" in warnings[0]


def test_a_story_weighs_as_a_story_however_many_turns_it_has():
    # 9 stories of one turn at 0.0 and one story of 30 turns at 1.0: a sample-level bootstrap would centre the
    # interval on 30/39 with a narrow spread; drawing stories first lets the big story be absent or doubled.
    scored = items({**{f"small{k}": [0.0] for k in range(9)}, "big": [1.0] * 30})
    stat = likelihood_scored(scored).subset([i.sample_id for i in scored])["bits_per_char"]
    draws = story_resamples([i.story_id for i in scored], 2000, seed=0, set_name="test")
    lo, hi = interval(stat, draws)
    assert lo == 0.0 and hi > 0.85  # resamples without the big story exist, and ones where it dominates


def test_intervals_repeat_exactly_for_a_seed_and_move_with_another():
    scored = items({f"s{k}": list(np.linspace(0, 1 + k, 4)) for k in range(8)})
    stat = likelihood_scored(scored).subset([i.sample_id for i in scored])["bits_per_char"]
    ids = [i.story_id for i in scored]
    first = interval(stat, story_resamples(ids, 1000, 7, "test"))
    assert first == interval(stat, story_resamples(list(ids), 1000, 7, "test"))
    assert first != interval(stat, story_resamples(ids, 1000, 8, "test"))
    assert first != interval(stat, story_resamples(ids, 1000, 7, "validation"))  # each set draws its own
    point = stat(story_resamples(ids, 10, 7, "test").full)[0]
    assert first[0] < point < first[1]


def test_a_model_compared_with_itself_differs_by_zero_with_p_one():
    scored = items({f"s{k}": [0.5 * k, 1.0, 2.0] for k in range(6)})
    stat = likelihood_scored(scored).subset([i.sample_id for i in scored])["bits_per_char"]
    draws = story_resamples([i.story_id for i in scored], 1000, 0, "test")
    assert paired(stat, stat, draws) == {"delta": 0.0, "ci95": [0.0, 0.0], "p_value": 1.0}


@settings(max_examples=25, deadline=None)
@given(shift=st.floats(0.05, 1.0), stories=st.integers(6, 15), seed=st.integers(0, 2**31))
def test_a_consistent_shift_is_found_however_noisy_the_stories(shift, stories, seed):
    rng = np.random.default_rng(seed)
    base = {f"s{k}": list(rng.uniform(0.5, 5.0, size=rng.integers(1, 6))) for k in range(stories)}
    worse = {story: [v + shift for v in values] for story, values in base.items()}
    a, b = likelihood_scored(items(base)), likelihood_scored(items(worse))
    boot = Bootstrap(1000, seed=seed)
    result = boot.compare("test", b, a)["bits_per_char"]
    assert result["delta"] == pytest.approx(shift)
    assert result["ci95"][0] > 0 and result["p_value"] < 0.01  # the paired draws cancel the story spread
    assert result["stories"] == stories


def test_ratio_of_a_resample_is_the_ratio_of_its_sums():
    stat = ratio([3.0, 1.0, 2.0], [2.0, 1.0, 4.0])
    counts = np.array([[1, 1, 1], [2, 0, 1], [0, 0, 0]])
    assert stat(counts)[:2].tolist() == pytest.approx([6 / 7, 8 / 8])
    assert np.isnan(stat(counts)[2])  # nothing drawn: undefined, left out of the percentiles


def test_comparisons_use_only_the_items_both_models_have():
    a = likelihood_scored(items({"s1": [1.0, 1.0], "s2": [2.0]}))
    b = likelihood_scored(items({"s1": [1.5], "s2": [2.5, 9.0]}))  # s1:1 and s2:0 are common... s1:0, s2:0
    result = Bootstrap(200, seed=0).compare("test", b, a)["bits_per_char"]
    assert result["items"] == 2 and result["delta"] == pytest.approx(0.5)
