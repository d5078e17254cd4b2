"""The CTranslate2 backend of `Translator` (engine="ct2"): the Marian model converted once with CTranslate2's own
converter and cached by content (adventure/engines/ct2_models.py), translated with `translate_batch`.

It receives the same segments as the hf backend (the Translator plans, batches and caches them) and applies the
same per-row output cap, so a text translates the same alone or in any batch. CTranslate2 works on token strings:
the tokenizer's pieces go in and come out, so its own vocabulary numbering (the converter drops Marian's <pad>)
never matters here.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from adventure.engines.ct2_models import converted_model, ct2_device, local_folder, resolve_compute_type

log = logging.getLogger(__name__)


class CT2Marian:
    def __init__(self, translator, config, generation_config, compute_type: str, device: str):
        self.translator, self.config, self.generation_config = translator, config, generation_config
        self.compute_type = compute_type
        self.description = f"ct2 {compute_type} on {device}"

    @classmethod
    def load(cls, ref: str | Path, is_local: bool, artifacts: str | Path | None, *, device: str, compute_type: str,
             threads: int | None, hint: str):
        """(tokenizer, CT2Marian) for a translation model folder or hub id (from its cached snapshot)."""
        import ctranslate2
        from transformers import AutoConfig, AutoTokenizer, GenerationConfig

        kind, index = ct2_device(device, "translation")
        compute = resolve_compute_type(compute_type, kind, "translation")
        folder = local_folder(str(ref), is_local, hint)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model_dir = converted_model(folder, compute, Path(artifacts) if artifacts else None)
        translator = ctranslate2.Translator(str(model_dir), device=kind, device_index=index, compute_type=compute,
                                            intra_threads=int(threads or 0))
        config = AutoConfig.from_pretrained(folder)
        try:  # opus-mt's decoding defaults (num_beams, max_length) live here
            generation = GenerationConfig.from_pretrained(folder)
        except OSError:
            generation = GenerationConfig.from_model_config(config)
        log.info("ct2 translator: %s (%s on %s)", folder, compute, device)
        return tokenizer, cls(translator, config, generation, compute, kind)

    def translate(self, tokenizer, batch: list[str], num_beams: int, max_input_tokens: int,
                  output_cap: Callable[[int], int]) -> list[str]:
        sources = tokenizer(batch, truncation=True, max_length=max_input_tokens).input_ids
        caps = [output_cap(len(ids)) for ids in sources]
        results = self.translator.translate_batch([tokenizer.convert_ids_to_tokens(ids) for ids in sources],
                                                  beam_size=num_beams, max_decoding_length=max(caps),
                                                  max_input_length=0)
        rows = [tokenizer.convert_tokens_to_ids(r.hypotheses[0])[:cap] for r, cap in zip(results, caps)]
        return [text.strip() for text in tokenizer.batch_decode(rows, skip_special_tokens=True)]
