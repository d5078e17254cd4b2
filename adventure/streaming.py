"""Streaming a reply while it is written: token by token, with at most one `reset` at the end.

Cleanup cuts an invented `> action` and drops the unfinished last sentence, so the end of a reply is not known
until the reply is done. A Russian reply is shown as it grows anyway (players of every text adventure watch the
text appear word by word): each event appends what the model wrote since, normalised and with an invented
`> action` already cut, and a character still being decoded held back. When the reply is done, the final text
usually extends what was shown; when it does not (cleanup dropped the unfinished last sentence, a stop string or
banned word cut through text already shown, a beam hypothesis that finished earlier won), the stream ends with one
`reset` carrying the whole final text. Text that stops extending what was shown is not shown until the end, so
there is never more than that one `reset` per reply. `settled()` tells how much of the shown text is sure to
stay (up to the last sentence end more text already follows), for a client that wants to fade the rest.

Events, per reply: ("token", appended text) or ("reset", the whole text so far). Applying them in order gives the
final text exactly (`apply_events`).

English models stream sentence by sentence, only what has settled: each English sentence that settles is translated on its own; the
translator cuts a whole reply into the same sentences, so the streamed translation is the final one in the normal
case (and a reset repairs it otherwise). The game's stop strings and banned words are Russian, so for an English
model they are applied to the translation (`present`), as the final reply does: a banned word never shows.
"""
from __future__ import annotations

import re
from typing import Callable, Iterable

from adventure.cleanup import clean_generation, cut_invented_action
from adventure.text import normalize_result, normalize_text

# A sentence end that more text already follows: only then can it not grow into something else.
_SETTLED_END = re.compile(r"[.!?…][»\"')\]]*(?=\s)")

Listener = Callable[[int, str, str], None]  # (row, "token" | "reset", text)


def settled(cleaned: str, complete: bool) -> str:
    """The part of a cleaned partial reply that the final reply will start with."""
    if complete:
        return cleaned
    ends = list(_SETTLED_END.finditer(cleaned))
    return cleaned[: ends[-1].end()] if ends else ""


def preview(raw: str) -> str:
    """A partial reply as it may be shown now: normalised, an invented `> action` cut, the unfinished last
    sentence kept (the final cleanup may still drop it)."""
    return normalize_text(cut_invented_action(raw)[0])


def apply_events(events: Iterable[tuple[str, str]]) -> str:
    text = ""
    for kind, value in events:
        text = value if kind == "reset" else text + value
    return text


class ReplyStream:
    """One reply's stream: feed it the model's raw text as it grows; it emits what it may show (above)."""

    def __init__(self, emit: Callable[[str, str], None], *, prepare: Callable[[str], str] = lambda raw: raw,
                 translate: Callable[[list[str]], list[str]] | None = None,
                 present: Callable[[str], str] = lambda text: text):
        self.emit, self.prepare, self.translate, self.present = emit, prepare, translate, present
        self.model_settled = ""  # the settled reply so far, in the model's language
        self.player_text = ""  # the same in the player's language (English models: the translated pieces)
        self.shown = ""  # what the player has been shown
        self.events: list[tuple[str, str]] = []

    def feed(self, raw: str) -> None:
        """The model's raw output so far (special tokens already dropped)."""
        if self.translate is None:
            self._preview(raw)
            return
        cleaned = clean_generation(self.prepare(raw))
        now = settled(cleaned.text, complete=cleaned.cut_action)  # a cut `> action` ends the reply
        if len(now) <= len(self.model_settled) or not now.startswith(self.model_settled):
            return  # nothing new has settled (or an earlier part changed: the final text will tell)
        piece, self.model_settled = now[len(self.model_settled):], now
        # The translator keeps a piece's leading separator, and cuts a whole reply into the same sentences.
        self.player_text = now if self.translate is None else self.player_text + self.translate([piece])[0]
        self._show(normalize_result(self.present(self.player_text)))

    def _preview(self, raw: str) -> None:
        """A Russian reply: everything written so far that extends what was shown (see the module docstring)."""
        text = normalize_result(preview(self.prepare(raw.rstrip("\ufffd"))))
        if len(text) > len(self.shown) and text.startswith(self.shown):
            self._show(text)

    def finish(self, final: str) -> None:
        """The reply is done: whatever has not been shown yet, or a reset when the final text differs."""
        self._show(final)

    def _show(self, text: str) -> None:
        if text.startswith(self.shown):
            kind, value = "token", text[len(self.shown):]
        else:
            kind, value = "reset", text
        self.shown = text
        if kind == "token" and not value:
            return
        self.events.append((kind, value))
        self.emit(kind, value)


class RawStream:
    """A raw completion's stream (the OpenAI / Kobold endpoints): the text as it is written, holding back only
    what could still change: a character still being decoded, and a tail that may be the start of a stop string."""

    def __init__(self, emit: Callable[[str, str], None], stop=()):
        self.emit, self.stop, self.shown = emit, [s for s in stop if s], ""

    def feed(self, raw: str) -> None:
        end = len(raw.rstrip("\ufffd"))
        for stop in self.stop:
            found = raw.find(stop)
            if found >= 0:
                end = min(end, found)
            for k in range(min(len(stop) - 1, len(raw)), 0, -1):
                if raw.endswith(stop[:k]):
                    end = min(end, len(raw) - k)
                    break
        self._show(raw[:end])

    def finish(self, final: str) -> None:
        self._show(final)

    def _show(self, text: str) -> None:
        if text.startswith(self.shown):
            if len(text) > len(self.shown):
                self.emit("token", text[len(self.shown):])
        elif text != self.shown:
            self.emit("reset", text)
        self.shown = text
