// One workspace: its file tree (GET .../files) with a download link per file and an upload form
// (multipart POST .../files/upload, streamed by the browser), and its conversations
// (GET .../conversations), each linking to its history.
"use strict";

AW.ready(() => {
  const { api, el, fmt, toast } = AW;
  const page = document.getElementById("workspace-page");
  const workspaceId = page.dataset.workspaceId;
  const base = `/api/v1/workspaces/${encodeURIComponent(workspaceId)}`;
  const pageError = document.getElementById("workspace-error");
  const fileRows = document.getElementById("file-rows");
  const filesState = document.getElementById("files-state");
  const conversationList = document.getElementById("conversation-list");
  const conversationsState = document.getElementById("conversations-state");

  function size(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  }

  function showError(error) {
    pageError.textContent =
      error.status === 404 ? `There is no workspace ${workspaceId} of yours.` : error.message;
    pageError.hidden = false;
  }

  // The listing is flat and in path order (a directory's entries follow it), so a tree is the
  // entries indented by depth: no nesting to build, and 10,000 rows render in one pass.
  function fileRow(entry) {
    const parts = entry.path.split("/");
    const name = parts[parts.length - 1];
    const isDir = entry.type === "dir";
    const label = el(
      "span",
      { class: `entry entry-${entry.type}` },
      isDir ? `${name}/` : name,
      entry.type === "symlink" ? el("span", { class: "badge" }, "symlink") : null,
    );
    // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    label.style.setProperty("--depth", String(parts.length - 1));
    const download =
      entry.type === "file"
        ? el(
            "a",
            {
              href: `${base}/files/download?path=${encodeURIComponent(entry.path)}`,
              download: name,
              "aria-label": `Download ${entry.path}`,
            },
            "Download",
          )
        : "";
    return el(
      "tr",
      { dataset: { path: entry.path, type: entry.type } },
      el("td", { "data-label": "Name", title: entry.path }, label),
      el("td", { "data-label": "Size", class: "num" }, entry.type === "file" ? size(entry.size) : "—"),
      el("td", { "data-label": "Modified", class: "col-modified" }, fmt.time(entry.modified)),
      el("td", { "data-label": "Download" }, download),
    );
  }

  async function loadFiles() {
    filesState.textContent = "Loading…";
    try {
      const body = await api(`${base}/files`);
      fileRows.replaceChildren(...body.files.map(fileRow));
      const count = body.files.filter((f) => f.type === "file").length;
      filesState.textContent =
        body.files.length === 0
          ? "No files yet."
          : `${count} file${count === 1 ? "" : "s"}` + (body.truncated ? " (list cut short: too many entries)" : "");
    } catch (error) {
      filesState.textContent = "";
      showError(error);
    }
  }

  function conversationItem(conversation) {
    const href = `/console/workspaces/${encodeURIComponent(workspaceId)}/conversations/${encodeURIComponent(conversation.conversation_id)}`;
    return el(
      "li",
      { dataset: { conversationId: conversation.conversation_id } },
      el("a", { href }, conversation.title || conversation.conversation_id),
      el(
        "span",
        { class: "item-meta" },
        `${conversation.message_count} message${conversation.message_count === 1 ? "" : "s"} · updated ${fmt.time(conversation.updated_at)}`,
      ),
    );
  }

  async function loadConversations() {
    try {
      const body = await api(`${base}/conversations`);
      conversationList.replaceChildren(...body.conversations.map(conversationItem));
      conversationsState.textContent = body.conversations.length === 0 ? "No conversations yet." : "";
    } catch (error) {
      if (error.status !== 404) conversationsState.textContent = `Could not load them: ${error.message}`;
    }
  }

  const form = document.getElementById("upload");
  const fileInput = document.getElementById("upload-file");
  AW.sendForm(form, {
    check: () => (fileInput.files[0] ? "" : "Choose a file."),
    send: async () => {
      const file = fileInput.files[0];
      const body = new FormData();
      const subdirectory = document.getElementById("upload-path").value.trim();
      if (subdirectory) body.append("path", subdirectory);
      body.append("file", file, file.name);
      const uploaded = await api(`${base}/files/upload`, { method: "POST", body });
      toast(`Uploaded ${uploaded.path} (${size(uploaded.size)})`);
      form.reset();
      await loadFiles();
    },
    failed: (error) => (error.status === 413 ? error.message : `Upload failed: ${error.message}`),
  });

  document.getElementById("files-refresh").addEventListener("click", loadFiles);
  loadFiles();
  loadConversations();
});
