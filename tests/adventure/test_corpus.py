"""The embedded corpus meets what the demo, the tiny models and the eval sets rely on."""
import json

from adventure.paths import SAMPLE_PARALLEL_DIR, SAMPLE_STORIES_DIR
from adventure.story_format import samples_from_trees
from adventure.trees import load_trees


def test_russian_corpus_size_and_shape():
    trees = load_trees(SAMPLE_STORIES_DIR)
    assert len(trees) >= 12 and len({t.tree_id for t in trees}) == len(trees)
    assert sum(t.count_nodes() for t in trees) >= 250
    assert sum(t.count_characters() for t in trees) >= 60_000
    for tree in trees:
        assert tree.language == "ru" and tree.title
        assert tree.max_depth() >= 5, tree.tree_id
        pages = [n for n, _ in tree.walk() if n.children]
        assert sum(len(n.children) >= 2 for n in pages) >= 0.8 * len(pages), tree.tree_id
        assert sum(1 for n, _ in tree.walk() if n.is_ending) >= 3, tree.tree_id
        cyrillic = sum("а" <= ch.lower() <= "я" or ch in "ёЁ" for ch in tree.first_story_block)
        assert cyrillic > 0.5 * len(tree.first_story_block)


def test_corpus_renders_cleanly_into_the_action_format():
    samples = samples_from_trees(load_trees(SAMPLE_STORIES_DIR))
    assert len(samples) >= 250
    for s in samples:
        assert "\n" not in s.action and not s.action.startswith(">")
        assert not any(line.startswith(">") for line in s.target.split("\n"))


def _shape(node_list):
    stack, shape = [node_list], []
    while stack:
        nodes = [n for n in stack.pop() if n]
        shape.append(len(nodes))
        stack.extend(n["action_results"] for n in nodes)
    return shape


def test_parallel_set_is_node_aligned():
    pairs = sorted(SAMPLE_PARALLEL_DIR.glob("*.en.json"))
    assert len(pairs) >= 3
    for en_path in pairs:
        ru_path = en_path.with_name(en_path.name.replace(".en.json", ".ru.json"))
        en, ru = (json.loads(p.read_text(encoding="utf-8")) for p in (en_path, ru_path))
        assert en["language"] == "en" and ru["language"] == "ru" and en["tree_id"] == ru["tree_id"]
        assert _shape(en["action_results"]) == _shape(ru["action_results"])
