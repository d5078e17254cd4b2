"""Prompt budget: fit world + history + action into the model's context, leaving room for the reply.

The serving stage calls this for every turn and training uses the same renderer, so the model is trained on
exactly the shape of prompt it is later asked to continue. Rules, in order:
  1. keep at most `max_turns` most recent turns (the seed fed the last 10 actions);
  2. drop the oldest turns until the prompt fits `context_length - max_new_tokens` tokens;
  3. if the world alone is still too long, cut it from the left (the recent part of the world matters most);
  4. only if even the bare action does not fit, cut the action from the left too.
Token counts are always measured on the final string, so BPE merges across piece boundaries cannot break the
guarantee (a property test checks it on random histories).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from adventure.errors import GamioError
from adventure.story_format import DEFAULT_HISTORY_TURNS, Turn, render_prompt


@dataclass(frozen=True)
class BudgetedPrompt:
    text: str
    input_ids: list[int]
    turns_used: int
    turns_dropped: int
    world_cut_chars: int
    action_cut_chars: int


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


def build_prompt(tokenizer, world: str, history: Sequence[Turn], action: str, *, context_length: int,
                 max_new_tokens: int, max_turns: int = DEFAULT_HISTORY_TURNS) -> BudgetedPrompt:
    budget = context_length - max_new_tokens
    if budget < 1:
        raise GamioError(f"max_new_tokens={max_new_tokens} leaves no room for a prompt in a context of "
                         f"{context_length} tokens")
    turns = list(history[-max_turns:]) if max_turns > 0 else []
    dropped = len(history) - len(turns)

    def ids_of(w: str, t: Sequence[Turn], a: str) -> list[int]:
        return encode_text(tokenizer, render_prompt(w, t, a))

    ids = ids_of(world, turns, action)
    if len(ids) > budget and turns:
        # The fewest drops that fit: binary search over how many of the oldest turns to drop.
        lo, hi = 1, len(turns)
        while lo < hi:
            mid = (lo + hi) // 2
            if len(ids_of(world, turns[mid:], action)) <= budget:
                hi = mid
            else:
                lo = mid + 1
        dropped += lo
        turns = turns[lo:]
        ids = ids_of(world, turns, action)

    world_cut = action_cut = 0
    if len(ids) > budget:
        world_cut = _longest_suffix_that_fits(world, lambda w: len(ids_of(w, [], action)) <= budget)
        world = world[world_cut:]
        ids = ids_of(world, [], action)
    if len(ids) > budget:
        action_cut = _longest_suffix_that_fits(action, lambda a: len(ids_of("", [], a)) <= budget)
        action = action[action_cut:]
        ids = ids_of(world, [], action)
    if len(ids) > budget:  # the fixed markers alone exceed the budget: a config error, not a user error
        raise GamioError(f"context_length={context_length} is too small for any prompt with "
                         f"max_new_tokens={max_new_tokens}")
    return BudgetedPrompt(text=render_prompt(world, turns, action), input_ids=ids, turns_used=len(turns),
                          turns_dropped=dropped, world_cut_chars=world_cut, action_cut_chars=action_cut)
