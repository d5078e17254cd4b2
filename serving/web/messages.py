"""What a refused game-API request tells a player: a stable machine `code` and a Russian `message`, beside the
English `error` API users already read (kept as it is).

The errors themselves are raised all over the server in English (serving/errors.py); this is the one place that
names them for players. Each rule matches an error's status and English text; what no rule knows gets its
status's generic code and message, so a new error is never shown in English on the page. Codes are a contract:
add new ones, never rename one.
"""
from __future__ import annotations

import re

# Fields as a player knows them (the page's own labels).
FIELDS = {"action": "действие", "world": "начало истории", "memory": "память", "authors_note": "заметка автора",
          "authors_note_depth": "глубина заметки", "world_info": "мир-инфо", "banned_words": "запрещённые слова",
          "stop": "стоп-строки", "result": "ответ", "n": "число вариантов", "variant": "вариант",
          "preset": "пресет", "mode": "режим", "max_new_tokens": "длина ответа", "scenario": "сценарий",
          "arena": "арена", "turns": "ходы", "prompt": "запрос"}

WHAT = {"new games": "новых игр", "turns": "ходов"}

# (status, pattern of the English error, code, Russian message: str.format with the pattern's groups).
RULES: list[tuple[int, str, str, str]] = [
    (400, r"^'action' is empty", "empty_action", "Действие пустое: напишите, что делает ваш герой."),
    (400, r"^missing '(?P<field>[^']+)'", "missing_field", "В запросе не хватает поля «{field}»."),
    (400, r"^'(?P<field>[^']+)' must be a string", "wrong_type", "Поле «{field}» должно быть текстом."),
    (400, r"^'(?P<field>[^']+)' must be true or false", "wrong_type", "Поле «{field}» должно быть «да» или «нет»."),
    (400, r"^'(?P<field>[^']+)' must be (?:an integer )?from (?P<low>-?\d+) to (?P<high>-?\d+)", "out_of_range",
     "Поле «{field}» должно быть целым числом от {low} до {high}."),
    (400, r"^'(?P<field>[^']+)' must be one of", "unknown_value", "Такого значения поля «{field}» нет."),
    (400, r"not valid Unicode", "bad_text", "В тексте есть недопустимые символы."),
    (400, r"JSON body|request body must be a JSON object", "bad_json",
     "Сервер не понял запрос: в нём нет нужных данных или они испорчены."),
    (400, r"needs at least one key", "world_info_needs_key",
     "Записи мир-инфо нужен хотя бы один ключ со словом (или отметка «Постоянная»)."),
    (400, r"^unknown field\(s\)", "unknown_field", "В запросе есть поля, которых игра не знает."),
    (400, r"^send either 'world' or 'scenario'", "world_and_scenario",
     "Выберите готовое начало или напишите своё, но не то и другое сразу."),
    (400, r"^unknown scenario", "unknown_scenario", "Такого сценария нет: выберите другой из списка."),
    (400, r"^wait must be", "bad_wait", "Время ожидания должно быть числом секунд не меньше нуля."),
    (400, r"^not a gamio game export", "bad_import", "Это не файл экспорта gamio."),
    (400, r"^send 'action' and/or 'result'", "nothing_to_edit", "Исправьте действие или ответ."),
    (400, r"^turn \d+ has variants", "unknown_variant", "У этого хода нет такого варианта."),
    (401, r"", "token_required", "Нет доступа к игре: нужен её ключ. Откройте игру из списка игр в этом браузере."),
    (403, r"", "wrong_token", "Неверный ключ этой игры. Откройте её из списка игр в этом браузере."),
    (404, r"^no game", "game_not_found", "Игра не найдена: возможно, она удалена после долгого перерыва."),
    (404, r"^no job", "job_not_found", "Такого хода нет: возможно, сервер его уже забыл."),
    (404, r"^this game has no turn", "turn_not_found", "В этой игре нет такого хода."),
    (404, r"^no shared story", "share_not_found", "Такой ссылки нет: возможно, доступ по ней закрыли."),
    (404, r"^no scenario", "scenario_not_found", "Такого сценария нет."),
    (409, r"still being generated", "turn_pending", "Сначала дождитесь текущего хода: модель ещё пишет."),
    (409, r"no turn to undo", "nothing_to_undo", "Отменять нечего: в игре ещё нет ходов."),
    (409, r"no turn to retry", "nothing_to_retry", "Переписывать нечего: в игре ещё нет ходов."),
    (409, r"no undone turn to redo", "nothing_to_redo", "Возвращать нечего: отменённых ходов нет."),
    (409, r"token probabilities are not available: (?:the preset|.*beam)", "token_probs_unavailable",
     "Для пресета с поиском лучами вероятности токенов не показываются: выберите другой пресет."),
    (409, r"token probabilities are not available", "token_probs_unavailable",
     "Для этого ответа вероятности токенов недоступны."),
    (409, r"already (?:finished|done|failed|cancelled)", "job_finished",
     "Этот ход уже закончен: остановить его нельзя."),
    (413, r"^'(?P<field>[^']+)' is (?P<length>\d+) characters long; the limit is (?P<limit>\d+)", "too_long",
     "Слишком длинный текст в поле «{field}»: {length} символов, можно не больше {limit}."),
    (413, r"^'(?P<field>[^']+)' has (?P<count>\d+) (?:items|entries); the limit is (?P<limit>\d+)", "too_many",
     "Слишком много записей в поле «{field}»: {count}, можно не больше {limit}."),
    (413, r"request body", "body_too_large", "Запрос слишком большой для сервера."),
    (413, r"", "does_not_fit",
     "Слишком длинный текст: он не помещается в контекст модели. Сократите память или заметку автора."),
    (415, r"", "bad_content_type", "Сервер не понял запрос: неверный формат данных."),
    (429, r"^too many (?P<what>.+?) from your address \(the limit is (?P<limit>[\d.]+) a minute\); try again in "
          r"(?P<wait>\d+) s", "rate_limited",
     "Слишком много {what} с вашего адреса: не больше {limit} в минуту. Попробуйте снова через {wait} с."),
    (429, r"^you already have (?P<mine>\d+) turns waiting.*is (?P<limit>\d+)\)", "too_many_pending",
     "У вас уже {mine} ход(а) в очереди или в работе (можно не больше {limit}): дождитесь их. Попробуйте снова "
     "через {wait} с."),
    (429, r"^the queue is full \((?P<size>\d+)", "queue_full",
     "Очередь переполнена: ждут {size} ходов. Попробуйте снова через {wait} с."),
    (503, r"no model worker", "worker_stopped", "Модель сейчас не работает. Попробуйте позже."),
    (503, r"database", "database_unavailable", "База игр сейчас недоступна. Ходы не потеряны, попробуйте позже."),
]

GENERIC = {400: ("bad_request", "Сервер не принял запрос: в нём ошибка."),
           401: ("token_required", "Нет доступа к игре."), 403: ("forbidden", "Нет доступа."),
           404: ("not_found", "Такой страницы нет."), 405: ("method_not_allowed", "Такой запрос здесь не принимают."),
           409: ("conflict", "Сейчас это сделать нельзя: сначала дождитесь текущего хода."),
           413: ("too_large", "Слишком длинный текст."), 415: ("bad_content_type", "Сервер не понял запрос."),
           429: ("rate_limited", "Слишком много запросов. Попробуйте снова через {wait} с."),
           503: ("unavailable", "Сервер сейчас не может писать историю. Попробуйте позже.")}
_COMPILED = [(status, re.compile(pattern), code, message) for status, pattern, code, message in RULES]


def for_player(status: int, error: str, retry_after: str | None = None) -> tuple[str, str]:
    """(code, Russian message) of an error answered with `status` and the English text `error`."""
    wait = retry_after or "несколько"
    for rule_status, pattern, code, message in _COMPILED:
        match = pattern.search(error) if rule_status == status else None
        if match:
            groups = {key: _russian(key, value) for key, value in match.groupdict().items()}
            return code, message.format(**{"wait": wait, **groups})
    code, message = GENERIC.get(status, ("server_error" if status >= 500 else "bad_request",
                                         "Ошибка сервера. Попробуйте позже." if status >= 500 else
                                         "Сервер не принял запрос."))
    return code, message.format(wait=wait)


def _russian(key: str, value: str) -> str:
    if key == "field":
        name = re.sub(r"\[\d+\].*$", "", value)
        return FIELDS.get(name, value)
    if key == "what":
        return WHAT.get(value, value)
    return value


def job_failure(reason: str | None) -> str:
    """The Russian text of a failed job's English reason."""
    reason = reason or ""
    if "game changed" in reason:
        return "Игра изменилась, пока модель писала ответ, поэтому ход не записан. Сделайте ход ещё раз."
    if "cancelled" in reason:
        return "Ход остановлен: ничего не записано."
    if "translation" in reason:
        return "Не удалось перевести текст для модели. Попробуйте ещё раз."
    return "Модель не смогла написать ответ. Попробуйте ещё раз."
