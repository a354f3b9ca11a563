// The task list: GET /api/v1/tasks, newest first, refreshed every 2 s while a task on the page is
// pending or running (every 15 s otherwise, and not at all while the tab is hidden); a form that
// starts a task with POST /api/v1/workspaces/{ws}/messages and opens its page.
"use strict";

AW.ready(() => {
  const { api, el, fmt } = AW;
  const rows = document.getElementById("task-rows");
  const state = document.getElementById("list-state");
  const filter = document.getElementById("status-filter");
  const prev = document.getElementById("page-prev");
  const next = document.getElementById("page-next");
  const pageLabel = document.getElementById("page-label");
  const PAGE_SIZE = 25;
  let page = 1;
  let timer = null;
  let loading = false;

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
    timer = setTimeout(load, active ? 2000 : 15000);
  }

  async function load() {
    if (loading) return;
    loading = true;
    const query = new URLSearchParams({ page: String(page), page_size: String(PAGE_SIZE) });
    if (filter.value) query.set("status", filter.value);
    let active = false;
    try {
      const body = await api(`/api/v1/tasks?${query}`);
      rows.replaceChildren(...body.tasks.map(row));
      active = body.tasks.some((t) => t.status === "pending" || t.status === "running");
      state.textContent = body.total === 0 ? "No tasks yet." : `${body.total} task${body.total === 1 ? "" : "s"}`;
      prev.disabled = page <= 1;
      next.disabled = !body.has_more;
      pageLabel.textContent = `Page ${page}`;
    } catch (error) {
      state.textContent = `Could not load the tasks: ${error.message}`;
    } finally {
      loading = false;
      schedule(active);
    }
  }

  filter.addEventListener("change", () => {
    page = 1;
    load();
  });
  prev.addEventListener("click", () => {
    page = Math.max(1, page - 1);
    load();
  });
  next.addEventListener("click", () => {
    page += 1;
    load();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) load();
  });

  const form = document.getElementById("new-task");
  const formError = form.querySelector(".form-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    formError.hidden = true;
    const data = new FormData(form);
    const message = String(data.get("message") || "").trim();
    const workspace = String(data.get("workspace_id") || "default").trim() || "default";
    if (!message) {
      formError.textContent = "Enter a message.";
      formError.hidden = false;
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      // The workspace must exist before a message is sent to it; creating one is idempotent.
      if (workspace !== "default") await api("/api/v1/workspaces", { method: "POST", json: { workspace_id: workspace } });
      const started = await api(`/api/v1/workspaces/${encodeURIComponent(workspace)}/messages`, {
        method: "POST",
        json: { message, run_mode: data.get("run_mode") || "fast" },
      });
      location.assign(`/console/tasks/${encodeURIComponent(started.task_id)}`);
    } catch (error) {
      formError.textContent = error.message;
      formError.hidden = false;
      button.disabled = false;
    }
  });

  load();
});
