// The chat page: one EventSource per question, each chunk appended to the model's bubble.
//
// Events from GET /chat/stream (see quickstart_helpers/web.py):
//   unnamed "message" events: one per model chunk; the data is the chunk's text;
//   "done": the answer is complete (data "[DONE]");
//   "error": the model call failed; the data is a readable message.
//   "started" (only when the relay asks the Interactions API): the stream is resumable.
// An EventSource reconnects on its own when a stream ends, which would ask the
// question again, so the page closes it on "done" and on every error, except when
// the stream is resumable: its events carry ids, and a reconnecting EventSource sends
// the last one back (Last-Event-ID), so the server continues after it instead.
// A failure shows the server's one-paragraph reason as a note; when no text arrived,
// the note takes the place of the empty answer bubble.
"use strict";

const log = document.getElementById("log");
const form = document.getElementById("ask");
const input = document.getElementById("message");
const sendButton = document.getElementById("send");
const statusLine = document.getElementById("status");

function addBubble(role, text) {
  const bubble = document.createElement("div");
  bubble.className = `bubble ${role}`;
  bubble.textContent = text;
  log.appendChild(bubble);
  bubble.scrollIntoView({ block: "end" });
  return bubble;
}

function addNote(text) {
  const note = document.createElement("p");
  note.className = "note";
  note.textContent = text;
  log.appendChild(note);
  return note;
}

// The stream was refused before it started (EventSource cannot read the response
// body): ask again with fetch to read the server's JSON reason.
async function refusalReason(url) {
  const controller = new AbortController();
  try {
    const response = await fetch(url, { signal: controller.signal });
    if (!response.ok) {
      // Every refusal is JSON {"error", "reason"}; anything else still gets a status line.
      const body = await response.json().catch(() => ({}));
      return body.reason || `The server answered ${response.status}.`;
    }
    controller.abort(); // it would have streamed after all: stop it
    return "The stream could not be opened; try again.";
  } catch (err) {
    return "The chat server cannot be reached. Is `quickstart serve` still running?";
  }
}

// Reconnections tried for one answer before the page gives up.
const MAX_RECONNECTS = 5;

function ask(question) {
  addBubble("user", question);
  const bubble = addBubble("model", "");
  bubble.classList.add("streaming");
  bubble.dataset.chunks = "0";
  sendButton.disabled = true;
  statusLine.textContent = "Streaming…";

  const url = `/chat/stream?${new URLSearchParams({ message: question })}`;
  const source = new EventSource(url);
  let opened = false;
  let resumable = false;
  let reconnects = 0;

  const finish = (state, text) => {
    source.close();
    bubble.classList.remove("streaming");
    bubble.classList.add(state);
    bubble.dataset.state = state;
    sendButton.disabled = false;
    statusLine.textContent = text;
    input.focus();
  };
  // A failure: the reason as a note under the question, or under the partial answer.
  const fail = (reason, text) => {
    if (bubble.dataset.chunks === "0" && bubble.textContent === "") {
      bubble.remove(); // nothing arrived: no empty bubble above the reason
    }
    addNote(reason).scrollIntoView({ block: "end" });
    finish("failed", text);
  };

  source.onopen = () => {
    opened = true;
    statusLine.textContent = reconnects ? "Reconnected; streaming…" : "Streaming…";
  };
  source.addEventListener("started", (event) => {
    resumable = event.lastEventId !== "";
  });
  source.onmessage = (event) => {
    resumable = resumable || event.lastEventId !== "";
    bubble.textContent += event.data;
    bubble.dataset.chunks = String(Number(bubble.dataset.chunks) + 1);
    bubble.scrollIntoView({ block: "end" });
  };
  source.addEventListener("done", () => {
    finish("completed", `Done: ${bubble.dataset.chunks} chunks.`);
  });
  source.addEventListener("error", async (event) => {
    if (typeof event.data === "string") {
      // A named "error" event sent by the server: the model call failed.
      const partial = bubble.dataset.chunks !== "0";
      fail(
        event.data,
        partial ? "The answer failed; the text received so far is kept." : "No answer."
      );
    } else if (
      resumable &&
      source.readyState === EventSource.CONNECTING &&
      reconnects < MAX_RECONNECTS
    ) {
      // The connection dropped mid-answer: the EventSource reconnects by itself and
      // sends the last event id, so the answer continues where it stopped.
      reconnects += 1;
      bubble.dataset.reconnects = String(reconnects);
      statusLine.textContent = "Connection lost; reconnecting…";
    } else if (!opened) {
      source.close();
      fail(await refusalReason(url), "The question was not sent.");
    } else {
      fail(
        "The connection to the chat server was lost.",
        "Connection lost; the text received so far is kept."
      );
    }
  });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const question = input.value;
  if (!question.trim()) {
    statusLine.textContent = "Type a question first.";
    return;
  }
  input.value = "";
  ask(question);
});

input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    form.requestSubmit();
  }
});
