"""The conversion stage, top-down: check the inputs, stream the weights, write the tokenizer and configs, verify,
then publish the folder atomically.

Order matters for memory and for failure: everything cheap is validated before any tensor is read; tensors are
converted one at a time before transformers (and torch) are even imported; the output is built in a hidden
sibling folder and swapped into place only when complete (adventure.publish), so a failed conversion leaves no
`out_dir` behind and never damages an existing one.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from tqdm import tqdm

from adventure.errors import GamioError
from adventure.generation import GenerationSettings
from adventure.model_language import write_language_note
from adventure.publish import publish_folder
from conversion.bundle_reader import BundleReader, resolve_prefix
from conversion.errors import CheckpointError, MappingError
from conversion.gpt2_mapping import HParams, Plan, load_hparams, plan
from conversion.model_card import write_conversion_card
from conversion.safetensors_stream import SafetensorsStream, TensorSpec, parse_size
from conversion.tokenizer import END_OF_TEXT, convert_tokenizer, read_bpe_files

log = logging.getLogger(__name__)
OUTPUT_DTYPES = ("float16", "float32")
DEFAULT_PROMPTS = ("You are standing in an open field.", "> go north\nThe dragon sleeps.")


@dataclass(frozen=True)
class ConversionResult:
    out_dir: Path
    dtype: str
    weight_files: list[str]
    skipped: dict[str, str]
    verification: object | None  # verify.VerifyResult when verify=True


def convert(cfg) -> ConversionResult:
    """Entry of `python -m conversion` (see configs/conversion.yaml)."""
    if not cfg.get("checkpoint_dir"):
        raise GamioError("checkpoint_dir= is required: the folder with `checkpoint`, `<prefix>.index`, "
                         "`<prefix>.data-*`, hparams.json, encoder.json, vocab.bpe")
    return convert_checkpoint(
        Path(str(cfg.checkpoint_dir)), Path(str(cfg.out_dir)), dtype=str(cfg.dtype), verify=bool(cfg.verify),
        prompts=list(cfg.verify_prompts), max_shard_size=str(cfg.max_shard_size), overwrite=bool(cfg.overwrite),
        generation=GenerationSettings.from_mapping(OmegaConf.to_container(cfg.generation, resolve=True)))


def convert_checkpoint(checkpoint_dir: Path, out_dir: Path, *, dtype: str = "float16", verify: bool = True,
                       prompts=DEFAULT_PROMPTS, max_shard_size: int | str = "5GB", overwrite: bool = False,
                       generation: str | GenerationSettings = "gamio") -> ConversionResult:
    checkpoint_dir, out_dir = Path(checkpoint_dir).expanduser().resolve(), Path(out_dir).expanduser().resolve()
    if dtype not in OUTPUT_DTYPES:
        raise GamioError(f"dtype={dtype!r} is not supported; choose one of {list(OUTPUT_DTYPES)}")
    if not checkpoint_dir.is_dir():
        raise CheckpointError(f"missing folder checkpoint_dir={checkpoint_dir}")
    if out_dir.exists() and not overwrite:
        raise GamioError(f"out_dir {out_dir} already exists; pass overwrite=true to replace it")
    try:  # a preset by name (configs/generation/) is checked before the long part
        settings = generation if isinstance(generation, GenerationSettings) else GenerationSettings.load(generation)
    except (FileNotFoundError, ValueError, GamioError) as exc:
        raise GamioError(f"generation={generation}: {exc}") from None
    hp = load_hparams(checkpoint_dir / "hparams.json")
    read_bpe_files(checkpoint_dir)  # fail on a bad tokenizer before the long part
    prefix = resolve_prefix(checkpoint_dir)
    with BundleReader(prefix) as reader:
        weights = plan(hp, {name: reader.shape(name) for name in reader.names()})
        for name, why in weights.skipped.items():
            log.info("skipped %s (%s)", name, why)
        if weights.skipped:
            log.info("skipped %d variables that are not model weights", len(weights.skipped))
        with publish_folder(out_dir) as staging:  # overwrite=true: the old folder stays until the new is whole
            files = write_weights(reader, weights, staging, dtype, parse_size(max_shard_size))
            result = _finish_folder(reader, checkpoint_dir, prefix, hp, weights, staging, dtype, files,
                                    verify, list(prompts), settings, out_dir.name)
    log.info("converted %s -> %s (%s)", checkpoint_dir, out_dir, dtype)
    return ConversionResult(out_dir, dtype, files, weights.skipped, result)


def write_weights(reader: BundleReader, weights: Plan, folder: Path, dtype: str, max_shard_bytes: int) -> list[str]:
    """Stream every mapped tensor from the checkpoint into safetensors, releasing each one after it is written."""
    specs = [TensorSpec(key, shape, dtype) for _, key, shape in weights.convert]
    stream = SafetensorsStream(folder, specs, max_shard_bytes)
    total = sum(reader.nbytes(name) for name, _, _ in weights.convert)
    with tqdm(total=total, unit="B", unit_scale=True, desc="converting tensors") as bar:
        for tf_name, key, shape in weights.convert:
            array = reader.read(tf_name)
            if not np.issubdtype(array.dtype, np.floating):
                raise MappingError(f"weight {tf_name!r} is {array.dtype}, not floating point")
            try:
                stream.write(key, array.reshape(shape))
            except OverflowError as exc:
                raise MappingError(f"{exc} (weight {tf_name!r}); convert with dtype=float32") from None
            del array
            reader.release(tf_name)
            bar.update(reader.nbytes(tf_name))
    return [path.name for path in stream.close()]


def _finish_folder(reader, checkpoint_dir: Path, prefix: Path, hp: HParams, weights: Plan, folder: Path,
                   dtype: str, files: list[str], verify: bool, prompts: list[str], settings: GenerationSettings,
                   out_name: str):
    from transformers import GPT2Config

    tokenizer = convert_tokenizer(checkpoint_dir, folder, hp.n_vocab, hp.n_ctx)
    eot = tokenizer.convert_tokens_to_ids(END_OF_TEXT)
    config = GPT2Config(vocab_size=hp.n_vocab, n_positions=hp.n_ctx, n_embd=hp.n_embd, n_layer=hp.n_layer,
                        n_head=hp.n_head, layer_norm_epsilon=1e-5, activation_function="gelu_new",
                        bos_token_id=eot, eos_token_id=eot, tie_word_embeddings=True,
                        architectures=["GPT2LMHeadModel"])
    config.dtype = dtype
    config.save_pretrained(str(folder))
    settings.to_generation_config(tokenizer).save_pretrained(str(folder))
    result = None
    if verify:
        from conversion.verify import verify as run_verify

        result = run_verify(reader, hp, folder, dtype, prompts, tokenizer)
    write_conversion_card(folder, name=out_name, source=checkpoint_dir, prefix=prefix.name, hp=hp, dtype=dtype,
                          n_tensors=len(weights.convert), weight_files=files, skipped=weights.skipped,
                          verification=result, generation=settings.name)
    # The checkpoint is English (AI Dungeon 2's GPT-2): eval and serving read this to wrap it in opus-mt.
    write_language_note(folder, "en", source="tensorflow-gpt2")
    return result
