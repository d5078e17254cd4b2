from adventure.story_format import render_prompt, render_story, samples_from_tree, samples_from_trees
from adventure.trees import load_trees, tree_from_dict

TREE = tree_from_dict({"tree_id": "t", "context": "", "first_story_block": "Мир.", "action_results": [
    {"action": "a1", "result": "r1", "action_results": [
        {"action": "a2", "result": "r2", "action_results": [
            {"action": "a3", "result": "r3", "action_results": []}]},
        {"action": "b2", "result": "", "action_results": [
            {"action": "b3", "result": "rb3", "action_results": []}]}]}]})


def test_prompt_plus_target_is_the_story_text():
    samples = list(samples_from_tree(TREE))
    deepest = [s for s in samples if s.action == "a3"][0]
    assert deepest.prompt == "Мир.\n> a1\nr1\n> a2\nr2\n> a3\n"
    assert deepest.prompt + deepest.target == render_story("Мир.", [("a1", "r1"), ("a2", "r2"), ("a3", "r3")])


def test_history_keeps_only_the_last_k_turns():
    s = [s for s in samples_from_tree(TREE, history_turns=1) if s.action == "a3"][0]
    assert s.history == (("a2", "r2"),)
    assert s.prompt == render_prompt("Мир.", [("a2", "r2")], "a3")


def test_empty_result_gives_no_sample_but_children_do():
    samples = {s.action: s for s in samples_from_tree(TREE)}
    assert "b2" not in samples
    assert samples["b3"].history == (("a1", "r1"),) and samples["b3"].node_id == "0.1.0"


def test_real_trees_give_one_sample_per_node_with_text(real_trees_dir):
    trees = load_trees(real_trees_dir)
    samples = samples_from_trees(trees)
    with_text = sum(1 for t in trees for n, _ in t.walk() if n.action.strip() and n.result.strip())
    assert len(samples) == with_text > 200
    for s in samples:
        assert s.prompt.endswith("\n") and s.prompt.split("\n")[-2].startswith("> ")
        assert "\n>" not in s.target and s.target == s.target.strip()


def test_a_world_with_turn_markers_writes_no_fake_turn_into_training_text():
    """Training text and the server's prompts normalise the world alike (normalize_result): the format stays
    unambiguous, one `> ` line per real turn."""
    from adventure.text import normalize_result

    tree = tree_from_dict({"tree_id": "w", "context": "Пролог.\n> взять корону\nВы король.",
                           "first_story_block": ">> Замок.", "action_results": [
                               {"action": "иду", "result": "Дверь.", "action_results": [
                                   {"action": "открываю", "result": "Зал.", "action_results": []}]}]})
    for sample in samples_from_tree(tree):
        assert sample.world == normalize_result(tree.world)
        markers = [line for line in sample.prompt.split("\n") if line.startswith(">")]
        assert len(markers) == len(sample.history) + 1, sample.prompt


def test_continuations_and_narration_never_become_action_lines():
    from adventure.story_format import fold_moves, render_context

    moves = [("", "Туман густеет.", "continue"), ("иду", "Вы идёте.", "do"), ("Стой!", "Никто не отвечает.", "say"),
             ("Вдали звонит колокол.", "Звон стихает.", "story"), ("", "Наступает ночь.", "continue")]
    world, turns = fold_moves("Лес.", moves)
    assert world == "Лес. Туман густеет."  # a continuation goes on where the text stopped
    assert turns == [("иду", "Вы идёте."),
                     ("Вы говорите: «Стой!»", "Никто не отвечает.\nВдали звонит колокол. Звон стихает. Наступает ночь.")]
    prompt = render_context(world, turns, None)  # the next move continues: no action line at the end
    assert prompt.endswith("Наступает ночь.") and [line for line in prompt.split("\n") if line.startswith(">")] == [
        "> иду", "> Вы говорите: «Стой!»"]


def test_a_continuation_prompt_fits_its_budget_and_ends_with_the_story():
    from adventure.budget import build_prompt
    from adventure.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(["Лес. Вы идёте по лесу.\n> иду\nВы пришли к реке."] * 20, vocab_size=300)
    history = [("иду", " ".join(["Вы пришли к реке."] * 8))] * 12
    prompt = build_prompt(tokenizer, "Лес.", history, None, context_length=160, max_new_tokens=40)
    assert len(prompt.input_ids) <= 120 and prompt.text.endswith("Вы пришли к реке.")
    assert prompt.turns_dropped > 0 and [p.kind for p in prompt.parts][-1] == "turn"
