"""End-to-end tests of `python -m eval` on tiny models: recommendation, report files and keys, byte-identical
reruns, failing before any work on a missing model or dataset, English translate-wrap models."""
from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adventure.paths import REPO_ROOT, SAMPLE_STORIES_DIR
from tests.helpers.models import install_tiny_marians

STABLE_KEYS = ("perplexity", "bits_per_char", "distinct_1", "distinct_2", "repeated_4gram_rate", "cyrillic_share",
               "cut_action_share", "bleu", "chrf")
# Small but real: every set, every metric, two presets where it matters; sizes kept down for 2 cores.
FAST = ["max_samples.test=12", "max_samples.parallel=16", "playthrough.size=8", "extra_generation=[]",
        "samples_in_report=2"]


# ---------------------------------------------------------------------------------------------------------
# Helpers: the dataset the scraping stage will write, and a briefly trained tiny model.

def split_by_story(tree_ids: list[str]) -> dict[str, list[str]]:
    """Deterministic story-level split: 2 test stories, 1 validation story, the rest train."""
    ids = sorted(tree_ids)
    return {"test": ids[:2], "validation": ids[2:3], "train": ids[3:]}


def build_dataset(artifacts: Path) -> Path:
    """<artifacts>/data/dataset as a DatasetDict of Sample.to_dict() rows, split by story."""
    from datasets import Dataset, DatasetDict

    from adventure.story_format import samples_from_trees
    from adventure.trees import load_trees

    trees = load_trees(SAMPLE_STORIES_DIR)
    splits = split_by_story([t.tree_id for t in trees])
    data = DatasetDict({name: Dataset.from_list([s.to_dict() for s in samples_from_trees(
        [t for t in trees if t.tree_id in ids])]) for name, ids in splits.items()})
    out = artifacts / "data" / "dataset"
    data.save_to_disk(str(out))
    return out


@contextlib.contextmanager
def one_thread():
    """Tiny models run ~10x faster on one thread when the 2 cores are shared (as in CI); restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_tiny(artifacts: Path, steps: int = 30) -> Path:
    """<artifacts>/models/tiny: tiny-untrained trained for `steps` steps on the train split (transformers Trainer)."""
    import torch
    from datasets import load_from_disk
    from transformers import (AutoModelForCausalLM, AutoTokenizer, DataCollatorForLanguageModeling, Trainer,
                              TrainingArguments)

    from adventure.models import resolve_model_spec
    from adventure.tiny import save_model_folder

    base = resolve_model_spec("tiny-untrained", artifacts).location
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    train = load_from_disk(str(artifacts / "data" / "dataset"))["train"]
    texts = train.map(lambda row: tokenizer(row["prompt"] + row["target"] + tokenizer.eos_token, truncation=True,
                                            max_length=128), remove_columns=train.column_names)
    torch.manual_seed(0)
    args = TrainingArguments(output_dir=str(artifacts / "tmp-train"), max_steps=steps, per_device_train_batch_size=8,
                             learning_rate=3e-3, warmup_steps=5, logging_steps=1000, save_strategy="no",
                             report_to=[], use_cpu=True, seed=0, disable_tqdm=True)
    Trainer(model=model, args=args, train_dataset=texts,
            data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False)).train()
    shutil.rmtree(artifacts / "tmp-train", ignore_errors=True)
    return save_model_folder(model, tokenizer, artifacts / "models" / "tiny")


def build_english_tiny(out_dir: Path, language_note: bool = True) -> Path:
    """An untrained tiny GPT-2 with a tokenizer built on the English side of the parallel set."""
    from adventure.parallel import load_sentence_pairs
    from adventure.tiny import TinyShape, build_tiny_gpt2, build_tiny_tokenizer, save_model_folder

    tokenizer = build_tiny_tokenizer([en for en, _ in load_sentence_pairs()], vocab_size=800)
    model = build_tiny_gpt2(tokenizer, TinyShape(n_layer=1, n_embd=64, n_head=2, n_positions=512), seed=1)
    save_model_folder(model, tokenizer, out_dir)
    if language_note:
        (out_dir / "gamio.json").write_text(json.dumps({"language": "en"}), encoding="utf-8")
    return out_dir


def build_fast_translators(artifacts: Path) -> None:
    """The `tiny` Marian translators of the test suite (built once per session, then copied)."""
    install_tiny_marians(artifacts)


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
def eval_artifacts(tmp_path_factory) -> Path:
    """Dataset + trained tiny + tiny-untrained + offline translators, built once for this module."""
    artifacts = tmp_path_factory.mktemp("eval-artifacts")
    build_dataset(artifacts)
    with one_thread():
        train_tiny(artifacts)
        build_fast_translators(artifacts)
    return artifacts


# ---------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_default_report_recommends_trained_over_untrained_and_is_reproducible(eval_artifacts):
    run_eval(eval_artifacts, *FAST)
    out = eval_artifacts / "reports" / "default"
    first = (out / "report.json").read_bytes()
    report = json.loads(first)

    # auto = trained tiny + its untrained floor (translator folders are not models)
    assert report["model_order"] == ["tiny", "tiny-untrained"]
    assert set(report["models"]) == {"tiny", "tiny-untrained"}
    test = report["results"]["test"]
    assert test["tiny"]["bits_per_char"] < test["tiny-untrained"]["bits_per_char"]
    assert test["tiny"]["perplexity"] < test["tiny-untrained"]["perplexity"]
    rec = report["recommended"]
    assert (rec["name"], rec["spec"], rec["language"]) == ("tiny", "tiny", "ru")
    assert "lowest bits per character" in rec["reason"]

    for name in ("report.json", "report.md", "bits_per_char.png", "latency.png"):
        assert (out / name).stat().st_size > 0, name
    for model in ("tiny", "tiny-untrained"):
        assert {"perplexity", "bits_per_char"} <= set(test[model])
        gen = report["results"]["playthrough"][model]["gamio"]
        assert {"distinct_1", "distinct_2", "repeated_4gram_rate", "cyrillic_share", "cut_action_share"} <= set(gen)
        assert 0.0 <= gen["cyrillic_share"] <= 1.0
        assert {"latency_p50_s", "latency_p95_s", "tokens_per_s"} <= set(report["timing"]["models"][model]
                                                                          ["playthrough"]["gamio"])
    prov = report["provenance"]
    assert prov["seed"] == report["seed"] and prov["config"]["report_name"] == "default"
    assert len(prov["dataset"]["files_sha256"]) == 64
    assert set(prov["model_weights_sha256"]["tiny"]) == {"model.safetensors"}
    assert prov["packages"]["torch"] and prov["packages"]["transformers"]
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "## Recommended model" in md and "**tiny**" in md and "### Generation `gamio`" in md
    assert md.count("| tiny | gamio |") == 2  # side-by-side replies for each shown prompt

    # Same config again: identical bytes except the timing.
    run_eval(eval_artifacts, *FAST)
    second = out / "report.json"
    tmp = eval_artifacts / "first-report.json"
    tmp.write_bytes(first)
    assert without_timing(tmp) == without_timing(second)
    assert json.loads(first)["timing"] != json.loads(second.read_bytes())["timing"]


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
