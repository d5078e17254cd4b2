"""Text normalisation shared by every stage: deterministic and idempotent, so that a text normalised
during scraping is byte-identical when training renders it and when the server shows it.
"""
from __future__ import annotations

import re
import unicodedata

# Curly and typographic quotes become plain ones; Russian «ёлочки» are kept (they are the norm in Russian).
_QUOTES = str.maketrans({
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
})
_INVISIBLE = re.compile(r"[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_SPACES = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_ELLIPSIS = re.compile(r"\.{3,}")


def normalize_text(text: str) -> str:
    """Normalise whitespace, quotes and ellipses; keep paragraphs (at most one blank line between them)."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    text = text.translate(_QUOTES)
    text = _ELLIPSIS.sub("...", text.replace("…", "..."))
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def normalize_action(text: str) -> str:
    """An action is one line: the `> action` format has no room for line breaks or a leading marker."""
    text = normalize_text(text).replace("\n", " ")
    text = re.sub(r"^(?:>\s*)+", "", text)
    return re.sub(r" {2,}", " ", text).strip()


def normalize_result(text: str) -> str:
    """A result must not contain lines that would read as player actions in the `> action` format."""
    lines = [re.sub(r"^(?:>\s*)+", "", line) for line in normalize_text(text).split("\n")]
    return normalize_text("\n".join(lines))
