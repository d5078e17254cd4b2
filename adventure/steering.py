"""Story steering: memory, author's note, world info keyed by Russian word forms, banned words, stop strings.

A player steers the story the way AI Dungeon / NovelAI players do, with one difference that matters for Russian:
world-info keys and banned words understand word forms. Key and text are lemmatised with pymorphy3 (its Russian
dictionaries ship as a PyPI package), `ё` = `е`, case-insensitive, whole words, and a multi-word key matches as
a sequence of lemmas, so `кот` fires on `котом` and `котов` but never on `который`. A banned word is expanded to
its whole lexeme (every inflection), which becomes token sequences the engine may not generate; the final text is
checked too, since a tokenizer can spell a word in more than one way.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

from adventure.budget import encode_text
from adventure.errors import GamioError

WORD = re.compile(r"\w+(?:-\w+)*")  # hyphenated words stay one word, as in the dictionary (санкт-петербург)


@dataclass(frozen=True)
class WorldInfoEntry:
    keys: tuple[str, ...]
    text: str
    constant: bool = False  # always in the prompt, whatever the story says


@dataclass(frozen=True)
class Steering:
    memory: str = ""  # always at the top of the prompt, never dropped or cut
    authors_note: str = ""
    authors_note_depth: int = 3  # previous turns between the note and the new action
    world_info: tuple[WorldInfoEntry, ...] = ()
    banned_words: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: dict | None) -> "Steering":
        data = dict(data or {})
        entries = tuple(WorldInfoEntry(tuple(e["keys"]), e["text"], bool(e.get("constant", False)))
                        for e in data.get("world_info", ()))
        return cls(memory=data.get("memory", ""), authors_note=data.get("authors_note", ""),
                   authors_note_depth=int(data.get("authors_note_depth", 3)), world_info=entries,
                   banned_words=tuple(data.get("banned_words", ())), stop=tuple(data.get("stop", ())))

    def to_dict(self) -> dict:
        return {"memory": self.memory, "authors_note": self.authors_note,
                "authors_note_depth": self.authors_note_depth,
                "world_info": [{"keys": list(e.keys), "text": e.text, "constant": e.constant} for e in self.world_info],
                "banned_words": list(self.banned_words), "stop": list(self.stop)}


NO_STEERING = Steering()
# The limits of the steering contract (HTTP PATCH /api/games/<id>); eval's steering files keep to them too.
LIMITS = {"memory": 2000, "authors_note": 500, "world_info": 100, "world_info.text": 1000, "world_info.keys": 20,
          "world_info.key": 100, "banned_words": 50, "banned_word": 100, "stop": 10, "stop_string": 100}
MAX_DEPTH = 20


class SteeringError(GamioError):
    """A steering field of the wrong type or value (`too_long`: over a length limit)."""

    def __init__(self, message: str, too_long: bool = False):
        super().__init__(message)
        self.too_long = too_long


def _text(value, name: str, limit: int) -> str:
    if not isinstance(value, str):
        raise SteeringError(f"{name!r} must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise SteeringError(f"{name!r} is {len(value)} characters long; the limit is {limit}", too_long=True)
    return value


def _texts(value, name: str, count: int, each: int) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise SteeringError(f"{name!r} must be a list of strings, not {type(value).__name__}")
    if len(value) > count:
        raise SteeringError(f"{name!r} has {len(value)} items; the limit is {count}", too_long=True)
    return tuple(_text(v, f"{name}[{i}]", each) for i, v in enumerate(value))


def _entry(value, i: int) -> WorldInfoEntry:
    where = f"world_info[{i}]"
    if not isinstance(value, dict):
        raise SteeringError(f"{where} must be an object {{keys, text, constant}}, not {type(value).__name__}")
    unknown = sorted(set(value) - {"keys", "text", "constant"})
    if unknown:
        raise SteeringError(f"{where}: unknown field(s) {unknown}; use keys, text, constant")
    constant = value.get("constant", False)
    if not isinstance(constant, bool):
        raise SteeringError(f"{where}.constant must be true or false")
    keys = _texts(value.get("keys", []), f"{where}.keys", LIMITS["world_info.keys"], LIMITS["world_info.key"])
    if not constant and not any(words(k) for k in keys):
        raise SteeringError(f"{where} needs at least one key with a word in it (or constant: true)")
    return WorldInfoEntry(keys, _text(value.get("text", ""), f"{where}.text", LIMITS["world_info.text"]), constant)


def updated_steering(current: Steering, update: dict) -> Steering:
    """`current` with the fields of `update` replaced, every one checked (nothing changes on a refusal)."""
    changes: dict = {}
    for name in ("memory", "authors_note"):
        if name in update:
            changes[name] = _text(update[name], name, LIMITS[name])
    if "authors_note_depth" in update:
        depth = update["authors_note_depth"]
        if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= MAX_DEPTH:
            raise SteeringError(f"'authors_note_depth' must be an integer from 0 to {MAX_DEPTH}, got {depth!r}")
        changes["authors_note_depth"] = depth
    if "world_info" in update:
        entries = update["world_info"]
        if not isinstance(entries, list):
            raise SteeringError(f"'world_info' must be a list of entries, not {type(entries).__name__}")
        if len(entries) > LIMITS["world_info"]:
            raise SteeringError(f"'world_info' has {len(entries)} entries; the limit is {LIMITS['world_info']}",
                                too_long=True)
        changes["world_info"] = tuple(_entry(e, i) for i, e in enumerate(entries))
    if "banned_words" in update:
        banned = _texts(update["banned_words"], "banned_words", LIMITS["banned_words"], LIMITS["banned_word"])
        changes["banned_words"] = tuple(w for w in banned if words(w))
    if "stop" in update:
        changes["stop"] = tuple(s for s in _texts(update["stop"], "stop", LIMITS["stop"], LIMITS["stop_string"]) if s)
    return replace(current, **changes)


# ---- lemmas ------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _analyzer():
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang="ru")


def _plain(text: str) -> str:
    return text.lower().replace("ё", "е")


@functools.lru_cache(maxsize=200_000)
def lemmas(word: str) -> frozenset[str]:
    """Every dictionary form the word can be (an ambiguous form keeps all its readings), lowercased, ё = е."""
    return frozenset(_plain(p.normal_form) for p in _analyzer().parse(word)) | {_plain(word)}


def words(text: str) -> list[str]:
    return WORD.findall(text)


@functools.lru_cache(maxsize=20_000)
def key_lemmas(key: str) -> tuple[frozenset[str], ...]:
    return tuple(lemmas(w) for w in words(key))


def _last_match(text_lemmas: Sequence[frozenset[str]], where: dict[str, list[int]],
                key: tuple[frozenset[str], ...]) -> int:
    """The end position of the key's last occurrence in the text (lemma sequences), -1 when absent. `where`
    indexes the text's positions by lemma, so only the places the key's first word can stand are tried."""
    if not key:
        return -1
    starts = sorted({p for lemma in key[0] for p in where.get(lemma, ())}, reverse=True)
    for start in starts:
        if start + len(key) <= len(text_lemmas) and all(text_lemmas[start + j] & key[j]
                                                        for j in range(1, len(key))):
            return start + len(key)
    return -1


def triggered_world_info(entries: Sequence[WorldInfoEntry], scanned: Sequence[str]) -> list[int]:
    """Indexes of the entries in the prompt's priority order: constant entries first (in list order), then the
    entries whose keys the scanned texts (oldest first) mention, the most recently mentioned first."""
    text_lemmas = [lemmas(w) for text in scanned for w in words(text)]
    where: dict[str, list[int]] = {}
    for position, forms in enumerate(text_lemmas):
        for lemma in forms:
            where.setdefault(lemma, []).append(position)
    constant = [i for i, e in enumerate(entries) if e.constant]
    found = []
    for i, entry in enumerate(entries):
        if not entry.constant:
            end = max((_last_match(text_lemmas, where, key_lemmas(k)) for k in entry.keys), default=-1)
            if end >= 0:
                found.append((-end, i))
    return constant + [i for _, i in sorted(found)]


# ---- banned words ------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def inflections(word: str) -> frozenset[str]:
    """Every form of a single word (its pymorphy3 lexemes, all readings), with ё and е spellings; a phrase of
    several words is kept as written."""
    if len(words(word)) != 1:
        return frozenset({word.lower()})
    forms = {f.word for p in _analyzer().parse(word) for f in p.lexeme} | {word.lower()}
    return frozenset(forms | {f.replace("ё", "е") for f in forms})


def banned_token_sequences(tokenizer, banned: Iterable[str]) -> list[list[int]]:
    """The token sequences of every inflection, as a word on its own or after a space, in lower, Title and
    UPPER case: what the model would emit to write it."""
    sequences = set()
    for word in banned:
        for form in inflections(word):
            for spelled in {form, form.capitalize(), form.upper()}:
                for text in (spelled, " " + spelled):
                    ids = encode_text(tokenizer, text)
                    if ids:
                        sequences.add(tuple(ids))
    return [list(s) for s in sorted(sequences)]


def first_banned(text: str, banned: Iterable[str]) -> int | None:
    """Where the first banned word (any inflection, whole words, any case) starts in `text`; None if nowhere."""
    single = set().union(*(inflections(w) for w in banned if len(words(w)) == 1)) if banned else set()
    single = {_plain(f) for f in single}
    hits = [m.start() for m in WORD.finditer(text) if _plain(m.group()) in single]
    for phrase in (w for w in banned if len(words(w)) > 1):
        match = re.search(r"(?<!\w)" + r"\W+".join(map(re.escape, words(_plain(phrase)))) + r"(?!\w)",
                          _plain(text))
        if match:
            hits.append(match.start())
    return min(hits) if hits else None
