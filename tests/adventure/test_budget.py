import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from adventure.budget import build_prompt, encode_text
from adventure.errors import GamioError
from adventure.story_format import render_prompt


@pytest.fixture(scope="module")
def tokenizer(tiny_untrained_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_untrained_dir)


# Pieces rather than characters, so the texts hold words, markers and special-token strings a player could type.
words = st.lists(st.sampled_from(list("абвгд еёжз.,!\n>«»") + ["<|endoftext|>", "дверь ", "\n\n", "> "]),
                 max_size=120).map("".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(world=words, history=st.lists(st.tuples(words, words), max_size=25), action=words,
       context=st.integers(min_value=70, max_value=300), new=st.integers(min_value=1, max_value=60))
def test_prompt_never_exceeds_the_budget(tokenizer, world, history, action, context, new):
    p = build_prompt(tokenizer, world, history, action, context_length=context, max_new_tokens=new)
    assert len(p.input_ids) <= context - new
    assert p.input_ids == encode_text(tokenizer, p.text)
    assert p.turns_used <= 10


def test_oldest_turns_are_dropped_first_and_world_kept(tokenizer):
    history = [(f"шаг {i}", "длинный ответ " * 20) for i in range(10)]
    p = build_prompt(tokenizer, "Мир у моря.", history, "идти", context_length=300, max_new_tokens=55)
    assert p.text.startswith("Мир у моря.\n> ") and p.world_cut_chars == 0
    assert 0 < p.turns_used < 10 and p.turns_dropped == 10 - p.turns_used
    assert p.text == render_prompt("Мир у моря.", history[-p.turns_used:], "идти")


def test_only_the_last_ten_turns_are_used(tokenizer):
    history = [(str(i), "да.") for i in range(15)]
    p = build_prompt(tokenizer, "Мир.", history, "идти", context_length=512, max_new_tokens=55)
    assert p.turns_used == 10 and "\n> 4\n" not in p.text and "\n> 5\n" in p.text


def test_world_is_cut_from_the_left_when_it_alone_is_too_long(tokenizer):
    world = "начало " + "середина " * 300 + "конец мира"
    p = build_prompt(tokenizer, world, [("a", "b")], "идти", context_length=128, max_new_tokens=55)
    assert p.turns_used == 0 and p.world_cut_chars > 0
    assert p.text.endswith("конец мира\n> идти\n") and "начало" not in p.text


def test_special_tokens_typed_by_a_player_are_plain_text(tokenizer):
    ids = encode_text(tokenizer, "иду <|endoftext|> дальше")
    assert tokenizer.eos_token_id not in ids
    assert tokenizer.decode(ids) == "иду <|endoftext|> дальше"


def test_impossible_budget_is_a_clear_error(tokenizer):
    with pytest.raises(GamioError, match="leaves no room"):
        build_prompt(tokenizer, "w", [], "a", context_length=55, max_new_tokens=55)


@pytest.mark.parametrize("corpus", ["sample", "real"])
def test_every_corpus_prompt_fits_a_small_context(tokenizer, corpus, real_trees_dir):
    from adventure.paths import SAMPLE_STORIES_DIR
    from adventure.story_format import samples_from_trees
    from adventure.trees import load_trees

    trees = load_trees(SAMPLE_STORIES_DIR if corpus == "sample" else real_trees_dir)
    for s in samples_from_trees(trees):
        p = build_prompt(tokenizer, s.world, list(s.history), s.action, context_length=256, max_new_tokens=55)
        assert len(p.input_ids) <= 256 - 55
        assert p.text.endswith(f"\n> {s.action}\n") or p.action_cut_chars > 0
