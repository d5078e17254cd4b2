// The steering panel: memory, the author's note and its depth, the preset, banned words and world-info entries.
// Save sends them in one PATCH; a refusal (400/413) is shown and the player's input stays as typed. The panel is
// filled when a game opens and after a save, never when the story reloads, so unsaved input survives turns.
import { $, el, setStatus } from "./dom.js";
import { api, gamePath } from "./api.js";
import { state } from "./state.js";

const LIMITS = { memory: 2000, "authors-note": 500 };
const splitList = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

export function initSteering() {
  for (const id of Object.keys(LIMITS)) $(id).addEventListener("input", () => updateCounter(id));
  $("preset").addEventListener("change", describePreset);
  $("wi-add").addEventListener("click", () => {
    const entry = worldInfoEntry({ keys: [], text: "", constant: false });
    $("world-info").append(entry);
    renumber();
    entry.querySelector(".wi-keys").focus();
  });
  $("steering-save").addEventListener("click", save);
}

/** The presets (GET /api/presets: Russian names and descriptions, what each can do), into the select. */
export async function loadPresets() {
  try {
    state.presets = await api("GET", "/api/presets");
    $("preset").replaceChildren(...Object.values(state.presets).map((p) =>
      el("option", { value: p.id, text: p.name, title: p.description })));
    if (state.view) $("preset").value = state.view.preset;
    describePreset();
  } catch (error) {
    setStatus("Список пресетов недоступен: " + error.message, true, "steering-status");
  }
}

/** A preset's description under the select, and what it means for streaming and retries. */
export function describePreset() {
  const saved = state.view && state.presets[state.view.preset];
  $("greedy-hint").hidden = !(saved && saved.deterministic);
  const preset = state.presets[$("preset").value];
  if (!preset) { setStatus("", false, "preset-hint"); return; }
  const notes = [preset.description];
  if (!preset.streams) notes.push("Ответ появится целиком, когда будет готов.");
  if (!preset.token_probs) notes.push("Вероятности токенов для него не показываются.");
  setStatus(notes.join(" "), false, "preset-hint");
}

function updateCounter(id) {
  const length = $(id).value.length;
  setStatus(length + " / " + LIMITS[id], length > LIMITS[id], id + "-count");
}

/** Show the game's steering in the panel (replaces whatever was typed). */
export function fillSteering(view) {
  $("memory").value = view.memory;
  $("authors-note").value = view.authors_note;
  $("note-depth").value = String(view.authors_note_depth);
  if (![...$("preset").options].some((o) => o.value === view.preset)) {
    $("preset").append(el("option", { value: view.preset, text: view.preset }));
  }
  $("preset").value = view.preset;
  describePreset();
  $("banned-words").value = view.banned_words.join(", ");
  $("stop-strings").value = view.stop.join(", ");
  $("world-info").replaceChildren(...view.world_info.map(worldInfoEntry));
  renumber();
  for (const id of Object.keys(LIMITS)) updateCounter(id);
  setStatus("", false, "steering-status");
}

function worldInfoEntry(entry) {
  const remove = el("button", { type: "button", class: "wi-remove", text: "Удалить запись" });
  const box = el("fieldset", { class: "wi-entry" }, [
    el("legend", {}, [el("span", { class: "wi-title" }), el("span", { class: "wi-badge", hidden: true })]),
    el("label", {}, ["Ключи (через запятую)",
      el("input", { type: "text", class: "wi-keys", value: entry.keys.join(", "), placeholder: "маяк, смотритель" })]),
    el("label", {}, ["Текст", el("textarea", { class: "wi-text", rows: "3", value: entry.text })]),
    el("label", { class: "check" }, [el("input", { type: "checkbox", class: "wi-constant", checked: entry.constant }),
      " Постоянная (всегда в запросе)"]),
    remove,
  ]);
  remove.addEventListener("click", () => { box.remove(); renumber(); });
  return box;
}

function renumber() {
  $("world-info").querySelectorAll(".wi-entry").forEach((box, i) => {
    box.querySelector(".wi-title").textContent = "Запись " + (i + 1);
    box.querySelector(".wi-badge").hidden = true;
  });
}

/** Mark the entries the context view says are in the prompt (constant ones and those whose keys fired). */
export function markTriggered(indexes) {
  $("world-info").querySelectorAll(".wi-entry").forEach((box, i) => {
    const badge = box.querySelector(".wi-badge");
    const on = indexes.includes(i);
    badge.hidden = !on;
    badge.textContent = on ? (box.querySelector(".wi-constant").checked ? " — постоянная" : " — сработала") : "";
    box.classList.toggle("triggered", on);
  });
}

function collect() {
  const depth = $("note-depth").value.trim();
  return {
    memory: $("memory").value,
    authors_note: $("authors-note").value,
    authors_note_depth: /^\d+$/.test(depth) ? Number(depth) : depth,
    preset: $("preset").value || undefined, // no list of presets: keep the game's
    banned_words: splitList($("banned-words").value),
    stop: splitList($("stop-strings").value),
    world_info: [...$("world-info").querySelectorAll(".wi-entry")].map((box) => ({
      keys: splitList(box.querySelector(".wi-keys").value),
      text: box.querySelector(".wi-text").value,
      constant: box.querySelector(".wi-constant").checked,
    })),
  };
}

async function save() {
  const button = $("steering-save");
  button.disabled = true;
  setStatus("Сохраняю…", false, "steering-status");
  try {
    const view = await api("PATCH", gamePath(), collect());
    state.view = view;
    fillSteering(view);
    setStatus("Сохранено: следующий ход учтёт эти настройки.", false, "steering-status");
  } catch (error) {
    setStatus(error.message, true, "steering-status"); // the panel keeps what the player typed
  } finally {
    button.disabled = false;
  }
}
