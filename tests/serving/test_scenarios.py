"""Scenarios: GET /api/scenarios lists the embedded corpus' stories as ready-made Russian openings, an operator's
folder adds its own (story trees, {title, world} files, text files), and POST /api/games {"scenario"} starts one."""
from __future__ import annotations

import json
import re

import pytest
import requests

from adventure.errors import GamioError
from adventure.paths import SAMPLE_STORIES_DIR
from serving.config import compose_serving_config
from serving.game.scenarios import load_scenarios

CYRILLIC = re.compile(r"[а-яё]", re.I)


def test_the_corpus_stories_are_scenarios_and_a_game_starts_from_one(default_server):
    listed = requests.get(default_server.url + "api/scenarios", timeout=30).json()["scenarios"]
    assert len(listed) == len(list(SAMPLE_STORIES_DIR.glob("*.json"))) >= 10
    for scenario in listed:
        assert set(scenario) == {"id", "title", "world"}
        assert CYRILLIC.search(scenario["title"]) and len(scenario["world"]) > 200
    chosen = listed[3]
    created = requests.post(default_server.url + "api/games", json={"scenario": chosen["id"]}, timeout=30)
    assert created.status_code == 201 and created.json()["story"][0]["text"] == chosen["world"]
    for body, code in (({"scenario": "no-such-story"}, "unknown_scenario"),
                       ({"scenario": chosen["id"], "world": "Мой мир."}, "world_and_scenario"),
                       ({"scenario": 7}, "wrong_type")):
        refused = requests.post(default_server.url + "api/games", json=body, timeout=30)
        assert refused.status_code == 400 and refused.json()["code"] == code, refused.text


def test_an_operator_folder_adds_scenarios(tmp_path):
    folder = tmp_path / "openings"
    folder.mkdir()
    tree = json.loads((SAMPLE_STORIES_DIR / "sea_pomor.json").read_text(encoding="utf-8"))
    (folder / "pomor-copy.json").write_text(json.dumps({**tree, "title": "Свой кормщик"}, ensure_ascii=False),
                                            encoding="utf-8")
    (folder / "harbour.json").write_text(json.dumps({"title": "Гавань", "world": "Туман над гаванью."},
                                                    ensure_ascii=False), encoding="utf-8")
    (folder / "sea_pomor.txt").write_text("Мой «Кормщик»\nСвой вариант начала.\nВторая строка.", encoding="utf-8")
    (folder / "notes.md").write_text("not a scenario", encoding="utf-8")
    cfg = compose_serving_config([f"scenarios.folder={folder}"])
    scenarios = load_scenarios(cfg.scenarios.folder, cfg.scenarios.corpus, 4000)
    assert scenarios["harbour"].world == "Туман над гаванью." and scenarios["harbour"].title == "Гавань"
    assert scenarios["pomor-copy"].title == "Свой кормщик" and scenarios["pomor-copy"].world.startswith("Лето")
    assert scenarios["sea_pomor"].title == "Мой «Кормщик»"  # the operator's takes a corpus id over
    assert scenarios["sea_pomor"].world == "Свой вариант начала.\nВторая строка."
    only_mine = load_scenarios(str(folder), corpus=False, max_world_chars=4000)
    assert sorted(only_mine) == ["harbour", "pomor-copy", "sea_pomor"]


@pytest.mark.parametrize("name, content, reason", [
    ("empty.txt", "Заголовок\n", "has no world"),
    ("broken.json", "{", "cannot read"),
    ("list.json", "[1, 2]", "expected a story tree"),
    ("long.txt", "Т\n" + "я" * 5000, "limits.max_world_chars"),
])
def test_a_bad_scenario_file_is_named_at_start(tmp_path, name, content, reason):
    (tmp_path / name).write_text(content, encoding="utf-8")
    with pytest.raises(GamioError) as refused:
        load_scenarios(str(tmp_path), corpus=False, max_world_chars=4000)
    assert str(refused.value).startswith(f"scenarios.folder: {name}") and reason in str(refused.value)
    with pytest.raises(GamioError, match="not a folder"):
        load_scenarios(str(tmp_path / "missing"), corpus=True, max_world_chars=4000)
