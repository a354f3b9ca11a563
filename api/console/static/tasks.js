// The task list: GET /api/v1/tasks, newest first, refreshed every 2 s while a task on the page is
// pending or running (every 15 s otherwise, and not at all while the tab is hidden); a form that
// starts a task with POST /api/v1/workspaces/{ws}/messages and opens its page.
"use strict";

AW.ready(() => {
  const { api, el, fmt } = AW;
  const rows = document.getElementById("task-rows");
  const state = document.getElementById("list-state");
  const filter = document.getElementById("status-filter");
  let timer = null;

  function cell(label, content, cls) {
    return el("td", { "data-label": label, class: cls }, content);
  }

  function row(task) {
    const link = el("a", { href: `/console/tasks/${encodeURIComponent(task.task_id)}` }, task.task_id.slice(0, 8));
    const started = task.started_at ?? null;
    return el(
      "tr",
      { dataset: { taskId: task.task_id, status: task.status } },
      cell("Task", link),
      cell("Status", el("span", { class: `status status-${task.status}` }, task.status)),
      cell("Capability", task.capability_id || "—"),
      cell("Started", started === null ? "—" : el("time", { datetime: new Date(started * 1000).toISOString() }, fmt.time(started))),
      cell("Duration", fmt.duration(task.duration), "num"),
      cell("Tokens", fmt.tokens(task.usage ? task.usage.total_tokens : null), "num"),
      cell("Cost", task.amount === null || task.amount === undefined ? "—" : fmt.credits(task.amount), "num"),
    );
  }

  function schedule(active) {
    clearTimeout(timer);
    if (document.hidden) return;
    timer = setTimeout(list.load, active ? 2000 : 15000);
  }

  const list = AW.pagedTable({
    rows,
    state,
    row,
    url: (query) => {
      if (filter.value) query.set("status", filter.value);
      return `/api/v1/tasks?${query}`;
    },
    list: (body) => ({ items: body.tasks, total: body.total, has_more: body.has_more }),
    empty: "No tasks yet.",
    count: (total) => fmt.count(total, "task"),
    failed: (error) => `Could not load the tasks: ${error.message}`,
    exclusive: true,
    settled: (page) => schedule(page !== null && page.items.some((t) => t.status === "pending" || t.status === "running")),
  });

  filter.addEventListener("change", list.first);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) list.load();
  });

  const message = (data) => String(data.get("message") || "").trim();
  AW.sendForm(document.getElementById("new-task"), {
    check: (data) => (message(data) ? "" : "Enter a message."),
    send: async (data) => {
      const workspace = String(data.get("workspace_id") || "default").trim() || "default";
      // The workspace must exist before a message is sent to it; creating one is idempotent.
      if (workspace !== "default") await api("/api/v1/workspaces", { method: "POST", json: { workspace_id: workspace } });
      const started = await api(`/api/v1/workspaces/${encodeURIComponent(workspace)}/messages`, {
        method: "POST",
        json: { message: message(data), run_mode: data.get("run_mode") || "fast" },
      });
      return `/console/tasks/${encodeURIComponent(started.task_id)}`;
    },
  });

  list.load();
});
