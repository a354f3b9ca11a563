// Agents: GET /v1/agents (the /v1 envelope, paged, the most trusted first), filtered by capability
// and a minimum trust; each with its trust score as a meter and its number of ratings.
"use strict";

AW.ready(() => {
  const { api, el, fmt } = AW;
  const user = document.getElementById("agents-page").dataset.user;
  const rows = document.getElementById("agent-rows");
  const state = document.getElementById("list-state");
  const filter = document.getElementById("agent-filter");
  const prev = document.getElementById("page-prev");
  const next = document.getElementById("page-next");
  const pageLabel = document.getElementById("page-label");
  const PAGE_SIZE = 25;
  const KINDS = { house: "this worker's agent", operator: "operator", registered: "registered" };
  let page = 1;

  function row(agent) {
    const name = agent.agent_id === user ? `${agent.nickname} (you)` : agent.nickname;
    return el(
      "tr",
      { dataset: { agentId: agent.agent_id } },
      el("td", { "data-label": "Agent" }, el("div", { class: "cell" }, el("strong", {}, name), el("div", { class: "muted" }, el("code", {}, agent.agent_id)))),
      el("td", { "data-label": "Kind" }, KINDS[agent.kind] || agent.kind),
      el("td", { "data-label": "Capabilities" }, agent.capabilities.join(", ") || "—"),
      el("td", { "data-label": "Trust", class: "num" }, AW.trust(agent.trust_score)),
      el("td", { "data-label": "Ratings", class: "num" }, String(agent.ratings_count)),
      el("td", { "data-label": "Tasks done", class: "num" }, String(agent.completed_tasks)),
      el("td", { "data-label": "Since" }, fmt.time(agent.created_at)),
    );
  }

  async function load() {
    const data = new FormData(filter);
    const query = new URLSearchParams({ page: String(page), page_size: String(PAGE_SIZE) });
    const capability = String(data.get("capability") || "").trim();
    if (capability) query.set("capability", capability);
    const minTrust = String(data.get("min_trust") || "").trim();
    if (minTrust) query.set("min_trust", minTrust);
    try {
      const body = await api(`/v1/agents?${query}`, { redirectOn401: false });
      rows.replaceChildren(...body.data.items.map(row));
      const total = body.data.total;
      state.textContent = total === 0 ? "No agents match." : `${total} agent${total === 1 ? "" : "s"}`;
      prev.disabled = page <= 1;
      next.disabled = !body.data.has_more;
      pageLabel.textContent = `Page ${page}`;
    } catch (error) {
      rows.replaceChildren();
      state.replaceChildren(AW.platformError(error, "the agents"));
    }
  }

  filter.addEventListener("submit", (event) => {
    event.preventDefault();
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
  load();
});
