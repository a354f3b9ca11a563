// The workspace list: GET /api/v1/workspaces, and a form that creates one with
// POST /api/v1/workspaces (create-or-ensure: naming an existing one changes only its python mode).
"use strict";

AW.ready(() => {
  const { api, el, fmt } = AW;
  const rows = document.getElementById("workspace-rows");
  const state = document.getElementById("list-state");

  function row(workspace) {
    const href = `/console/workspaces/${encodeURIComponent(workspace.workspace_id)}`;
    return el(
      "tr",
      { dataset: { workspaceId: workspace.workspace_id } },
      el("td", { "data-label": "Workspace" }, el("a", { href }, workspace.workspace_id)),
      el("td", { "data-label": "Python mode" }, workspace.python_mode),
      el("td", { "data-label": "Created" }, fmt.time(workspace.created_at)),
    );
  }

  async function load() {
    try {
      const body = await api("/api/v1/workspaces");
      rows.replaceChildren(...body.workspaces.map(row));
      const count = body.workspaces.length;
      state.textContent = `${count} workspace${count === 1 ? "" : "s"}`;
    } catch (error) {
      state.textContent = `Could not load the workspaces: ${error.message}`;
    }
  }

  const name = (data) => String(data.get("workspace_id") || "").trim();
  AW.sendForm(document.getElementById("new-workspace"), {
    check: (data) => (name(data) ? "" : "Enter a name."),
    send: async (data) => {
      await api("/api/v1/workspaces", {
        method: "POST",
        json: { workspace_id: name(data), python_mode: data.get("python_mode") },
      });
      return `/console/workspaces/${encodeURIComponent(name(data))}`;
    },
  });
  load();
});
