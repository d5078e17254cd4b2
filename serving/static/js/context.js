// "Что видит модель": the prompt the next turn would send, with the text of the action field as the action, part
// by part in prompt order: dropped parts greyed out, world-info entries marked with why they are there.
import { $, el, plural, setStatus } from "./dom.js";
import { api, gamePath } from "./api.js";
import { markTriggered } from "./steering.js";
import { state } from "./state.js";

const TOKENS = ["токен", "токена", "токенов"];
const KINDS = { memory: "Память", world_info: "Мир-инфо", world: "Мир", turn: "Ход", authors_note: "Заметка автора",
  action: "Действие" };

export function initContext() {
  $("context-refresh").addEventListener("click", showContext);
  $("context-panel").addEventListener("toggle", () => { if ($("context-panel").open) showContext(); });
}

export function clearContext() {
  $("context-parts").replaceChildren();
  $("context-prompt").replaceChildren();
  setStatus("", false, "context-summary");
}

export async function showContext() {
  const action = $("action").value;
  setStatus("Собираю запрос…", false, "context-summary");
  try {
    const context = await api("GET", gamePath("/context?action=" + encodeURIComponent(action) + "&mode="
      + encodeURIComponent($("mode").value)));
    renderContext(context);
  } catch (error) {
    setStatus(error.message, true, "context-summary");
  }
}

function label(part, triggered) {
  if (part.kind === "turn") return KINDS.turn + " " + (part.index + 1);
  if (part.kind !== "world_info") return KINDS[part.kind] || part.kind;
  const entry = "Мир-инфо: запись " + (part.index + 1);
  const saved = state.view && state.view.world_info[part.index];
  if (!triggered.includes(part.index)) return entry;
  return entry + (saved && saved.constant ? " (постоянная)" : " (сработала)");
}

function renderContext(context) {
  const triggered = context.world_info_triggered || [];
  $("context-parts").replaceChildren(...context.parts.map((part) => el("li", {
    class: ["part", "part-" + part.kind, part.dropped ? "dropped" : "",
      part.kind === "world_info" && triggered.includes(part.index) ? "triggered" : ""].join(" ").trim(),
  }, [
    el("div", { class: "part-head" }, [
      el("span", { class: "part-label", text: label(part, triggered) }),
      el("span", { class: "part-tokens", text: part.dropped ? "не поместилось" : plural(part.tokens, TOKENS) }),
    ]),
    el("div", { class: "part-text", text: part.text.replace(/^\n+|\n+$/g, "") || "(пусто)" }),
  ])));
  const reserved = context.context_length ? "; ещё " + (context.context_length - context.context_limit)
    + " оставлено для ответа" : "";
  const dropped = context.turns_dropped ? " Не поместилось ходов: " + context.turns_dropped + "." : "";
  setStatus("Запрос: " + plural(context.tokens_total, TOKENS) + " из " + context.context_limit + " доступных"
    + reserved + "." + dropped, false, "context-summary");
  markTriggered(triggered);
  const whole = [el("summary", { text: "Весь запрос целиком" }), el("pre", { text: context.prompt })];
  if (context.prompt_en) whole.push(el("p", { text: "Модель получает его по-английски:" }),
    el("pre", { text: context.prompt_en }));
  $("context-prompt").replaceChildren(el("details", {}, whole));
}
