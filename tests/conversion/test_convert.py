"""`python -m conversion` end to end: the real TensorFlow fixture, checkpoint variants made by our writer, every
refusal, sharded output, and the CLI contract. Tiny shapes keep the whole file well under a minute."""
import json
import logging
import subprocess
import sys

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

from adventure.errors import GamioError
from adventure.paths import REPO_ROOT
from tests.helpers.conversion import HP, make_checkpoint
from tests.helpers.real_data import REAL_TF_CHECKPOINT_DIR
from conversion.bundle_reader import shard_path
from conversion.convert import convert_checkpoint
from conversion.gpt2_mapping import HParams, weight_map
from conversion.verify import reference_logits

TF_FIXTURE = REAL_TF_CHECKPOINT_DIR
needs_fixture = pytest.mark.skipif(not TF_FIXTURE.is_dir(),
                                   reason=f"real TensorFlow fixture {TF_FIXTURE} is absent (../shared not mounted)")
OPTIMIZER_VARIABLES = ["beta1_power", "beta2_power", "global_step", "model/wte/Adam", "model/wte/Adam_1"]


def last_logits(model_dir, text):
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    ids = AutoTokenizer.from_pretrained(str(model_dir))(text)["input_ids"]
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0, -1].numpy()


@needs_fixture
@pytest.mark.parametrize("dtype, tolerance", [("float32", 2e-5), ("float16", 2e-3)])
def test_real_tensorflow_checkpoint_reproduces_reference_logits(tmp_path, dtype, tolerance):
    reference = json.loads((TF_FIXTURE / "reference_logits.json").read_text())
    out = tmp_path / "gamegpt_xl"
    result = convert_checkpoint(TF_FIXTURE, out, dtype=dtype)
    assert result.verification.max_diff <= 1e-4
    model = AutoModelForCausalLM.from_pretrained(str(out))
    assert model.dtype == getattr(torch, dtype) and model.config.n_layer == 2
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    assert tokenizer.bos_token == tokenizer.eos_token == "<|endoftext|>"
    for case in reference["cases"]:
        assert tokenizer(case["text"])["input_ids"] == case["input_ids"]  # identical to OpenAI's BPE
        np.testing.assert_allclose(last_logits(out, case["text"]), case["logits_last"], atol=tolerance, rtol=0)
    generation = json.loads((out / "generation_config.json").read_text())
    assert generation["repetition_penalty"] == 5.0 and generation["num_beams"] == 2
    assert generation["eos_token_id"] == tokenizer.eos_token_id == 399
    assert "verification | passed" in (out / "MODEL_CARD.md").read_text()
    card = ModelCard.load(out / "README.md")
    assert (card.data.language, card.data.license, card.data.pipeline_tag) == ("en", "other", "text-generation")
    assert card.data.base_model is None and card.data.datasets is None  # a local checkpoint; data unknown
    assert {"gamio", "text-adventure", "gpt2", "english"} <= set(card.data.tags)
    [metric] = card.data.eval_results
    assert (metric.metric_type, metric.metric_value) == ("max_abs_logit_diff", result.verification.max_diff)
    assert (out / "MODEL_CARD.md").read_text() == str(card) and str(TF_FIXTURE) not in str(card)


def test_shards_fp16_input_and_optimizer_slots(tmp_path, caplog):
    source = make_checkpoint(tmp_path / "ckpt", num_shards=3, dtype=np.float16, optimizer=True)
    with caplog.at_level(logging.INFO, logger="conversion"):
        result = convert_checkpoint(source, tmp_path / "out", dtype="float32")
    assert sorted(result.skipped) == sorted(OPTIMIZER_VARIABLES + [f"{n}/Adam{s}" for n in weight_map(HP)
                                                                   for s in ("", "_1") if n != "model/wte"])
    assert set(result.skipped.values()) == {"optimizer state"}
    assert "skipped model/h1/mlp/c_fc/w/Adam_1 (optimizer state)" in caplog.text
    assert "`global_step` (optimizer state)" in (tmp_path / "out" / "MODEL_CARD.md").read_text()
    with safe_open(str(tmp_path / "out" / "model.safetensors"), "np") as st:
        assert "lm_head.weight" not in st.keys() and len(list(st.keys())) == 2 + 12 * HP.n_layer + 2
        conv = st.get_tensor("transformer.h.1.attn.c_attn.weight")
    assert conv.shape == (16, 48) and conv.dtype == np.float32
    # the fp16 checkpoint's values arrive exactly, through the independent reference too
    assert result.verification.max_diff < 1e-4 and result.verification.rounding_diff == 0.0


def test_sharded_output_loads_through_the_index(tmp_path):
    source = make_checkpoint(tmp_path / "ckpt")
    single = convert_checkpoint(source, tmp_path / "single", dtype="float32", verify=False)
    sharded = convert_checkpoint(source, tmp_path / "sharded", dtype="float32", max_shard_size="20KB")
    assert single.weight_files == ["model.safetensors"]
    assert sharded.weight_files[-1] == "model.safetensors.index.json" and len(sharded.weight_files) > 3
    index = json.loads((tmp_path / "sharded" / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == set(sharded.weight_files[:-1])
    assert ModelCard.load(tmp_path / "single" / "README.md").data.eval_results is None  # verify=false
    assert "verification | not run" in (tmp_path / "single" / "MODEL_CARD.md").read_text()
    np.testing.assert_array_equal(last_logits(tmp_path / "sharded", "the hero"),
                                  last_logits(tmp_path / "single", "the hero"))


def test_reference_forward_pass_matches_model_py_maths():
    """Two tokens through a one-layer model by hand-written maths: guards the reference itself."""
    hp = HParams(n_vocab=3, n_ctx=4, n_embd=2, n_head=1, n_layer=0)
    weights = {"model/wte": np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), "model/wpe": np.zeros((4, 2)),
               "model/ln_f/g": np.ones(2), "model/ln_f/b": np.zeros(2)}
    logits = reference_logits(weights.__getitem__, hp, [0, 2])
    normed = 0.5 / np.sqrt(0.25 + 1e-5)  # layer norm of [1, 0] is [1, -1] (up to eps); of [1, 1] is [0, 0]
    np.testing.assert_allclose(logits, [[normed, -normed, 0.0], [0.0, 0.0, 0.0]], atol=1e-6)


@needs_fixture
def test_reference_forward_pass_reproduces_the_fixture_logits():
    """verify.py's numpy reference, read straight from the TF bundle, matches the fixture's own model.py port."""
    from conversion.bundle_reader import BundleReader, resolve_prefix
    from conversion.gpt2_mapping import load_hparams

    reference = json.loads((TF_FIXTURE / "reference_logits.json").read_text())
    reader = BundleReader(resolve_prefix(TF_FIXTURE))
    hp = load_hparams(TF_FIXTURE / "hparams.json")
    for case in reference["cases"]:
        logits = reference_logits(lambda n: reader.read(n).astype(np.float64), hp, case["input_ids"])
        np.testing.assert_allclose(logits[-1], case["logits_last"], atol=1e-5, rtol=0)


def _corrupt(folder):
    data = folder / "model-7.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[-3] ^= 0x10  # inside the last tensor written: model/ln_f/b
    data.write_bytes(bytes(raw))


def _truncate(folder):
    data = folder / "model-7.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:-100])


FAILURES = {
    "crc": (lambda f: _corrupt(f), {}, r"CRC32C mismatch in tensor 'model/ln_f/b'"),
    "truncated": (lambda f: _truncate(f), {}, r"truncated shard model-7\.data-00000-of-00001"),
    "missing shard": (lambda f: shard_path(f / "model-7", 0, 1).unlink(), {}, r"missing file .*data-00000-of-00001"),
    "missing encoder": (lambda f: (f / "encoder.json").unlink(), {}, r"missing file .*encoder\.json"),
    "bad hparams": (lambda f: None, {"hparams": {"n_vocab": 260, "n_ctx": 32, "n_embd": 16, "n_head": 3,
                                                 "n_layer": 2}}, r"bad hparams .*not divisible by n_head"),
    "missing hparam": (lambda f: None, {"hparams": {"n_vocab": 260}}, r"bad hparams .*missing \['n_ctx'"),
    "missing weight": (lambda f: None, {"drop": "model/h1/mlp/c_proj/w"}, r"missing weight 'model/h1/mlp/c_proj/w'"),
    "mis-shaped weight": (lambda f: None, {"reshape": (16, 16)}, r"mis-shaped weight 'model/wpe'.*\[16, 16\]"),
}


@pytest.mark.parametrize("case", FAILURES)
def test_bad_input_is_refused_and_leaves_nothing_behind(tmp_path, case):
    damage, options, message = FAILURES[case]
    source = make_checkpoint(tmp_path / "ckpt", **options)
    damage(source)
    with pytest.raises(GamioError, match=message):
        convert_checkpoint(source, tmp_path / "models" / "out")
    assert not (tmp_path / "models").exists() or list((tmp_path / "models").iterdir()) == []


def test_failed_overwrite_keeps_the_existing_folder(tmp_path):
    good = make_checkpoint(tmp_path / "good")
    out = tmp_path / "models" / "out"
    convert_checkpoint(good, out, verify=False)
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(GamioError, match="already exists"):
        convert_checkpoint(good, out, verify=False)
    bad = make_checkpoint(tmp_path / "bad", seed=1)
    _corrupt(bad)
    with pytest.raises(GamioError, match="CRC32C mismatch"):
        convert_checkpoint(bad, out, overwrite=True)
    assert (out / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]
    convert_checkpoint(make_checkpoint(tmp_path / "new", seed=2), out, overwrite=True, verify=False)
    assert (out / "model.safetensors").read_bytes() != before


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "conversion", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_cli_contract(tmp_path):
    source = make_checkpoint(tmp_path / "ckpt", num_shards=2, optimizer=True)
    done = _cli(f"checkpoint_dir={source}", f"paths.artifacts={tmp_path / 'artifacts'}", "dtype=float32")
    assert done.returncode == 0, done.stderr[-2000:]
    default_out = tmp_path / "artifacts" / "models" / "gamegpt_xl"
    assert AutoModelForCausalLM.from_pretrained(str(default_out)).dtype == torch.float32
    assert len(AutoTokenizer.from_pretrained(str(default_out))) == HP.n_vocab
    _corrupt(make_checkpoint(tmp_path / "bad"))
    failed = _cli(f"checkpoint_dir={tmp_path / 'bad'}", f"out_dir={tmp_path / 'bad_out'}", "verify=false",
                  f"paths.artifacts={tmp_path / 'artifacts'}")
    assert failed.returncode != 0 and not (tmp_path / "bad_out").exists()
    reasons = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(reasons) == 1 and "CRC32C mismatch in tensor" in reasons[0] and "Traceback" not in failed.stderr
