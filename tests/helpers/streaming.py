"""A scripted reply for streaming tests: what a model that writes whole sentences would produce, at a pace."""
from __future__ import annotations

import time
from contextlib import contextmanager


@contextmanager
def scripted(pipeline, text: str, delay_s: float = 0.03):
    """The pipeline's engine writes `text`, token by token with a pause, through the real decoding and cleanup:
    a reply with the sentences the tiny models seldom write, at a pace a client can watch."""
    from adventure.engines.base import finish_row

    engine = pipeline.engine
    ids = engine.tokenizer(text, add_special_tokens=False)["input_ids"]

    def generate(prompts, settings, *, seed=None, on_progress=None):
        for n in range(1, len(ids) + 1):
            for row in range(len(prompts)):
                if on_progress:
                    on_progress(row, ids[:n])
            time.sleep(delay_s)
        return [finish_row(engine.tokenizer, ids) for _ in prompts]

    engine.generate = generate
    try:
        yield
    finally:
        del engine.generate
