// Small DOM helpers. Text from players and the model only ever goes in through textContent (never innerHTML).

export const $ = (id) => document.getElementById(id);

const PROPERTIES = new Set(["value", "checked", "disabled", "hidden", "type", "title"]);

/** el("button", {class: "x", text: "Да", on: {click}}, [children]): a new element. */
export function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "on") for (const [kind, handler] of Object.entries(value)) node.addEventListener(kind, handler);
    else if (key === "data") Object.assign(node.dataset, value);
    else if (PROPERTIES.has(key)) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

/** A status line (role=status): `isError` paints it red. */
export function setStatus(text, isError = false, target = "status") {
  const node = typeof target === "string" ? $(target) : target;
  node.textContent = text;
  node.classList.toggle("error", isError);
}

/** The Russian plural: plural(5, ["токен", "токена", "токенов"]) -> "5 токенов". */
export function plural(n, [one, few, many]) {
  const tens = n % 100, units = n % 10;
  const word = tens >= 11 && tens <= 14 ? many : units === 1 ? one : units >= 2 && units <= 4 ? few : many;
  return n + " " + word;
}

/** A story paragraph (world, action or result) as the play page and the shared page show it. */
export function storyParagraph(kind, text, whenEmpty = "(модель промолчала)") {
  const p = el("p", { class: kind, text });
  if (kind === "result" && !text) {
    p.classList.add("empty");
    p.textContent = whenEmpty;
  }
  return p;
}
