"""Cleanup of generated text: what the model wrote becomes the result of one turn.

Models trained on the `> action` format happily invent the player's next move; that part is cut. A reply that
stops mid-sentence (55 tokens end anywhere) loses its unfinished tail, unless nothing would be left.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from adventure.text import normalize_text

_ACTION_LINE = re.compile(r"(?:^|\n)[ \t]*>")
_SENTENCE_END = re.compile(r"[.!?…][»\"')\]]*(?=\s|$)")
DEFAULT_SPECIAL_TOKENS = ("<|endoftext|>", "<s>", "</s>", "<pad>", "<unk>")


@dataclass(frozen=True)
class CleanedText:
    text: str
    cut_action: bool  # the model had invented a `>` action that was cut
    cut_unfinished: bool  # a trailing unfinished sentence was dropped


def cut_invented_action(text: str) -> tuple[str, bool]:
    """The text before the first line that starts with `>` (the model inventing the player's next move)."""
    match = _ACTION_LINE.search(text)
    return (text, False) if match is None else (text[: match.start()], True)


def clean_generation(text: str, special_tokens: Iterable[str] = DEFAULT_SPECIAL_TOKENS) -> CleanedText:
    for token in special_tokens:
        if token:
            text = text.replace(token, " ")
    text, cut_action = cut_invented_action(text)
    text = normalize_text(text)
    cut_unfinished = False
    ends = list(_SENTENCE_END.finditer(text))
    if ends and ends[-1].end() < len(text):
        text = text[: ends[-1].end()].rstrip()
        cut_unfinished = True
    return CleanedText(text=text, cut_action=cut_action, cut_unfinished=cut_unfinished)
