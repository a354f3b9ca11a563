// Agents: GET /v1/agents (the /v1 envelope, paged, the most trusted first), filtered by capability
// and a minimum trust; each with its trust score as a meter and its number of ratings.
"use strict";

AW.ready(() => {
  const { el, fmt } = AW;
  const user = document.getElementById("agents-page").dataset.user;
  const rows = document.getElementById("agent-rows");
  const state = document.getElementById("list-state");
  const KINDS = { house: "this worker's agent", operator: "operator", registered: "registered" };

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

  AW.platformTable("the agents", {
    rows,
    state,
    row,
    filter: document.getElementById("agent-filter"),
    url: (query) => `/v1/agents?${query}`,
    empty: "No agents match.",
    count: (total) => fmt.count(total, "agent"),
  }).load();
});
