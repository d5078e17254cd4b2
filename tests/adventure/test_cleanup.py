from adventure.cleanup import clean_generation


def test_cut_at_invented_action_marker():
    c = clean_generation("Дверь скрипнула. Вы вошли.\n> Осмотреться\nКомната пуста.")
    assert c.text == "Дверь скрипнула. Вы вошли." and c.cut_action


def test_line_starting_with_marker_is_cut_even_at_the_start():
    c = clean_generation("> Бежать\nВы бежите.")
    assert c.text == "" and c.cut_action


def test_trailing_unfinished_sentence_is_dropped():
    c = clean_generation("Ветер стих. Где-то вдалеке завыл")
    assert c.text == "Ветер стих." and c.cut_unfinished and not c.cut_action


def test_unfinished_text_is_kept_when_nothing_would_remain():
    assert clean_generation("Где-то вдалеке завыл").text == "Где-то вдалеке завыл"


def test_closing_quotes_end_a_sentence_and_special_tokens_go():
    c = clean_generation("  «Стой!» — сказал он. «Кто идёт?»<|endoftext|>мусор")
    assert c.text == "«Стой!» — сказал он. «Кто идёт?» мусор".rsplit(" ", 1)[0]


def test_cleanup_of_real_page_texts_keeps_story_and_cuts_invented_actions(real_trees_dir):
    from adventure.paths import SAMPLE_STORIES_DIR
    from adventure.story_format import samples_from_trees
    from adventure.trees import load_trees

    for folder in (SAMPLE_STORIES_DIR, real_trees_dir):
        for s in samples_from_trees(load_trees(folder)):
            clean = clean_generation(s.target + "\n> Invented action\nmore")
            assert clean.cut_action and ">" not in clean.text.split("\n")[-1][:1]
            assert clean.text and s.target.startswith(clean.text[:20])
            assert clean_generation(clean.text).text == clean.text  # idempotent
