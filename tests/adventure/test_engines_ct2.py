"""The CTranslate2 engine (adventure/engines/ct2.py) on real tiny models: greedy float32 parity with the hf engine on
20 game prompts, int8 likelihood within 2% of hf float32, every generation setting honoured, the conversion cached
by content (a rerun converts nothing, a failure leaves nothing), and one-line errors for bad settings."""
from __future__ import annotations

import logging
import shutil

import pytest
from omegaconf import OmegaConf

from adventure.config import CT2EngineConfig, ConfigError, HFEngineConfig
from adventure.engines import load_engine
from adventure.engines.ct2 import CT2Engine, length_groups
from adventure.errors import GamioError, ModelNotAvailable
from adventure.generation import GenerationSettings
from adventure.paths import SAMPLE_STORIES_DIR
from adventure.story_format import samples_from_trees
from adventure.trees import load_trees
from adventure.turns import TurnInput, TurnPipeline

SHORT = 20


def preset(name: str = "greedy", **change) -> GenerationSettings:
    return GenerationSettings.from_mapping({**vars(GenerationSettings.load(name)), "max_new_tokens": SHORT, **change})


def ct2_config(**values):
    return OmegaConf.structured(CT2EngineConfig(name="ct2", threads=1, **values))


@pytest.fixture(scope="module")
def artifacts(tiny_untrained_dir):
    return tiny_untrained_dir.parent.parent


@pytest.fixture(scope="module")
def hf(tiny_untrained_dir, artifacts):
    return load_engine(OmegaConf.structured(HFEngineConfig(name="hf")), str(tiny_untrained_dir), artifacts)


@pytest.fixture(scope="module")
def ct2(tiny_untrained_dir, artifacts):
    return load_engine(ct2_config(compute_type="float32"), str(tiny_untrained_dir), artifacts)


@pytest.fixture(scope="module")
def samples():
    everything = samples_from_trees(load_trees(SAMPLE_STORIES_DIR))
    return everything[:: max(1, len(everything) // 20)][:20]


@pytest.fixture(scope="module")
def prompts(hf, samples):
    """20 game prompts as the turn pipeline builds them (budget, normalisation)."""
    pipeline = TurnPipeline(hf, preset())
    return [pipeline.prompt(TurnInput(s.world, s.history, s.action)).input_ids for s in samples]


def test_greedy_float32_gives_the_hf_engine_tokens_on_20_prompts(hf, ct2, prompts):
    assert len(prompts) == 20 and len({len(p) for p in prompts}) > 5  # lengths vary: several length groups
    settings = preset()
    assert ct2.generate(prompts, settings) == hf.generate(prompts, settings)
    assert ct2.description == "ct2 float32 on cpu" and ct2.context_length == hf.context_length


def test_int8_bits_per_char_within_2_percent_of_hf_float32(hf, ct2, tiny_untrained_dir, artifacts, samples):
    from eval.likelihood import likelihood_summary, score_items

    int8 = load_engine(ct2_config(), str(tiny_untrained_dir), artifacts)
    assert int8.description == "ct2 int8 on cpu"  # auto: int8 on CPU
    replies = [s.target for s in samples]
    reference = score_items(hf, samples, replies)
    assert [i.nll_nats for i in score_items(ct2, samples, replies)] == pytest.approx(
        [i.nll_nats for i in reference], rel=1e-4)
    assert likelihood_summary(score_items(int8, samples, replies), 0)["bits_per_char"] == pytest.approx(
        likelihood_summary(reference, 0)["bits_per_char"], rel=0.02)


def test_generation_settings_map_to_generate_batch(ct2):
    greedy = ct2.options(preset())
    assert (greedy["sampling_topk"], greedy["beam_size"], greedy["max_length"]) == (1, 1, SHORT)
    assert greedy["include_prompt_in_result"] is False and greedy["suppress_sequences"] is None
    seed = ct2.options(preset("gamio", bad_words_ids=[[5, 6], [7]]))
    assert {k: seed[k] for k in ("sampling_topk", "sampling_topp", "sampling_temperature", "beam_size",
                                 "repetition_penalty")} == {"sampling_topk": 50, "sampling_topp": 0.95,
                                                            "sampling_temperature": 0.9, "beam_size": 2,
                                                            "repetition_penalty": 5.0}
    assert seed["suppress_sequences"] == [ct2.tokenizer.convert_ids_to_tokens([5, 6]),
                                          ct2.tokenizer.convert_ids_to_tokens([7])]


def test_banned_words_and_repetition_penalty_are_honoured(ct2, prompts):
    plain = ct2.generate(prompts[:6], preset())
    first = [ct2.tokenizer(g.text).input_ids[0] for g in plain if g.text]
    banned = ct2.generate(prompts[:6], preset(bad_words_ids=[[t] for t in first]))
    for generation in banned:
        assert not set(ct2.tokenizer(generation.text).input_ids) & set(first)
    # The untrained model loops on a token or two; a strong penalty makes it move on.
    distinct = lambda gens: sum(len(set(ct2.tokenizer(g.text).input_ids)) for g in gens)  # noqa: E731
    assert distinct(ct2.generate(prompts[:6], preset(repetition_penalty=5.0))) > 2 * distinct(plain)


def stop_string_of(tokenizer, text: str) -> str:
    """A clean word-piece from the middle of `text` (not at its start), to stop on."""
    ids = tokenizer(text).input_ids
    for k in range(3, len(ids)):
        piece = tokenizer.decode(ids[k: k + 1]).strip()
        if piece and "\ufffd" not in piece and text.find(piece) > 0:
            return piece
    raise AssertionError(f"no stop string candidate in {text!r}")


@pytest.mark.parametrize("beams", [1, 2])
def test_stop_strings_cut_the_reply_and_tokens_stream(ct2, prompts, beams):
    settings = preset(repetition_penalty=5.0, num_beams=beams)
    full = ct2.generate(prompts[:1], settings)[0]
    stop = stop_string_of(ct2.tokenizer, full.text)
    streamed = []
    cut = ct2.generate(prompts[:1], preset(repetition_penalty=5.0, num_beams=beams, stop_strings=[stop]),
                       on_progress=lambda row, ids: streamed.append((row, ids[-1])))[0]
    assert cut.text == full.text[: full.text.find(stop)] and cut.new_tokens < full.new_tokens
    # beam 1: the callback stopped the row at the stop string; beams: the chosen hypothesis, cut after the batch
    assert len(streamed) == cut.new_tokens and {row for row, _ in streamed} == {0}


def test_beam_sampling_is_seeded_per_engine_start(tiny_untrained_dir, artifacts, prompts):
    gamio = preset("gamio")
    runs = []
    for _ in range(2):
        engine = load_engine(ct2_config(), str(tiny_untrained_dir), artifacts)
        runs.append([engine.generate(prompts[:4], gamio, seed=3), engine.generate(prompts[:4], gamio, seed=4)])
        engine.close()
    assert runs[0] == runs[1]  # the same calls on a fresh engine: the same text (reports stay byte-identical)
    assert runs[0][0] != runs[0][1]  # the sampler moves on between calls
    assert all(len(generation.text) > 0 for generation in runs[0][0])


def test_length_groups_keep_prompts_within_the_spread():
    assert length_groups([100, 400, 120, 390, 150], 55) == [[0, 2, 4], [3, 1]]
    assert length_groups([5, 5, 5], 0) == [[0, 1, 2]] and length_groups([], 10) == []
    assert length_groups([1, 3, 0, 2], 55) == [[0, 2], [3, 1]]  # one-token prompts only with each other


# ---- conversion ------------------------------------------------------------------------------------------

def test_conversion_is_cached_by_content(tiny_untrained_dir, artifacts, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GAMIO_CACHE", str(tmp_path / "cache"))
    caplog.set_level(logging.INFO, logger="adventure.engines.ct2_models")
    load_engine(ct2_config(), str(tiny_untrained_dir), artifacts)
    entries = list((tmp_path / "cache" / "ct2").iterdir())
    assert len(entries) == 1 and (entries[0] / "model.bin").is_file() and "converting" in caplog.text
    converted_at = (entries[0] / "model.bin").stat().st_mtime_ns
    caplog.clear()
    load_engine(ct2_config(), str(tiny_untrained_dir), artifacts)  # a rerun converts nothing
    assert "reusing" in caplog.text and "converting" not in caplog.text
    assert (entries[0] / "model.bin").stat().st_mtime_ns == converted_at
    load_engine(ct2_config(compute_type="float32"), str(tiny_untrained_dir), artifacts)  # another quantization
    assert len(list((tmp_path / "cache" / "ct2").iterdir())) == 2

    monkeypatch.setenv("GAMIO_CACHE", "off")  # no shared cache: converted once into the artifacts folder
    elsewhere = tmp_path / "artifacts"
    load_engine(ct2_config(), str(tiny_untrained_dir), elsewhere)
    assert [p.name for p in (elsewhere / "cache" / "ct2").iterdir()] == [entries[0].name]


def test_failed_conversion_leaves_nothing_behind(tiny_untrained_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("GAMIO_CACHE", str(tmp_path / "cache"))
    broken = tmp_path / "broken"
    shutil.copytree(tiny_untrained_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(GamioError, match="cannot convert .*broken"):
        load_engine(ct2_config(), str(broken), tmp_path)
    assert not any((tmp_path / "cache" / "ct2").iterdir())  # no entry, no staging folder


def test_padded_embeddings_and_conversion_output_convert_with_parity(tmp_path, artifacts):
    """A model with more embedding rows than tokens (as ruGPT3's), and a model written by `python -m conversion`
    (sharded safetensors): both convert, and greedy float32 keeps hf's tokens."""
    from adventure.tiny import TinyShape, build_tiny_gpt2, build_tiny_tokenizer, corpus_texts, save_model_folder
    from conversion.convert import convert_checkpoint
    from tests.helpers.conversion import make_checkpoint

    tokenizer = build_tiny_tokenizer(corpus_texts()[:50], vocab_size=300)
    model = build_tiny_gpt2(tokenizer, TinyShape(n_layer=1, n_embd=32, n_head=2, n_positions=128), seed=2)
    model.resize_token_embeddings(len(tokenizer) + 37)
    padded = save_model_folder(model, tokenizer, tmp_path / "padded")
    converted = convert_checkpoint(make_checkpoint(tmp_path / "ckpt"), tmp_path / "converted", dtype="float32",
                                   max_shard_size="20KB", verify=False).out_dir
    for folder, prompts in ((padded, ["Вы идёте по лесу.\n> смотрю\n", "Мир.\n"]), (converted, ["the hero", "he"])):
        hf = load_engine(OmegaConf.structured(HFEngineConfig(name="hf")), str(folder), artifacts)
        ct2 = load_engine(ct2_config(compute_type="float32"), str(folder), artifacts)
        ids = [hf.tokenizer(p).input_ids for p in prompts]
        settings = preset(max_new_tokens=8)
        assert ct2.generate(ids, settings) == hf.generate(ids, settings), folder


# ---- errors ----------------------------------------------------------------------------------------------

def test_bad_settings_are_one_line_errors(tiny_untrained_dir, artifacts):
    from serving.config import compose_serving_config

    with pytest.raises(ConfigError, match=r"engine.compute_type='bogus': must be one of"):
        compose_serving_config(["engine=ct2", "engine.compute_type=bogus"])
    with pytest.raises(ConfigError, match=r"engine.device='gpu': must be cpu, cuda or cuda:N"):
        compose_serving_config(["engine=ct2", "engine.device=gpu"])
    with pytest.raises(ConfigError, match=r"engine.compute_type=float16: not supported on cpu.*int8"):
        CT2Engine.load(ct2_config(compute_type="float16"), str(tiny_untrained_dir), artifacts)
    import ctranslate2

    if ctranslate2.get_cuda_device_count() == 0:
        with pytest.raises(ConfigError, match=r"engine.device=cuda: CTranslate2 sees 0 CUDA"):
            CT2Engine.load(ct2_config(device="cuda"), str(tiny_untrained_dir), artifacts)


def test_hub_id_outside_the_local_cache_is_a_clear_error(artifacts):
    with pytest.raises(ModelNotAvailable, match="nobody/no-such-model.*model=/path/to/no-such-model"):
        CT2Engine.load(ct2_config(), "nobody/no-such-model", artifacts)
