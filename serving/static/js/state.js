// The page's state: the open game, its last view, and whether a turn is being generated (busy).
// Controls that must wait for the game (class "needs-idle") are disabled while busy, and also while their own
// reason says so (data-off: nothing to redo, no other variant, ...).

export const state = {
  game: null, // {id, token} of the open game
  view: null, // the game as GET /api/games/<id> last returned it
  busy: false,
  presets: {}, // GET /api/presets: {id: {name, description, streams, token_probs, deterministic, ...}}
  scenarios: [], // GET /api/scenarios: [{id, title, world}]
  info: null, // GET /api/info: {model, demo_model, arena, max_new_tokens_limit, ...}
  jobId: null, // the job being followed (the stop button cancels it)
};

export function refreshControls() {
  for (const node of document.querySelectorAll(".needs-idle")) {
    node.disabled = state.busy || node.dataset.off === "1";
  }
}

export function setBusy(value) {
  state.busy = value;
  refreshControls();
}

/** Disable `node` for its own reason (independent of busy). */
export function setOff(node, off) {
  node.dataset.off = off ? "1" : "";
  node.disabled = state.busy || off;
}
