// The capability catalogue: GET /api/v1/capabilities (the capability envelope: data.items, paged),
// filtered by category; each row links to the capability's page, where it is invoked.
"use strict";

AW.ready(() => {
  const { api, el, fmt } = AW;
  const table = document.getElementById("capability-table");
  const rows = document.getElementById("capability-rows");
  const state = document.getElementById("list-state");
  const filter = document.getElementById("capability-filter");
  const category = document.getElementById("category-filter");
  const prev = document.getElementById("page-prev");
  const next = document.getElementById("page-next");
  const pageLabel = document.getElementById("page-label");
  const user = table.dataset.user;
  const PAGE_SIZE = 25;
  let page = 1;

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

  async function load() {
    const query = new URLSearchParams({ page: String(page), page_size: String(PAGE_SIZE) });
    if (category.value.trim()) query.set("category", category.value.trim());
    try {
      const { data } = await api(`/api/v1/capabilities?${query}`);
      rows.replaceChildren(...data.items.map(row));
      state.textContent = data.total === 0 ? "No capabilities." : `${data.total} capabilit${data.total === 1 ? "y" : "ies"}`;
      prev.disabled = page <= 1;
      next.disabled = !data.has_more;
      pageLabel.textContent = `Page ${page}`;
    } catch (error) {
      state.textContent = `Could not load the capabilities: ${error.message}`;
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
