// The read-only page of a shared story (/s/<share_id>): the story as text, nothing to change.
"use strict";

(async () => {
  const shareId = decodeURIComponent(location.pathname.split("/").pop());
  const box = document.getElementById("story");
  try {
    const response = await fetch("/api/shared/" + encodeURIComponent(shareId));
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    for (const entry of data.story) {
      const p = document.createElement("p");
      p.className = entry.kind;
      p.textContent = entry.text;
      box.appendChild(p);
    }
  } catch (error) {
    document.getElementById("status").textContent = "История недоступна: " + error.message;
  }
})();
