"""CTranslate2 models: a Hugging Face folder converted once with CTranslate2's own converter, cached by content.

    ct2_device("cuda:1", option)          -> ("cuda", 1), or a one-line error when CTranslate2 sees no GPU
    resolve_compute_type("auto", device)  -> int8 on CPU, int8_float16 on CUDA (or the value given, checked)
    local_folder(location, is_local, hint)-> the folder of a local model or of a hub id's cached snapshot
    converted_model(folder, quantization, artifacts) -> the folder of its CTranslate2 conversion

The cache key of a conversion is a hash of everything that determines it: the sha256 of every file at the top of
the model folder (weights, config, tokenizer: what the converter reads), the versions of CTranslate2 (the
converter) and transformers (which loads the model for it), the quantization, and CONVERSION_FORMAT (bumped when
this module changes how it converts). A rerun converts nothing; a changed model or library converts again, so a
stale conversion is never used. Entries live in `<GAMIO_CACHE or ~/.cache/gamio>/ct2/<key>/`, shared by every
artifacts folder of the machine, or in `<paths.artifacts>/cache/ct2/<key>/` when GAMIO_CACHE=off. An entry is
written through adventure.publish: a failed or interrupted conversion leaves nothing behind, and of two processes
converting the same model at once one result is kept.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from adventure.build_cache import cache_root
from adventure.config import ConfigError
from adventure.errors import GamioError
from adventure.publish import publish_folder, write_file

log = logging.getLogger(__name__)

CONVERSION_FORMAT = 1
AUTO_COMPUTE_TYPE = {"cpu": "int8", "cuda": "int8_float16"}
_MEMO_MIN_BYTES = 64 << 20  # files this large get their digest remembered by (path, size, mtime): a 6 GB model
_MEMO_FILE = "file-digests.json"  # is hashed once, not at every start


def ct2_device(device: str, option: str) -> tuple[str, int]:
    """CTranslate2's (device, device_index) for `cpu` / `cuda` / `cuda:N`; a GPU it cannot see is an error now."""
    import ctranslate2

    kind, _, index = str(device).partition(":")
    if kind == "cuda":
        count = ctranslate2.get_cuda_device_count()
        if int(index or 0) >= count:
            raise ConfigError(f"{option}.device={device}: CTranslate2 sees {count} CUDA device(s) here; "
                              f"use {option}.device=cpu")
    return kind, int(index or 0)


def resolve_compute_type(compute_type: str, device: str, option: str) -> str:
    """`auto` -> int8 on CPU, int8_float16 on CUDA; an explicit type must be one this machine supports."""
    import ctranslate2

    if compute_type == "auto":
        return AUTO_COMPUTE_TYPE[device]
    supported = sorted(ctranslate2.get_supported_compute_types(device))
    if compute_type not in supported:
        raise ConfigError(f"{option}.compute_type={compute_type}: not supported on {device} by this machine and "
                          f"CTranslate2 build; choose one of {['auto', *supported]}")
    return compute_type


def local_folder(location: str, is_local: bool, hint: str) -> Path:
    """A local model folder as it is; a hub id as its snapshot in the local Hugging Face cache (the converter
    needs files on disk, and offline nothing else is there)."""
    if is_local:
        return Path(location)
    from huggingface_hub import snapshot_download

    from adventure.models import model_not_available

    try:
        return Path(snapshot_download(location, local_files_only=True))
    except Exception as exc:  # noqa: BLE001 - not cached (LocalEntryNotFoundError), or a bad id
        raise model_not_available(location, exc, hint) from None


def _digest_file(path: Path, memo: dict) -> str:
    real = path.resolve()  # hub snapshots are symlinks to blobs
    stat = real.stat()
    memo_key = f"{real}|{stat.st_size}|{stat.st_mtime_ns}"
    if memo_key in memo:
        return memo[memo_key]
    digest = hashlib.sha256()
    with open(real, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    if stat.st_size >= _MEMO_MIN_BYTES:
        memo[memo_key] = digest.hexdigest()
    return digest.hexdigest()


def conversion_key(folder: Path, quantization: str, memo_dir: Path | None = None) -> str:
    """The cache key of converting `folder` with `quantization` (see the module docstring)."""
    import ctranslate2
    import transformers

    memo_path = memo_dir / _MEMO_FILE if memo_dir else None
    memo = json.loads(memo_path.read_text(encoding="utf-8")) if memo_path and memo_path.is_file() else {}
    known = len(memo)
    digest = hashlib.sha256(f"ct2-conversion-{CONVERSION_FORMAT}|{quantization}|ctranslate2="
                            f"{ctranslate2.__version__}|transformers={transformers.__version__}".encode())
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")):
        digest.update(f"\0{path.name}\0{_digest_file(path, memo)}".encode())
    if memo_path and len(memo) > known:
        write_file(memo_path, json.dumps(memo, indent=0, sort_keys=True))
    return digest.hexdigest()[:20]


def conversions_dir(artifacts: Path | None) -> Path:
    root = cache_root()
    if root is not None:
        return root / "ct2"
    from adventure.paths import REPO_ROOT

    return Path(artifacts or REPO_ROOT / "artifacts") / "cache" / "ct2"


def converted_model(folder: Path, quantization: str, artifacts: Path | None) -> Path:
    """The CTranslate2 conversion of the Hugging Face folder `folder`, converted now if not cached yet."""
    cache = conversions_dir(artifacts)
    entry = cache / conversion_key(folder, quantization, cache)
    if (entry / "model.bin").is_file():
        log.info("ct2: reusing the conversion of %s (%s) in %s", folder, quantization, entry)
        return entry
    log.info("ct2: converting %s to CTranslate2 (%s) into %s", folder, quantization, entry)
    try:
        with publish_folder(entry, replace=False) as staging:
            _padded_vocabulary_converter()(str(folder)).convert(str(staging), quantization=quantization, force=True)
    except GamioError:
        raise
    except Exception as exc:  # noqa: BLE001 - the converter's many failure types; publish_folder left nothing
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise GamioError(f"cannot convert {folder} to CTranslate2 ({quantization}): "
                         f"{type(exc).__name__}: {first}") from exc
    return entry


def _padded_vocabulary_converter():
    from ctranslate2.converters import TransformersConverter

    class Converter(TransformersConverter):
        """CTranslate2's converter, also for a model with more embedding rows than its tokenizer has tokens
        (ruGPT3 has 50264 rows for 50257 tokens): CTranslate2 wants one vocabulary entry per row, so the rows
        no token uses get names no text can produce."""

        def load_tokenizer(self, tokenizer_class, model_name_or_path, **kwargs):
            import transformers

            tokenizer = super().load_tokenizer(tokenizer_class, model_name_or_path, **kwargs)
            rows = getattr(transformers.AutoConfig.from_pretrained(model_name_or_path), "vocab_size", None)
            return _PaddedVocabulary(tokenizer, rows) if rows and rows > len(tokenizer.get_vocab()) else tokenizer

    return Converter


class _PaddedVocabulary:
    """The tokenizer as the converter sees it: `get_vocab()` padded to `rows` entries, everything else as is."""

    def __init__(self, tokenizer, rows: int):
        self._tokenizer, self._rows = tokenizer, rows

    def get_vocab(self) -> dict[str, int]:
        vocab = dict(self._tokenizer.get_vocab())
        vocab.update({f"<gamio_unused_{i}>": i for i in range(len(vocab), self._rows)})
        return vocab

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)

