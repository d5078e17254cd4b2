// Keeping and showing a story: export (json, txt, md) as a download, import from a json export, and a
// read-only share link that can be revoked.
import { $, setStatus } from "./dom.js";
import { api, download, gamePath } from "./api.js";
import { state } from "./state.js";

const say = (text, isError = false) => setStatus(text, isError, "tools-status");

export function initShare() {
  for (const format of ["json", "txt", "md"]) {
    $("export-" + format).addEventListener("click", async () => {
      try {
        await download(gamePath("/export?format=" + format), "gamio." + format);
        say("");
      } catch (error) {
        say(error.message, true);
      }
    });
  }
  $("share").addEventListener("click", async () => {
    try {
      const shared = await api("POST", gamePath("/share"));
      showShare({ shared: true, share_id: shared.share_id });
      say("Ссылку может открыть любой, у кого она есть; играть по ней нельзя.");
    } catch (error) {
      say(error.message, true);
    }
  });
  $("unshare").addEventListener("click", async () => {
    try {
      await api("DELETE", gamePath("/share"));
      showShare({ shared: false });
      say("Доступ по ссылке закрыт.");
    } catch (error) {
      say(error.message, true);
    }
  });
}

/** The share link of a game view (or nothing when it is not shared). */
export function showShare(view) {
  const url = view.shared && view.share_id ? new URL("/s/" + encodeURIComponent(view.share_id), location.href) : null;
  $("share-box").hidden = !url;
  $("share").hidden = Boolean(url);
  $("share-link").href = url ? url.href : "";
  $("share-link").textContent = url ? url.href : "";
  if (state.view) Object.assign(state.view, { shared: Boolean(url), share_id: url ? view.share_id : undefined });
  say("");
}

/** A new game from a json export chosen by the player: {game_id, token, ...the game}. */
export async function importGame(file) {
  let data;
  try {
    data = JSON.parse(await file.text());
  } catch (e) {
    throw new Error("Файл не похож на экспорт gamio (это не JSON).");
  }
  return api("POST", "/api/games/import", data, null);
}
