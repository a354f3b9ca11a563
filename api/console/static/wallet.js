// The wallet: GET /v1/wallet (balance, escrow, totals), the ledger (GET /v1/transactions, newest
// first, paged) and the capability orders bought or sold (GET /api/v1/transactions).
"use strict";

AW.ready(() => {
  const { api, el, fmt } = AW;
  const user = document.getElementById("wallet-page").dataset.user;
  const pageError = document.getElementById("wallet-error");
  const ENTRIES = {
    grant: "credits granted",
    escrow_hold: "held in escrow",
    escrow_release: "escrow paid out",
    escrow_refund: "escrow refunded",
  };

  function taskLink(taskId) {
    return taskId ? el("code", {}, taskId) : "—";
  }

  function ledgerRow(entry) {
    return el(
      "tr",
      { dataset: { entryId: String(entry.id), type: entry.type } },
      el("td", { "data-label": "When" }, fmt.time(entry.created_at)),
      el("td", { "data-label": "Entry" }, ENTRIES[entry.type] || entry.type),
      el("td", { "data-label": "Amount", class: `num amount ${Number(entry.amount) < 0 ? "negative" : ""}` }, AW.signed(entry.amount)),
      el("td", { "data-label": "Task" }, taskLink(entry.task_id)),
      el("td", { "data-label": "Balance after", class: "num" }, fmt.credits(entry.balance_after)),
      el("td", { "data-label": "Escrow after", class: "num" }, fmt.credits(entry.frozen_after)),
    );
  }

  function orderRow(order) {
    const buying = order.buyer === user;
    const task = el("a", { href: `/console/tasks/${encodeURIComponent(order.task_id)}` }, order.capability_id);
    return el(
      "tr",
      { dataset: { orderId: order.id, status: order.status } },
      el("td", { "data-label": "When" }, fmt.time(order.created_at)),
      el("td", { "data-label": "Capability" }, buying ? task : order.capability_id),
      el("td", { "data-label": "You" }, buying ? "bought" : "sold"),
      el("td", { "data-label": "Other party" }, buying ? order.seller : order.buyer),
      el("td", { "data-label": "Amount", class: "num" }, fmt.credits(order.amount)),
      el("td", { "data-label": "Status" }, el("span", { class: `status status-${order.status}` }, order.status)),
    );
  }

  async function loadWallet() {
    try {
      const { data } = await api("/v1/wallet", { redirectOn401: false });
      document.getElementById("wallet-balance").textContent = fmt.credits(data.balance);
      document.getElementById("wallet-frozen").textContent = fmt.credits(data.frozen);
      document.getElementById("wallet-earned").textContent = fmt.credits(data.total_earned);
      document.getElementById("wallet-spent").textContent = fmt.credits(data.total_spent);
      return true;
    } catch (error) {
      pageError.replaceChildren(AW.platformError(error, "a wallet"));
      pageError.hidden = false;
      return false;
    }
  }

  const ledger = AW.pagedTable({
    rows: document.getElementById("ledger-rows"),
    state: document.getElementById("ledger-state"),
    row: ledgerRow,
    pager: "ledger",
    url: (query) => `/v1/transactions?${query}`,
    request: { redirectOn401: false },
    empty: "No entries yet.",
    count: (total) => fmt.count(total, "entry", "entries"),
    failed: (error) => `Could not load the ledger: ${error.message}`,
  });

  async function loadOrders() {
    try {
      const { data } = await api("/api/v1/transactions?page=1&page_size=25", { redirectOn401: false });
      document.getElementById("order-rows").replaceChildren(...data.items.map(orderRow));
      const state = document.getElementById("orders-state");
      state.textContent = data.total === 0 ? "No orders yet." : data.has_more ? `the newest 25 of ${data.total}` : "";
    } catch (error) {
      document.getElementById("orders-state").textContent = `Could not load the orders: ${error.message}`;
    }
  }

  loadWallet().then((signedIn) => {
    if (!signedIn) return;
    ledger.load();
    loadOrders();
  });
});
