"""Which language a model speaks: Russian models read the game directly, English ones (the converted GPT2-XL)
are wrapped in ru->en / en->ru translation, as the seed did. Eval and serving decide it the same way; first match:
  1. `gamio.json` in the model folder: {"language": "en"} (what a stage writes to state it explicitly);
  2. model-card metadata: a `language:` field in the YAML front matter of README.md or MODEL_CARD.md
     (the Hugging Face convention; a list counts as Russian if it names ru);
  3. the tokenizer itself: a tokenizer built for Russian spends well under one token per Cyrillic letter, an
     English byte-level BPE (GPT-2, the converted gamegpt_xl) spends about one or more. A fixed Russian probe text
     with fewer than RU_CHARS_PER_TOKEN characters per token means English.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from adventure.errors import GamioError
from adventure.models import ModelSource

LANGUAGES = ("ru", "en")
RU_CHARS_PER_TOKEN = 1.5
_RU_PROBE = ("Вы стоите на пустой дороге. Впереди темнеет лес, позади догорает деревня. "
             "Старик у колодца шепчет, что в чаще живёт ведьма, и просит вас вернуть ему внучку.")
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.S)


def _card_language(folder: Path) -> str | None:
    for card in ("README.md", "MODEL_CARD.md"):
        path = folder / card
        if not path.is_file():
            continue
        match = _FRONT_MATTER.match(path.read_text(encoding="utf-8", errors="replace"))
        if not match:
            continue
        import yaml

        try:
            meta = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError:
            continue
        value = meta.get("language") if isinstance(meta, dict) else None
        values = [value] if isinstance(value, str) else list(value or [])
        if "ru" in values:
            return "ru"
        if "en" in values:
            return "en"
    return None


def detect_language(source: ModelSource) -> tuple[str, str]:
    """(language, rule) for a resolved model; see the module docstring for the rules."""
    folder = Path(source.location) if source.is_local else None
    if folder is not None:
        note = folder / "gamio.json"
        if note.is_file():
            try:
                language = json.loads(note.read_text(encoding="utf-8")).get("language")
            except (json.JSONDecodeError, AttributeError):
                raise GamioError(f"{note} is not a JSON object") from None
            if language not in LANGUAGES:
                raise GamioError(f"{note}: language must be one of {list(LANGUAGES)}, got {language!r}")
            return language, "gamio.json"
        card = _card_language(folder)
        if card:
            return card, "model card"
    from adventure.budget import encode_text
    from adventure.models import load_tokenizer

    tokenizer = load_tokenizer(source)
    per_token = len(_RU_PROBE) / max(1, len(encode_text(tokenizer, _RU_PROBE)))
    language = "ru" if per_token >= RU_CHARS_PER_TOKEN else "en"
    return language, f"tokenizer ({per_token:.2f} Russian chars/token)"


def write_language_note(folder: Path, language: str, **extra) -> None:
    """Record the model's language in `gamio.json` (rule 1 above) when a stage publishes a model folder."""
    if language not in LANGUAGES:
        raise GamioError(f"language must be one of {list(LANGUAGES)}, got {language!r}")
    note = {"language": language, **extra}
    (Path(folder) / "gamio.json").write_text(json.dumps(note, ensure_ascii=False) + "\n", encoding="utf-8")
