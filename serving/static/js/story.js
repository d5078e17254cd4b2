// The story: the world, then every turn with its tools: the action, the chosen reply, swipe arrows between the
// reply's variants (‹ 2/3 ›), a pencil to edit the turn in place, and for a blind arena turn both replies to
// choose from (the models' names are shown once the player has chosen).
import { $, el, storyParagraph } from "./dom.js";
import { refreshControls } from "./state.js";

const LETTERS = ["А", "Б", "В", "Г"];
const SILENT = "(модель промолчала — попробуйте «Переписать ответ» или исправьте ход ✎)";

/** handlers: choose(index, variant), edit(index, {action?, result?}) -> Promise (rejects keep the editor open),
 * tokens(index, block) (absent: the preset has no token probabilities). */
export function renderStory(view, handlers) {
  const box = $("story");
  box.replaceChildren(storyParagraph("world", view.world));
  for (const turn of view.turns) box.append(turnBlock(turn, handlers));
  refreshControls();
}

/** The move's own paragraph: an action (say: the hero's words), narration, or none for a continuation. */
export function moveParagraph(action, mode) {
  if (mode === "continue" || (action !== null && !action.trim())) return [];
  if (mode === "story") return [storyParagraph("narration", action)];
  return [storyParagraph("action", mode === "say" ? "Вы говорите: «" + action + "»" : action)];
}

function turnBlock(turn, handlers) {
  const block = el("div", { class: "turn", data: { index: String(turn.index), mode: turn.mode || "do" } });
  block.append(...moveParagraph(turn.action, turn.mode));
  if (turn.arena && !turn.voted) {
    block.append(arenaChoice(turn, handlers));
  } else {
    block.append(storyParagraph("result", turn.result, SILENT), turnTools(turn, block, handlers));
    if (turn.arena && turn.models) block.append(revealedModels(turn));
  }
  return block;
}

function toolButton(text, label, onClick, off = false) {
  return el("button", {
    type: "button", class: "needs-idle tool", text, title: label, "aria-label": label,
    data: { off: off ? "1" : "" }, on: { click: onClick },
  });
}

function turnTools(turn, block, handlers) {
  const tools = el("div", { class: "turn-tools" });
  const count = turn.variants.length;
  if (count > 1) {
    const at = turn.chosen;
    tools.append(el("span", { class: "swipes" }, [
      toolButton("‹", "Предыдущий вариант ответа", () => handlers.choose(turn.index, at - 1), at <= 0),
      el("span", { class: "swipe-count", text: (at + 1) + "/" + count }),
      toolButton("›", "Следующий вариант ответа", () => handlers.choose(turn.index, at + 1), at >= count - 1),
    ]));
  }
  if (handlers.tokens) {
    tools.append(toolButton("%", "Вероятности токенов ответа " + (turn.index + 1),
      () => handlers.tokens(turn.index, block)));
  }
  tools.append(toolButton("✎", "Исправить ход " + (turn.index + 1), () => openEditor(turn, block, handlers)));
  return tools;
}

function arenaChoice(turn, handlers) {
  const options = turn.variants.slice(0, 2).map((text, variant) => el("div", { class: "arena-option" }, [
    el("p", { class: "arena-label", text: "Ответ " + LETTERS[variant] }),
    storyParagraph("variant", text),
    el("button", {
      type: "button", class: "needs-idle choose", text: "Этот лучше",
      "aria-label": "Выбрать ответ " + LETTERS[variant], on: { click: () => handlers.choose(turn.index, variant) },
    }),
  ]));
  return el("div", { class: "arena-choice" }, [
    el("p", { class: "hint", text: "Арена: два ответа от двух разных моделей. Выберите лучший — тогда станет "
      + "видно, какая модель что написала, а выбранный ответ продолжит историю." }),
    ...options,
  ]);
}

function revealedModels(turn) {
  const names = turn.models.slice(0, 2).map((name, i) => "ответ " + LETTERS[i] + " — " + (name || "?"));
  const chosen = turn.chosen < 2 ? " В истории — ответ " + LETTERS[turn.chosen] + "." : "";
  return el("p", { class: "models hint", text: "Модели арены: " + names.join(", ") + "." + chosen });
}

function openEditor(turn, block, handlers) {
  const action = el("input", { type: "text", class: "edit-action", value: turn.action, maxlength: "500",
    "aria-label": "Действие" });
  const result = el("textarea", { class: "edit-result", rows: "5", value: turn.result, "aria-label": "Ответ" });
  const save = el("button", { type: "button", class: "needs-idle edit-save", text: "Сохранить" });
  const cancel = el("button", { type: "button", class: "edit-cancel", text: "Отмена" });
  const editor = el("div", { class: "turn-editor" }, [
    el("label", { text: "Действие" }), action, el("label", { text: "Ответ" }), result,
    el("div", { class: "controls" }, [save, cancel]),
  ]);
  const shown = [...block.children];
  block.replaceChildren(editor);
  refreshControls();
  action.focus();
  const close = () => { block.replaceChildren(...shown); refreshControls(); };
  cancel.addEventListener("click", close);
  save.addEventListener("click", () => {
    const fields = {};
    if (action.value !== turn.action) fields.action = action.value;
    if (result.value !== turn.result) fields.result = result.value;
    if (!Object.keys(fields).length) { close(); return; }
    handlers.edit(turn.index, fields).catch(() => {}); // a refusal keeps the editor and its text
  });
}

/** The reply being written: a new turn's block (retry: the last turn's reply; a null action: a turn found pending
 * when the game was opened), growing as the stream tells. */
export function pendingReply(action, retry, mode = "do") {
  const reply = el("p", { class: "result streaming" });
  const blocks = $("story").querySelectorAll(".turn");
  if (retry && blocks.length) {
    const last = blocks[blocks.length - 1];
    last.replaceChildren(...last.querySelectorAll(".action, .narration"), reply);
  } else {
    const head = action === null ? [] : moveParagraph(action, mode);
    $("story").append(el("div", { class: "turn pending" }, [...head, reply]));
  }
  reply.scrollIntoView({ block: "nearest" });
  return reply;
}
