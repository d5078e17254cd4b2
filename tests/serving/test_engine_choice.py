"""Choosing an engine without beam search or without vLLM installed: refused before anything loads, in one
`error:` line with exit status 2, naming the key and what to use instead (serving and eval alike)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from adventure.config import ConfigError, compose
from adventure.errors import GamioError
from adventure.paths import REPO_ROOT
from eval.config import EvalConfig

BEAMS = ("engine={} cannot run {}=2 (beam sampling); use generation=gamio_sample, the seed's sampling without "
         "beams")


def test_serving_refuses_a_beam_preset_in_one_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "serving", "engine=openai", "generation=gamio",
                           f"paths.artifacts={tmp_path}"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: " + BEAMS.format("openai", "generation.num_beams")]
    assert not (tmp_path / "serving").exists()


@pytest.mark.parametrize("overrides, key", [(["generation=gamio"], "generation.num_beams"),
                                            (["generation=gamio_sample", "extra_generation=[gamio]"],
                                             "extra_generation: preset gamio has num_beams")])
def test_eval_refuses_a_beam_preset_before_the_dataset_or_a_model(tmp_path, overrides, key):
    from eval.stage import run

    cfg = compose("eval", [f"paths.artifacts={tmp_path}", "engine=openai", f"dataset={tmp_path}/none", *overrides],
                  EvalConfig)
    with pytest.raises(ConfigError) as refused:
        run(cfg)
    assert str(refused.value) == BEAMS.format("openai", key)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed in this environment")
def test_engine_vllm_without_vllm_says_how_to_get_it(tmp_path, tiny_untrained_dir):
    from serving.config import compose_serving_config
    from serving.service import build_service

    cfg = compose_serving_config([f"paths.artifacts={tmp_path}", f"model={tiny_untrained_dir}", "engine=vllm",
                                  "generation=gamio_sample"])
    with pytest.raises(GamioError) as refused:
        build_service(cfg)
    assert str(refused.value) == (
        "engine=vllm needs vLLM, which this Python environment does not have: run "
        "`make install-vllm` and start gamio with .venv-vllm/bin/python (e.g. .venv-vllm/bin/python -m serving "
        "engine=vllm generation=gamio_sample)")
    assert not (tmp_path / "serving").exists()
