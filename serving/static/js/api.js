// The game API: JSON in and out, the game's token as a Bearer header, refusals as Russian messages (the server's
// `message`; network failures and timeouts are named here), never the English `error` meant for API users.
import { el } from "./dom.js";
import { state } from "./state.js";

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

/** The path of the open game's route: gamePath("/undo") -> /api/games/<id>/undo. */
export const gamePath = (suffix = "") => "/api/games/" + encodeURIComponent(state.game.id) + suffix;

function headers(token, json) {
  const out = json ? { "Content-Type": "application/json" } : {};
  if (token) out["Authorization"] = "Bearer " + token;
  return out;
}

const TIMEOUT_MS = 30_000; // a request the server has not answered by then is given up (long-polls: + their wait)

async function send(method, path, body, token) {
  const wait = Number(new URL(path, location.href).searchParams.get("wait")) || 0;
  const timeoutMs = TIMEOUT_MS + wait * 1000;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let response;
  try {
    response = await fetch(path, {
      method, headers: headers(token, body !== undefined), signal: controller.signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    if (error && error.name === "AbortError") {
      throw new ApiError("Сервер не ответил за " + Math.round(timeoutMs / 1000) + " с. Проверьте связь и "
        + "попробуйте ещё раз.", 0);
    }
    throw new ApiError("Нет связи с сервером. Проверьте подключение к интернету и попробуйте ещё раз.", 0);
  } finally {
    clearTimeout(timer);
  }
  if (!response.ok) {
    let data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    throw new ApiError(describeError(response, data), response.status);
  }
  return response;
}

/** A JSON call; `token` defaults to the open game's. */
export async function api(method, path, body, token = state.game && state.game.token) {
  const response = await send(method, path, body, token);
  try { return await response.json(); } catch (e) { return {}; }
}

/** Fetch a file the token protects (an export) and offer it as a download. */
export async function download(path, filename) {
  const blob = await (await send("GET", path, undefined, state.game.token)).blob();
  const url = URL.createObjectURL(blob);
  const link = el("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

/** The player's text of a refusal: the server's Russian `message`, or one made from the status. */
export function describeError(response, data) {
  const wait = response.headers.get("Retry-After");
  if (data && data.message) return data.message;
  switch (response.status) {
    case 400: return "Сервер не принял запрос.";
    case 401: case 403: return "Нет доступа к этой игре.";
    case 404: return "Не найдено.";
    case 409: return "Сначала дождитесь текущего хода.";
    case 413: return "Слишком длинный текст.";
    case 429: return "Слишком много запросов. Попробуйте снова через " + (wait || "несколько") + " с.";
    case 502: case 503: case 504: return "Сервер сейчас не может писать историю. Попробуйте позже.";
    default: return "Ошибка сервера (" + response.status + "). Попробуйте позже.";
  }
}
