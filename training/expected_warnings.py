"""Two transformers warnings that every GPT-2 run printed and that are expected, not problems: they alarmed
newcomers and buried the lines that matter, so they are answered at the source or logged at debug level.

- "`loss_type=None` was set in the config but it is unrecognized. Using the default loss: `ForCausalLMLoss`":
  GPT2LMHeadModel's class name does not tell transformers which loss it needs. Saying so (ForCausalLM, the very
  loss it falls back to) changes nothing but the warning.
- "There were missing keys in the checkpoint model loaded: ['lm_head.weight']" when the best checkpoint is
  loaded back at the end: GPT-2's output matrix IS its input embedding (tied weights), so checkpoints leave it out
  and loading the embedding restores it. Only that message, and only when every key it names is such a tied
  copy, goes to debug; a truly missing key is still a warning.
"""
from __future__ import annotations

import ast
import logging

MISSING_KEYS = "There were missing keys in the checkpoint model loaded: "


def tied_parameter_names(model) -> set[str]:
    """Names under which a parameter appears that is already registered under another name (tied weights)."""
    seen, tied = set(), set()
    for name, parameter in model.named_parameters(remove_duplicate=False):
        if id(parameter) in seen:
            tied.add(name)
        seen.add(id(parameter))
    return tied


class TiedKeysAreNotMissing(logging.Filter):
    """Moves the Trainer's "missing keys" warning to debug when all the keys it names are tied copies."""

    def __init__(self, tied: set[str]):
        super().__init__()
        self.tied = tied

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.levelno < logging.WARNING or not message.startswith(MISSING_KEYS):
            return True
        try:
            keys = set(ast.literal_eval(message[len(MISSING_KEYS):].rstrip(".")))
        except (ValueError, SyntaxError, TypeError):
            return True
        if not self.tied or not keys <= self.tied:
            return True
        logging.getLogger(__name__).debug("tied weights, restored from the embedding: %s", sorted(keys))
        return False


def quiet_expected_warnings(model) -> None:
    """Call once on the model the Trainer will train (and load its best checkpoint into)."""
    from transformers.loss.loss_utils import LOSS_MAPPING

    if getattr(model, "loss_type", None) not in LOSS_MAPPING and "ForCausalLM" in LOSS_MAPPING:
        model.loss_type = "ForCausalLM"
    trainer_log = logging.getLogger("transformers.trainer")
    for old in [f for f in trainer_log.filters if isinstance(f, TiedKeysAreNotMissing)]:
        trainer_log.removeFilter(old)  # one filter per run, for this run's model (tests train in one process)
    trainer_log.addFilter(TiedKeysAreNotMissing(tied_parameter_names(model)))
