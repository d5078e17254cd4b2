// Following a turn while it is generated: the job's event stream (SSE) shows the reply as it grows; without
// EventSource, or when the stream fails before saying anything, the job is long-polled instead.
//
// hooks: onQueued(position), onRunning(), onText(whole reply so far), onDelayed(reason).
// Resolves with the finished job: {status: "done", turn?, undone?} or {status: "failed", error, message}.
import { api } from "./api.js";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function followJob(jobId, hooks = {}) {
  if (typeof EventSource !== "function") return pollJob(jobId, hooks);
  return new Promise((resolve, reject) => {
    const source = new EventSource("/api/jobs/" + encodeURIComponent(jobId) + "/stream");
    let heard = false;
    let text = "";
    const finish = (job) => { source.close(); resolve(job); };
    const on = (kind, handle) => source.addEventListener(kind, (event) => {
      heard = true;
      let data = {};
      try { data = JSON.parse(event.data || "{}"); } catch (e) { data = {}; }
      handle(data);
    });
    on("queued", (data) => hooks.onQueued && hooks.onQueued(data.position));
    on("running", () => hooks.onRunning && hooks.onRunning());
    on("token", (data) => { text += data.text || ""; if (hooks.onText) hooks.onText(text); });
    on("reset", (data) => { text = data.text || ""; if (hooks.onText) hooks.onText(text); });
    on("done", (data) => finish({ status: "done", ...data }));
    on("failed", (data) => finish({ status: "failed", error: data.error, message: data.message }));
    on("cancelled", (data) => finish({ status: "cancelled", message: data.message }));
    source.addEventListener("error", () => {
      // Once the stream has spoken, EventSource reconnects by itself (Last-Event-ID resumes it); a stream that
      // failed before anything arrived, or that the browser gave up on, hands over to the long-poll.
      if (heard && source.readyState !== EventSource.CLOSED) return;
      source.close();
      pollJob(jobId, hooks).then(resolve, reject);
    });
  });
}

/** The long-poll: ask, wait up to 20 s for a change, repeat until the job is done or failed. */
export async function pollJob(jobId, hooks = {}) {
  for (;;) {
    const asked = Date.now();
    const job = await api("GET", "/api/jobs/" + encodeURIComponent(jobId) + "?wait=20");
    if (job.status === "done" || job.status === "failed" || job.status === "cancelled") return job;
    if (Date.now() - asked < 500) await sleep(1000); // the server's long-poll cap answered at once: do not spin
    if (job.delayed && hooks.onDelayed) hooks.onDelayed(job.delayed);
    else if (job.status === "queued" && hooks.onQueued) hooks.onQueued(job.position);
    else if (job.status === "running" && hooks.onRunning) hooks.onRunning();
  }
}
