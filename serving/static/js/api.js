// The game API: JSON in and out, the game's token as a Bearer header, refusals as Russian messages.
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

async function send(method, path, body, token) {
  const response = await fetch(path, {
    method, headers: headers(token, body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
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

export function describeError(response, data) {
  const detail = data && data.error ? data.error : response.statusText;
  switch (response.status) {
    case 400: return "Сервер не принял запрос: " + detail;
    case 409: return "Сначала дождитесь текущего хода. (" + detail + ")";
    case 413: return "Слишком длинный текст. (" + detail + ")";
    case 415: return "Сервер не понял запрос. (" + detail + ")";
    case 429: return "Очередь переполнена, попробуйте через " + (response.headers.get("Retry-After") || "несколько")
      + " с. (" + detail + ")";
    case 401: case 403: return "Нет доступа к этой игре. (" + detail + ")";
    case 404: return "Не найдено. (" + detail + ")";
    case 503: return "Сервер сейчас не может писать историю. (" + detail + ")";
    default: return "Ошибка: " + detail;
  }
}
