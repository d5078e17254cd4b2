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
