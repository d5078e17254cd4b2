"""The generation presets as a player chooses them: a Russian name, a one-line description, and what the preset
can do on this server's engine (GET /api/presets).

    streams       the reply grows token by token while it is written; false: it comes whole when it is done
                  (beam search on engine=ct2: CTranslate2 has no per-step callback for beams)
    token_probs   a finished turn can show each token's probability and the alternatives the model weighed
                  (GET /api/games/<id>/turns/<i>/tokens); not for beam search, whose chosen hypothesis is not one
                  step-by-step choice
    deterministic the same prompt always gives the same reply (greedy): retries and variants repeat it

A preset the table below does not know (an operator's own YAML) gets a description made from its settings.
"""
from __future__ import annotations

from adventure.generation import GenerationSettings

NAMES = {
    "gamio": ("Как в оригинале (лучи)", "Настройки исходного gamio: сэмплирование двумя лучами, сильный штраф за "
                                         "повторы."),
    "gamio_sample": ("Живой рассказ", "Настройки оригинала без лучей: разнообразный текст, появляется слово за "
                                      "словом."),
    "greedy": ("Предсказуемо", "Всегда самое вероятное слово: один и тот же ответ на один и тот же ход."),
}
# Engines that report the probabilities of each generated token (adventure/token_probs.py).
TOKEN_PROB_ENGINES = ("hf", "ct2")


def streams(settings: GenerationSettings, engine: str) -> bool:
    return not (settings.num_beams > 1 and engine == "ct2")


def token_probs(settings: GenerationSettings, engine: str) -> bool:
    return settings.num_beams == 1 and engine in TOKEN_PROB_ENGINES


def describe(settings: GenerationSettings) -> str:
    """A one-line Russian description of settings no table entry knows."""
    if not settings.do_sample:
        how = "поиск лучами" if settings.num_beams > 1 else "всегда самое вероятное слово"
    else:
        how = f"сэмплирование (температура {settings.temperature:g})" + (
            f", лучей: {settings.num_beams}" if settings.num_beams > 1 else "")
    return f"Свой пресет: {how}, до {settings.max_new_tokens} токенов."


def preset_view(settings: GenerationSettings, engine: str, default: str) -> dict:
    name, description = NAMES.get(settings.name, (settings.name, describe(settings)))
    return {"id": settings.name, "name": name, "description": description, "default": settings.name == default,
            "streams": streams(settings, engine), "token_probs": token_probs(settings, engine),
            "deterministic": not settings.do_sample, "max_new_tokens": settings.max_new_tokens}


def presets_view(presets: dict[str, GenerationSettings], engine: str, default: str) -> dict[str, dict]:
    """{preset id: its view}, in name order (JSON keys: a client that wants only the ids reads the keys)."""
    return {name: preset_view(presets[name], engine, default) for name in sorted(presets)}
