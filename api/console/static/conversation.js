// One conversation's history (GET .../conversations/{id}): the user's messages, the assistant's
// answers and tool calls (the code or command shown as code), and each tool's result; and a form
// that continues the conversation (POST .../messages) and opens the task it starts.
"use strict";

AW.ready(() => {
  const { api, el, fmt } = AW;
  const page = document.getElementById("conversation-page");
  const workspaceId = page.dataset.workspaceId;
  const conversationId = page.dataset.conversationId;
  const base = `/api/v1/workspaces/${encodeURIComponent(workspaceId)}`;
  const history = document.getElementById("history");
  const pageError = document.getElementById("conversation-error");
  const ROLES = { user: "You", assistant: "Assistant", tool: "Tool result", system: "System" };

  // Content is a string, or (OpenAI's other form) a list of parts of which the text ones count.
  function text(content) {
    if (content === null || content === undefined) return "";
    if (typeof content === "string") return content;
    if (Array.isArray(content)) return content.map((part) => (part && part.text) || "").join("");
    return JSON.stringify(content);
  }

  // A call's arguments are a JSON string; its code or command is shown as code, the rest as JSON.
  function callView(call) {
    const fn = call.function || {};
    let args = fn.arguments;
    try {
      args = typeof args === "string" ? JSON.parse(args) : args;
    } catch (error) {
      // shown as sent: the model's malformed arguments are part of the history too
    }
    const body = [];
    if (args && typeof args === "object" && !Array.isArray(args)) {
      const { code, command, ...rest } = args;
      if (typeof code === "string") body.push(el("pre", { class: "code" }, code));
      if (typeof command === "string") body.push(el("pre", { class: "code" }, command));
      if (Object.keys(rest).length) body.push(el("pre", { class: "code args" }, JSON.stringify(rest, null, 2)));
    } else if (args !== undefined && args !== null) {
      body.push(el("pre", { class: "code args" }, String(args)));
    }
    return el(
      "div",
      { class: "tool", dataset: { callId: call.id || "" } },
      el("header", {}, el("span", { class: "tool-name" }, fn.name || "tool"), el("span", { class: "muted" }, call.id || "")),
      ...body,
    );
  }

  function messageView(message, index) {
    const role = message.role || "unknown";
    const content = text(message.content);
    const parts = [];
    if (role === "tool") {
      parts.push(el("pre", { class: "output" }, content));
    } else if (content) {
      parts.push(el("div", { class: "model-text" }, content));
    }
    for (const call of message.tool_calls || []) parts.push(callView(call));
    if (!parts.length) parts.push(el("p", { class: "muted" }, "(no text)"));
    const heading = role === "tool" && message.tool_call_id ? `${ROLES.tool} · ${message.tool_call_id}` : ROLES[role] || role;
    return el(
      "li",
      { class: `message message-${role}`, dataset: { role, index: String(index) } },
      el("article", {}, el("header", {}, el("strong", {}, heading)), ...parts),
    );
  }

  async function load() {
    try {
      const body = await api(`${base}/conversations/${encodeURIComponent(conversationId)}`);
      const conversation = body.conversation;
      document.getElementById("conversation-title").textContent = conversation.title || "Conversation";
      document.title = `${conversation.title || "Conversation"} · agent-worker console`;
      document.getElementById("conversation-count").textContent = String(conversation.message_count);
      document.getElementById("conversation-created").textContent = fmt.time(conversation.created_at);
      document.getElementById("conversation-updated").textContent = fmt.time(conversation.updated_at);
      history.replaceChildren(...conversation.messages.map(messageView));
      if (!conversation.messages.length) history.replaceChildren(el("li", { class: "muted" }, "No messages yet."));
    } catch (error) {
      pageError.textContent = error.status === 404 ? "There is no such conversation of yours." : error.message;
      pageError.hidden = false;
    }
  }

  const message = () => document.getElementById("follow-up-message").value.trim();
  AW.sendForm(document.getElementById("follow-up"), {
    check: () => (message() ? "" : "Enter a message."),
    send: async () => {
      const started = await api(`${base}/messages`, {
        method: "POST",
        json: { conversation_id: conversationId, message: message() },
      });
      return `/console/tasks/${encodeURIComponent(started.task_id)}`;
    },
  });
  load();
});
