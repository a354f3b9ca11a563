// Helpers the capability, marketplace, agent and wallet pages share (loaded after console.js):
// how a trust score and a ledger amount are shown, a fresh idempotency key, what a page of the
// agent platform says when the browser has no key (its /v1 routes never serve an anonymous user),
// and a paged table of one of its lists.
"use strict";

(function () {
  const { el, fmt } = AW;

  // A 0-1 trust score as a meter and its two-decimal value; null (no rated node) as a dash.
  function trust(score) {
    if (score === null || score === undefined) return el("span", { class: "muted" }, "—");
    const value = Number(score).toFixed(2);
    return el(
      "span",
      { class: "trust", dataset: { trust: value } },
      el("meter", { min: "0", max: "1", low: "0.4", high: "0.7", optimum: "1", value: String(score), "aria-hidden": "true" }),
      el("span", { class: "trust-value" }, value),
    );
  }

  // A signed amount of credits: "+12.50" / "-500.00" / "0.00" (ASCII signs: copied numbers parse).
  function signed(amount) {
    const number = Number(amount);
    const text = fmt.credits(Math.abs(number));
    return number > 0 ? `+${text}` : number < 0 ? `-${text}` : text;
  }

  // 32 hex characters from the browser's CSPRNG (crypto.randomUUID needs a secure context; this
  // works on plain http too), so a retried or double-submitted form runs, and is paid, once.
  function idempotencyKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // The text for a failed platform call: a 401 means this browser has no key the platform knows.
  function platformError(error, what) {
    if (error.status === 401) {
      return el(
        "span",
        {},
        `The agent platform needs an API key to show ${what}: `,
        el("a", { href: `/console/signin?next=${encodeURIComponent(location.pathname)}` }, "sign in"),
        " with a node's key.",
      );
    }
    return `Could not load ${what}: ${error.message}`;
  }

  // AW.pagedTable for a list of the agent platform (/v1): a 401 does not send the browser to sign
  // in (platformError says why there is nothing), and a list that could not be read shows no rows.
  function platformTable(what, options) {
    return AW.pagedTable({
      request: { redirectOn401: false },
      failed: (error) => {
        options.rows.replaceChildren();
        return platformError(error, what);
      },
      ...options,
    });
  }

  Object.assign(window.AW, { trust, signed, idempotencyKey, platformError, platformTable });
})();
