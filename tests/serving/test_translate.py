"""Translate-wrap of an English model: the action (and the world) go ru->en, the prompt is built from the English
history, the reply is cleaned in English and comes back en->ru; both languages are stored.
The "English model" is the tiny GPT-2 served with language=en; the translators are tiny Marian models (on
CTranslate2 here, translation.engine=ct2; tests/adventure/test_translation.py covers the hf ones)."""
from __future__ import annotations

import pytest

from adventure.text import normalize_action, normalize_result
from serving.app import create_app
from tests.helpers.models import install_tiny_marians
from tests.helpers.serving import wait_done
from serving.config import compose_serving_config
from serving.service import build_service


@pytest.fixture(scope="module")
def english_app(tiny_untrained_dir, tmp_path_factory):
    artifacts = tmp_path_factory.mktemp("serving-en")
    install_tiny_marians(artifacts)
    cfg = compose_serving_config([f"model={tiny_untrained_dir}", "language=en", f"paths.artifacts={artifacts}",
                                  "translation=tiny", "translation.num_beams=1", "translation.engine=ct2",
                                  "generation.max_new_tokens=8"])
    service = build_service(cfg)
    yield create_app(cfg, service).test_client(), service
    service.close()


@pytest.mark.slow
def test_english_model_is_wrapped_in_translation(english_app):
    client, service = english_app
    pipeline = service.worker.pipeline
    assert pipeline.language == "en" and client.get("/healthz").get_json()["language"] == "en"
    prompts, translated = [], {"ru-en": {}, "en-ru": {}}
    translators = pipeline.translators
    for translator in (translators.to_english, translators.to_russian):  # what each translator returned for what
        def recording(texts, translator=translator, inner=translator.translate):
            out = inner(texts)
            translated[translator.direction].update(zip(texts, out))
            return out
        translator.translate = recording
    original = pipeline.prompt
    pipeline.prompt = lambda turn: prompts.append((turn.world_en, list(turn.history_en), turn.action_en)) or original(
        turn)

    created = client.post("/api/games", json={"world": "Тёмный лес. Вы стоите у старого дома."}).get_json()
    game_id, auth = created["game_id"], {"Authorization": f"Bearer {created['token']}"}
    actions = ["Я открываю дверь.", "Я иду в сад <script>."]
    for action in actions:
        job = client.post(f"/api/games/{game_id}/turns", json={"action": action}, headers=auth).get_json()
        assert wait_done(client, job["job_id"])["status"] == "done"

    game = client.get(f"/api/games/{game_id}", headers=auth).get_json()
    to_en, to_ru = translated["ru-en"], translated["en-ru"]
    assert game["world_en"] == to_en[normalize_result(game["world"])]
    assert [t["action"] for t in game["turns"]] == actions  # the player's Russian, literally
    for turn, action in zip(game["turns"], actions):
        assert turn["action_en"] == to_en[normalize_action(action)]
        assert "\n>" not in turn["result_en"]  # cleaned in English before translation
        expected = normalize_result(to_ru[turn["result_en"]]) if turn["result_en"].strip() else ""
        assert turn["result"] == expected
    # The model saw only English: the translated world, and the English history of the first turn.
    first, second = game["turns"]
    assert prompts[0] == (game["world_en"], [], first["action_en"])
    assert prompts[1] == (game["world_en"], [(first["action_en"], first["result_en"])], second["action_en"])

    retry = client.post(f"/api/games/{game_id}/retry", headers=auth).get_json()
    assert wait_done(client, retry["job_id"])["status"] == "done"
    assert prompts[2] == prompts[1]  # a retry reuses the stored English action and history
