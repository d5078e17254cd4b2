"""End-to-end tests of `python -m eval` on tiny models: recommendation, report files and keys, byte-identical
reruns, failing before any work on a missing model or dataset, English translate-wrap models."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adventure.paths import REPO_ROOT
from tests.helpers.models import build_dataset, build_english_tiny

STABLE_KEYS = ("perplexity", "bits_per_char", "distinct_1", "distinct_2", "repeated_4gram_rate", "cyrillic_share",
               "cut_action_share", "bleu", "chrf")
# Small but real: every set, every metric, two presets where it matters; sizes kept down for 2 cores.
FAST = ["max_samples.test=12", "max_samples.parallel=16", "playthrough.size=8", "extra_generation=[]",
        "samples_in_report=2"]


# ---------------------------------------------------------------------------------------------------------
# Helpers: the dataset the scraping stage will write, and a briefly trained tiny model.

def run_eval(artifacts: Path, *overrides: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "eval", f"paths.artifacts={artifacts}", *overrides],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(f"eval failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
    return done


def read_report(artifacts: Path, name: str = "default") -> dict:
    return json.loads((artifacts / "reports" / name / "report.json").read_text(encoding="utf-8"))


def without_timing(path: Path) -> bytes:
    """report.json's bytes with the `timing` value removed (it is the only wall-clock-dependent key)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    assert "timing" in data
    data["timing"] = None
    # Re-serialising with the writer's own settings: equal bytes iff everything else was equal.
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    raw = path.read_text(encoding="utf-8")
    assert json.loads(raw) == dict(data, timing=json.loads(raw)["timing"])
    return text.encode("utf-8")


@pytest.fixture(scope="module")
def eval_artifacts(trained_artifacts) -> Path:
    """Dataset + trained tiny + tiny-untrained + offline translators, built once per session."""
    return trained_artifacts


# ---------------------------------------------------------------------------------------------------------

def float_metrics(results: dict):
    """(path, key, value, its interval) of every float metric in results, at any depth."""
    for set_name, per_model in results.items():
        for model, metrics in per_model.items():
            groups = metrics.items() if set_name == "playthrough" else [(None, metrics)]
            for preset, values in groups:
                for key, value in values.items():
                    if isinstance(value, float) and not key.endswith("_ci95"):
                        yield (set_name, model, preset), key, value, values.get(key + "_ci95")


@pytest.mark.slow
def test_default_report_recommends_trained_over_untrained_and_is_reproducible(eval_artifacts, tmp_path):
    from eval.items import read_items

    run_eval(eval_artifacts, *FAST[:-2], "extra_generation=[greedy]", "samples_in_report=2")
    out = eval_artifacts / "reports" / "default"
    first = (out / "report.json").read_bytes()
    report = json.loads(first)

    # auto = trained tiny + its untrained floor (translator folders are not models)
    assert report["model_order"] == ["tiny", "tiny-untrained"]
    assert report["models"]["tiny-untrained"]["floor"] is True and report["models"]["tiny"]["floor"] is False
    test, validation = report["results"]["test"], report["results"]["validation"]
    assert test["tiny"]["bits_per_char"] < test["tiny-untrained"]["bits_per_char"]
    assert test["tiny"]["perplexity"] < test["tiny-untrained"]["perplexity"]
    rec = report["recommended"]
    assert (rec["name"], rec["spec"], rec["language"], rec["split"]) == ("tiny", "tiny", "ru", "validation")
    assert rec["validation_bits_per_char"] == validation["tiny"]["bits_per_char"]
    assert rec["bits_per_char"] == test["tiny"]["bits_per_char"] and "lowest bits per character" in rec["reason"]

    # Every metric has its 95% interval around it.
    checked = 0
    for where, key, value, interval in float_metrics(report["results"]):
        assert interval is not None and len(interval) == 2, (where, key)
        assert interval[0] <= interval[1] and interval[0] - 1e-6 <= value <= interval[1] + 1e-6, (where, key)
        checked += 1
    assert checked > 40
    # Paired comparisons with the recommended model, on the same items.
    diff = report["comparisons"]["test"]["tiny-untrained"]["bits_per_char"]
    assert diff["delta"] == pytest.approx(test["tiny-untrained"]["bits_per_char"] - test["tiny"]["bits_per_char"],
                                          abs=2e-6)
    assert diff["ci95"][0] > 0 and 0 < diff["p_value"] < 0.05 and diff["items"] == test["tiny"]["samples"]
    assert set(report["comparisons"]["playthrough"]["tiny-untrained"]) == {"gamio", "greedy"}
    assert any("stories (< 5)" in w for w in report["warnings"])  # 2 test stories: the report says it is thin

    # items.jsonl: each number is recomputed from its items; both models scored the same characters.
    items = read_items(out / "items.jsonl")
    for set_name in ("test", "validation"):
        chars = {}
        for model in ("tiny", "tiny-untrained"):
            rows = [i for i in items if i["set"] == set_name and i["model"] == model]
            assert sum(i["bits"] for i in rows) / sum(i["chars"] for i in rows) == pytest.approx(
                report["results"][set_name][model]["bits_per_char"], abs=2e-6)
            chars[model] = [(i["sample_id"], i["chars"]) for i in rows]
        assert chars["tiny"] == chars["tiny-untrained"]
        assert report["results"][set_name]["tiny"]["characters"] == report["results"][set_name]["tiny-untrained"][
            "characters"]
    follow = [i for i in items if i["set"] == "test" and i["model"] == "tiny"]
    assert (sum(i["bits_other_action"] for i in follow) - sum(i["bits"] for i in follow)) / sum(
        i["chars"] for i in follow) == pytest.approx(test["tiny"]["action_following"], abs=2e-6)
    replies = [i for i in items if i["set"] == "playthrough" and i["model"] == "tiny" and i["preset"] == "greedy"]
    greedy = report["results"]["playthrough"]["tiny"]["greedy"]
    assert len(replies) == greedy["samples"] and sum(i["empty"] for i in replies) / len(replies) == pytest.approx(
        greedy["empty_share"])

    # Garbage wins nothing: the floor's greedy replies loop, a mostly empty preset fails, no bold for either.
    floor_greedy = report["results"]["playthrough"]["tiny-untrained"]["greedy"]
    assert floor_greedy["looping_share"] >= 0.5
    md = (out / "report.md").read_text(encoding="utf-8")
    for model, per_preset in report["results"]["playthrough"].items():
        for preset, metrics in per_preset.items():
            assert metrics["failed"] == (metrics["empty_share"] > 0.5)
            if metrics["failed"]:
                assert report["best_presets"][model]["preset"] != preset
                assert f"| {model} (FAILED) |" in md
    for line in md.splitlines():
        if line.startswith("| tiny-untrained (floor) |"):
            assert "**" not in line, line
    assert "latency" not in md.split("## Sample replies")[0].lower() and "seconds" not in md
    assert "latency_p50_s" in (out / "timing.md").read_text(encoding="utf-8")
    for name in ("report.json", "report.md", "items.jsonl", "timing.md", "bits_per_char.png", "latency.png"):
        assert (out / name).stat().st_size > 0, name
    assert "## Recommended model" in md and "**tiny**" in md and "### Generation `gamio`" in md
    assert "## Warnings" in md and "[" in md.split("## Test split")[1].split("\n\n")[2]  # intervals in tables
    prov = report["provenance"]
    assert prov["seed"] == report["seed"] and prov["config"]["report_name"] == "default"
    assert len(prov["dataset"]["files_sha256"]) == 64
    assert set(prov["model_weights_sha256"]["tiny"]) == {"model.safetensors"}
    assert str(eval_artifacts) not in first.decode("utf-8").split('"timing"')[0]  # no absolute paths

    # Same config again: identical report.md and items.jsonl, report.json identical but for the timing.
    first_md, first_items = md, (out / "items.jsonl").read_bytes()
    run_eval(eval_artifacts, *FAST[:-2], "extra_generation=[greedy]", "samples_in_report=2")
    tmp = tmp_path / "first-report.json"
    tmp.write_bytes(first)
    assert without_timing(tmp) == without_timing(out / "report.json")
    assert (out / "report.md").read_text(encoding="utf-8") == first_md
    assert (out / "items.jsonl").read_bytes() == first_items
    assert json.loads(first)["timing"] != json.loads((out / "report.json").read_bytes())["timing"]

    # Another artifacts folder elsewhere (another checkout's): the same bytes again.
    elsewhere = tmp_path / "another" / "checkout" / "artifacts"
    shutil.copytree(eval_artifacts, elsewhere, ignore=shutil.ignore_patterns("reports"))
    run_eval(elsewhere, *FAST[:-2], "extra_generation=[greedy]", "samples_in_report=2")
    moved = elsewhere / "reports" / "default"
    assert (moved / "report.md").read_text(encoding="utf-8") == first_md
    assert without_timing(moved / "report.json") == without_timing(tmp)


@pytest.mark.slow
def test_reports_name_their_engine_and_ct2_int8_bits_per_char_stay_near_hf(eval_artifacts):
    """The default engine (ct2, int8 on CPU) against engine=hf on the same models: each report says which engine
    produced its generation and likelihood numbers, and int8 bits/char stay within 2% of hf float32's."""
    run_eval(eval_artifacts, *FAST, "report_name=engine-ct2")
    run_eval(eval_artifacts, *FAST, "engine=hf", "report_name=engine-hf")
    ct2, hf = read_report(eval_artifacts, "engine-ct2"), read_report(eval_artifacts, "engine-hf")
    for report, engine in ((ct2, "ct2 int8 on cpu"), (hf, "hf float32 on cpu")):
        assert report["models"]["tiny"]["engine"] == {"generation": engine, "likelihood": engine}
        md = (eval_artifacts / "reports" / report["report_name"] / "report.md").read_text(encoding="utf-8")
        assert f"| {engine} / {engine} |" in md
    for model in ("tiny", "tiny-untrained"):
        assert ct2["results"]["test"][model]["bits_per_char"] == pytest.approx(
            hf["results"]["test"][model]["bits_per_char"], rel=0.02)
    assert ct2["provenance"]["packages"]["ctranslate2"]


def test_missing_model_fails_before_work_naming_it(eval_artifacts):
    missing = eval_artifacts / "models" / "no_such_model"
    done = run_eval(eval_artifacts, f"models=[tiny,{missing}]", "report_name=missing-model", check=False)
    assert done.returncode == 2
    assert str(missing) in done.stderr
    assert not (eval_artifacts / "reports" / "missing-model").exists()


def test_missing_dataset_fails_before_work_naming_it(tmp_path, eval_artifacts):
    done = run_eval(eval_artifacts, f"dataset={tmp_path / 'nope'}", "report_name=missing-data", check=False)
    assert done.returncode == 2
    assert str(tmp_path / "nope") in done.stderr and "dataset" in done.stderr
    assert not (eval_artifacts / "reports" / "missing-data").exists()


def test_untrained_auto_default_names_the_missing_trained_model(tmp_path):
    build_dataset(tmp_path)
    done = run_eval(tmp_path, check=False)
    assert done.returncode == 2
    assert "tiny" in done.stderr and "python -m training" in done.stderr


@pytest.mark.slow
def test_english_model_is_wrapped_not_comparable_and_translators_scored(eval_artifacts):
    english = build_english_tiny(eval_artifacts / "models" / "english_tiny")
    try:
        run_eval(eval_artifacts, "report_name=english", "translation=tiny",
                 "translation.num_beams=1", "max_samples.test=4", "max_samples.parallel=12", "playthrough.size=3",
                 "playthrough.max_turns=2", "generation=greedy", "extra_generation=[]", "samples_in_report=1")
    finally:
        shutil.rmtree(english)
    report = read_report(eval_artifacts, "english")
    assert report["model_order"] == ["tiny", "tiny-untrained", "english_tiny"]  # auto found the new folder
    en = report["models"]["english_tiny"]
    assert (en["language"], en["language_rule"], en["comparable"]) == ("en", "gamio.json", False)
    assert (en["translator_in"], en["translator_out"]) == ("tiny", "tiny")
    assert report["results"]["test"]["english_tiny"]["comparable"] is False
    assert report["results"]["test"]["english_tiny"]["side"] == "en"
    # Whatever its bits/char, an English-side model is never the recommendation.
    assert report["recommended"]["name"] == "tiny"
    assert "english_tiny" in report["recommended"]["reason"]
    parallel = report["results"]["parallel"]
    assert set(parallel) == {"ru-en:tiny", "en-ru:tiny"}
    for scores in parallel.values():
        assert 0.0 <= scores["bleu"] <= 100.0 and 0.0 <= scores["chrf"] <= 100.0 and scores["pairs"] == 12
    assert "## Parallel set" in (eval_artifacts / "reports" / "english" / "report.md").read_text(encoding="utf-8")
    flat = json.dumps(report["results"])
    for key in STABLE_KEYS:
        assert f'"{key}"' in flat, key


def test_english_model_with_unavailable_translator_fails_before_work(eval_artifacts, tmp_path):
    english = build_english_tiny(tmp_path / "english_tiny")
    done = run_eval(eval_artifacts, f"models=[{{name: en, spec: {english}}}]", "report_name=no-translator",
                    "translation.ru_en=Helsinki-NLP/opus-mt-ru-en", check=False)
    assert done.returncode == 2
    assert "Helsinki-NLP/opus-mt-ru-en" in done.stderr
    assert not (eval_artifacts / "reports" / "no-translator").exists()


def test_play_through_steering_is_applied_and_recorded(eval_artifacts, tmp_path):
    steering = {"memory": "Вы — последний рыцарь королевства.", "authors_note": "Мрачно и тихо.",
                "world_info": [{"keys": ["лес"], "text": "В лесу живёт ведьма."}], "banned_words": ["дракон"]}
    path = tmp_path / "steering.json"
    path.write_text(json.dumps(steering, ensure_ascii=False), encoding="utf-8")
    run_eval(eval_artifacts, "models=[tiny]", "report_name=steered", f"playthrough.steering={path}",
             "max_samples.test=4", "playthrough.size=3", "extra_generation=[]", "samples_in_report=3")
    report = read_report(eval_artifacts, "steered")
    recorded = report["sets"]["playthrough"]["steering"]
    assert recorded["memory"] == steering["memory"] and recorded["banned_words"] == ["дракон"]
    assert recorded["world_info"] == [{"keys": ["лес"], "text": "В лесу живёт ведьма.", "constant": False}]
    for sample in report["samples"]:
        assert "дракон" not in sample["outputs"]["tiny"]["gamio"].lower()

    path.write_text(json.dumps({"authors_note_depth": 99}), encoding="utf-8")
    done = run_eval(eval_artifacts, "models=[tiny]", "report_name=bad-steering", f"playthrough.steering={path}",
                    check=False)
    assert done.returncode == 2 and "authors_note_depth" in done.stderr and "Traceback" not in done.stderr
    assert not (eval_artifacts / "reports" / "bad-steering").exists()
