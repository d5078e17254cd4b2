"""Tiny Marian translation models (en->ru, ru->en), built offline and deterministically from the parallel set.

No machine here can download opus-mt, so tests, the demo and the translate-wrap of the game server use these:
real `MarianMTModel`s of small shape, with their own SentencePiece models, trained for a short while on the
embedded parallel sentences until they reproduce them. They are saved as standard Hugging Face folders, so the
same loading code serves them and `Helsinki-NLP/opus-mt-*`.
"""
from __future__ import annotations

import io
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

from adventure.parallel import DIRECTIONS, check_direction
from adventure.paths import SAMPLE_PARALLEL_DIR
from adventure.publish import publish_folder

log = logging.getLogger(__name__)

# opus-mt's vocabulary layout: </s> and <unk> first (ids 0, 1), <pad> last. MarianTokenizer and MarianConfig find
# them by name; CTranslate2's Marian converter drops the last row as the pad (it starts the decoder from zeros).
SPECIAL_TOKENS = ("</s>", "<unk>")
PAD = "<pad>"


def tiny_marian_dir(artifacts_dir: str | Path, direction: str) -> Path:
    """Where the tiny model of a direction lives: `<artifacts>/models/tiny-opus-mt-<direction>`."""
    check_direction(direction)
    return Path(artifacts_dir) / "models" / f"tiny-opus-mt-{direction}"


def ensure_tiny_marian(artifacts_dir: str | Path, direction: str, **build_kwargs) -> Path:
    """The tiny model's folder, built first if it is not there yet."""
    import sys

    from adventure import parallel, segmentation
    from adventure.build_cache import build_key, cached_folder

    out_dir = tiny_marian_dir(artifacts_dir, direction)
    if (out_dir / "config.json").is_file():
        return out_dir
    parallel_dir = Path(build_kwargs.get("parallel_dir", SAMPLE_PARALLEL_DIR))
    key = build_key(f"tiny-marian-{direction}", parallel_dir.glob("*.json"),
                    [sys.modules[__name__], parallel, segmentation], build_kwargs)
    return cached_folder(out_dir, key, lambda dest: build_tiny_marian(direction, dest, replace=False,
                                                                     **build_kwargs))


def build_tiny_marian(direction: str, out_dir: str | Path, *, seed: int = 0, steps: int = 1500,
                      vocab_size: int = 300, d_model: int = 64, layers: int = 2, ffn_dim: int = 256,
                      heads: int = 4, batch_size: int = 32, learning_rate: float = 1.5e-3,
                      max_positions: int = 256, parallel_dir: str | Path = SAMPLE_PARALLEL_DIR,
                      replace: bool = True) -> Path:
    """Train SentencePiece models and a small MarianMTModel for `direction`; save a HF folder at `out_dir`.

    The folder is published whole by adventure.publish, so an interrupted build leaves nothing half-written.
    With `replace=False` an existing folder (e.g. built meanwhile by another process) is kept and the new build
    discarded.

    The defaults were measured on the parallel set (2-core CPU, one torch thread): 1500 steps give greedy BLEU
    ~28 en->ru on the training sentences; below ~800 steps, or with a learning rate of 3e-3, the model stays an
    unconditional language model of the target side (BLEU ~0) — seq2seq attention is learnt late.
    """
    from adventure.parallel import load_sentence_pairs

    check_direction(direction)
    out_dir = Path(out_dir)
    started = time.perf_counter()
    pairs = load_sentence_pairs(parallel_dir)
    source_lang, target_lang = direction.split("-")
    if direction == "ru-en":
        pairs = [(ru, en) for en, ru in pairs]

    with publish_folder(out_dir, replace=replace) as work:
        info = _build_into(work, pairs, source_lang, target_lang, seed=seed, steps=steps, vocab_size=vocab_size,
                           d_model=d_model, layers=layers, ffn_dim=ffn_dim, heads=heads, batch_size=batch_size,
                           learning_rate=learning_rate, max_positions=max_positions)
        info["build_seconds"] = round(time.perf_counter() - started, 1)
        (work / "tiny_build.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    log.info("built tiny Marian %s in %s (%.1f s, %d sentence pairs, final loss %.3f)", direction, out_dir,
             info["build_seconds"], info["pairs"], info["train_loss"])
    return out_dir


def _train_sentencepiece(sentences: list[str], path: Path, vocab_size: int, seed: int) -> list[str]:
    """Train a unigram SentencePiece model on `sentences`, write it to `path`, return its ordinary pieces."""
    import sentencepiece as spm

    spm.set_random_generator_seed(seed)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=model, vocab_size=vocab_size, model_type="unigram",
        character_coverage=1.0, hard_vocab_limit=False,  # a small corpus may support fewer pieces
        unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1,  # Marian's specials live in vocab.json, not in the spm
        num_threads=1, shuffle_input_sentence=False, minloglevel=2)  # one thread, no sampling: deterministic
    path.write_bytes(model.getvalue())
    processor = spm.SentencePieceProcessor(model_proto=model.getvalue())
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())
            if not (processor.is_unknown(i) or processor.is_control(i))]


def _build_into(folder: Path, pairs: list[tuple[str, str]], source_lang: str, target_lang: str, *, seed: int,
                steps: int, vocab_size: int, d_model: int, layers: int, ffn_dim: int, heads: int,
                batch_size: int, learning_rate: float, max_positions: int) -> dict:
    import torch
    from datasets import Dataset
    from transformers import (DataCollatorForSeq2Seq, GenerationConfig, MarianConfig, MarianMTModel,
                              MarianTokenizer, Seq2SeqTrainer, Seq2SeqTrainingArguments, set_seed)

    # Tokenizer: one SentencePiece model per language and one joint vocabulary (Marian's default layout).
    spm_dir = folder / "spm"
    spm_dir.mkdir()
    source_pieces = _train_sentencepiece([s for s, _ in pairs], spm_dir / "source.spm", vocab_size, seed)
    target_pieces = _train_sentencepiece([t for _, t in pairs], spm_dir / "target.spm", vocab_size, seed)
    pieces = dict.fromkeys([*SPECIAL_TOKENS, *source_pieces, *target_pieces, PAD])
    vocab = {token: i for i, token in enumerate(pieces)}
    (spm_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tokenizer = MarianTokenizer(source_spm=str(spm_dir / "source.spm"), target_spm=str(spm_dir / "target.spm"),
                                vocab=str(spm_dir / "vocab.json"), source_lang=source_lang,
                                target_lang=target_lang, model_max_length=max_positions)
    eos, pad = vocab["</s>"], vocab["<pad>"]

    set_seed(seed)
    config = MarianConfig(
        vocab_size=len(vocab), decoder_vocab_size=len(vocab), d_model=d_model, encoder_layers=layers,
        decoder_layers=layers, encoder_attention_heads=heads, decoder_attention_heads=heads,
        encoder_ffn_dim=ffn_dim, decoder_ffn_dim=ffn_dim, max_position_embeddings=max_positions,
        pad_token_id=pad, eos_token_id=eos, forced_eos_token_id=eos, decoder_start_token_id=pad,
        scale_embedding=True, dropout=0.0,  # memorising a few hundred pairs: regularisation only slows it
        share_encoder_decoder_embeddings=True, tie_word_embeddings=True)
    model = MarianMTModel(config)
    # The decoder starts from the <pad> embedding, which opus-mt keeps at zero (Marian itself starts from a zero
    # vector, and CTranslate2's converter relies on it). The tied output layer would move that row, so its
    # gradient is dropped: it stays at its zero initialisation.
    embeddings = model.get_input_embeddings().weight
    with torch.no_grad():
        embeddings[pad].zero_()
    embeddings.register_hook(lambda grad: grad.index_fill(0, torch.tensor([pad]), 0.0))

    encoded = tokenizer([s for s, _ in pairs], text_target=[t for _, t in pairs], truncation=True,
                        max_length=max_positions // 2)
    dataset = Dataset.from_dict({"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
                                 "labels": encoded["labels"]})
    with tempfile.TemporaryDirectory() as scratch:
        args = Seq2SeqTrainingArguments(
            output_dir=scratch, max_steps=steps, per_device_train_batch_size=batch_size,
            learning_rate=learning_rate, warmup_steps=max(1, steps // 20), lr_scheduler_type="linear",
            weight_decay=0.0, seed=seed, data_seed=seed, use_cpu=True, save_strategy="no", report_to=[],
            logging_strategy="no", dataloader_num_workers=0, disable_tqdm=False,
            train_sampling_strategy="group_by_length")  # similar lengths per batch: little padding
        trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                                 data_collator=DataCollatorForSeq2Seq(tokenizer, model=model))
        result = trainer.train()

    model.generation_config = GenerationConfig(
        decoder_start_token_id=pad, eos_token_id=eos, forced_eos_token_id=eos, pad_token_id=pad,
        bad_words_ids=[[pad]], num_beams=4, max_length=max_positions)  # opus-mt's decoding defaults
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    shutil.rmtree(spm_dir)
    return {"direction": f"{source_lang}-{target_lang}", "seed": seed, "steps": steps, "pairs": len(pairs),
            "vocab_size": len(vocab), "d_model": d_model, "layers": layers, "learning_rate": learning_rate,
            "train_loss": round(float(result.training_loss), 4), "torch_threads": torch.get_num_threads()}
