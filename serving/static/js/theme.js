// The colour theme: the system's (prefers-color-scheme) until the player picks one with the toggle; the choice is
// kept in localStorage and applied as <html data-theme="light|dark"> (play.css holds both palettes).
const KEY = "gamio.theme";
const dark = () => document.documentElement.dataset.theme === "dark"
  || (!document.documentElement.dataset.theme && matchMedia("(prefers-color-scheme: dark)").matches);

function label(button) {
  button.textContent = dark() ? "Светлая тема" : "Тёмная тема";
}

/** Apply the saved choice; wire `button` (if any) to switch and remember it. */
export function initTheme(button) {
  const saved = localStorage.getItem(KEY);
  if (saved === "light" || saved === "dark") document.documentElement.dataset.theme = saved;
  if (!button) return;
  label(button);
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => label(button));
  button.addEventListener("click", () => {
    const next = dark() ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem(KEY, next);
    label(button);
  });
}
