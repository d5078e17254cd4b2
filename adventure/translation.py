"""MarianMT translation of story text (opus-mt en<->ru, or the tiny offline models) that keeps its layout.

Story text is `> action` lines and result paragraphs. Translating a whole page at once would exceed the
model's input limit and lose the layout, so a text is cut into lines, the `> ` marker is kept aside, each line
is cut into sentences and an overlong sentence into comma/space chunks that fit the limit. Unique segments
are translated in length-sorted batches (optionally through a persistent cache) and put back in place.
"""
from __future__ import annotations

import hashlib
import logging
import re
import warnings
from pathlib import Path
from typing import Callable, Protocol

from adventure.errors import GamioError
from adventure.models import model_not_available

log = logging.getLogger(__name__)

DIRECTIONS = ("en-ru", "ru-en")
DEFAULT_MODELS = {"en-ru": "Helsinki-NLP/opus-mt-en-ru", "ru-en": "Helsinki-NLP/opus-mt-ru-en"}

# ----------------------------------------------------------------------------------------------------------
# Segmentation: pure text functions (also used to cut the parallel set into sentence pairs).

_LINE_BREAK = re.compile(r"(\r?\n)")
# Leading indentation and the `> ` action marker stay as they are; only the text after them is translated.
_LINE_HEAD = re.compile(r"\s*(?:>\s*)?")
# A sentence ends at . ! ? … (plus closing quotes/brackets) followed by whitespace and something that starts
# a sentence: a capital letter or digit, possibly after an opening quote or a dialogue dash.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'»”’)\]]*(\s+)(?=[«\"“„'(\[]*(?:[—–-]\s*)?[«\"“„'(\[]*[A-ZА-ЯЁ0-9])")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "mt", "jr", "sr", "prof", "vs", "etc", "no", "e.g", "i.e",
                  "т", "г", "гг", "др", "см", "им", "ул", "стр", "тыс", "млн", "и.о"}
_LAST_WORD = re.compile(r"(\w+(?:\.\w+)*)$")
# Where an overlong sentence may be cut, best first: after a comma-like mark, then at any space.
_SOFT_BREAKS = (re.compile(r"(?<=[,;:])(\s+)"), re.compile(r"(\s+)"))
_HAS_WORD = re.compile(r"\w")


def split_lines(text: str) -> list[str]:
    """The lines of `text` without their line breaks (`\\n` or `\\r\\n`)."""
    return _LINE_BREAK.split(text)[::2]


def _sentence_parts(line: str) -> list[str]:
    """[sentence, whitespace, sentence, ...]: the line exactly, cut at sentence ends."""
    parts, start = [], 0
    for match in _SENTENCE_END.finditer(line):
        before = line[: match.start()]
        word = _LAST_WORD.search(before)
        if line[match.start()] == "." and word and (word.group(1).lower() in _ABBREVIATIONS
                                                    or (len(word.group(1)) == 1 and word.group(1).isupper())):
            continue  # "Mr. Smith", "J. R. R. Tolkien", "т. е." are not sentence ends
        parts += [line[start: match.start(1)], match.group(1)]
        start = match.end(1)
    parts.append(line[start:])
    return parts


def split_sentences(text: str) -> list[str]:
    """The sentences of one line or paragraph, stripped (no empty ones)."""
    return [part.strip() for part in _sentence_parts(text.strip())[::2] if part.strip()]


def split_to_fit(text: str, count_tokens: Callable[[str], int], limit: int, level: int = 0) -> list[str]:
    """[chunk, separator, chunk, ...] with every chunk at most `limit` tokens; joining gives `text` back.

    Cuts after commas first, then at spaces (packing as many pieces per chunk as fit), and only as a last
    resort inside a word (a run of characters without spaces longer than the limit).
    """
    if count_tokens(text) <= limit:
        return [text]
    if level < len(_SOFT_BREAKS):
        pieces = _SOFT_BREAKS[level].split(text)
        if len(pieces) == 1:
            return split_to_fit(text, count_tokens, limit, level + 1)
        out, current = [], pieces[0]
        for separator, piece in zip(pieces[1::2], pieces[2::2]):
            if count_tokens(current + separator + piece) <= limit:
                current += separator + piece
            else:
                out += split_to_fit(current, count_tokens, limit, level + 1) + [separator]
                current = piece
        return out + split_to_fit(current, count_tokens, limit, level + 1)
    out, rest = [], text
    while count_tokens(rest) > limit:
        lo, hi = 1, len(rest) - 1  # longest prefix that fits, by bisection (token counts grow with length)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if count_tokens(rest[:mid]) <= limit else (lo, mid - 1)
        out += [rest[:lo], ""]
        rest = rest[lo:]
    return out + [rest]


def plan_text(text: str, count_tokens: Callable[[str], int], limit: int) -> list[tuple[bool, str]]:
    """`text` as (translate?, piece) pairs whose pieces concatenate back to `text`.

    Line breaks, indentation, `> ` markers, the whitespace between sentences and word-less pieces
    ("***", "—") are kept as they are; every piece to translate fits `limit` tokens.
    """
    plan: list[tuple[bool, str]] = []
    for index, piece in enumerate(_LINE_BREAK.split(text)):
        if index % 2:  # a line break
            plan.append((False, piece))
            continue
        head = _LINE_HEAD.match(piece).group(0)
        body = piece[len(head):].rstrip()
        plan.append((False, head))
        for sentence_index, sentence in enumerate(_sentence_parts(body)):
            if sentence_index % 2:
                plan.append((False, sentence))
                continue
            for chunk_index, chunk in enumerate(split_to_fit(sentence, count_tokens, limit) if sentence else []):
                plan.append((bool(chunk_index % 2 == 0 and _HAS_WORD.search(chunk)), chunk))
        plan.append((False, piece[len(head) + len(body):]))
    return [(translate, piece) for translate, piece in plan if piece]


# ----------------------------------------------------------------------------------------------------------
# Model specs and loading.

class TranslationCache(Protocol):
    def get_many(self, model_key: str, texts: list[str]) -> dict[str, str]: ...

    def put_many(self, model_key: str, translations: dict[str, str]) -> None: ...


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise GamioError(f"unknown translation direction {direction!r}; choose one of {list(DIRECTIONS)}")
    return direction


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


def load_translation_model(ref: str | Path, is_local: bool):
    """Tokenizer and seq2seq model from a folder or a hub id; an unavailable hub id -> ModelNotAvailable."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    with warnings.catch_warnings():
        # MarianTokenizer asks for sacremoses (punctuation normalisation); it translates fine without it.
        warnings.filterwarnings("ignore", message=".*sacremoses.*")
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(ref))
            model = AutoModelForSeq2SeqLM.from_pretrained(str(ref))
        except (OSError, ValueError) as exc:
            if is_local:
                raise GamioError(f"cannot load the translation model in {ref}: {exc}") from exc
            raise model_not_available(str(ref), exc, "translator.model=/path/to/folder") from exc
    return tokenizer, model


# ----------------------------------------------------------------------------------------------------------
# The translator.

class Translator:
    """Translate story texts with a MarianMT model; see the module docstring for what is preserved."""

    def __init__(self, model: str | Path | None = None, direction: str = "en-ru",
                 artifacts_dir: str | Path | None = None, *, device: str = "cpu", batch_size: int = 16,
                 num_beams: int | None = None, max_input_tokens: int | None = None,
                 cache: TranslationCache | None = None, show_progress: bool = True):
        import torch

        if batch_size < 1:
            raise GamioError(f"translator batch_size must be >= 1, got {batch_size}")
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise GamioError(f"translator device {device!r} requested but CUDA is not available; use device=cpu")
        self.direction = check_direction(direction)
        ref, key, is_local = resolve_translation_model(model, direction, artifacts_dir)
        self.model_ref = str(ref)
        self.tokenizer, self.model = load_translation_model(ref, is_local)
        self.device = torch.device(device)
        self.model.to(self.device).eval()
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
        self._counts: dict[str, int] = {}

    def count_tokens(self, text: str) -> int:
        """Model input length of `text`, end-of-sentence token included (what the limit applies to)."""
        if text not in self._counts:
            self._counts[text] = len(self.tokenizer(text).input_ids)
        return self._counts[text]

    def plan(self, text: str) -> list[tuple[bool, str]]:
        return plan_text(text, self.count_tokens, self.max_input_tokens)

    def translate(self, texts: list[str]) -> list[str]:
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

    def translate_one(self, text: str) -> str:
        return self.translate([text])[0]

    def _generate(self, batch: list[str]) -> list[str]:
        import torch

        encoded = self.tokenizer(batch, return_tensors="pt", padding=True, truncation=True,
                                 max_length=self.max_input_tokens).to(self.device)
        # A translation is rarely over ~2x its source in tokens; the cap stops a degenerate loop early.
        # (`max_length` counts the decoder start token; passing it avoids a max_new_tokens-vs-config warning.)
        # Each row gets the cap of its own length, so a text translates the same alone or in any batch.
        caps = [min(self.max_output_tokens, 3 * int(n) + 16) for n in encoded["attention_mask"].sum(dim=1)]
        with torch.inference_mode():
            output = self.model.generate(**encoded, num_beams=self.num_beams, max_length=max(caps) + 1)
        rows = [row[: cap + 1] for row, cap in zip(output.tolist(), caps)]  # +1: the decoder start token
        return [text.strip() for text in self.tokenizer.batch_decode(rows, skip_special_tokens=True)]
