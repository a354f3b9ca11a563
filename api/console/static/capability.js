// One capability (GET /api/v1/capabilities/{id}) and a form that invokes it
// (POST /api/v1/capabilities/{id}/invoke, with an idempotency key made when the page loads, so a
// double submit runs and pays once); the started task opens on its own page.
"use strict";

AW.ready(() => {
  const { api, el, fmt } = AW;
  const page = document.getElementById("capability-page");
  const capabilityId = page.dataset.capabilityId;
  const user = page.dataset.user;
  const path = `/api/v1/capabilities/${encodeURIComponent(capabilityId)}`;
  const pageError = document.getElementById("capability-error");
  const button = document.getElementById("invoke-button");
  const message = document.getElementById("invoke-message");
  const workspace = document.getElementById("invoke-workspace");
  let idempotencyKey = AW.idempotencyKey();
  let capability = null;

  function field(name, value) {
    return [el("dt", {}, name), el("dd", {}, value)];
  }

  function show(c) {
    capability = c;
    document.getElementById("capability-name").textContent = c.name;
    document.title = `${c.name} · agent-worker console`;
    document.getElementById("capability-description").textContent = c.description || "No description.";
    const owner = c.owner === null ? "this worker (global)" : c.owner === user ? "you" : c.owner;
    const price = Number(c.price);
    document.getElementById("capability-fields").replaceChildren(
      ...field("Id", el("code", {}, c.id)),
      ...field("Category", c.category),
      ...field("Offered by", owner),
      ...field("Visibility", c.visibility),
      ...field("Price", price === 0 ? "free" : `${fmt.credits(price)} credits an order`),
      ...field("Rating", AW.trust(c.rating)),
      ...field("Model", c.model_key || "the default model"),
      ...field("Tools", c.allowed_tools.length ? c.allowed_tools.join(", ") : "none (a plain chat model)"),
      ...field("Iterations", String(c.limits.max_iterations)),
      ...field("Run mode", c.limits.run_mode),
      ...field("Created", c.created_at === null ? "—" : fmt.time(c.created_at)),
    );
    if (c.system_prompt) {
      document.getElementById("capability-prompt-text").textContent = c.system_prompt;
      document.getElementById("capability-prompt").hidden = false;
    }
    document.getElementById("invoke-hint").textContent = c.default_input
      ? `Optional: without a message it runs on “${c.default_input}”.`
      : "Required: this capability has no default input.";
    message.required = !c.default_input;
    const paid = price > 0 && c.owner !== null && c.owner !== user;
    const notice = document.getElementById("invoke-price");
    notice.hidden = !paid;
    notice.textContent = paid
      ? `Running it orders it: ${fmt.credits(price)} credits are held from your wallet and paid to ${c.owner} when the task completes (refunded if it fails or is canceled).`
      : "";
    button.disabled = false;
  }

  async function loadWorkspaces() {
    try {
      const body = await api("/api/v1/workspaces");
      workspace.replaceChildren(
        ...body.workspaces.map((w) => el("option", { value: w.workspace_id }, w.workspace_id)),
      );
      workspace.value = "default";
    } catch (error) {
      // the default workspace stays the one choice
    }
  }

  async function load() {
    try {
      show((await api(path)).data);
    } catch (error) {
      pageError.textContent = error.status === 404 ? `There is no capability ${capabilityId} you can see.` : error.message;
      pageError.hidden = false;
    }
  }

  AW.sendForm(document.getElementById("invoke"), {
    button,
    check: () => (message.value.trim() || capability.default_input ? "" : "Enter a message."),
    send: async () => {
      const body = { workspace_id: workspace.value || "default", idempotency_key: idempotencyKey };
      if (message.value.trim()) body.message = message.value.trim();
      const { data } = await api(`${path}/invoke`, { method: "POST", json: body });
      idempotencyKey = AW.idempotencyKey(); // coming back to this page is a new run
      return `/console/tasks/${encodeURIComponent(data.task_id)}`;
    },
    // Back from the task's page, the browser may restore this page as it was left: usable again.
    usable: () => capability !== null,
  });
  load();
  loadWorkspaces();
});
