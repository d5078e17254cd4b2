"""Models and inputs of the engines benchmark (bench/engines_bench.py): shapes of the real models, random weights.

Speed depends on a model's shape, not on what it learnt, so the real shapes are built with random weights and the
tiny tokenizers (ids a tokenizer does not know decode to nothing): the ruGPT3-small shape comes from
bench/serving_bench.py; GPT-2 XL's shape (1.5B) is for the CUDA run; the opus-mt shape (6+6 layers x 512, 62518
tokens) takes the tiny Marian's SentencePiece models with its vocabulary padded to opus-mt's size, <pad> last.
"""
from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

log = logging.getLogger("bench.engines")
OPUS_MT_VOCAB = 62518  # Helsinki-NLP/opus-mt-en-ru
GPT2_XL = {"n_layer": 48, "n_embd": 1600, "n_head": 25, "n_positions": 1024, "vocab_size": 50257}


def build_gpt2_xl_shaped(out_dir: Path) -> Path:
    """A random GPT-2 with GPT-2 XL's shape (1.5B parameters) and the tiny tokenizer, saved in float16."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from adventure.tiny import build_tiny_tokenizer, corpus_texts, save_model_folder

    tokenizer = build_tiny_tokenizer(corpus_texts())
    config = GPT2Config(**GPT2_XL, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).half()
    log.info("built a GPT-2-XL-shaped random GPT-2 (%.0fM params)", model.num_parameters() / 1e6)
    return save_model_folder(model, tokenizer, out_dir)


def build_opus_mt_shaped(tiny_marian: Path, out_dir: Path) -> Path:
    """A random MarianMTModel of opus-mt's shape, tokenizing like the tiny Marian `tiny_marian`."""
    import torch
    from transformers import GenerationConfig, MarianConfig, MarianMTModel, MarianTokenizer

    from adventure.publish import publish_folder

    with publish_folder(out_dir) as staging:
        spm = staging / "spm"
        spm.mkdir()
        for name in ("source.spm", "target.spm"):
            shutil.copy(tiny_marian / name, spm / name)
        pieces = [p for p in json.loads((tiny_marian / "vocab.json").read_text(encoding="utf-8")) if p != "<pad>"]
        pieces += [f"<filler_{i}>" for i in range(OPUS_MT_VOCAB - 1 - len(pieces))] + ["<pad>"]
        (spm / "vocab.json").write_text(json.dumps({p: i for i, p in enumerate(pieces)}), encoding="utf-8")
        tokenizer = MarianTokenizer(source_spm=str(spm / "source.spm"), target_spm=str(spm / "target.spm"),
                                    vocab=str(spm / "vocab.json"), source_lang="en", target_lang="ru",
                                    model_max_length=512)
        eos, pad = tokenizer.eos_token_id, OPUS_MT_VOCAB - 1
        assert tokenizer.pad_token_id == pad, tokenizer.pad_token_id
        config = MarianConfig(vocab_size=OPUS_MT_VOCAB, decoder_vocab_size=OPUS_MT_VOCAB, d_model=512,
                              encoder_layers=6, decoder_layers=6, encoder_attention_heads=8,
                              decoder_attention_heads=8, encoder_ffn_dim=2048, decoder_ffn_dim=2048,
                              max_position_embeddings=512, pad_token_id=pad, eos_token_id=eos,
                              forced_eos_token_id=eos, decoder_start_token_id=pad, scale_embedding=True,
                              share_encoder_decoder_embeddings=True, tie_word_embeddings=True)
        torch.manual_seed(0)
        model = MarianMTModel(config)
        with torch.no_grad():
            model.get_input_embeddings().weight[pad].zero_()  # opus-mt's decoder starts from zeros
        model.generation_config = GenerationConfig(decoder_start_token_id=pad, eos_token_id=eos,
                                                   forced_eos_token_id=eos, pad_token_id=pad,
                                                   bad_words_ids=[[pad]], num_beams=4, max_length=512)
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        shutil.rmtree(spm)
    log.info("built an opus-mt-shaped random Marian (%.0fM params)", model.num_parameters() / 1e6)
    return out_dir


def world_of(tokenizer, tokens: int) -> str:
    """A story world from the embedded corpus that encodes to about `tokens` tokens."""
    from adventure.tiny import corpus_texts

    text = " ".join(t.replace("\n", " ").replace(">", "") for t in corpus_texts())
    return tokenizer.decode(tokenizer(text).input_ids[:tokens]).strip()
