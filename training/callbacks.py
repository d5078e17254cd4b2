"""Trainer callbacks: one readable log line per evaluation, and a per-rank account of the steps it ran."""
from __future__ import annotations

import logging
import math
import time

from transformers import TrainerCallback

log = logging.getLogger(__name__)


class EvalLogCallback(TrainerCallback):
    """`step 100/300 eval_loss 4.1234 (ppl 61.8) | 23,456 train tokens/s` after every evaluation.

    Tokens/s counts the tokens trained on since the previous evaluation over the wall time in between, so it
    measures the training loop itself (the evaluation's own time is left out).
    """

    def __init__(self) -> None:
        self._since = time.perf_counter()
        self._tokens = None
        self._training = False
        self.eval_seconds = 0.0  # evaluations inside trainer.train(), left out of the training tokens/s

    def on_train_begin(self, args, state, control, **kwargs):
        self._since, self._tokens = time.perf_counter(), state.num_input_tokens_seen
        self._training = True

    def on_train_end(self, args, state, control, **kwargs):
        self._training = False

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        metrics = metrics or {}
        now = time.perf_counter()
        trained = state.num_input_tokens_seen - (self._tokens or 0)
        speed = f"{trained / (now - self._since - metrics.get('eval_runtime', 0.0)):,.0f}" if trained else "-"
        loss = metrics.get("eval_loss", float("nan"))
        self._since, self._tokens = time.perf_counter(), state.num_input_tokens_seen
        if self._training:
            self.eval_seconds += metrics.get("eval_runtime", 0.0)
        if not state.is_world_process_zero:
            return
        if self._training:
            log.info("step %d/%d eval_loss %.4f (ppl %.1f) | %s train tokens/s", state.global_step,
                     state.max_steps, loss, math.exp(min(loss, 50.0)), speed)
        else:  # the evaluation after training: the model that gets saved
            log.info("saved model (best checkpoint, step %s): eval_loss %.4f (ppl %.1f)",
                     state.best_global_step or state.global_step, loss, math.exp(min(loss, 50.0)))


class RankReportCallback(TrainerCallback):
    """Every rank logs how many optimizer steps it ran itself: the proof that all DDP workers took part."""

    def __init__(self) -> None:
        self.steps = 0
        self.tokens_at_start = 0  # a resumed run starts from the checkpoint's count

    def on_train_begin(self, args, state, control, **kwargs):
        self.tokens_at_start = state.num_input_tokens_seen

    def on_step_end(self, args, state, control, **kwargs):
        self.steps += 1

    def on_train_end(self, args, state, control, **kwargs):
        log.info("rank %d/%d ran %d optimizer steps (global step %d)", args.process_index, args.world_size,
                 self.steps, state.global_step)
