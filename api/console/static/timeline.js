// A task's timeline: iterations with the model's text streaming in, each tool call with its
// command or code, its output as it streams, exit code, time-out, duration, and tokens per model
// call. The task page feeds it the task's events (its backlog read in pages, then its SSE stream);
// the chat playground feeds it /chat's logs turned into the same events.
//
// Fast on long runs: push() only queues an event. Once per animation frame the queue is applied
// to the DOM for at most FRAME_BUDGET_MS and the rest waits for the next frame, so 10,000 replayed
// events never block the page for long. Keeping the newest output in view reads the layout, so
// while a backlog drains it is done at most every FOLLOW_EVERY_MS. Text and output chunks are
// appended to existing text nodes (nothing is re-rendered), output longer than COLLAPSE_LINES
// lines is shown collapsed, and off-screen iterations are skipped by layout (content-visibility).
"use strict";

(function () {
  const { el, fmt } = AW;
  const FRAME_BUDGET_MS = 6;
  const FOLLOW_EVERY_MS = 250;
  const COLLAPSE_LINES = 40;
  const COLLAPSE_CHARS = 6000;
  const TOOL_ARGUMENT = { execute_bash: "command", execute_python: "code" };

  class Timeline {
    // container: the element the timeline fills. options.onChange(summary) after each frame that
    // applied events; options.follow() → whether to keep the newest output in view.
    constructor(container, options = {}) {
      this.container = container;
      this.options = options;
      this.queue = [];
      this.head = 0;
      this.scheduled = false;
      this.lastFollow = 0;
      this.reset();
    }

    reset() {
      this.container.replaceChildren();
      this.queue = [];
      this.head = 0;
      this.lastOffset = -1;
      this.iterations = new Map();
      this.calls = new Map();
      this.running = new Set();
      this.summary = {
        events: 0,
        iterations: 0,
        tokens: 0,
        startedAt: null,
        endedAt: null,
        lastTimestamp: null,
        final: null,
        status: null,
      };
    }

    // event: {type, data, timestamp?, offset?}, as the task API sends it.
    push(event) {
      this.queue.push(event);
      if (!this.scheduled) {
        this.scheduled = true;
        requestAnimationFrame(() => this.flush());
      }
    }

    get pending() {
      return this.queue.length - this.head;
    }

    flush() {
      this.scheduled = false;
      const deadline = performance.now() + FRAME_BUDGET_MS;
      let applied = 0;
      while (this.head < this.queue.length) {
        this.apply(this.queue[this.head++]);
        applied += 1;
        if ((applied & 7) === 0 && performance.now() > deadline) break;
      }
      if (this.head >= this.queue.length) {
        this.queue = [];
        this.head = 0;
      } else if (!this.scheduled) {
        this.scheduled = true;
        requestAnimationFrame(() => this.flush());
      }
      if (applied) this.afterFrame();
    }

    afterFrame() {
      // Scrolling reads the layout, which costs a full layout of what this frame added: while a
      // backlog is being replayed, at most every FOLLOW_EVERY_MS; once caught up, every frame.
      const now = performance.now();
      if (this.options.follow && this.options.follow() && (this.pending === 0 || now - this.lastFollow > FOLLOW_EVERY_MS)) {
        this.lastFollow = now;
        for (const call of this.running) call.output.scrollTop = call.output.scrollHeight;
        window.scrollTo(0, document.documentElement.scrollHeight);
      }
      if (this.options.onChange) this.options.onChange(this.summary, this.pending);
    }

    apply(event) {
      // An event the timeline already has (a stream resumed from further back) is skipped.
      if (event.offset !== undefined) {
        if (event.offset <= this.lastOffset) return;
        this.lastOffset = event.offset;
      }
      const data = event.data || {};
      const summary = this.summary;
      summary.events += 1;
      if (event.timestamp) summary.lastTimestamp = event.timestamp;
      switch (event.type) {
        case "run_started":
          summary.startedAt = event.timestamp || null;
          this.container.append(this.promptCard(data));
          break;
        case "status_changed":
          summary.status = data.status;
          break;
        case "iteration_started":
          this.iteration(data.iteration);
          break;
        case "text_chunk": {
          const it = this.iteration(data.iteration);
          it.textNode.appendData(data.content);
          it.streamed = true;
          break;
        }
        case "reasoning_chunk": {
          const it = this.iteration(data.iteration);
          it.reasoning.hidden = false;
          it.reasoningNode.appendData(data.content);
          break;
        }
        case "model_response":
          this.modelResponse(data);
          break;
        case "tool_call":
          this.toolCall(data);
          break;
        case "tool_output":
          this.toolOutput(data);
          break;
        case "tool_result":
          this.toolResult(data);
          break;
        case "run_completed":
        case "run_failed":
        case "run_canceled":
          summary.final = event.type;
          summary.endedAt = event.timestamp || null;
          for (const call of this.running) this.markEnded(call);
          this.container.append(this.finalCard(event.type, data));
          break;
        default:
          break; // an event type this console does not know yet: counted, not shown
      }
    }

    promptCard(data) {
      return el(
        "section",
        { class: "card", "aria-label": "Message" },
        el("h2", {}, "Message"),
        el("div", { class: "prompt" }, data.message || ""),
        el("p", { class: "empty" }, `model ${data.model || "?"} · at most ${data.max_iterations ?? "?"} iterations`),
      );
    }

    iteration(number) {
      let it = this.iterations.get(number);
      if (it) return it;
      const textNode = document.createTextNode("");
      const reasoningNode = document.createTextNode("");
      const reasoning = el("details", { class: "reasoning", hidden: true }, el("summary", {}, "Reasoning"), el("div", {}, reasoningNode));
      const modelInfo = el("span", { class: "model-info" });
      const section = el(
        "article",
        { class: "iteration", dataset: { iteration: String(number) }, "aria-label": `Iteration ${number}` },
        el("header", {}, el("strong", {}, `Iteration ${number}`), modelInfo),
        reasoning,
        el("div", { class: "model-text" }, textNode),
      );
      it = { number, section, textNode, reasoning, reasoningNode, modelInfo, streamed: false };
      this.iterations.set(number, it);
      this.summary.iterations = Math.max(this.summary.iterations, number);
      const final = this.container.querySelector(":scope > .final");
      this.container.insertBefore(section, final);
      return it;
    }

    modelResponse(data) {
      const it = this.iteration(data.iteration);
      if (!it.streamed && data.content) it.textNode.appendData(data.content);
      const usage = data.usage || {};
      this.summary.tokens += usage.total_tokens || 0;
      const parts = [];
      if (data.duration !== undefined && data.duration !== null) parts.push(`model ${fmt.duration(data.duration)}`);
      if (usage.total_tokens !== undefined)
        parts.push(`${usage.total_tokens} tokens (${usage.prompt_tokens ?? 0} in, ${usage.completion_tokens ?? 0} out)`);
      if (data.finish_reason) parts.push(`finish: ${data.finish_reason}`);
      it.modelInfo.textContent = parts.join(" · ");
    }

    toolCall(data) {
      const it = this.iteration(data.iteration);
      let args = null;
      try {
        args = JSON.parse(data.arguments || "{}");
      } catch (error) {
        args = null;
      }
      const key = TOOL_ARGUMENT[data.name];
      const code =
        args && key && typeof args[key] === "string" ? args[key] : args ? JSON.stringify(args, null, 2) : String(data.arguments);
      const timeout = args && typeof args.timeout === "number" ? `timeout ${args.timeout} s` : null;
      const badge = el("span", { class: "badge badge-run" }, "running");
      const info = el("span", { class: "tool-info" }, timeout || "");
      const output = el("pre", { class: "output", tabindex: "0", "aria-label": `Output of ${data.name}` });
      const block = el(
        "div",
        { class: "tool", dataset: { callId: data.id } },
        el("header", {}, el("span", { class: "tool-name" }, data.name), badge, info),
        el("pre", { class: "code", "aria-label": key || "arguments" }, el("code", {}, code)),
        output,
      );
      output.hidden = true;
      it.section.append(block);
      const call = { block, badge, info, output, streamed: 0, lines: 0, lastStream: null, lastNode: null, iteration: it };
      this.calls.set(data.id, call);
      this.running.add(call);
    }

    toolOutput(data) {
      const call = this.calls.get(data.tool_call_id);
      if (!call) return;
      call.output.hidden = false;
      if (call.lastStream !== data.stream) {
        call.lastNode = document.createTextNode("");
        call.output.append(data.stream === "stderr" ? el("span", { class: "stderr" }, call.lastNode) : call.lastNode);
        call.lastStream = data.stream;
      }
      call.lastNode.appendData(data.content);
      call.streamed += data.content.length;
    }

    toolResult(data) {
      const call = this.calls.get(data.tool_call_id);
      if (!call) return;
      this.running.delete(call);
      const replaced = call.streamed === 0 || data.truncated_bytes > 0;
      if (replaced) {
        call.output.replaceChildren();
        if (data.stdout) call.output.append(data.stdout);
        if (data.stderr) call.output.append(el("span", { class: "stderr" }, data.stderr));
        if (data.truncated_bytes > 0)
          call.output.append(el("span", { class: "stderr" }, `\n[${data.truncated_bytes} bytes cut from the middle]`));
      }
      call.output.hidden = !call.output.firstChild;
      const [label, kind] = this.outcome(data);
      call.badge.textContent = label;
      call.badge.className = `badge badge-${kind}`;
      const bits = [];
      if (data.duration !== undefined) bits.push(fmt.duration(data.duration));
      if (call.info.textContent) bits.push(call.info.textContent);
      call.info.textContent = bits.join(" · ");
      if (data.error) call.block.append(el("p", { class: "form-error" }, data.error));
      this.collapseIfLong(call);
    }

    outcome(data) {
      if (data.timed_out) return ["timed out", "warn"];
      if (data.oom_killed) return ["out of memory", "bad"];
      if (data.error && (data.returncode === null || data.returncode === undefined)) return ["not run", "bad"];
      const state = data.state_lost ? " · interpreter restarted" : "";
      if (data.returncode !== null && data.returncode !== undefined)
        return [`exit ${data.returncode}${state}`, data.returncode === 0 ? "ok" : "bad"];
      return [(data.success ? "ok" : "failed") + state, data.success ? "ok" : "bad"];
    }

    markEnded(call) {
      this.running.delete(call);
      if (call.badge.textContent === "running") {
        call.badge.textContent = "ended with the task";
        call.badge.className = "badge badge-warn";
      }
    }

    collapseIfLong(call) {
      const text = call.output.textContent;
      if (text.length < COLLAPSE_CHARS && text.split("\n", COLLAPSE_LINES + 1).length <= COLLAPSE_LINES) return;
      call.output.classList.add("collapsed");
      const toggle = el("button", { type: "button", class: "secondary more", "aria-expanded": "false" }, "Show all output");
      toggle.addEventListener("click", () => {
        const collapsed = call.output.classList.toggle("collapsed");
        toggle.textContent = collapsed ? "Show all output" : "Show less";
        toggle.setAttribute("aria-expanded", String(!collapsed));
      });
      call.output.after(toggle);
    }

    finalCard(type, data) {
      const kind = type.replace("run_", "");
      const summary = this.summary;
      const heading = { completed: "Completed", failed: "Failed", canceled: "Canceled" }[kind];
      const facts = [`${data.iterations ?? summary.iterations} iterations`];
      const tokens = data.usage ? data.usage.total_tokens : summary.tokens;
      facts.push(`${tokens} tokens`);
      if (summary.startedAt && summary.endedAt) facts.push(fmt.duration(summary.endedAt - summary.startedAt));
      return el(
        "section",
        { class: `final final-${kind}`, "aria-label": `Task ${kind}` },
        el("h2", {}, heading, " ", el("span", { class: "empty" }, facts.join(" · "))),
        data.error ? el("p", { class: "form-error" }, data.error) : null,
        data.reason ? el("p", {}, data.reason) : null,
        data.response ? el("div", { class: "answer" }, data.response) : null,
      );
    }
  }

  AW.Timeline = Timeline;
})();
