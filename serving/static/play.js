// The play page (an ES module, no build step): starting and resuming games, turns and their streams, and the
// wiring of the panels in js/. Story text is only ever inserted with textContent (never innerHTML), so whatever a
// player or the model writes is shown as text.
import { $, el, setStatus } from "./js/dom.js";
import { api, gamePath } from "./js/api.js";
import { refreshControls, setBusy, setOff, state } from "./js/state.js";
import { followJob } from "./js/jobs.js";
import { pendingReply, renderStory } from "./js/story.js";
import { describePreset, fillSteering, initSteering, loadPresets } from "./js/steering.js";
import { clearContext, initContext } from "./js/context.js";
import { currentGame, forget, leaveCurrent, remember, renderGamesList } from "./js/games.js";
import { importGame, initShare, showShare } from "./js/share.js";
import { initTheme } from "./js/theme.js";
import { toggleTokens } from "./js/tokens.js";

const storyHandlers = { choose, edit };

/** Show a game view: the story, and which controls make sense now. */
function show(view) {
  state.view = view;
  const preset = state.presets[view.preset];
  renderStory(view, { ...storyHandlers, ...(preset && preset.token_probs && { tokens: toggleTokens }) });
  const empty = view.turns.length === 0;
  setOff($("undo"), empty);
  setOff($("retry"), empty);
  setOff($("redo"), !view.can_redo);
  $("length").value = view.max_new_tokens ? String(view.max_new_tokens) : "";
  describePreset();
}

async function loadGame() {
  const view = await api("GET", gamePath());
  show(view);
  return view;
}

function showScreen(playing) {
  $("setup").hidden = playing;
  $("game").hidden = !playing;
  if (!playing) renderGamesList(openGame);
}

/** Open a game kept in this browser (or just created), and follow its turn if one is being generated. */
async function openGame(game) {
  state.game = game;
  let view;
  try {
    view = await loadGame();
  } catch (error) {
    state.game = null;
    if (error.status === 404 || error.status === 401 || error.status === 403) forget(game.id);
    showScreen(false);
    setStatus("Игру не открыть: " + error.message, true, "setup-status");
    return;
  }
  remember(game, view.world);
  fillSteering(view);
  showShare(view);
  clearContext();
  setStatus("");
  setStatus("", false, "setup-status");
  showScreen(true);
  $("action").focus();
  if (view.pending_job) { // a turn still being written: a retry grows in place of the last reply
    const job = await api("GET", "/api/jobs/" + encodeURIComponent(view.pending_job)).catch(() => ({}));
    await runJob(view.pending_job, null, job.kind === "retry");
  }
}

/** Whether the open game's preset shows its reply while it is written (GET /api/presets `streams`). */
function streams() {
  const preset = state.view && state.presets[state.view.preset];
  return !preset || preset.streams;
}

/** Follow a job until its turn is written; `pending` is what the page shows while it grows (null: made when the
 * first text arrives, for a job found pending when the game opened). */
async function runJob(jobId, pending, retry = false) {
  setBusy(true);
  state.jobId = jobId;
  $("stop").hidden = false;
  const game = state.game;
  let reply = pending;
  const growing = () => reply || (reply = pendingReply(null, retry));
  try {
    const job = await followJob(jobId, {
      onQueued: (position) => setStatus(position ? "В очереди: место " + position : "В очереди…"),
      onRunning: () => setStatus("Модель пишет продолжение…" + (streams() ? "" : " Этот пресет покажет ответ "
        + "целиком, когда он будет готов.")),
      onText: (text) => { growing().textContent = text; },
      onDelayed: () => setStatus("Сервер временно не может сохранить ход; ход ждёт в очереди и будет записан позже."),
    });
    if (state.game !== game) return; // the player went to another game meanwhile
    await loadGame();
    if (job.status === "done") setStatus("");
    else if (job.status === "cancelled") setStatus("Ход остановлен: ничего не записано.");
    else setStatus(job.message || "Ход не удался. Попробуйте ещё раз.", true);
    remember(state.game, state.view.world);
  } catch (error) {
    setStatus(error.message, true);
  } finally {
    state.jobId = null;
    $("stop").hidden = true;
    setBusy(false);
    $("action").focus();
  }
}

/** A turn or a retry: queue it, then show the reply as it is written. Returns whether it was accepted. */
async function submitJob(path, body, action, retry, mode = "do") {
  if (state.busy) return false;
  setBusy(true); // no second submit while this one is on its way
  let accepted;
  try {
    accepted = await api("POST", path, body);
  } catch (error) {
    setBusy(false);
    setStatus(error.message, true);
    return false;
  }
  setStatus("В очереди: место " + accepted.position);
  await runJob(accepted.job_id, pendingReply(action, retry, mode));
  return true;
}

/** A story change answered with the game (undo, redo, choose, edit); errors shown, and passed on. */
async function change(method, path, body, done) {
  if (state.busy) return Promise.reject(new Error("busy"));
  try {
    const view = await api(method, path, body);
    show(view);
    setStatus(typeof done === "function" ? done(view) : done);
    return view;
  } catch (error) {
    setStatus(error.message, true);
    throw error;
  }
}

function choose(index, variant) {
  return change("POST", gamePath("/turns/" + index + "/choose"), { variant }, (view) =>
    view.vote ? "Ваш выбор записан: ответ " + (view.vote === "a" ? "А" : "Б") + " лучше." : "").catch(() => {});
}

function edit(index, fields) {
  return change("PUT", gamePath("/turns/" + index), fields, "Ход " + (index + 1) + " исправлен.");
}

/** The ready-made openings (GET /api/scenarios): choosing one shows its world, which may still be edited. */
async function loadScenarios() {
  try {
    state.scenarios = (await api("GET", "/api/scenarios", undefined, null)).scenarios;
  } catch (error) {
    return;
  }
  $("scenario").replaceChildren(el("option", { value: "", text: "— своё начало —" }),
    ...state.scenarios.map((s) => el("option", { value: s.id, text: s.title })));
}

$("scenario").addEventListener("change", () => {
  const chosen = state.scenarios.find((s) => s.id === $("scenario").value);
  $("world").value = chosen ? chosen.world : "";
});

$("start").addEventListener("click", async () => {
  const chosen = state.scenarios.find((s) => s.id === $("scenario").value);
  const start = chosen && $("world").value === chosen.world ? { scenario: chosen.id } : { world: $("world").value };
  try {
    const created = await api("POST", "/api/games", { ...start, arena: $("arena").checked }, null);
    await openGame({ id: created.game_id, token: created.token });
  } catch (error) {
    setStatus(error.message, true, "setup-status");
  }
});

$("import-file").addEventListener("change", async () => {
  const file = $("import-file").files[0];
  if (!file) return;
  try {
    const created = await importGame(file);
    await openGame({ id: created.game_id, token: created.token });
  } catch (error) {
    setStatus(error.message, true, "setup-status");
  } finally {
    $("import-file").value = "";
  }
});

/** A turn: the typed action in the chosen mode; an empty line (Enter, or «Продолжить») continues the story. */
async function playTurn(action) {
  const mode = action.trim() ? $("mode").value : "continue";
  const n = Number($("variants").value) || 1;
  const body = { action: mode === "continue" ? "" : action, ...(mode !== "continue" && mode !== "do" && { mode }),
    ...(n > 1 && { n }) };
  const accepted = await submitJob(gamePath("/turns"), body, body.action, false, mode);
  if (accepted && !$("status").classList.contains("error")) $("action").value = "";
}

$("turn-form").addEventListener("submit", (event) => {
  event.preventDefault();
  playTurn($("action").value);
});
$("continue").addEventListener("click", () => playTurn(""));
$("mode").addEventListener("change", () => {
  $("action").placeholder = { do: "Что вы делаете?", say: "Что вы говорите?", story: "Что происходит дальше?" }[
    $("mode").value] + " (пусто — продолжить)";
});
$("stop").addEventListener("click", async () => {
  if (!state.jobId) return;
  try {
    await api("POST", "/api/jobs/" + encodeURIComponent(state.jobId) + "/cancel", undefined, null);
  } catch (error) {
    if (error.status !== 409) setStatus(error.message, true); // 409: it had just finished
  }
});
$("length").addEventListener("change", () => {
  const value = $("length").value;
  change("PATCH", gamePath(), { max_new_tokens: value ? Number(value) : null },
    value ? "Длина следующих ответов: до " + value + " токенов." : "Длина ответа — как в пресете.").catch(() => {});
});

$("retry").addEventListener("click", () => submitJob(gamePath("/retry"), undefined, "", true));
$("undo").addEventListener("click", () => change("POST", gamePath("/undo"), undefined, "Последний ход отменён.")
  .catch(() => {}));
$("redo").addEventListener("click", () => change("POST", gamePath("/redo"), undefined, "Ход возвращён.")
  .catch(() => {}));

$("new-game").addEventListener("click", () => {
  leaveCurrent();
  state.game = state.view = null;
  $("story").replaceChildren();
  $("world").value = "";
  $("scenario").value = "";
  setStatus("");
  showScreen(false);
});

/** What the server says about itself: the demo-model notice, the arena checkbox, the length choices. */
async function loadInfo() {
  try {
    state.info = await api("GET", "/api/info", undefined, null);
  } catch (error) {
    return;
  }
  $("demo-notice").hidden = !state.info.demo_model;
  $("arena-box").hidden = !state.info.arena;
  if (!state.info.arena) $("arena").checked = false;
  const lengths = [30, 55, 100, 200, 300].filter((n) => n <= state.info.max_new_tokens_limit);
  $("length").replaceChildren(el("option", { value: "", text: "как в пресете" }),
    ...lengths.map((n) => el("option", { value: String(n), text: "до " + n + " токенов" })));
  if (state.view) $("length").value = state.view.max_new_tokens ? String(state.view.max_new_tokens) : "";
}

initTheme($("theme-toggle"));
loadScenarios();
initSteering();
loadInfo();
initContext();
initShare();
const presetsLoaded = loadPresets(); // the story's tools depend on the preset (token probabilities)
refreshControls();

// Resume the game played last in this browser (and a turn still being generated), or show the list.
const saved = currentGame();
if (saved) presetsLoaded.then(() => openGame(saved));
else showScreen(false);
