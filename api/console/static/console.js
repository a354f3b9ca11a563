// The console's browser helper, loaded on every page: calls to our own API with the session
// cookie and the CSRF header, Server-Sent Events streams, small DOM and formatting helpers, and
// the paged table and form sending the pages share.
// Plain ES2020, no dependencies, no build step. Everything hangs off one global: window.AW.
"use strict";

(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrfToken = meta ? meta.content : "";
  const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

  class ApiError extends Error {
    constructor(status, message, body) {
      super(message);
      this.name = "ApiError";
      this.status = status;
      this.body = body;
    }
  }

  function errorMessage(body, response) {
    if (body && typeof body === "object") {
      // {"success": false, "error"} (task API), {"code", "message"} (/v1, capabilities), JSON-RPC.
      return body.error && typeof body.error === "object"
        ? body.error.message || JSON.stringify(body.error)
        : body.error || body.message || JSON.stringify(body);
    }
    return (typeof body === "string" && body.trim()) || `${response.status} ${response.statusText}`;
  }

  function signInAgain() {
    const here = location.pathname + location.search;
    location.assign("/console/signin?next=" + encodeURIComponent(here));
  }

  // api("/api/v1/tasks") → the parsed JSON body; throws ApiError(status, message) on a non-2xx.
  // options: method, json (sent as a JSON body), body (FormData, Blob...), headers, signal.
  // A 401 (the key no longer works) sends the browser to sign in again.
  async function api(path, options = {}) {
    const method = (options.method || "GET").toUpperCase();
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    const init = { method, headers, credentials: "same-origin", signal: options.signal };
    if (!SAFE.has(method)) headers["X-CSRF-Token"] = csrfToken;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.json);
    } else if (options.body !== undefined) {
      init.body = options.body;
    }
    const response = await fetch(path, init);
    const type = response.headers.get("Content-Type") || "";
    const body = type.includes("json") ? await response.json().catch(() => null) : await response.text();
    if (!response.ok) {
      if (response.status === 401 && options.redirectOn401 !== false) signInAgain();
      throw new ApiError(response.status, errorMessage(body, response), body);
    }
    return body;
  }

  // follow(url, types, onEvent, {onFinal, onError, onOpen}) opens an EventSource on one of our
  // SSE streams and calls onEvent(type, parsedData, lastEventId) for each frame of the named types.
  // The browser resumes a dropped stream by itself with Last-Event-ID; once a final event of a
  // task arrives the stream is closed (the server ends it, and EventSource would reconnect).
  const FINAL = new Set(["run_completed", "run_failed", "run_canceled"]);

  function follow(url, types, onEvent, handlers = {}) {
    const source = new EventSource(url, { withCredentials: true });
    let finished = false;
    const listener = (message) => {
      let data;
      try {
        data = JSON.parse(message.data);
      } catch (error) {
        if (handlers.onError) handlers.onError(error);
        return;
      }
      onEvent(message.type, data, message.lastEventId);
      if (FINAL.has(message.type)) {
        finished = true;
        source.close();
        if (handlers.onFinal) handlers.onFinal(message.type, data);
      }
    };
    for (const type of types) source.addEventListener(type, listener);
    source.onopen = () => handlers.onOpen && handlers.onOpen();
    source.onerror = (event) => {
      // CONNECTING: the browser retries by itself. CLOSED: the server refused the stream.
      if (!finished && handlers.onError) handlers.onError(event, source.readyState === EventSource.CLOSED);
    };
    return {
      close() {
        finished = true;
        source.close();
      },
      get closed() {
        return source.readyState === EventSource.CLOSED;
      },
    };
  }

  // el("a", {href: "/x", class: "y", dataset: {...}, onclick: fn}, "text", child...) → an Element.
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  const fmt = {
    time(epochSeconds) {
      if (epochSeconds === null || epochSeconds === undefined) return "—";
      const date = new Date(epochSeconds * 1000);
      const today = new Date();
      const sameDay = date.toDateString() === today.toDateString();
      return sameDay ? date.toLocaleTimeString() : date.toLocaleString();
    },
    duration(seconds) {
      if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
      if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
      if (seconds < 60) return `${seconds.toFixed(1)} s`;
      const minutes = Math.floor(seconds / 60);
      if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
      return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
    },
    tokens(count) {
      if (count === null || count === undefined) return "—";
      return count >= 10000 ? `${(count / 1000).toFixed(1)}k` : String(count);
    },
    // Amounts are credits as JSON numbers with two decimals (the API's money format).
    credits(amount) {
      if (amount === null || amount === undefined) return "—";
      return Number(amount).toFixed(2);
    },
    // count(3, "task") → "3 tasks"; count(1, "entry", "entries") → "1 entry".
    count(n, one, many = `${one}s`) {
      return `${n} ${n === 1 ? one : many}`;
    },
  };

  // toast("Saved") shows a short message in the page's aria-live region.
  let toastTimer = null;
  function toast(message, kind = "info") {
    const box = document.getElementById("toast");
    if (!box) return;
    box.textContent = message;
    box.dataset.kind = kind;
    box.classList.add("shown");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => box.classList.remove("shown"), 6000);
  }

  // pagedTable(options): a table read a page at a time (the query's page and page_size, the answer's
  // items, total and has_more) with Previous/Next buttons. options:
  //   rows, state: the <tbody> and the status element; row(item) → a <tr>
  //   url(query) → the page's URL (query holds page, page_size and the filter form's fields)
  //   filter: a form whose non-empty (trimmed) fields go into the query; submitting it shows page 1
  //   request: options for api() (a /v1 list: {redirectOn401: false}); list(body) → {items, total,
  //   has_more}, body.data unless said; empty: the text for none; count(total) → the text for some
  //   failed(error) → the status text or node when the page could not be read
  //   exclusive: a load while one runs does nothing (a list that refreshes itself)
  //   settled(list or null) → after each load, with the page read or null when it failed
  //   pager: the prefix of the ids of the buttons and the label (<prefix>-prev, -next, -label)
  // Returns {load(), first()}: read the current page again, or page 1 (a filter changed).
  function pagedTable(options) {
    const prefix = options.pager || "page";
    const prev = document.getElementById(`${prefix}-prev`);
    const next = document.getElementById(`${prefix}-next`);
    const label = document.getElementById(`${prefix}-label`);
    const listOf = options.list || ((body) => body.data);
    const size = 25;
    let page = 1;
    let loading = false;

    async function load() {
      if (options.exclusive && loading) return;
      loading = true;
      const query = new URLSearchParams({ page: String(page), page_size: String(size) });
      if (options.filter) {
        for (const [name, value] of new FormData(options.filter)) {
          if (String(value).trim()) query.set(name, String(value).trim());
        }
      }
      let list = null;
      try {
        list = listOf(await api(options.url(query), options.request));
        options.rows.replaceChildren(...list.items.map(options.row));
        options.state.textContent = list.total === 0 ? options.empty : options.count(list.total);
        prev.disabled = page <= 1;
        next.disabled = !list.has_more;
        label.textContent = `Page ${page}`;
      } catch (error) {
        list = null;
        options.state.replaceChildren(options.failed(error));
      } finally {
        loading = false;
        if (options.settled) options.settled(list);
      }
    }

    function first() {
      page = 1;
      return load();
    }

    prev.addEventListener("click", () => {
      page = Math.max(1, page - 1);
      load();
    });
    next.addEventListener("click", () => {
      page += 1;
      load();
    });
    if (options.filter) {
      options.filter.addEventListener("submit", (event) => {
        event.preventDefault();
        first();
      });
    }
    return { load, first };
  }

  // sendForm(form, {check, send, button, usable}): the one way a console form is sent. On submit its
  // .form-error is hidden; check(FormData) may return what is wrong (shown; nothing is sent); then
  // the submit button is disabled while send(FormData) runs. A failure shows its message. send may
  // return the URL of the page to open next: the button stays disabled while the browser goes
  // there (a second click would send twice), and is usable again if the browser comes back to this
  // page from its cache (pageshow), provided usable() says so; otherwise it is enabled again.
  // failed(error) → the text shown for a failed send (error.message unless given).
  function sendForm(form, { check, send, failed, button, usable }) {
    const formError = form.querySelector(".form-error");
    const submit = button || form.querySelector("button[type=submit]");
    const showError = (message) => {
      formError.textContent = message;
      formError.hidden = false;
    };
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      formError.hidden = true;
      const data = new FormData(form);
      const wrong = check ? check(data) : "";
      if (wrong) return showError(wrong);
      submit.disabled = true;
      let opened = null;
      try {
        opened = await send(data);
        if (opened) location.assign(opened);
      } catch (error) {
        showError(failed ? failed(error) : error.message);
      } finally {
        if (!opened) submit.disabled = false;
      }
    });
    window.addEventListener("pageshow", (event) => {
      if (event.persisted && (!usable || usable())) submit.disabled = false;
    });
  }

  // Runs fn once the DOM is parsed (page scripts are loaded with defer, after this one).
  function ready(fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  }

  window.AW = { api, ApiError, follow, el, fmt, toast, ready, csrfToken, FINAL, pagedTable, sendForm };
})();
