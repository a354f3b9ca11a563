// The capability catalogue: GET /api/v1/capabilities (the capability envelope: data.items, paged),
// filtered by category; each row links to the capability's page, where it is invoked.
"use strict";

AW.ready(() => {
  const { el, fmt } = AW;
  const table = document.getElementById("capability-table");
  const rows = document.getElementById("capability-rows");
  const state = document.getElementById("list-state");
  const user = table.dataset.user;

  function offeredBy(capability) {
    if (capability.owner === null || capability.owner === undefined) return "this worker";
    return capability.owner === user ? "you" : capability.owner;
  }

  function row(capability) {
    const href = `/console/capabilities/${encodeURIComponent(capability.id)}`;
    return el(
      "tr",
      { dataset: { capabilityId: capability.id } },
      el("td", { "data-label": "Capability" }, el("div", { class: "cell" }, el("a", { href }, capability.name), el("div", { class: "muted" }, el("code", {}, capability.id)))),
      el("td", { "data-label": "Category" }, capability.category),
      el("td", { "data-label": "Offered by" }, offeredBy(capability)),
      el("td", { "data-label": "Visibility" }, capability.visibility),
      el("td", { "data-label": "Price", class: "num" }, Number(capability.price) === 0 ? "free" : fmt.credits(capability.price)),
      el("td", { "data-label": "Rating", class: "num" }, AW.trust(capability.rating)),
    );
  }

  AW.pagedTable({
    rows,
    state,
    row,
    filter: document.getElementById("capability-filter"),
    url: (query) => `/api/v1/capabilities?${query}`,
    empty: "No capabilities.",
    count: (total) => fmt.count(total, "capability", "capabilities"),
    failed: (error) => `Could not load the capabilities: ${error.message}`,
  }).load();
});
