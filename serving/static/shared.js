// The read-only page of a shared story (/s/<share_id>): the story as text, nothing to change.
import { $, storyParagraph } from "./js/dom.js";
import { initTheme } from "./js/theme.js";

initTheme(null);

(async () => {
  const shareId = decodeURIComponent(location.pathname.split("/").pop());
  try {
    const response = await fetch("/api/shared/" + encodeURIComponent(shareId));
    const data = await response.json();
    if (!response.ok) throw new Error(data.message || "ссылка не найдена");
    $("story").replaceChildren(...data.story.map((entry) => storyParagraph(entry.kind, entry.text)));
    if (data.model) $("status").textContent = "Историю писала модель " + data.model + ".";
  } catch (error) {
    $("status").textContent = "История недоступна: " + error.message;
    $("status").classList.add("error");
  }
})();
