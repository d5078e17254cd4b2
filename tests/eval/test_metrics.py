"""The eval stage's numbers on hand-checkable cases: likelihood, text metrics (the evaluate modules in
eval/metrics/, as gamio and as a researcher outside gamio load them), translation scores, the sets, language
detection and the recommendation rule."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adventure.budget import encode_text
from adventure.models import ModelSource
from adventure.story_format import Sample, render_prompt
from eval.eval_sets import cap, playthrough_set
from adventure.engines.hf import HFEngine
from eval.likelihood import common_replies, encode_pair, likelihood_summary, prompt_text, score_items
from eval.model_set import EvalModel, detect_language
from eval.report import recommend, rounded
from eval.text_metrics import METRICS_DIR, likelihood_metrics, load_metric, text_metrics
from eval.translation_metrics import corpus_scores


def sample(tree_id="t", node_id="0", history=(), action="Открыть дверь", target="Дверь скрипит. За ней темно.",
           world="Вы стоите в коридоре старого дома."):
    history = tuple(history)
    return Sample(tree_id=tree_id, node_id=node_id, depth=node_id.count(".") + 1, world=world, history=history,
                  action=action, prompt=render_prompt(world, history, action), target=target)


@pytest.fixture(scope="module")
def tiny(tiny_untrained_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_untrained_dir).eval()
    return HFEngine(model, AutoTokenizer.from_pretrained(tiny_untrained_dir))


SAMPLES = [sample(),
           sample(node_id="0.1", history=[("Открыть дверь", "Дверь скрипит.")], action="Войти",
                  target="Пол под ногами прогибается, и вы слышите шаги наверху. Кто-то идёт навстречу."),
           sample(node_id="1", action="Позвать хозяина", target="Никто не отвечает.")]


def test_likelihood_matches_a_direct_forward_pass(tiny):
    import torch

    model, tokenizer = tiny.model, tiny.tokenizer
    items = score_items(tiny, SAMPLES, [s.target for s in SAMPLES], batch_size=2)  # batching changes nothing
    for s, item in zip(SAMPLES, items):
        context, scored = encode_pair(tokenizer, prompt_text(tokenizer, 512, s, s.target, s.action, 10), s.target)
        ids = torch.tensor([context + scored])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0].double(), dim=-1)
        expected = -sum(float(logp[t - 1, ids[0, t]]) for t in range(len(context), ids.shape[1]))
        assert item.nll_nats == pytest.approx(expected, rel=1e-4)
        assert (item.tokens, item.chars) == (len(scored), len(s.target))  # the opening line break is scored too
    metrics = likelihood_summary(items, cut=0)
    total = sum(i.nll_nats for i in items)
    # The evaluate module divides the summed totals: the report's numbers follow from the items exactly.
    assert metrics["perplexity"] == math.exp(total / sum(i.tokens for i in items))
    assert metrics["bits_per_char"] == total / math.log(2) / sum(i.chars for i in items)
    assert metrics["bits_per_char"] == pytest.approx(sum(i.bits for i in items) / sum(i.chars for i in items))
    assert metrics["nll_bits"] == total / math.log(2)
    assert (metrics["samples"], metrics["targets_cut"]) == (3, 0)


def test_uniform_model_gives_vocabulary_perplexity_and_log2v_bits_per_token(tiny_untrained_dir):
    """Zero output embeddings make every next token equally likely: perplexity = V exactly, and
    bits/char = tokens * log2(V) / characters, checkable by hand."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_untrained_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_untrained_dir)
    with torch.no_grad():
        model.get_output_embeddings().weight.zero_()
    vocab = model.config.vocab_size
    items = score_items(HFEngine(model, tokenizer), SAMPLES, [s.target for s in SAMPLES])
    result = likelihood_summary(items, cut=0)
    assert result["perplexity"] == pytest.approx(vocab, rel=1e-4)
    assert result["bits_per_char"] == pytest.approx(result["tokens"] * math.log2(vocab) / result["characters"],
                                                    rel=1e-4)


def test_prompt_is_budgeted_and_an_overlong_reply_is_cut_by_characters(tiny):
    tokenizer = tiny.tokenizer
    long = sample(world="Мир. " * 400, target="Очень длинный ответ рассказчика. " * 60,
                  history=[("Идти", "Вы идёте. " * 50)] * 5)
    [reply] = common_replies([long], [(tokenizer, 256)], max_chars=None)
    assert long.target.startswith(reply) and len(reply) < len(long.target)
    context, scored = encode_pair(tokenizer, prompt_text(tokenizer, 256, long, reply, long.action, 10), reply)
    assert len(context) + len(scored) <= 256 and len(scored) <= 192
    assert tokenizer.decode(scored) == "\n" + reply


def distinct_n(texts, n):
    return load_metric("distinct_n").compute(predictions=texts, n=n)[f"distinct_{n}"]


def repeated_ngram_rate(texts, n=4):
    return load_metric("repeated_ngrams").compute(predictions=texts, n=n)[f"repeated_{n}gram_rate"]


def cyrillic_share(texts):
    return load_metric("cyrillic_share").compute(predictions=texts)["cyrillic_share"]


def test_text_metrics_on_hand_examples():
    assert distinct_n(["a b a b"], 1) == 0.5  # {a, b} of 4 words
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)  # {ab, ba} of 3 bigrams
    assert distinct_n([""], 2) == 0.0
    # "a b c d a b c d": 5 4-grams, the last one repeats the first
    assert repeated_ngram_rate(["a b c d a b c d"], 4) == pytest.approx(1 / 5)
    assert repeated_ngram_rate(["a b c d", "a b c d"], 4) == 0.0  # repeats across replies are not loops
    assert cyrillic_share(["абв", "abc"]) == 0.5
    assert cyrillic_share(["123 !"]) == 0.0


# Replies and the metrics the hand-written functions (now the evaluate modules) gave for them: equal to the bit,
# so a report's values do not move across the change.
REPLIES = ["Дверь скрипит. За ней темно, и вы слышите шаги.", "",
           "Вы идёте на север. Вы идёте на север. Вы идёте на север.", "The door is locked. Дверь заперта!", "   ",
           "Ёжик ест 3 яблока_и_груши; «ещё»?"]
REPLY_TOKENS = [17, 0, 30, 12, 1, 14]
REPLY_CUT = [False, False, True, False, False, True]
REPORTED = {"samples": 6, "mean_length": 28.833333333333332, "mean_new_tokens": 12.333333333333334,
            "empty_share": 0.3333333333333333, "distinct_1": 0.6875, "distinct_2": 0.75, "repeated_4gram_rate": 0.25,
            "cyrillic_share": 0.8818897637795275, "cut_action_share": 0.3333333333333333}


def metric_files() -> list[str]:
    return sorted(str(p.relative_to(METRICS_DIR)) for p in METRICS_DIR.rglob("*") if p.is_file())


def test_report_text_metrics_keep_their_values_and_write_nothing_into_the_repo():
    before = metric_files()
    result = text_metrics(REPLIES, REPLY_TOKENS, REPLY_CUT)
    assert list(result) == list(REPORTED) and result == REPORTED
    assert all(repr(result[k]) == repr(v) for k, v in REPORTED.items())  # same floats, not merely close
    assert text_metrics([], [], []) == dict.fromkeys(REPORTED, 0.0) | {"samples": 0}
    assert load_metric("distinct_n") is load_metric("distinct_n")  # loaded once per process
    with pytest.raises(ValueError, match="one of each per reply"):
        text_metrics(["a"], [], [False])
    assert metric_files() == before == [f"{name}/{name}.py" for name in
                                        ("bits_per_char", "cyrillic_share", "distinct_n", "looping", "repeated_ngrams")]


def test_likelihood_metrics_of_hand_totals():
    ln2 = math.log(2)
    result = likelihood_metrics([10 * ln2, 6 * ln2], [2, 2], [3, 5], targets_cut=1)
    assert result == {"perplexity": pytest.approx(16.0), "bits_per_char": pytest.approx(2.0),
                      "nll_bits": pytest.approx(16.0), "tokens": 4, "characters": 8, "samples": 2, "targets_cut": 1}
    empty = likelihood_metrics([], [], [], targets_cut=0)
    assert math.isnan(empty["perplexity"]) and math.isnan(empty["bits_per_char"])
    assert (empty["tokens"], empty["characters"], empty["samples"]) == (0, 0, 0)


# A researcher's use: evaluate.load by path, outside the repository, offline, with a fresh Hugging Face cache.
RESEARCHER = r"""
import json, math, sys, time

import evaluate

metrics_dir, model_dir, texts, prompts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
out = {"load_seconds": {}}


def load(name, *config):
    started = time.perf_counter()
    module = evaluate.load(f"{metrics_dir}/{name}", *config)
    out["load_seconds"]["/".join((name,) + config)] = time.perf_counter() - started
    return module


def error(call):
    try:
        call()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


distinct, repeated, cyrillic = load("distinct_n"), load("repeated_ngrams"), load("cyrillic_share")
out["distinct"] = [distinct.compute(predictions=["Дверь скрипит. Дверь открыта."]),
                   distinct.compute(predictions=["Дверь", "дверь"], n=1),
                   distinct.compute(predictions=["a b a b", "x"], n=[1, 2, 3]), distinct.compute(predictions=[])]
out["repeated"] = [repeated.compute(predictions=["a b c d a b c d"]),
                   repeated.compute(predictions=["я иду домой, я иду домой"], n=2),
                   repeated.compute(predictions=["a b c d", "a b c d"]), repeated.compute(predictions=[]),
                   repeated.compute(predictions=["Дверь, дверь! ДВЕРЬ"], n=1)]
out["cyrillic"] = [cyrillic.compute(predictions=["Hello мир"]), cyrillic.compute(predictions=["Ёжик ест 3 яблока!"]),
                   cyrillic.compute(predictions=["123 !"]), cyrillic.compute(predictions=[])]
out["bad_n"] = error(lambda: distinct.compute(predictions=["a"], n=0))
nll = load("bits_per_char")
ln2 = math.log(2)
out["nll"] = [nll.compute(nll_nats=[10 * ln2, 6 * ln2], characters=[3, 5], tokens=[2, 2]),
              nll.compute(nll_nats=[], characters=[], tokens=[])]
model = load("bits_per_char", "texts")
out["texts"] = model.compute(predictions=texts, model_id=model_dir, batch_size=2)
out["prompted"] = model.compute(predictions=texts, prompts=prompts, model_id=model_dir)
out["hub_offline"] = error(lambda: model.compute(predictions=["Привет"], model_id="nobody/not-a-cached-model"))
out["bad_config"] = error(lambda: evaluate.load(f"{metrics_dir}/bits_per_char", "tokens"))
out["wrong_config"] = error(lambda: nll.compute(nll_nats=[1.0], characters=[1], tokens=[1], model_id=model_dir))
out["gamio_imported"] = sorted({m.split(".")[0] for m in sys.modules}
                               & {"adventure", "eval", "scraping", "training", "conversion", "serving"})
print(json.dumps(out, ensure_ascii=False))
"""

TEXTS = ["Дверь скрипит. За ней темно.", "Никто не отвечает.", "Пол прогибается, и вы слышите шаги наверху. " * 3]
PROMPTS = ["Вы открываете дверь.", None, "> Войти\n"]


@pytest.fixture(scope="module")
def researcher(tiny_untrained_dir, tmp_path_factory) -> dict:
    home = tmp_path_factory.mktemp("researcher")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(home / "hf"))
    env.pop("PYTHONPATH", None)
    done = subprocess.run([sys.executable, "-c", RESEARCHER, str(METRICS_DIR), str(tiny_untrained_dir),
                           json.dumps(TEXTS), json.dumps(PROMPTS)], cwd=home, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_modules_load_outside_gamio_offline_and_give_hand_computed_values(researcher):
    assert researcher["gamio_imported"] == []  # self-contained: nothing of gamio was needed
    assert set(researcher["load_seconds"]) == {"distinct_n", "repeated_ngrams", "cyrillic_share", "bits_per_char",
                                               "bits_per_char/texts"}
    # дверь скрипит дверь открыта: 3 of 4 words and 3 of 3 bigrams unique; case does not split a word
    assert researcher["distinct"] == [{"distinct_1": 0.75, "distinct_2": 1.0}, {"distinct_1": 0.5},
                                      {"distinct_1": 0.6, "distinct_2": pytest.approx(2 / 3), "distinct_3": 1.0},
                                      {"distinct_1": 0.0, "distinct_2": 0.0}]
    # я иду / иду домой / домой я / я иду / иду домой: 2 of 5 bigrams repeat
    # ... and the same words as distinct_n: case and punctuation do not make "дверь" three different words
    assert researcher["repeated"] == [{"repeated_4gram_rate": pytest.approx(0.2)}, {"repeated_2gram_rate": 0.4},
                                      {"repeated_4gram_rate": 0.0}, {"repeated_4gram_rate": 0.0},
                                      {"repeated_1gram_rate": pytest.approx(2 / 3)}]
    assert researcher["cyrillic"] == [{"cyrillic_share": 0.375}, {"cyrillic_share": 1.0}, {"cyrillic_share": 0.0},
                                      {"cyrillic_share": 0.0}]
    assert "positive int" in researcher["bad_n"]
    full, empty = researcher["nll"]
    assert full == {"bits_per_char": pytest.approx(2.0), "perplexity": pytest.approx(16.0),
                    "nll_bits": pytest.approx(16.0), "tokens": 4, "characters": 8}
    assert math.isnan(empty["bits_per_char"]) and math.isnan(empty["perplexity"]) and empty["tokens"] == 0
    assert "nobody/not-a-cached-model" in researcher["hub_offline"] and "HF_HUB_OFFLINE" in researcher["hub_offline"]
    assert "'nll'" in researcher["bad_config"] and "'texts'" in researcher["bad_config"]
    assert "model_id" in researcher["wrong_config"] and "'texts' config" in researcher["wrong_config"]


def nll_metrics(engine, texts, prompts) -> dict:
    """Mode A fed with NLLs from gamio's scoring: each text after its prompt, or after the start token."""
    tokenizer = engine.tokenizer
    pairs = [(encode_text(tokenizer, p) if p else [tokenizer.bos_token_id], encode_text(tokenizer, t))
             for t, p in zip(texts, prompts)]
    return load_metric("bits_per_char").compute(nll_nats=engine.score(pairs), tokens=[len(t) for _, t in pairs],
                                                characters=[len(t) for t in texts])


@pytest.mark.parametrize("key,prompts", [("texts", [None] * len(TEXTS)), ("prompted", PROMPTS)])
def test_scoring_texts_with_a_model_agrees_with_gamio_likelihood(researcher, tiny, key, prompts):
    expected = nll_metrics(tiny, TEXTS, prompts)
    got = researcher[key]
    assert (got["tokens"], got["characters"]) == (expected["tokens"], expected["characters"])
    assert got["characters"] == sum(len(t) for t in TEXTS)
    for name in ("bits_per_char", "perplexity", "nll_bits"):
        assert got[name] == pytest.approx(expected[name], rel=1e-6)


def test_translation_scores_with_sacrebleu():
    refs = ["The door creaks open.", "Nobody answers the call."]
    perfect = corpus_scores(refs, refs)
    assert perfect["bleu"] == pytest.approx(100.0) and perfect["chrf"] == pytest.approx(100.0)
    poor = corpus_scores(["xyz qqq", "zzz"], refs)
    assert poor["bleu"] < 5 and poor["chrf"] < 10


def test_playthrough_set_is_deterministic_round_robin_and_prefers_history():
    test = [sample(tree_id=t, node_id=f"0.{i}", history=[("a", "r")] * (i % 3))
            for t in ("b_story", "a_story") for i in range(25)]
    first = playthrough_set(test, 30, seed=7)
    assert first == playthrough_set(list(test), 30, seed=7)
    assert len(first) == 30
    assert {s.tree_id for s in first} == {"a_story", "b_story"}
    assert sum(s.tree_id == "a_story" for s in first) == 15
    assert all(s.history for s in first)  # 2/3 of the turns have history: enough to fill 30 without openings
    assert playthrough_set(test, 30, seed=8) != first
    assert len(playthrough_set(test[:10], 30, seed=7)) == 10  # never invents turns
    assert cap(list(range(10)), 4, 1) == cap(list(range(10)), 4, 1) == sorted(cap(list(range(10)), 4, 1))


def test_language_rules(tiny_untrained_dir, tmp_path):
    source = ModelSource("x", "dir", str(tiny_untrained_dir))
    language, rule = detect_language(source)
    assert language == "ru" and rule.startswith("tokenizer")

    from tests.helpers.models import build_english_tiny

    english = build_english_tiny(tmp_path / "english", language_note=False)
    source = ModelSource("x", "dir", str(english))
    language, rule = detect_language(source)
    assert language == "en" and rule.startswith("tokenizer")  # the English BPE spends ~1 token per letter
    (english / "MODEL_CARD.md").write_text("---\nlanguage:\n  - ru\n---\n# card\n", encoding="utf-8")
    assert detect_language(source) == ("ru", "model card")
    (english / "gamio.json").write_text(json.dumps({"language": "en"}), encoding="utf-8")
    assert detect_language(source) == ("en", "gamio.json")  # the explicit note wins


def _model(name, language, comparable_rule="config"):
    return EvalModel(name=name, spec=name, language=language, language_rule=comparable_rule,
                     source=ModelSource(name, "dir", f"/m/{name}"))


def test_recommendation_is_chosen_on_validation_and_reported_on_test():
    models = [_model("first", "ru"), _model("second", "ru"), _model("worse", "ru"), _model("english", "en")]
    results = {"validation": {"first": {"bits_per_char": 2.0}, "second": {"bits_per_char": 2.0},
                              "worse": {"bits_per_char": 3.0}, "english": {"bits_per_char": 0.5}},
               "test": {"first": {"bits_per_char": 2.5, "bits_per_char_ci95": [2.0, 3.0]},
                        "second": {"bits_per_char": 2.2}, "worse": {"bits_per_char": 1.0}}}
    rec = recommend(models, results)
    # the test split would pick "worse"; validation picks "first" (ties keep the config order, not a clock)
    assert (rec["name"], rec["split"], rec["bits_per_char"], rec["validation_bits_per_char"]) == (
        "first", "validation", 2.5, 2.0)
    assert rec["bits_per_char_ci95"] == [2.0, 3.0] and "english" in rec["reason"]
    no_validation = recommend(models, {"test": results["test"]})
    assert (no_validation["name"], no_validation["split"]) == ("worse", "test")
    assert "no validation split" in no_validation["reason"]
    assert recommend([_model("english", "en")], results) is None


def test_rounding_keeps_json_valid():
    assert rounded({"a": 1 / 3, "b": [float("nan"), -0.0000001], "c": 2}) == {"a": 0.333333, "b": [None, 0.0], "c": 2}
    json.dumps(rounded({"x": float("inf")}), allow_nan=False)


def test_markdown_table_bolds_the_best_per_column_only_among_eligible_rows():
    from eval.report_md import table

    rows = {"a": {"bits_per_char": 2.0, "chrf": 10.0, "samples": 3}, "b": {"bits_per_char": 1.5, "chrf": 10.0,
                                                                          "samples": 3},
            "en": {"bits_per_char": 0.5, "chrf": 10.0, "samples": 3}}
    text = table(rows, ("bits_per_char", "chrf", "samples"), eligible={"a", "b"})
    assert "| b | **1.5000** |" in text
    assert "**0.5000**" not in text  # not comparable: never marked best
    assert "**10.0000**" not in text and "**3**" not in text  # all equal / no direction: no bold
