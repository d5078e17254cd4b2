// The token view of a reply (GET /api/games/<id>/turns/<i>/tokens): each token tinted by the probability the
// model gave it; choosing a token shows the alternatives the model weighed there (as NovelAI and Kobold Lite do).
import { el, setStatus } from "./dom.js";
import { api, gamePath } from "./api.js";

const percent = (p) => (p >= 0.995 ? "99" : p >= 0.01 ? String(Math.round(p * 100)) : "<1") + "%";
const shown = (text) => JSON.stringify(text).slice(1, -1).replace(/\\"/g, "\""); // a line break as \n
const level = (p) => (p >= 0.5 ? "p-high" : p >= 0.15 ? "p-mid" : p >= 0.03 ? "p-low" : "p-rare");

/** Toggle the token view under `block`'s reply (turn `index`). */
export async function toggleTokens(index, block) {
  const open = block.querySelector(".token-view");
  if (open) { open.remove(); return; }
  const view = el("div", { class: "token-view" }, [el("p", { class: "status", text: "Считаю вероятности…" })]);
  block.querySelector(".turn-tools").after(view);
  try {
    const data = await api("GET", gamePath("/turns/" + index + "/tokens"));
    render(view, data.tokens);
  } catch (error) {
    setStatus(error.message, true, view.firstChild);
  }
}

function render(view, tokens) {
  const detail = el("p", { class: "tok-detail hint", text: "Нажмите на токен, чтобы увидеть, из чего выбирала модель." });
  const text = el("p", { class: "tok-text" }, tokens.map((token, i) => el("button", {
    type: "button", class: "tok " + level(token.prob), text: token.text, title: percent(token.prob),
    "aria-label": "Токен " + (i + 1) + ": " + percent(token.prob),
    on: { click: () => explain(detail, token) },
  })));
  view.replaceChildren(el("p", { class: "hint", text: "Вероятность каждого токена по мнению модели: светлые "
    + "она выбрала уверенно, красные — маловероятные." }), text, detail);
}

function explain(detail, token) {
  detail.replaceChildren(
    el("strong", { text: "«" + shown(token.text) + "» — " + percent(token.prob) }),
    el("span", { text: ". Варианты модели: " }),
    ...token.top.flatMap((alt, i) => [el("span", {
      class: alt.text === token.text ? "tok-chosen" : "", text: "«" + shown(alt.text) + "» " + percent(alt.prob),
    }), el("span", { text: i < token.top.length - 1 ? ", " : "." })]),
  );
}
