// The play page: plain JS, no build step. Story text is only ever inserted with textContent (never innerHTML),
// so whatever a player or the model writes is shown as text.
"use strict";

const $ = (id) => document.getElementById(id);
const STORAGE_KEY = "gamio.game";
let game = null; // {id, token}
let busy = false;

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function setBusy(value) {
  busy = value;
  for (const id of ["send", "undo", "retry", "action"]) $(id).disabled = value;
}

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (game) headers["Authorization"] = "Bearer " + game.token;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = {};
  try { data = await response.json(); } catch (e) { data = {}; }
  if (!response.ok) {
    const error = new Error(describeError(response, data));
    error.status = response.status;
    throw error;
  }
  return data;
}

function describeError(response, data) {
  const detail = data && data.error ? data.error : response.statusText;
  switch (response.status) {
    case 429: return "Очередь переполнена, попробуйте через " + (response.headers.get("Retry-After") || "несколько") + " с. (" + detail + ")";
    case 409: return "Сначала дождитесь текущего хода. (" + detail + ")";
    case 413: return "Слишком длинный текст. (" + detail + ")";
    case 401: case 403: return "Нет доступа к этой игре. (" + detail + ")";
    case 404: return "Игра не найдена. (" + detail + ")";
    case 503: return "Сервер сейчас не может писать историю. (" + detail + ")";
    default: return "Ошибка: " + detail;
  }
}

function renderStory(story) {
  const box = $("story");
  box.replaceChildren();
  for (const entry of story) {
    const p = document.createElement("p");
    p.className = entry.kind;
    if (entry.kind === "result" && !entry.text) {
      p.classList.add("empty");
      p.textContent = "(модель промолчала — попробуйте «Переписать ответ»)";
    } else {
      p.textContent = entry.text;
    }
    box.appendChild(p);
  }
  window.scrollTo(0, document.body.scrollHeight);
}

function showGame() {
  $("setup").hidden = true;
  $("game").hidden = false;
  $("action").focus();
}

async function loadGame() {
  const view = await api("GET", "/api/games/" + game.id);
  renderStory(view.story);
  return view;
}

async function waitForJob(jobId) {
  setBusy(true);
  try {
    for (;;) {
      const asked = Date.now();
      const job = await api("GET", "/api/jobs/" + jobId + "?wait=20");
      if ((job.status === "queued" || job.status === "running") && Date.now() - asked < 500) {
        await new Promise((resolve) => setTimeout(resolve, 1000)); // the server's long-poll cap: do not spin
      }
      if (job.delayed) {
        setStatus("Сервер временно не может сохранить ход; ход ждёт в очереди и будет записан позже.");
      } else if (job.status === "queued") {
        setStatus(job.position ? "В очереди: место " + job.position : "В очереди…");
      } else if (job.status === "running") {
        setStatus("Модель пишет продолжение…");
      } else if (job.status === "done") {
        await loadGame();
        setStatus("");
        return;
      } else {
        await loadGame();
        setStatus("Ход не удался: " + (job.error || "неизвестная ошибка"), true);
        return;
      }
    }
  } finally {
    setBusy(false);
    $("action").focus();
  }
}

async function submitJob(path, body) {
  if (busy) return;
  try {
    const accepted = await api("POST", path, body);
    setStatus("В очереди: место " + accepted.position);
    await waitForJob(accepted.job_id);
  } catch (error) {
    setStatus(error.message, true);
  }
}

$("start").addEventListener("click", async () => {
  try {
    game = null;
    const created = await api("POST", "/api/games", { world: $("world").value });
    game = { id: created.game_id, token: created.token };
    localStorage.setItem(STORAGE_KEY, JSON.stringify(game));
    renderStory(created.story);
    setStatus("");
    showGame();
  } catch (error) {
    setStatus(error.message, true);
  }
});

$("turn-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const action = $("action").value;
  if (!action.trim()) { setStatus("Напишите, что делает ваш герой.", true); return; }
  await submitJob("/api/games/" + game.id + "/turns", { action });
  if (!$("status").classList.contains("error")) $("action").value = "";
});

$("undo").addEventListener("click", async () => {
  if (busy) return;
  try {
    const view = await api("POST", "/api/games/" + game.id + "/undo");
    renderStory(view.story);
    setStatus("Последний ход отменён.");
  } catch (error) {
    setStatus(error.message, true);
  }
});

$("retry").addEventListener("click", () => submitJob("/api/games/" + game.id + "/retry"));

$("new-game").addEventListener("click", () => {
  localStorage.removeItem(STORAGE_KEY);
  game = null;
  $("story").replaceChildren();
  setStatus("");
  $("game").hidden = true;
  $("setup").hidden = false;
});

// Resume a game kept in this browser (and a turn still being generated).
(async () => {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (!saved) return;
  try {
    game = JSON.parse(saved);
    const view = await loadGame();
    showGame();
    if (view.pending_job) await waitForJob(view.pending_job);
  } catch (error) {
    localStorage.removeItem(STORAGE_KEY);
    game = null;
  }
})();
