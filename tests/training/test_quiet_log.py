"""A training run's log without the transformers warnings that every GPT-2 run printed and that are expected
(GPT-2's loss type; its tied lm_head "missing" from checkpoints): they alarmed newcomers. A truly missing key still
warns."""
from __future__ import annotations

import logging

import pytest
from tests.helpers.training import QUICK, build_story_dataset, run_training

from training.expected_warnings import MISSING_KEYS, TiedKeysAreNotMissing, tied_parameter_names


def _record(message: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("transformers.trainer", level, __file__, 1, message, None, None)


def test_only_tied_keys_leave_the_missing_keys_warning():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=300, n_positions=64, n_embd=32, n_layer=1, n_head=2))
    tied = tied_parameter_names(model)
    assert tied == {"lm_head.weight"}  # GPT-2 ties its output matrix to the embedding
    quiet = TiedKeysAreNotMissing(tied)
    assert not quiet.filter(_record(MISSING_KEYS + "['lm_head.weight']."))
    assert quiet.filter(_record(MISSING_KEYS + "['lm_head.weight', 'transformer.h.0.attn.c_attn.weight']."))
    assert quiet.filter(_record("There were unexpected keys in the checkpoint model loaded: ['lm_head.weight']."))
    assert TiedKeysAreNotMissing(set()).filter(_record(MISSING_KEYS + "['lm_head.weight']."))


@pytest.mark.slow
def test_a_training_run_logs_no_expected_transformers_warnings(tmp_path):
    build_story_dataset(tmp_path)
    proc = run_training(tmp_path, *QUICK)
    log = proc.stdout + proc.stderr
    assert "eval loss" in log  # the run's own lines are there
    assert "loss_type=" not in log and "missing keys" not in log, log[-3000:]
