import sys

import pytest

from adventure.errors import GamioError
from adventure.trees import load_tree, load_trees, save_tree, tree_from_dict
from tests.helpers.real_data import REAL_TREE_NODE_COUNTS


def test_real_trees_load_with_exact_node_counts(real_trees_dir):
    counts = {p.name: load_tree(p).count_nodes() for p in sorted(real_trees_dir.glob("*.json"))}
    assert counts == REAL_TREE_NODE_COUNTS


def test_real_tree_nulls_are_skipped_and_deep_paths_kept(real_trees_dir):
    tree = load_tree(real_trees_dir / "story7.json")
    raw = (real_trees_dir / "story7.json").read_text(encoding="utf-8")
    assert raw.count("null") > 200  # the README's quirk: abandoned branches
    assert tree.max_depth() >= 40
    assert all(node is not None for node, _ in tree.walk())


def _chain(depth: int) -> dict:
    node = {"action": f"a{depth}", "result": f"r{depth}", "action_results": []}
    for i in range(depth - 1, 0, -1):
        node = {"action": f"a{i}", "result": f"r{i}", "action_results": [node, None]}
    return {"tree_id": "deep", "context": "", "first_story_block": "start", "action_results": [node]}


def test_depth_1000_loads_walks_and_round_trips_without_recursion(tmp_path):
    assert sys.getrecursionlimit() < 5000
    tree = tree_from_dict(_chain(1000))
    assert tree.count_nodes() == 1000 and tree.max_depth() == 1000
    save_tree(tree, tmp_path / "deep.json")
    again = load_tree(tmp_path / "deep.json")
    def flat(t):
        return [(n.action, n.result, len(a)) for n, a in t.walk()]
    assert flat(again) == flat(tree)


def test_quirks_null_children_empty_results_and_missing_keys():
    tree = tree_from_dict({"tree_id": "q", "first_story_block": "Правила игры", "action_results": [
        None, {"action": "Войти", "result": "", "action_results": None},
        {"action": "Уйти", "result": "Вы ушли."}]})
    assert [n.action for n, _ in tree.walk()] == ["Войти", "Уйти"]
    assert tree.children[0].is_ending


@pytest.mark.parametrize("data,fragment", [
    ([], "must be a JSON object"),
    ({"tree_id": "x"}, "missing key"),
    ({"first_story_block": "s", "action_results": [{"action": 3, "result": "r"}]}, "action_results[0].action"),
    ({"first_story_block": "s", "action_results": [{"action": "a", "result": "r", "action_results": "no"}]},
     "expected a list"),
])
def test_malformed_trees_name_the_problem(data, fragment):
    with pytest.raises(GamioError, match=None) as info:
        tree_from_dict(data, "bad.json")
    assert fragment in str(info.value) and "bad.json" in str(info.value)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(GamioError, match="not found"):
        load_tree(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(GamioError, match="broken.json: not valid JSON"):
        load_tree(tmp_path / "broken.json")
    with pytest.raises(GamioError, match="no story trees"):
        load_trees(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else tmp_path)
