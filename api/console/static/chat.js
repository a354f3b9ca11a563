// The /chat playground: POST /chat, then its logs turned into the task events the timeline reads
// (model_response, tool_call, tool_result, the final event), so both pages show runs alike.
"use strict";

AW.ready(() => {
  const { api, fmt } = AW;
  const state = document.getElementById("chat-state");
  const timeline = new AW.Timeline(document.getElementById("timeline"));

  function* events(message, answer) {
    yield { type: "run_started", data: { message, model: "default", max_iterations: answer.max_iterations } };
    let iteration = 0;
    for (const entry of answer.logs) {
      if (entry.iteration !== iteration) {
        iteration = entry.iteration;
        yield { type: "iteration_started", data: { iteration } };
      }
      if (entry.response) {
        const calls = (entry.response.tool_calls || []).map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments }));
        yield { type: "model_response", data: { iteration, ...entry.response, tool_calls: calls } };
      } else if (entry.tool_call) {
        yield { type: "tool_call", data: { iteration, ...entry.tool_call } };
        yield { type: "tool_result", data: { iteration, tool_call_id: entry.tool_call.id, name: entry.tool_call.name, ...entry.result } };
      }
    }
    const end = { response: answer.response, iterations: answer.iterations, usage: answer.usage };
    yield answer.error
      ? { type: "run_failed", data: { ...end, error: answer.error } }
      : { type: "run_completed", data: end };
  }

  const message = () => document.getElementById("chat-message").value.trim();
  const maxIterations = () => Number(document.getElementById("chat-iterations").value);
  AW.sendForm(document.getElementById("chat-form"), {
    check: () => {
      if (!message()) return "Enter a message.";
      const max = maxIterations();
      return Number.isInteger(max) && max >= 1 && max <= 20 ? "" : "Max iterations is a whole number from 1 to 20.";
    },
    send: async () => {
      timeline.reset();
      state.textContent = "Running… (the answer comes when the run ends)";
      try {
        const answer = await api("/chat", { method: "POST", json: { message: message(), max_iterations: maxIterations() } });
        for (const e of events(message(), { ...answer, max_iterations: maxIterations() })) timeline.push(e);
        const outcome = answer.error ? `Failed: ${answer.error}` : "Done";
        state.textContent = `${outcome} · ${answer.iterations} iterations · ${answer.usage.total_tokens} tokens · ${fmt.duration(answer.processing_time)}`;
      } catch (error) {
        state.textContent = "";
        throw error;
      }
    },
  });
});
