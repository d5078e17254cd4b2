"""The lm-evaluation-harness export: the real `lm_eval` CLI, run as the exported README says, scores every test
sample of the trained tiny model with the same log-likelihood as gamio's items.jsonl from `python -m eval engine=hf
export=lm_eval` (float32), within 0.01 nats."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adventure.budget import encode_text
from adventure.errors import GamioError
from eval.lm_eval_export import lm_eval_pair, read_lm_eval_samples, write_lm_eval_task

pytest.importorskip("lm_eval", reason="lm-eval is a dev extra (`make install`)")

TOLERANCE_NATS = 0.01
PER_STORY = 4  # 8 samples from the 2 test stories


@pytest.fixture(scope="module")
def exported(trained_artifacts):
    """`python -m eval engine=hf export=lm_eval` on the trained tiny model: (report dir, hf engine in float32,
    the exported records, gamio's per-sample NLL from items.jsonl, the model folder)."""
    import torch

    from adventure.engines.hf import HFEngine
    from adventure.models import load_causal_lm
    from eval.items import read_items
    from tests.eval.test_stage import run_eval

    run_eval(trained_artifacts, "models=[tiny]", "engine=hf", "export=lm_eval", "report_name=lm-eval",
             f"max_samples.test={2 * PER_STORY}", "max_samples.validation=2", "playthrough.size=2",
             "extra_generation=[]", "likelihood.action_following=false", "bootstrap.resamples=50")
    report = trained_artifacts / "reports" / "lm-eval"
    folder = trained_artifacts / "models" / "tiny"
    model, tokenizer, _ = load_causal_lm(str(folder), trained_artifacts, dtype=torch.float32)
    records = [json.loads(line) for line in (report / "lm_eval" / "gamio_test.jsonl").read_text("utf-8").splitlines()]
    ours = {i["sample_id"]: i["nll_nats"] for i in read_items(report / "items.jsonl")
            if i["set"] == "test" and i["model"] == "tiny"}
    assert len(records) == len(ours) == 2 * PER_STORY
    return report, HFEngine(model, tokenizer), records, ours, folder


def run_readme_command(task_dir: Path, model: Path, results: Path, cwd: Path) -> subprocess.CompletedProcess:
    """The exact command of the exported README, placeholders filled in, run by a shell from `cwd`."""
    readme = (task_dir / "README.md").read_text(encoding="utf-8")
    command = re.search(r"```\n(.*?)\n```", readme, re.S).group(1)
    assert "<model folder or hub id>" in command and "<results dir>" in command
    command = command.replace("<model folder or hub id>", str(model)).replace("<results dir>", str(results))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               HF_DATASETS_CACHE=str(cwd / "hf-datasets-cache"), OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_lm_eval_cli_scores_each_sample_as_gamio_items_jsonl_says(exported, tmp_path):
    report, engine, records, ours, model_folder = exported
    # The folder is portable: moved after export, found from another working directory.
    moved = tmp_path / "moved" / "lm_eval"
    shutil.copytree(report / "lm_eval", moved)
    (moved / "README.md").write_text((moved / "README.md").read_text(encoding="utf-8").replace(
        str((report / "lm_eval").resolve()), str(moved)), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run_readme_command(moved, model_folder, tmp_path / "results", elsewhere)
    assert done.returncode == 0, f"lm_eval failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"

    theirs = read_lm_eval_samples(tmp_path / "results")
    assert set(theirs) == set(ours)
    gaps = {k: abs(theirs[k] - (-ours[k])) for k in ours}
    assert max(gaps.values()) < TOLERANCE_NATS, gaps

    # The whitespace move matters: scoring the unmoved pair (prompt ids, reply ids) leaves out the newline after
    # the action, which the harness scores; every sample would miss the tolerance by far.
    tokenizer = engine.tokenizer
    unmoved = engine.score([(encode_text(tokenizer, r["context"]), encode_text(tokenizer, r["continuation"]))
                            for r in records])
    for record, nll in zip(records, unmoved):
        assert abs(theirs[record["sample_id"]] + nll) > 0.5, record["sample_id"]

    # The harness's aggregate is gamio's bits per character over the same samples.
    results = json.loads(next((tmp_path / "results").rglob("results_*.json")).read_text(encoding="utf-8"))
    bpc = results["results"]["gamio_test"]["bits_per_char,none"]
    gamio = json.loads((report / "report.json").read_text(encoding="utf-8"))["results"]["test"]["tiny"]
    assert bpc == pytest.approx(gamio["bits_per_char"], abs=1e-4)


def test_pair_is_lm_evals_own_encode_pair(exported):
    """gamio's pair = the installed lm-eval's `_encode_pair` (HFLM on the same model), on the exported records and
    on contexts ending in several kinds of whitespace."""
    from lm_eval.models.huggingface import HFLM

    _report, engine, records, _ours, _folder = exported
    harness = HFLM(pretrained=engine.model, tokenizer=engine.tokenizer, batch_size=1, device="cpu")
    pairs = [(r["context"], r["continuation"]) for r in records]
    pairs += [("> Осмотреться  \n", "Вы видите дверь."), ("Мир.\n> идти\n\n\t", " дальше"), ("слово ", "слово"),
              ("нет пробела", "продолжение")]
    for context, continuation in pairs:
        ours = lm_eval_pair(engine.tokenizer, context, continuation)
        assert ours == tuple(harness._encode_pair(context, continuation)), (context[-20:], continuation[:20])
        assert harness.tok_encode(context + continuation) == encode_text(engine.tokenizer, context + continuation)
    context_ids, continuation_ids = lm_eval_pair(engine.tokenizer, records[0]["context"], records[0]["continuation"])
    assert engine.tokenizer.decode(continuation_ids).startswith("\n" + records[0]["continuation"][:5])
    assert not engine.tokenizer.decode(context_ids).endswith("\n")


def test_export_files_and_refusals(tmp_path):
    records = [{"sample_id": "s:0", "story_id": "s", "context": "Мир.\n> идти\n", "continuation": "Вы идёте."},
               {"sample_id": "s:1", "story_id": "s", "context": "<|endoftext|>\n> x\n", "continuation": "y"}]
    path = write_lm_eval_task(records, tmp_path / "task", "my_task", special_tokens=["<|endoftext|>"])
    assert path == tmp_path / "task" / "my_task.yaml"
    assert {p.name for p in path.parent.iterdir()} == {"my_task.yaml", "my_task.jsonl", "my_task_task.py",
                                                       "README.md"}
    rows = [json.loads(line) for line in (path.parent / "my_task.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows == records  # stored unmoved, text as given
    readme = (path.parent / "README.md").read_text(encoding="utf-8")
    assert "--tasks my_task" in readme and "Special-token strings occur in 1 sample(s)" in readme and "s:1" in readme

    bad = [({**records[0], "context": ""}, "empty context"), ({**records[0], "continuation": ""}, "empty context"),
           ({k: v for k, v in records[0].items() if k != "story_id"}, "lacks"),
           ({**records[0], "context": None}, "must be text")]
    for record, reason in bad:
        with pytest.raises(GamioError, match=reason):
            write_lm_eval_task([record], tmp_path / "bad")
    with pytest.raises(GamioError, match="occurs twice"):
        write_lm_eval_task([records[0], records[0]], tmp_path / "bad")
    with pytest.raises(GamioError, match="task_name"):
        write_lm_eval_task(records, tmp_path / "bad", "my-task")
    with pytest.raises(GamioError, match="no samples_gamio_test"):
        read_lm_eval_samples(tmp_path)
