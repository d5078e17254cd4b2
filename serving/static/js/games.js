// The player's games, kept in this browser (localStorage): id, token, a title from the world, when last played.
// Any of them can be resumed or forgotten; the one played last is opened again after a reload.
import { $, el } from "./dom.js";

const LIST_KEY = "gamio.games";
const CURRENT_KEY = "gamio.current";
const OLD_KEY = "gamio.game"; // the page before the list kept one game: {id, token}

function read() {
  try {
    const list = JSON.parse(localStorage.getItem(LIST_KEY) || "[]");
    return Array.isArray(list) ? list.filter((g) => g && g.id && g.token) : [];
  } catch (e) {
    return [];
  }
}

const write = (list) => localStorage.setItem(LIST_KEY, JSON.stringify(list));

function migrate() {
  const old = localStorage.getItem(OLD_KEY);
  if (!old) return;
  localStorage.removeItem(OLD_KEY);
  try {
    const { id, token } = JSON.parse(old);
    if (id && token && !read().some((g) => g.id === id)) {
      write([...read(), { id, token, title: "Игра", played: Date.now() }]);
      localStorage.setItem(CURRENT_KEY, id);
    }
  } catch (e) { /* nothing worth keeping */ }
}

export function titleOf(world) {
  const line = (world || "").trim().replace(/\s+/g, " ");
  return line.length > 60 ? line.slice(0, 59) + "…" : line || "Без названия";
}

/** Remember (or touch) a game: it becomes the current one and moves to the top of the list. */
export function remember(game, world) {
  const list = read().filter((g) => g.id !== game.id);
  list.push({ id: game.id, token: game.token, title: titleOf(world), played: Date.now() });
  write(list);
  localStorage.setItem(CURRENT_KEY, game.id);
}

export function forget(id) {
  write(read().filter((g) => g.id !== id));
  if (localStorage.getItem(CURRENT_KEY) === id) localStorage.removeItem(CURRENT_KEY);
}

export function currentGame() {
  migrate();
  const id = localStorage.getItem(CURRENT_KEY);
  return read().find((g) => g.id === id) || null;
}

export const leaveCurrent = () => localStorage.removeItem(CURRENT_KEY);

/** The list on the start screen; onResume(game) opens one. */
export function renderGamesList(onResume) {
  const games = read().sort((a, b) => b.played - a.played);
  $("games-empty").hidden = games.length > 0;
  $("games-list").replaceChildren(...games.map((game) => {
    const when = new Date(game.played).toLocaleString("ru-RU", { dateStyle: "short", timeStyle: "short" });
    const item = el("li", { class: "saved-game" }, [
      el("span", { class: "game-title", text: game.title }),
      el("span", { class: "game-played hint", text: "играли " + when }),
    ]);
    const resume = el("button", { type: "button", class: "resume", text: "Продолжить",
      on: { click: () => onResume({ id: game.id, token: game.token }) } });
    const drop = el("button", { type: "button", class: "forget", text: "Забыть",
      title: "Убрать игру из этого списка (на сервере она останется до истечения срока)",
      on: { click: () => { forget(game.id); renderGamesList(onResume); } } });
    item.append(el("span", { class: "game-actions" }, [resume, drop]));
    return item;
  }));
}
