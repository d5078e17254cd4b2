"""Prompt budget: fit memory + world info + world + history + author's note + action into the model's context,
leaving room for the reply.

The game builds every prompt with this function and training uses the same renderer, so the model is trained on
exactly the shape of prompt it is later asked to continue (training samples carry no steering parts). Rules:
  1. memory (and the author's note) is never dropped or cut;
  2. world info has its own budget (a share of the context): entries come in priority order (constant ones first,
     then the most recently mentioned) and those that do not fit are dropped;
  3. keep at most `max_turns` most recent turns, then drop the oldest turns until the prompt fits
     `context_length - max_new_tokens` tokens;
  4. if the world alone is still too long, cut it from the left (the recent part of the world matters most);
  5. then drop world-info entries, lowest priority first; only if even the bare action does not fit, cut it from
     the left too.
Token counts are always measured on the final string, so BPE merges across piece boundaries cannot break the
guarantee (a property test checks it on random histories). Each part's own token count is measured on its text
alone (what the context view shows); their sum can differ from the total by a merge or two at the seams.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from adventure.errors import GamioError
from adventure.story_format import DEFAULT_HISTORY_TURNS, Turn, action_line, render_context


@dataclass(frozen=True)
class Steered:
    """What steering adds around the story, already in the model's language."""
    memory: str = ""
    world_info: Sequence[tuple[int, str]] = ()  # (entry index, text) in priority order
    authors_note: str = ""  # the note as it stands in the prompt (e.g. "[Примечание автора: ...]")
    authors_note_depth: int = 3
    world_info_budget: int | None = None  # tokens; None: a quarter of the context


@dataclass(frozen=True)
class PromptPart:
    kind: str  # memory | world_info | world | turn | authors_note | action
    text: str  # exactly as it stands in the prompt (the kept parts concatenate to the prompt)
    tokens: int
    dropped: bool = False
    index: int | None = None  # the world-info entry or the history turn it comes from


@dataclass(frozen=True)
class BudgetedPrompt:
    text: str
    input_ids: list[int]
    turns_used: int
    turns_dropped: int
    world_cut_chars: int
    action_cut_chars: int
    world_info_used: list[int] = field(default_factory=list)
    parts: list[PromptPart] = field(default_factory=list)


def encode_text(tokenizer, text: str) -> list[int]:
    """Token ids of plain text: no BOS/EOS added, and special-token strings typed by a player
    (e.g. "<|endoftext|>") are split into ordinary tokens instead of acting as control tokens."""
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]


def _longest_suffix_that_fits(text: str, fits) -> int:
    """Smallest cut position c such that fits(text[c:]) holds (binary search; fits is monotone)."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(text[mid:]):
            hi = mid
        else:
            lo = mid + 1
    return lo


def build_prompt(tokenizer, world: str, history: Sequence[Turn], action: str | None, *, context_length: int,
                 max_new_tokens: int, max_turns: int = DEFAULT_HISTORY_TURNS,
                 steered: Steered | None = None) -> BudgetedPrompt:
    steered = steered or Steered()
    budget = context_length - max_new_tokens
    if budget < 1:
        raise GamioError(f"max_new_tokens={max_new_tokens} leaves no room for a prompt in a context of "
                         f"{context_length} tokens")
    turns = list(history[-max_turns:]) if max_turns > 0 else []
    dropped = len(history) - len(turns)
    note, depth = steered.authors_note, steered.authors_note_depth

    def count(text: str) -> int:
        return len(encode_text(tokenizer, text))

    # World info first fills its own budget, in priority order.
    wi_budget = steered.world_info_budget if steered.world_info_budget is not None else context_length // 4
    used: list[tuple[int, str]] = []
    spent = 0
    for index, text in steered.world_info:  # each entry counted once, with its line break (what it adds)
        cost = count(text + "\n")
        if spent + cost <= wi_budget:
            used.append((index, text))
            spent += cost

    def ids_of(w: str, t: Sequence[Turn], a: str, wi: Sequence[tuple[int, str]]) -> list[int]:
        return encode_text(tokenizer, render_context(w, t, a, memory=steered.memory, world_info=[x for _, x in wi],
                                                     note=note, note_depth=depth))

    ids = ids_of(world, turns, action, used)
    if len(ids) > budget and turns:
        lo, hi = 1, len(turns)  # the fewest drops that fit: binary search over how many oldest turns to drop
        while lo < hi:
            mid = (lo + hi) // 2
            if len(ids_of(world, turns[mid:], action, used)) <= budget:
                hi = mid
            else:
                lo = mid + 1
        dropped += lo
        turns = turns[lo:]
        ids = ids_of(world, turns, action, used)
    world_cut = action_cut = 0
    if len(ids) > budget:
        world_cut = _longest_suffix_that_fits(world, lambda w: len(ids_of(w, [], action, used)) <= budget)
        world = world[world_cut:]
        ids = ids_of(world, [], action, used)
    while len(ids) > budget and used:
        used.pop()
        ids = ids_of(world, [], action, used)
    if len(ids) > budget and action:  # (a continuation has no action to cut)
        action_cut = _longest_suffix_that_fits(action, lambda a: len(ids_of("", [], a, [])) <= budget)
        action = action[action_cut:]
        ids = ids_of(world, [], action, [])
    if len(ids) > budget:  # the fixed markers, the memory and the note alone exceed the budget
        fixed = count(render_context("", [], "", memory=steered.memory, note=note, note_depth=depth))
        if steered.memory or note:
            raise GamioError(f"the memory and the author's note take {fixed} tokens; this model's context leaves "
                             f"{budget} for the whole prompt: shorten them")
        raise GamioError(f"context_length={context_length} is too small for any prompt with "
                         f"max_new_tokens={max_new_tokens}")
    parts = _parts(count, steered, world, history, len(history) - len(turns), turns, action, used)
    return BudgetedPrompt(text="".join(p.text for p in parts if not p.dropped), input_ids=ids,
                          turns_used=len(turns), turns_dropped=dropped, world_cut_chars=world_cut,
                          action_cut_chars=action_cut, world_info_used=[i for i, _ in used], parts=parts)


def _parts(count, steered: Steered, world: str, history: Sequence[Turn], first_kept: int, turns: Sequence[Turn],
           action: str, used: Sequence[tuple[int, str]]) -> list[PromptPart]:
    """The prompt piece by piece, in prompt order, with the dropped pieces where they would have stood."""
    def part(kind, text, dropped=False, index=None):
        return PromptPart(kind, text, count(text), dropped, index)

    parts = [part("memory", steered.memory + "\n\n")] if steered.memory else []
    kept = {i for i, _ in used}
    for n, (index, text) in enumerate(used):
        parts.append(part("world_info", text + ("\n\n" if n == len(used) - 1 else "\n"), index=index))
    parts += [part("world_info", text, True, index) for index, text in steered.world_info if index not in kept]
    parts.append(part("world", world))
    parts += [part("turn", f"\n> {a}\n{r}", True, i) for i, (a, r) in enumerate(history[:first_kept])]
    turn_parts = [part("turn", f"\n> {a}\n{r}", index=first_kept + i) for i, (a, r) in enumerate(turns)]
    if steered.authors_note:
        turn_parts.insert(max(0, len(turn_parts) - steered.authors_note_depth),
                          part("authors_note", "\n" + steered.authors_note))
    return parts + turn_parts + ([part("action", action_line(action))] if action is not None else [])
