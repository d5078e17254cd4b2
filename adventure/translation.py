"""MarianMT translation of story text (opus-mt en<->ru, or the tiny offline models) that keeps its layout.

Story text is `> action` lines and result paragraphs. Translating a whole page at once would exceed the model's
input limit and lose the layout, so a text is cut (adventure/segmentation.py) into lines, sentences and chunks
that fit the limit, unique segments are translated in length-sorted batches (optionally through a persistent
cache) and put back in place. `build_translator` / `build_translators` make translators from a
`configs/translation/<name>.yaml` node: the one way scraping, eval and serving get theirs. The model runs on
transformers (`engine: hf`) or on CTranslate2 (`engine: ct2`, adventure/translation_ct2.py); everything above the
model (plans, batches, cache) is the same for both.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from adventure.errors import GamioError
from adventure.models import model_not_available
from adventure.parallel import check_direction
from adventure.segmentation import plan_text

log = logging.getLogger(__name__)

DEFAULT_MODELS = {"en-ru": "Helsinki-NLP/opus-mt-en-ru", "ru-en": "Helsinki-NLP/opus-mt-ru-en"}


# ----------------------------------------------------------------------------------------------------------
# Model specs and loading.

class TranslationCache(Protocol):
    def get_many(self, model_key: str, texts: list[str]) -> dict[str, str]: ...

    def put_many(self, model_key: str, translations: dict[str, str]) -> None: ...


def resolve_translation_model(spec: str | Path | None, direction: str, artifacts_dir: str | Path | None = None):
    """(what to load, key part, is_local) for a spec: None/"" (the opus-mt default), `tiny`, a folder, a hub id."""
    check_direction(direction)
    spec = str(spec or DEFAULT_MODELS[direction])
    if spec == "tiny":
        from adventure.paths import REPO_ROOT
        from adventure.tiny_marian import ensure_tiny_marian

        folder = ensure_tiny_marian(Path(artifacts_dir) if artifacts_dir else REPO_ROOT / "artifacts", direction)
        # The tiny model's content (not its path) names it, so a rebuilt model never reuses old translations.
        digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()[:16]
        return folder, f"tiny-opus-mt-{direction}@{digest}", True
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise GamioError(f"translation model folder {path} has no config.json (not a Hugging Face model folder)")
        return path, str(path.resolve()), True
    if spec.startswith(("/", "./", "../", "~")) or spec.count("/") > 1:
        raise GamioError(f"translation model folder {spec} does not exist")
    return spec, spec, False


def folder_hint(direction: str) -> str:
    """How to pass a local folder instead of an unavailable hub id (the message's last words)."""
    return f"translation.{direction.replace('-', '_')}=/path/to/folder (scraping: translator.model=/path/to/folder)"


def load_translation_model(ref: str | Path, is_local: bool, direction: str = "en-ru"):
    """Tokenizer and seq2seq model from a folder or a hub id; an unavailable hub id -> ModelNotAvailable."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(ref))
        model = AutoModelForSeq2SeqLM.from_pretrained(str(ref))
    except (OSError, ValueError) as exc:
        if is_local:
            raise GamioError(f"cannot load the translation model in {ref}: {exc}") from exc
        raise model_not_available(str(ref), exc, folder_hint(direction)) from exc
    return tokenizer, model


# ----------------------------------------------------------------------------------------------------------
# The translator.

class Translator:
    """Translate story texts with a MarianMT model; see the module docstring for what is preserved.

    engine="hf" runs transformers `generate` (`self.model` is the torch model); engine="ct2" runs CTranslate2 on
    the model converted once and cached (adventure/translation_ct2.py; `compute_type`, `threads` apply to it)."""

    def __init__(self, model: str | Path | None = None, direction: str = "en-ru",
                 artifacts_dir: str | Path | None = None, *, device: str = "cpu", batch_size: int = 16,
                 num_beams: int | None = None, max_input_tokens: int | None = None,
                 cache: TranslationCache | None = None, show_progress: bool = True, engine: str = "hf",
                 compute_type: str = "auto", threads: int | None = None):
        if batch_size < 1:
            raise GamioError(f"translator batch_size must be >= 1, got {batch_size}")
        if engine not in ("hf", "ct2"):
            raise GamioError(f"translator engine must be hf or ct2, got {engine!r}")
        self.direction = check_direction(direction)
        ref, key, is_local = resolve_translation_model(model, direction, artifacts_dir)
        self.model_ref, self.engine = str(ref), engine
        if engine == "ct2":
            from adventure.translation_ct2 import CT2Marian

            self.tokenizer, self.model = CT2Marian.load(ref, is_local, artifacts_dir, device=device,
                                                        compute_type=compute_type, threads=threads,
                                                        hint=folder_hint(self.direction))
            self.description = self.model.description
            key += f"#ct2-{self.model.compute_type}"  # other decoding code, other numbers: other cache rows
        else:
            self.tokenizer, self.model = load_translation_model(ref, is_local, self.direction)
            self._to_device(device)
        self.batch_size, self.cache, self.show_progress = batch_size, cache, show_progress

        generation = self.model.generation_config
        self.num_beams = int(num_beams or generation.num_beams or 1)
        positions = getattr(self.model.config, "max_position_embeddings", None) or 512
        tokenizer_limit = self.tokenizer.model_max_length
        model_limit = min(positions, tokenizer_limit) if tokenizer_limit and tokenizer_limit < 10**6 else positions
        self.max_input_tokens = int(max_input_tokens or model_limit)
        if not 2 <= self.max_input_tokens <= model_limit:
            raise GamioError(f"max_input_tokens must be in [2, {model_limit}] for {self.model_ref}, "
                             f"got {self.max_input_tokens}")
        # Decoder positions bound the output; the decoder start token takes one of them.
        self.max_output_tokens = min(positions, generation.max_length or positions) - 1
        # Different decoding gives different translations: the beam count is part of the cache key.
        self.model_key = f"{key}#{self.direction}#beams={self.num_beams}"
        self.stats = {"segments": 0, "cached": 0, "translated": 0, "batches": 0}
        # The game server's worker and its request threads (the context view) share a translator.
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def _to_device(self, device: str) -> None:
        import torch

        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise GamioError(f"translator device {device!r} requested but CUDA is not available; use device=cpu")
        self.device = torch.device(device)
        self.model.to(self.device).eval()
        self.description = f"hf {str(self.model.dtype).removeprefix('torch.')} on {self.device.type}"

    def count_tokens(self, text: str) -> int:
        """Model input length of `text`, end-of-sentence token included (what the limit applies to)."""
        if text not in self._counts:
            self._counts[text] = len(self.tokenizer(text).input_ids)
        return self._counts[text]

    def plan(self, text: str) -> list[tuple[bool, str]]:
        return plan_text(text, self.count_tokens, self.max_input_tokens, language=self.direction[:2])

    def translate(self, texts: list[str]) -> list[str]:
        with self._lock:
            return self._translate(texts)

    def _translate(self, texts: list[str]) -> list[str]:
        """Translations of `texts`, in order, with line breaks and `> ` markers in place."""
        from tqdm.auto import tqdm

        if isinstance(texts, str) or not all(isinstance(text, str) for text in texts):
            raise GamioError("Translator.translate expects a list of strings")
        plans = [self.plan(text) for text in texts]
        segments = list(dict.fromkeys(piece for plan in plans for translate, piece in plan if translate))
        done = dict(self.cache.get_many(self.model_key, segments)) if self.cache is not None and segments else {}
        todo = sorted((s for s in segments if s not in done), key=lambda s: (-self.count_tokens(s), s))
        self.stats["segments"] += len(segments)
        self.stats["cached"] += len(segments) - len(todo)

        # Longest first: batches of similar length waste little padding, and a memory problem shows at once.
        batches = [todo[i: i + self.batch_size] for i in range(0, len(todo), self.batch_size)]
        with tqdm(total=len(todo), unit="seg", desc=f"translate {self.direction}",
                  disable=not self.show_progress or len(batches) < 2) as progress:
            for batch in batches:
                fresh = dict(zip(batch, self._generate(batch)))
                done.update(fresh)
                if self.cache is not None:  # each batch is saved at once: an interrupted run resumes where it stopped
                    self.cache.put_many(self.model_key, fresh)
                self.stats["translated"] += len(batch)
                self.stats["batches"] += 1
                progress.update(len(batch))
        return ["".join(done[piece] if translate else piece for translate, piece in plan) for plan in plans]

    def output_cap(self, input_tokens: int) -> int:
        """New tokens a segment of `input_tokens` may get. A translation is rarely over ~2x its source in tokens;
        the cap stops a degenerate loop early. Each row gets the cap of its own length, so a text translates the
        same alone or in any batch."""
        return min(self.max_output_tokens, 3 * int(input_tokens) + 16)

    def _generate(self, batch: list[str]) -> list[str]:
        if self.engine == "ct2":
            return self.model.translate(self.tokenizer, batch, self.num_beams, self.max_input_tokens,
                                        self.output_cap)
        import torch

        encoded = self.tokenizer(batch, return_tensors="pt", padding=True, truncation=True,
                                 max_length=self.max_input_tokens).to(self.device)
        # (`max_length` counts the decoder start token; passing it avoids a max_new_tokens-vs-config warning.)
        caps = [self.output_cap(n) for n in encoded["attention_mask"].sum(dim=1)]
        with torch.inference_mode():
            output = self.model.generate(**encoded, num_beams=self.num_beams, max_length=max(caps) + 1)
        rows = [row[: cap + 1] for row, cap in zip(output.tolist(), caps)]  # +1: the decoder start token
        return [text.strip() for text in self.tokenizer.batch_decode(rows, skip_special_tokens=True)]


# ----------------------------------------------------------------------------------------------------------
# Building translators from a `configs/translation/` node.

def open_cache(path):
    """The persistent cache of a translation config (`cache: <file>`), or None."""
    if not path:
        return None
    from adventure.translation_cache import SQLiteTranslationCache

    return SQLiteTranslationCache(Path(str(path)).expanduser())


def build_translator(cfg, direction: str, artifacts_dir: str | Path | None, *, model: str | None = None,
                     cache: TranslationCache | None = None, show_progress: bool = False) -> Translator:
    """The `direction` translator of a translation config; `model` overrides the config's spec for it."""
    spec = model or cfg[direction.replace("-", "_")]
    return Translator(spec, direction, artifacts_dir, device=str(cfg.device), batch_size=int(cfg.batch_size),
                      num_beams=cfg.num_beams, cache=cache, show_progress=show_progress, engine=str(cfg.engine),
                      compute_type=str(cfg.compute_type), threads=cfg.threads)


@dataclass
class Translators:
    """What an English model is wrapped in: the player's Russian goes ru->en, the model's English en->ru."""
    to_english: Translator
    to_russian: Translator

    def close(self) -> None:
        for translator in (self.to_english, self.to_russian):
            if translator.cache is not None:
                translator.cache.close()


def build_translators(cfg, artifacts_dir: str | Path | None, *, ru_en: str | None = None,
                      en_ru: str | None = None) -> Translators:
    """Both directions of a translation config, sharing one persistent cache (ru_en / en_ru override the specs)."""
    cache = open_cache(cfg.cache)
    return Translators(build_translator(cfg, "ru-en", artifacts_dir, model=ru_en, cache=cache),
                       build_translator(cfg, "en-ru", artifacts_dir, model=en_ru, cache=cache))
