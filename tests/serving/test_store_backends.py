"""The store on both backends (SQLite file, real PostgreSQL server started by the session): the same games,
turns, jobs, votes and shares; one pending job per game; claims that exactly one store wins; leases that lapse
and are taken over; rate-limit buckets and queue shares counted in the database; notifications between stores.
Two Store objects on one database stand for two server processes."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from serving.errors import Conflict, Forbidden, NotFound, QueueFull, TooManyRequests
from serving.storage import open_store
from serving.storage.story import StoryEditor


@pytest.fixture
def stores(db_url):
    opened = []

    def make():
        opened.append(open_store(db_url))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


def played(store, game_id, action="иду", result="ответ"):
    job = store.add_job(game_id, "turn", action)
    assert store.claim([job]) == [job]
    assert store.complete(job, variants=[{"text": result, "text_en": None, "model": "m"}]) is True
    return job


def test_a_game_round_trip(stores):
    store = stores()
    story = StoryEditor(store)
    game_id, token = store.create_game("Мир «ё»", steering={"memory": "помни"}, preset="greedy")
    store.authorize(game_id, token)
    with pytest.raises(Forbidden):
        store.authorize(game_id, "wrong")
    with pytest.raises(NotFound):
        store.game("nope")
    first = played(store, game_id, "иду  на север", "Вы пришли.")
    job = store.job(first)
    assert job.status == "done" and job.turn.action == "иду  на север" and job.turn.result == "Вы пришли."
    retry = store.add_job(game_id, "retry")
    store.claim([retry])
    assert store.complete(retry, variants=[{"text": "Второй ответ", "text_en": None, "model": "m"}])
    game = store.game(game_id)
    assert [v.text for v in game.turns[0].variants] == ["Вы пришли.", "Второй ответ"] and game.turns[0].chosen == 1
    story.choose(game_id, 0, 0)
    story.edit(game_id, 0, "иду на юг", "Правка")
    store.undo(game_id)
    assert store.game(game_id).turns == () and store.game(game_id).redo_depth == 1
    story.redo(game_id)
    turn = store.game(game_id).turns[0]
    assert (turn.action, turn.result, turn.variants[-1].model) == ("иду на юг", "Правка", "edited")
    share = story.share(game_id)
    assert story.shared_game(share) == game_id
    exported = story.export(game_id)
    copy_id, _ = story.import_game(exported)
    assert story.export(copy_id) == exported and exported["steering"] == {"memory": "помни"}


def test_one_pending_job_per_game(stores):
    store = stores()
    game_id, _ = store.create_game("мир")
    store.add_job(game_id, "turn", "иду")
    with pytest.raises(Conflict):
        store.add_job(game_id, "turn", "бегу")
    with pytest.raises(Conflict):
        store.undo(game_id)


def test_each_job_is_claimed_by_exactly_one_process(stores):
    a, b = stores(), stores()
    jobs = [a.add_job(a.create_game(f"мир {i}")[0], "turn", "иду") for i in range(30)]
    with ThreadPoolExecutor(6) as pool:  # three workers in each "process", all grabbing at once
        claims = list(pool.map(lambda store: [j for _ in range(12) for j in store.claim_next(2)],
                               [a, b, a, b, a, b]))
    won = [job for claim in claims for job in claim]
    assert sorted(won) == sorted(jobs)  # every job once, none twice
    assert a.claim(jobs[:3]) == [] or a.claim(jobs[:3]) == [j for j in jobs[:3] if j in sum(claims[0::2], [])]


def test_a_lapsed_lease_is_taken_over_and_the_old_claim_writes_nothing(stores):
    a, b = stores(), stores()
    a.lease_s = b.lease_s = 0.5
    game_id, _ = a.create_game("мир")
    job = a.add_job(game_id, "turn", "иду")
    assert a.claim([job]) == [job]
    assert b.claim_next(8) == []  # the lease holds
    time.sleep(0.7)  # a is "killed": it renews nothing
    assert b.claim_next(8) == [job]
    assert a.complete(job, result="поздно") is None  # no longer a's: nothing written
    assert b.complete(job, result="вовремя") is True
    assert [t.result for t in a.game(game_id).turns] == ["вовремя"]


def test_renewed_leases_hold(stores):
    a, b = stores(), stores()
    a.lease_s = 0.6
    job = a.add_job(a.create_game("мир")[0], "turn", "иду")
    a.claim([job])
    for _ in range(4):
        time.sleep(0.25)
        assert a.renew_leases() == 1
    assert b.claim_next(8) == []


def test_rate_limits_and_shares_are_counted_in_the_database(stores):
    a, b = stores(), stores()
    for store in (a, b, a):
        store.take_token("turns:10.0.0.7", 3, "turns")
    with pytest.raises(TooManyRequests) as refused:
        b.take_token("turns:10.0.0.7", 3, "turns")
    assert refused.value.retry_after_s >= 1
    b.take_token("turns:10.0.0.8", 3, "turns")  # another client has its own bucket
    games = [a.create_game(f"мир {i}")[0] for i in range(3)]
    a.add_job(games[0], "turn", "иду", client="c", max_per_client=2)
    b.add_job(games[1], "turn", "иду", client="c", max_per_client=2)
    with pytest.raises(QueueFull):
        a.add_job(games[2], "turn", "иду", client="c", max_per_client=2)
    assert a.pending_of("c") == b.pending_of("c") == 2


def test_a_finished_job_is_heard_by_the_other_process(stores, db_url):
    a, b = stores(), stores()
    if not b.shared:
        pytest.skip("one process owns a SQLite database: there is no other process to tell")
    heard, event = [], threading.Event()
    b.database.listen(lambda payload: (heard.append(payload), event.set() if payload.startswith("done") else None))
    time.sleep(0.5)  # the listener connects
    job = played(a, a.create_game("мир")[0])
    assert event.wait(10) and f"done {job}" in heard


def test_an_edit_or_retry_writes_its_own_variant_not_the_turns_others(stores, db_url):
    """300 edits rewrote a turn's whole growing list each time (quadratic writes): each edit and retry now sends
    one variant, whatever the turn holds; the list reads back exact, in order."""
    store = stores()
    story = StoryEditor(store, max_variants=60)
    game_id, _ = store.create_game("Мир")
    played(store, game_id, result="Ответ модели.")
    sent: list[int] = []  # SQLite: characters of SQL with its parameters, per edit
    if not db_url.startswith("postgres"):
        store.database.conn.set_trace_callback(lambda sql: sent.__setitem__(-1, sent[-1] + len(sql)))
    texts = [f"Правка {i}: «{'длинный ответ ' * 150}»" for i in range(40)]
    for text in texts:
        sent.append(0)
        story.edit(game_id, 0, None, text)
    if not db_url.startswith("postgres"):
        store.database.conn.set_trace_callback(None)
        assert max(sent) - min(sent) < 50, sent  # the 40th edit sends what the 1st did (it sent 40x as much)
    retry = store.add_job(game_id, "retry")
    assert store.claim([retry]) == [retry]
    assert store.complete(retry, variants=[{"text": "Повтор.", "text_en": None, "model": "m"}]) is True
    turn = store.game(game_id).turns[0]
    assert [v.text for v in turn.variants] == ["Ответ модели.", *texts, "Повтор."]
    assert [v.model for v in turn.variants] == ["m", *["edited"] * 40, "m"]
    assert (turn.chosen, turn.result) == (41, "Повтор.") and turn.variants[-1].job == retry


def test_moves_lengths_and_cancelling_on_both_backends(stores):
    store = stores()
    game_id, _ = store.create_game("Мир.")
    job = store.add_job(game_id, "turn", "", mode="continue", max_new_tokens=20)
    assert (store.job(job).mode, store.job(job).max_new_tokens) == ("continue", 20)
    store.claim([job])
    assert store.complete(job, variants=[{"text": "Дальше.", "text_en": None, "model": "m"}]) is True
    retry = store.add_job(game_id, "retry")
    assert store.job(retry).mode == "continue"  # a retry repeats its turn's move
    store.cancel(retry)
    with pytest.raises(Conflict):
        store.cancel(retry)  # over: nothing to stop
    assert store.job(retry).status == "cancelled" and store.game(game_id).pending_job is None
    running = store.add_job(game_id, "turn", "Вы говорите.", mode="say")
    store.claim([running])
    store.cancel(running)
    assert store.complete(running, variants=[{"text": "x", "text_en": None, "model": "m"}]) is None  # not stored
    assert [(t.action, t.mode) for t in store.game(game_id).turns] == [("", "continue")]
    store.set_max_new_tokens(game_id, 40)
    assert store.game(game_id).max_new_tokens == 40
    exported = StoryEditor(store).export(game_id)
    assert exported["turns"][0]["mode"] == "continue"
    copy_id, _ = StoryEditor(store).import_game({**exported, "turns": [dict(t) for t in exported["turns"]]})
    assert store.game(copy_id).turns[0].mode == "continue"


def test_a_version_1_postgresql_database_is_migrated(postgres_server):
    url = postgres_server.fresh_url()
    store = open_store(url)
    with store._transaction() as db:  # as gamio before schema version 2 left it
        for table, column in (("turns", "mode"), ("jobs", "mode"), ("jobs", "max_new_tokens"),
                              ("games", "max_new_tokens")):
            db.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    store.close()
    store = open_store(url)
    try:
        game_id, _ = store.create_game("Мир.")
        played(store, game_id)
        assert store.game(game_id).turns[0].mode is None and store.game(game_id).max_new_tokens is None
    finally:
        store.close()
