"""Segmentation of story text for translation: lines, sentences, and chunks that fit a model's input limit.

Every function keeps the exact separators, so the pieces concatenate back to the input byte for byte: a
translated story keeps its line breaks, indentation, `> ` action markers and the spacing between sentences.
Russian sentences are cut with `razdel` (it knows Russian abbreviations, initials and dialogue dashes); English
ones with the rules below. The parallel set is cut into sentence pairs with the same functions, so the tiny
translators are trained on the kind of segment they are later asked to translate.
"""
from __future__ import annotations

import re
from typing import Callable

LINE_BREAK = re.compile(r"(\r?\n)")
# Leading indentation and the `> ` action marker stay as they are; only the text after them is translated.
_LINE_HEAD = re.compile(r"\s*(?:>\s*)?")
# An English sentence ends at . ! ? … (plus closing quotes/brackets) followed by whitespace and something that
# starts a sentence: a capital letter or digit, possibly after an opening quote or a dialogue dash.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'»”’)\]]*(\s+)(?=[«\"“„'(\[]*(?:[—–-]\s*)?[«\"“„'(\[]*[A-ZА-ЯЁ0-9])")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "mt", "jr", "sr", "prof", "vs", "etc", "no", "e.g", "i.e"}
_LAST_WORD = re.compile(r"(\w+(?:\.\w+)*)$")
# Where an overlong sentence may be cut, best first: after a comma-like mark, then at any space.
_SOFT_BREAKS = (re.compile(r"(?<=[,;:])(\s+)"), re.compile(r"(\s+)"))
_HAS_WORD = re.compile(r"\w")
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def split_lines(text: str) -> list[str]:
    """The lines of `text` without their line breaks (`\\n` or `\\r\\n`)."""
    return LINE_BREAK.split(text)[::2]


def _english_parts(line: str) -> list[str]:
    parts, start = [], 0
    for match in _SENTENCE_END.finditer(line):
        word = _LAST_WORD.search(line[: match.start()])
        if line[match.start()] == "." and word and (word.group(1).lower() in _ABBREVIATIONS
                                                    or (len(word.group(1)) == 1 and word.group(1).isupper())):
            continue  # "Mr. Smith", "J. R. R. Tolkien" are not sentence ends
        parts += [line[start: match.start(1)], match.group(1)]
        start = match.end(1)
    return parts + [line[start:]]


def _russian_parts(line: str) -> list[str]:
    from razdel import sentenize

    spans = [(s.start, s.stop) for s in sentenize(line) if s.stop > s.start]
    if not spans:
        return [line]
    # razdel skips whitespace: the text before the first sentence stays in it, the text after the last one
    # in the last, and the exact whitespace between two sentences is a part of its own.
    parts, end = [line[: spans[0][1]]], spans[0][1]
    for start, stop in spans[1:]:
        parts += [line[end:start], line[start:stop]]
        end = stop
    parts[-1] += line[end:]
    return parts


def sentence_parts(line: str, language: str | None = None) -> list[str]:
    """[sentence, whitespace, sentence, ...]: the line exactly, cut at sentence ends. `language` ru | en;
    None decides by the script (any Cyrillic letter: Russian)."""
    russian = language == "ru" or (language is None and _CYRILLIC.search(line) is not None)
    return _russian_parts(line) if russian else _english_parts(line)


def split_sentences(text: str, language: str | None = None) -> list[str]:
    """The sentences of one line or paragraph, stripped (no empty ones)."""
    return [part.strip() for part in sentence_parts(text.strip(), language)[::2] if part.strip()]


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


def plan_text(text: str, count_tokens: Callable[[str], int], limit: int,
              language: str | None = None) -> list[tuple[bool, str]]:
    """`text` as (translate?, piece) pairs whose pieces concatenate back to `text`.

    Line breaks, indentation, `> ` markers, the whitespace between sentences and word-less pieces
    ("***", "—") are kept as they are; every piece to translate fits `limit` tokens.
    """
    plan: list[tuple[bool, str]] = []
    for index, piece in enumerate(LINE_BREAK.split(text)):
        if index % 2:  # a line break
            plan.append((False, piece))
            continue
        head = _LINE_HEAD.match(piece).group(0)
        body = piece[len(head):].rstrip()
        plan.append((False, head))
        for sentence_index, sentence in enumerate(sentence_parts(body, language) if body else []):
            if sentence_index % 2:
                plan.append((False, sentence))
                continue
            for chunk_index, chunk in enumerate(split_to_fit(sentence, count_tokens, limit) if sentence else []):
                plan.append((bool(chunk_index % 2 == 0 and _HAS_WORD.search(chunk)), chunk))
        plan.append((False, piece[len(head) + len(body):]))
    return [(translate, piece) for translate, piece in plan if piece]
