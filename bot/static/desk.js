// CrowdDesk agent desk. Talks only to /desk/api; sign-in and element helpers come from
// session.js and dom.js. Customer and bot text is always set with textContent, never innerHTML,
// so a message can't inject markup.
"use strict";

const API = "/desk/api";
const RECONNECT_MS = 3000;

const state = {
  queue: [],          // ticket views, with dueAt (local ms) added on arrival
  ticket: null,       // the open ticket's detail
  agents: [],         // colleagues a ticket can be transferred to: {id, name}
  events: null,       // the EventSource
  connects: 0,        // numbers each connect(), so a stale retry or ticket is dropped
};

const api = (method, path, body) => callApi(API, method, path, body);

// ---- session ---------------------------------------------------------------------------------

function leaveDesk() {
  if (state.events) state.events.close();
  state.connects += 1;  // cancels a pending reconnect
  Object.assign(state, { queue: [], ticket: null, agents: [], events: null });
  $("desk").hidden = true;
}

function start() {
  $("desk").hidden = false;
  showTicket(null);
  connect();
  loadAgents();
}

async function loadAgents() {
  try {
    const agents = await api("GET", "/agents");
    // Admins get every account with its role; editors can't take tickets.
    state.agents = agents.filter((a) => signedIn.session && a.id !== signedIn.session.agent.id && a.role !== "editor");
  } catch {
    state.agents = [];  // transfer to the queue still works
  }
  renderTransferTargets();
}

function renderTransferTargets() {
  const options = state.agents.map((a) => {
    const option = el("option", null, `${a.name} (${a.id})`);
    option.value = a.id;
    return option;
  });
  const queue = el("option", null, "the queue");
  queue.value = "";
  $("transfer-to").replaceChildren(queue, ...options);
}

// ---- live updates ----------------------------------------------------------------------------

// EventSource can't send headers and a URL gets logged, so every connection (each reconnect too)
// first trades the token, sent in a header, for a single-use stream ticket.
async function connect() {
  if (state.events) state.events.close();
  state.events = null;
  const attempt = ++state.connects;
  if (!signedIn.session) return;
  let streamTicket;
  try {
    streamTicket = (await api("POST", "/stream-ticket")).stream_ticket;
  } catch {
    // A 401 has ended the session already; anything else (server restarting): try again.
    setLive("reconnecting…", false);
    reconnectLater(attempt);
    return;
  }
  if (!signedIn.session || attempt !== state.connects) return;  // signed out, or connected anew
  const params = new URLSearchParams({ stream_ticket: streamTicket });
  if (state.ticket) params.set("ticket", state.ticket.id);
  const source = new EventSource(`${API}/stream?${params}`);
  state.events = source;
  source.addEventListener("open", () => setLive("live", true));
  source.addEventListener("queue", (event) => renderQueue(JSON.parse(event.data)));
  source.addEventListener("ticket", (event) => {
    const { id } = JSON.parse(event.data);
    if (state.ticket && state.ticket.id === id) refreshTicket();
  });
  source.addEventListener("signed-out", () => endSession(SESSION_ENDED));
  source.addEventListener("error", () => {
    // The browser's own retry would reuse the spent ticket: reconnect with a fresh one instead.
    source.close();
    setLive("reconnecting…", false);
    reconnectLater(attempt);
  });
}

function reconnectLater(attempt) {
  setTimeout(() => {
    if (attempt === state.connects) connect();
  }, RECONNECT_MS);
}

function setLive(text, ok) {
  $("live-status").textContent = text;
  $("live-status").classList.toggle("down", !ok);
}

// ---- queue -----------------------------------------------------------------------------------

function formatCountdown(ms) {
  const total = Math.round(Math.abs(ms) / 1000);
  const mm = String(Math.floor(total / 60)).padStart(2, "0");
  const ss = String(total % 60).padStart(2, "0");
  return `${ms < 0 ? "−" : ""}${mm}:${ss}`;
}

function tickCountdowns() {
  const now = Date.now();
  for (const node of document.querySelectorAll(".countdown")) {
    const left = Number(node.dataset.dueAt) - now;
    node.textContent = formatCountdown(left);
    node.classList.toggle("breached", left < 0);
    node.title = left < 0 ? "SLA breached" : "time left to the SLA";
  }
}

function renderQueue(tickets) {
  // Local due times from the server's seconds_to_due, so a skewed client clock doesn't matter.
  const received = Date.now();
  state.queue = tickets.map((t) => ({ ...t, dueAt: received + t.seconds_to_due * 1000 }));
  const list = $("queue-list");
  list.replaceChildren(...state.queue.map(queueItem));
  $("queue-count").textContent = `(${tickets.length})`;
  $("queue-empty").hidden = tickets.length > 0;
  tickCountdowns();
  if (!state.ticket) return;
  // The queue is re-sent when the SLA monitor flags a ticket; the open one's badge follows it.
  const open = state.queue.find((t) => t.id === state.ticket.id);
  if (open) renderSla($("ticket-sla"), open);
  else refreshTicket();
}

// The SLA monitor's flags, not the local countdown: a late first reply stays a breach, and
// "at risk" ends once someone has answered.
function slaFlag(ticket) {
  if (ticket.sla_breached_at) return { level: "breached", text: "SLA breached" };
  if (ticket.sla_warned_at && !ticket.first_response_at) return { level: "at-risk", text: "SLA at risk" };
  return null;
}

function renderSla(node, ticket) {
  const flag = slaFlag(ticket);
  node.hidden = !flag;
  node.className = flag ? `sla ${flag.level}` : "sla";
  node.textContent = flag ? flag.text : "";
}

function queueItem(ticket) {
  const item = el("li");
  const flag = slaFlag(ticket);
  const button = el("button", flag ? `queue-item sla-${flag.level}` : "queue-item");
  button.type = "button";
  button.dataset.ticketId = ticket.id;
  if (state.ticket && state.ticket.id === ticket.id) button.setAttribute("aria-current", "true");
  const top = el("span", "row");
  const countdown = el("span", "countdown");
  countdown.dataset.dueAt = String(ticket.dueAt);
  const badges = el("span", "badges");
  badges.append(el("span", `badge ${ticket.status}`, ticket.status === "assigned"
    ? `assigned · ${ticket.assigned_to}` : "queued"));
  if (flag) badges.append(el("span", `sla ${flag.level}`, flag.text));
  top.append(countdown, badges);
  const about = el("span", "row meta", [ticket.reason.replaceAll("_", " "), ticket.channel,
    ticket.priority === "high" ? "high priority" : null, ticket.sender_id].filter(Boolean).join(" · "));
  button.append(top, about, el("span", "summary", ticket.summary));
  button.addEventListener("click", () => openTicket(ticket.id));
  item.append(button);
  return item;
}

// ---- ticket ----------------------------------------------------------------------------------

function showTicket(detail) {
  state.ticket = detail;
  $("ticket-placeholder").hidden = Boolean(detail);
  $("ticket-detail").hidden = !detail;
  for (const button of document.querySelectorAll(".queue-item")) {
    button.toggleAttribute("aria-current", Boolean(detail) && button.dataset.ticketId === detail.id);
  }
}

async function openTicket(id) {
  try {
    const detail = await api("GET", `/tickets/${encodeURIComponent(id)}`);
    const switched = !state.ticket || state.ticket.id !== id;
    showTicket(detail);
    renderTicket(detail, switched);
    if (switched) {
      connect();  // watch this ticket's messages and notes
      loadAgents();  // colleagues added since sign-in become transfer targets
    }
  } catch (error) {
    $("ticket-error").textContent = error.message;
  }
}

function refreshTicket() {
  if (state.ticket) openTicket(state.ticket.id);
}

function mine(detail) {
  return detail.status === "assigned" &&
    (detail.assigned_to === signedIn.session.agent.id || signedIn.session.agent.role === "admin");
}

function renderTicket(detail, switched) {
  $("ticket-title").textContent = `Ticket ${detail.id}`;
  renderSla($("ticket-sla"), detail);
  const owner = detail.assigned_to ? `assigned to ${detail.assigned_to}` : detail.status;
  $("ticket-meta").textContent = [owner, detail.reason.replaceAll("_", " "), detail.channel,
    `customer ${detail.sender_id}`, `due ${new Date(detail.due_at).toLocaleTimeString()}`].join(" · ");
  const working = mine(detail);
  $("claim").disabled = detail.status !== "queued";
  for (const id of ["transfer-to", "transfer", "resolve", "send-reply", "reply"]) $(id).disabled = !working;
  renderTranscript(detail.messages, detail.undelivered);
  renderNotes(detail.notes);
  if (switched) {
    $("ticket-error").textContent = "";
    $("kb-status").textContent = "";
    $("reply").value = "";
    const asked = detail.messages.filter((m) => m.role === "customer").pop();
    $("kb-question").value = asked ? asked.text : "";
    renderPacket(detail.packet);
  }
}

// Messages the customer's platform refused for good follow the transcript, with the reason, so
// the agent knows they never arrived.
function renderTranscript(messages, undelivered) {
  const list = $("transcript");
  const clock = (date) => date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  list.replaceChildren(...messages.map((m) => {
    const item = el("li", `bubble ${m.role}`);
    item.append(el("span", "who", `${m.role} · ${clock(new Date(m.timestamp * 1000))}`),
      el("span", "text", m.text ?? ""));
    if (m.original_text) item.append(el("span", "as-sent", `as sent: ${m.original_text}`));
    return item;
  }), ...undelivered.map((u) => {
    const item = el("li", "bubble undelivered");
    item.append(el("span", "who", `not delivered · ${clock(new Date(u.created_at))}`),
      el("span", "text", u.text), el("span", "as-sent", u.error ?? ""));
    return item;
  }));
  list.scrollTop = list.scrollHeight;
}

function renderNotes(notes) {
  $("notes").replaceChildren(...notes.map((n) => {
    const item = el("li");
    item.append(el("span", "who", `${n.author} · ${new Date(n.created_at).toLocaleString()}`),
      el("span", "text", n.text));
    return item;
  }));
}

function renderPacket(packet) {
  $("packet-summary").textContent = packet.summary || "";
  const intent = packet.intent || {};
  $("packet-intent").textContent = intent.name
    ? `${intent.name} (${Math.round((intent.confidence || 0) * 100)}%)` : "none";
  const entities = packet.entities || [];
  $("packet-entities").replaceChildren(...(entities.length ? entities.map((e) =>
    el("li", null, `${e.entity}: ${e.value}`)) : [el("li", "empty", "none")]));
  const candidates = packet.kb_candidates || [];
  $("suggestions").replaceChildren(...(candidates.length ? candidates.map(suggestion)
    : [el("li", "empty", "No knowledge-base answer has enough evidence for this question.")]));
}

function suggestion(candidate) {
  const item = el("li", "suggestion");
  const head = el("div", "row");
  head.append(el("strong", null, candidate.title || candidate.id),
    el("span", "score", `confidence ${Math.round((candidate.confidence || 0) * 100)}% · score ${candidate.score}`));
  item.append(head);
  const link = safeLink(candidate.source_url);
  if (link) {
    const anchor = el("a", "source", link);
    anchor.href = link;
    anchor.target = "_blank";
    anchor.rel = "noopener noreferrer";
    item.append(anchor);
  }
  if (candidate.answer) {
    item.append(el("p", "answer", candidate.answer));
    const insert = el("button", "secondary insert", "Insert into reply");
    insert.type = "button";
    insert.setAttribute("aria-label", `Insert answer “${candidate.title || candidate.id}” into reply`);
    insert.addEventListener("click", () => insertIntoReply(candidate.answer));
    item.append(insert);
  }
  return item;
}

function insertIntoReply(text) {
  const reply = $("reply");
  reply.setRangeText(text, reply.selectionStart, reply.selectionEnd, "end");
  reply.focus();
}

// ---- actions ---------------------------------------------------------------------------------

async function act(work) {
  $("ticket-error").textContent = "";
  try {
    await work();
  } catch (error) {
    $("ticket-error").textContent = error.message;
  }
  refreshTicket();
}

function ticketPath(action) {
  return `/tickets/${encodeURIComponent(state.ticket.id)}/${action}`;
}

function wireActions() {
  $("claim").addEventListener("click", () => act(() => api("POST", ticketPath("claim"))));
  $("transfer").addEventListener("click", () => act(async () => {
    await api("POST", ticketPath("transfer"), { to_agent: $("transfer-to").value || null });
    $("transfer-to").value = "";
  }));
  $("resolve").addEventListener("click", () => act(() => api("POST", ticketPath("resolve"))));
  $("reply-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("reply").value.trim();
    if (!text) return;
    act(async () => {
      await api("POST", ticketPath("reply"), { text });
      $("reply").value = "";
    });
  });
  $("note-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("note").value.trim();
    if (!text) return;
    act(async () => {
      await api("POST", ticketPath("notes"), { text });
      $("note").value = "";
    });
  });
  $("kb-form").addEventListener("submit", (event) => {
    event.preventDefault();
    // The reply being written, or else the last one sent.
    const sent = state.ticket.messages.filter((m) => m.role === "agent").pop();
    const answer = $("reply").value.trim() || (sent ? sent.text : "");
    const question = $("kb-question").value.trim();
    if (!question || !answer) {
      $("ticket-error").textContent = "A KB entry needs a question and a reply to use as its answer.";
      return;
    }
    act(async () => {
      const saved = await api("POST", ticketPath("kb-suggestion"), { question, answer });
      $("kb-status").textContent = `Suggestion ${saved.id} sent to the knowledge-base editors.`;
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  wireActions();
  setInterval(tickCountdowns, 1000);
  // An editor's token gets the API's 403 here, shown instead of an empty desk.
  setUpSignIn({ probe: () => api("GET", "/tickets"), onStart: start, onEnd: leaveDesk });
});
