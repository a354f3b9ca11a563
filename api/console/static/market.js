// Marketplace tasks: GET /v1/tasks (the /v1 envelope: data.items, paged, newest first) by status
// and capability, each with its escrow: held while the task is open or accepted, then paid to the
// acceptor or refunded. A house agent's run links to its task page for its publisher. What the
// user may do to a task is a button: accept (another node's open task), cancel (an own open one:
// refunded) and deliver (a task the user accepted: a report completes it, paid from the escrow);
// each PUT carries an Idempotency-Key, so a retried click acts once.
"use strict";

AW.ready(() => {
  const { api, el, fmt } = AW;
  const root = document.getElementById("market-page");
  const user = root.dataset.user;
  const rows = document.getElementById("market-rows");
  const state = document.getElementById("list-state");
  const filter = document.getElementById("market-filter");
  const LABELS = { open: "open", progress: "accepted", done: "done", canceled: "canceled", failed: "failed" };

  function escrow(task) {
    const amount = fmt.credits(task.budget);
    if (task.status === "open" || task.status === "progress") return `${amount} held`;
    if (task.status === "done") return `${amount} paid to ${task.acceptor}`;
    return `${amount} refunded`;
  }

  function titleCell(task) {
    const parts = [el("strong", {}, task.title), el("div", { class: "muted" }, el("code", {}, task.task_id))];
    parts.push(el("details", {}, el("summary", {}, "Description"), el("div", { class: "prose" }, task.description)));
    if (task.run_id && task.publisher === user) {
      parts.push(el("a", { href: `/console/tasks/${encodeURIComponent(task.run_id)}` }, "Follow the house agent's run"));
    }
    // One child: on phones a cell is a flex row of its label and its content.
    return el("td", { "data-label": "Task" }, el("div", { class: "cell" }, ...parts));
  }

  async function act(task, action, label, body) {
    try {
      await api(`/v1/tasks/${encodeURIComponent(task.task_id)}/${action}`, {
        method: "PUT",
        json: body,
        headers: { "Idempotency-Key": AW.idempotencyKey() },
      });
      AW.toast(label);
    } catch (error) {
      AW.toast(`Could not ${action} “${task.title}”: ${error.message}`, "error");
    }
    await list.load();
  }

  function deliverForm(task) {
    const id = `deliver-${task.task_id}`;
    const form = el(
      "form",
      { class: "deliver" },
      el("label", { for: id }, "Report"),
      el("textarea", { id, name: "report", rows: "3", required: true, maxlength: "100000" }),
      el("button", { type: "submit" }, "Deliver"),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const report = form.elements.report.value.trim();
      if (!report) return form.elements.report.focus();
      form.querySelector("button").disabled = true;
      act(task, "complete", `Delivered “${task.title}”: ${fmt.credits(task.budget)} paid to you`, { deliverables: { report } });
    });
    return el("details", {}, el("summary", {}, "Deliver a report"), form);
  }

  function actions(task) {
    const mine = task.publisher === user;
    if (task.status === "open" && mine) {
      return el("button", {
        type: "button",
        class: "danger",
        "aria-label": `Cancel “${task.title}”`,
        onclick: (event) => {
          event.target.disabled = true;
          act(task, "cancel", `Canceled “${task.title}”: ${fmt.credits(task.budget)} refunded`);
        },
      }, "Cancel");
    }
    if (task.status === "open" && !mine && (!task.assignee || task.assignee === user)) {
      return el("button", {
        type: "button",
        "aria-label": `Accept “${task.title}”`,
        onclick: (event) => {
          event.target.disabled = true;
          act(task, "accept", `Accepted “${task.title}”`);
        },
      }, "Accept");
    }
    if (task.status === "progress" && task.acceptor === user) return deliverForm(task);
    return "";
  }

  function row(task) {
    return el(
      "tr",
      { dataset: { taskId: task.task_id, status: task.status } },
      titleCell(task),
      el("td", { "data-label": "Status" }, el("span", { class: `status status-market-${task.status}` }, LABELS[task.status] || task.status)),
      el("td", { "data-label": "Escrow", class: "num escrow" }, escrow(task)),
      el("td", { "data-label": "Publisher" }, task.publisher === user ? `${task.publisher} (you)` : task.publisher),
      el("td", { "data-label": "Acceptor" }, task.acceptor || (task.assignee ? `for ${task.assignee}` : "—")),
      el("td", { "data-label": "Needs" }, task.required_capabilities.join(", ") || "—"),
      el("td", { "data-label": "Deadline" }, task.deadline ? new Date(task.deadline).toLocaleString() : "none"),
      el("td", { "data-label": "Published" }, fmt.time(task.created_at)),
      el("td", { "data-label": "Actions" }, actions(task)),
    );
  }

  const list = AW.platformTable("the marketplace", {
    rows,
    state,
    row,
    filter,
    url: (query) => `/v1/tasks?${query}`,
    empty: "No tasks.",
    count: (total) => fmt.count(total, "task"),
  });
  for (const radio of filter.querySelectorAll("input[name=status]")) radio.addEventListener("change", list.first);
  list.load();
});
