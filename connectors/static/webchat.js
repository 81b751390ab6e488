// CrowdDesk web chat widget. Embed with one tag (no build step, nothing from a CDN):
//   <script src="https://HOST/webchat/widget.js" data-title="Ask us anything"></script>
// The widget lives in a shadow root so the host page's styles and ours never meet.
(() => {
  "use strict";

  const script = document.currentScript;
  const server = new URL(script.src);
  const title = script.dataset.title || "Chat with us";
  const SESSION_KEY = "crowddesk-webchat-session";
  const OPEN_KEY = "crowddesk-webchat-open";
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const MAX_RETRY_MS = 30000;
  const SPEAKERS = { customer: "You", bot: "Bot", agent: "Agent" };

  // crypto.randomUUID needs a secure context; third-party pages may be plain http.
  function uuid4() {
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // Storage can be disabled (privacy modes, sandboxed frames): the chat then lasts one page view.
  function recall(storage, key) {
    try { return window[storage].getItem(key); } catch (_) { return null; }
  }

  function remember(storage, key, value) {
    try { window[storage].setItem(key, value); } catch (_) { /* nothing to keep it in */ }
  }

  const saved = recall("localStorage", SESSION_KEY);
  const returning = saved !== null && UUID.test(saved);
  const session = returning ? saved : uuid4();

  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (name === "text") node.textContent = value;
      else node.setAttribute(name, value);
    }
    node.append(...children);
    return node;
  }

  // -- the widget's elements ------------------------------------------------------------------
  function chatIcon() {
    const svg = "http://www.w3.org/2000/svg";
    const icon = document.createElementNS(svg, "svg");
    const bubble = document.createElementNS(svg, "path");
    icon.setAttribute("viewBox", "0 0 24 24");
    icon.setAttribute("aria-hidden", "true");
    bubble.setAttribute("d", "M5 3h14a3 3 0 0 1 3 3v9a3 3 0 0 1-3 3h-8l-5 4v-4a3 3 0 0 1-3-3V6a3 3 0 0 1 3-3z");
    icon.append(bubble);
    return icon;
  }

  const host = el("div", { "data-crowddesk-webchat": "" });
  const root = host.attachShadow({ mode: "open" });
  const launcher = el("button", {
    type: "button", class: "launcher", "aria-expanded": "false", "aria-controls": "cdw-panel",
    "aria-label": `Open chat: ${title}`,
  }, chatIcon());
  const closeButton = el("button", { type: "button", class: "close", "aria-label": "Close chat", text: "×" });
  const status = el("p", { class: "status", role: "status" });
  const log = el("ol", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation" });
  const typing = el("p", { class: "typing", role: "status", hidden: "" },
    el("span", { class: "dots", "aria-hidden": "true" }, el("span"), el("span"), el("span")),
    el("span", { class: "typing-text", text: "Typing…" }));
  const problem = el("p", { class: "problem", role: "alert", hidden: "" });
  const input = el("textarea", { id: "cdw-input", rows: "1", maxlength: "4000", placeholder: "Type a message…" });
  const form = el("form", { class: "composer" },
    el("label", { for: "cdw-input", class: "visually-hidden", text: "Message" }), input,
    el("button", { type: "submit", class: "send", text: "Send" }));
  const panel = el("section", { id: "cdw-panel", class: "panel", role: "dialog", "aria-label": title, hidden: "" },
    el("header", {}, el("h2", { text: title }), closeButton), status, log, typing, problem, form);
  root.append(el("link", { rel: "stylesheet", href: new URL("/webchat/widget.css", server).href }),
    panel, launcher);

  // -- messages -------------------------------------------------------------------------------
  const pending = new Map(); // message_id → {frame, shown}: sent, not yet acknowledged
  let echoes = []; // the history's trailing bot/agent messages, which may also arrive live

  function safeLink(url) {
    try {
      const parsed = new URL(url);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (_) {
      return null;
    }
  }

  function render(message) {
    const speaker = message.role === "agent" && message.name ? message.name : SPEAKERS[message.role];
    const item = el("li", { class: `message ${message.role}` },
      el("span", { class: message.role === "agent" ? "speaker" : "speaker visually-hidden", text: `${speaker}: ` }),
      el("span", { class: "text", text: message.text }));
    if (message.message_id) item.dataset.messageId = message.message_id;
    const source = message.source && safeLink(message.source);
    if (source) {
      item.append(el("a", { class: "source", href: source, target: "_blank", rel: "noopener noreferrer", text: "Source" }));
    }
    if (message.buttons && message.buttons.length) {
      const group = el("div", { class: "buttons", role: "group", "aria-label": "Suggested replies" });
      for (const button of message.buttons) {
        const choice = el("button", { type: "button", class: "choice", text: button.title });
        choice.addEventListener("click", () => {
          disableChoices();
          say(button.payload, button.title);
        });
        group.append(choice);
      }
      item.append(group);
    }
    log.append(item);
    log.scrollTop = log.scrollHeight;
    return item;
  }

  // Only the newest message's buttons answer the conversation as it is now.
  function disableChoices() {
    for (const choice of log.querySelectorAll("button.choice")) choice.disabled = true;
  }

  function showCustomer(text, messageId) {
    const item = render({ role: "customer", text, message_id: messageId });
    if (pending.has(messageId)) item.classList.add("pending");
  }

  function say(text, shown) {
    const frame = { type: "message", message_id: uuid4(), text };
    pending.set(frame.message_id, { frame, shown: shown || text });
    echoes = [];
    problem.hidden = true;
    disableChoices();
    showCustomer(shown || text, frame.message_id);
    transmit(frame);
  }

  function showHistory(messages) {
    log.replaceChildren();
    const seen = new Set();
    for (const message of messages) {
      render(message);
      if (message.message_id) seen.add(message.message_id);
    }
    disableChoices();
    const last = log.lastElementChild;
    if (last) for (const choice of last.querySelectorAll("button.choice")) choice.disabled = false;
    const lastCustomer = messages.map((m) => m.role).lastIndexOf("customer");
    echoes = messages.slice(lastCustomer + 1);
    for (const [id, { frame, shown }] of pending) {
      if (seen.has(id)) {
        pending.delete(id);
      } else {
        showCustomer(shown, id);
        transmit(frame); // the server de-duplicates by message_id should it have arrived after all
      }
    }
  }

  function isEcho(message) {
    const index = echoes.findIndex((e) => e.role === message.role && e.text === message.text);
    if (index < 0) return false;
    echoes = echoes.slice(index + 1);
    return true;
  }

  function receive(frame) {
    if (frame.type === "history") {
      showHistory(frame.messages);
    } else if (frame.type === "message") {
      if (frame.role === "customer" && log.querySelector(`[data-message-id="${frame.message_id}"]`)) return;
      if (frame.role !== "customer" && isEcho(frame)) return;
      if (frame.role !== "customer") disableChoices();
      render(frame);
      if (panel.hidden && frame.role !== "customer") markUnread(true);
    } else if (frame.type === "typing") {
      typing.hidden = !frame.active;
    } else if (frame.type === "ack") {
      pending.delete(frame.message_id);
      const item = log.querySelector(`[data-message-id="${frame.message_id}"]`);
      if (item) item.classList.remove("pending");
    } else if (frame.type === "error") {
      if (frame.message_id) pending.delete(frame.message_id);
      problem.textContent = frame.reason;
      problem.hidden = false;
    }
  }

  // -- the connection -------------------------------------------------------------------------
  let socket = null;
  let retryMs = 1000;

  function transmit(frame) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  }

  function connect() {
    remember("localStorage", SESSION_KEY, session);
    const url = new URL(`/webhooks/webchat/ws?session=${session}`, server);
    url.protocol = server.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(url);
    socket.addEventListener("open", () => {
      retryMs = 1000;
      status.textContent = "";
    });
    socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
    socket.addEventListener("close", () => {
      typing.hidden = true;
      status.textContent = "Reconnecting…";
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
    });
  }

  // -- opening, closing, typing ----------------------------------------------------------------
  function markUnread(unread) {
    launcher.classList.toggle("unread", unread);
    launcher.setAttribute("aria-label", `Open chat: ${title}${unread ? " (new messages)" : ""}`);
  }

  function setOpen(open) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    remember("sessionStorage", OPEN_KEY, open ? "1" : "");
    if (open) {
      markUnread(false);
      log.scrollTop = log.scrollHeight;
      if (!socket) connect();
    }
  }

  launcher.addEventListener("click", () => {
    setOpen(panel.hidden);
    if (!panel.hidden) input.focus();
  });
  closeButton.addEventListener("click", () => { setOpen(false); launcher.focus(); });
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { setOpen(false); launcher.focus(); }
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); form.requestSubmit(); }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    say(text);
  });

  document.body.append(host);
  // A returning visitor's conversation (and any agent reply) is live before they open the panel.
  if (recall("sessionStorage", OPEN_KEY) === "1") setOpen(true);
  else if (returning) connect();
})();
