// One task's page: reads the events stored so far in pages of 1,000 (GET /api/v1/tasks/{id}?from=),
// then, unless the task has ended, follows the rest over SSE from the next offset
// (GET /api/v1/tasks/{id}/events?from=; a dropped stream resumes with Last-Event-ID).
// Why pages first: one JSON answer of 1,000 events costs the browser far less than 1,000 SSE
// messages, which matters when a long task is opened (bench/console_events.py).
// Cancel: POST /api/v1/tasks/{id}/cancel. A follow-up goes to the same conversation and opens
// the new task's page.
"use strict";

AW.ready(async () => {
  const { api, fmt, follow } = AW;
  const root = document.getElementById("task-page");
  const taskId = root.dataset.taskId;
  const path = `/api/v1/tasks/${encodeURIComponent(taskId)}`;
  const $ = (id) => document.getElementById(id);
  const statusBadge = $("task-status");
  const cancel = $("cancel-task");
  const errorBox = $("task-error");
  const followBox = $("follow-bottom");
  const timelineBox = $("timeline");
  let status = null;
  let stream = null;
  let tick = null;

  const timeline = new AW.Timeline(timelineBox, {
    follow: () => followBox.checked,
    onChange: (summary, pending) => {
      $("task-iterations").textContent = String(summary.iterations);
      $("task-tokens").textContent = fmt.tokens(summary.tokens);
      $("task-events").textContent = String(summary.events);
      if (summary.status && !summary.final) setStatus(summary.status);
      if (summary.final) setStatus(summary.final.replace("run_", ""));
      timelineBox.setAttribute("aria-busy", pending > 0 ? "true" : "false");
      showDuration();
    },
  });

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  function setStatus(next) {
    if (next === status) return;
    status = next;
    statusBadge.textContent = next;
    statusBadge.className = `status status-${next}`;
    const active = next === "pending" || next === "running";
    cancel.disabled = !active;
    root.dataset.status = next;
    if (!active) clearInterval(tick);
  }

  function showDuration() {
    const s = timeline.summary;
    if (!s.startedAt) return;
    const end = s.endedAt || Date.now() / 1000;
    $("task-duration").textContent = fmt.duration(Math.max(0, end - s.startedAt));
  }

  const EVENT_TYPES = [
    "run_started", "status_changed", "iteration_started", "reasoning_chunk", "text_chunk",
    "model_response", "tool_call", "tool_output", "tool_result", "run_completed", "run_failed", "run_canceled",
  ];

  let state;
  let offset = 0;
  try {
    for (;;) {
      state = (await api(`${path}?from=${offset}`)).data;
      if (offset === 0) setStatus(state.has_more ? "running" : state.status);
      for (const event of state.events) timeline.push(event);
      offset = state.next_offset;
      if (!state.has_more) break;
    }
  } catch (error) {
    setStatus("unknown");
    showError(error.status === 404 ? "No such task (or it is not yours)." : `Could not load the task: ${error.message}`);
    return;
  }
  $("task-workspace").textContent = state.workspace_id || "—";
  const conversationId = state.conversation_id;
  $("follow-up-send").disabled = !conversationId;
  const ended = !["pending", "running"].includes(state.status);
  if (ended) {
    setStatus(state.status);
  } else {
    tick = setInterval(showDuration, 1000);
    setStatus(state.status);
    stream = follow(`${path}/events?from=${offset}`, EVENT_TYPES, (type, event) => timeline.push(event), {
      onOpen: () => showError(""),
      onError: (event, closed) => {
        showError(closed ? "The event stream was refused; reload the page." : "Connection lost; reconnecting…");
      },
    });
  }
  window.addEventListener("pagehide", () => stream && stream.close());
  // Scrolling up to read stops following; the checkbox turns it back on.
  window.addEventListener("wheel", (event) => {
    if (event.deltaY < 0) followBox.checked = false;
  }, { passive: true });
  window.addEventListener("keydown", (event) => {
    if (["ArrowUp", "PageUp", "Home"].includes(event.key) && !event.target.closest("textarea, input, select")) followBox.checked = false;
  });

  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      const answer = await api(`${path}/cancel`, { method: "POST" });
      AW.toast(`Task ${answer.status}.`);
    } catch (error) {
      AW.toast(`Cancel failed: ${error.message}`, "error");
      cancel.disabled = false;
    }
  });

  const message = () => $("follow-up-message").value.trim();
  AW.sendForm($("follow-up"), {
    check: () => (message() ? "" : "Enter a message."),
    send: async () => {
      const workspace = encodeURIComponent(state.workspace_id || "default");
      const started = await api(`/api/v1/workspaces/${workspace}/messages`, {
        method: "POST",
        json: { conversation_id: conversationId, message: message() },
      });
      return `/console/tasks/${encodeURIComponent(started.task_id)}`;
    },
    usable: () => Boolean(conversationId),
  });
});
