// CrowdDesk knowledge-base console for editors. Talks only to /kb/api; sign-in and element
// helpers come from session.js and dom.js. Entry and customer text is set with textContent only.
"use strict";

const KB_API = "/kb/api";
const VIEWS = ["entries", "suggestions", "usage", "gaps"];
const USAGE_LIMIT = 50;
const OUTCOMES = { handoff: "handed off", unsure: "bot unsure", unhelpful: "marked not helpful" };

const kb = {
  entry: null,           // the open entry as the API gave it; null while writing a new one
  usageOrder: "served",  // or "unhelpful"
};

const api = (method, path, body) => callApi(KB_API, method, path, body);

// Ids hold "/" and ":" (faq/card_arrival, handoff:T1); the API takes them as a path.
function entryPath(id, action) {
  const path = `/entries/${id.split("/").map(encodeURIComponent).join("/")}`;
  return action ? `${path}/${action}` : path;
}

const when = (iso) => new Date(iso).toLocaleString();
const lines = (text) => text.split("\n").map((line) => line.trim()).filter(Boolean);
const plural = (count, noun) => `${count} ${noun}${count === 1 ? "" : "s"}`;

function statusBadge(status) {
  return el("span", `status ${status}`, status);
}

// One list's loading, empty and error states around fetching and rendering it.
async function load(statusId, fetchItems, render, emptyText) {
  const status = $(statusId);
  status.className = "empty";
  status.textContent = "Loading…";
  try {
    const items = await fetchItems();
    render(items);
    status.textContent = items.length ? "" : emptyText;
  } catch (error) {
    render([]);
    status.className = "error";
    status.textContent = error.message;
  }
}

// ---- views -----------------------------------------------------------------------------------

const LOADERS = {
  entries: () => searchEntries(),
  suggestions: () => loadSuggestions(),
  usage: () => loadUsage(),
  gaps: () => loadGaps(),
};

function showView(name) {
  for (const view of VIEWS) {
    $(`${view}-view`).hidden = view !== name;
    document.querySelector(`.tab[data-view="${view}"]`).toggleAttribute("aria-current", view === name);
  }
  // The view (never the token) in the address, so a reload comes back to it.
  history.replaceState(null, "", `#${name}`);
}

function openView(name) {
  showView(name);
  LOADERS[name]();
}

function start() {
  $("kb").hidden = false;
  const wanted = location.hash.slice(1);
  openView(VIEWS.includes(wanted) ? wanted : "entries");
  if (wanted !== "suggestions") {
    api("GET", "/suggestions").then(renderSuggestionCount, () => {});
  }
}

function leave() {
  kb.entry = null;
  $("kb").hidden = true;
  for (const id of ["entry-list", "history", "suggestion-list", "usage-rows", "gap-list"]) {
    $(id).replaceChildren();
  }
  $("entry-form").hidden = true;
  $("history-block").hidden = true;
  $("entry-placeholder").hidden = false;
}

// ---- entries ---------------------------------------------------------------------------------

function searchEntries(event) {
  if (event) event.preventDefault();
  const params = new URLSearchParams({ limit: "200" });
  const filters = { q: $("search-text").value.trim(), status: $("search-status").value,
    tag: $("search-tag").value.trim() };
  for (const [key, value] of Object.entries(filters)) if (value) params.set(key, value);
  return load("entries-status", () => api("GET", `/entries?${params}`),
    (entries) => $("entry-list").replaceChildren(...entries.map(entryItem)), "No entries match.");
}

function entryItem(entry) {
  const item = el("li");
  const button = el("button", "entry-item");
  button.type = "button";
  button.dataset.entryId = entry.id;
  if (kb.entry && kb.entry.id === entry.id) button.setAttribute("aria-current", "true");
  const top = el("span", "row");
  top.append(el("strong", "entry-id", entry.id), statusBadge(entry.status));
  button.append(top, el("span", "question", entry.questions[0] || ""));
  if (entry.tags.length) button.append(el("span", "tags", entry.tags.join(", ")));
  button.addEventListener("click", () => openEntry(entry.id));
  item.append(button);
  return item;
}

function clearEntryMessages() {
  $("entry-error").textContent = "";
  $("entry-done").textContent = "";
}

async function openEntry(id) {
  showView("entries");
  if (!$("entry-list").children.length) searchEntries();  // arrived from another view
  clearEntryMessages();
  try {
    const [entry, versions] = await Promise.all([api("GET", entryPath(id)), api("GET", entryPath(id, "history"))]);
    showEntry(entry, versions);
  } catch (error) {
    $("entry-error").textContent = error.message;
  }
}

function newEntry(questions) {
  showView("entries");
  clearEntryMessages();
  showEntry(null, []);
  $("entry-questions").value = questions.join("\n");
  $("entry-id").focus();
}

function usageLine(usage) {
  if (!usage) return "";
  const last = usage.last_served_at ? `, last ${when(usage.last_served_at)}` : "";
  return `Served ${plural(usage.served, "time")}${last} · ${usage.helpful} helpful · ${usage.unhelpful} unhelpful`;
}

function showEntry(entry, versions) {
  kb.entry = entry;
  const status = entry ? entry.status : "draft";
  $("entry-placeholder").hidden = true;
  $("entry-form").hidden = false;
  $("entry-title").textContent = entry ? entry.id : "New entry";
  $("entry-status").replaceChildren(statusBadge(status));
  $("entry-usage").textContent = usageLine(entry && entry.usage);
  $("entry-id-field").hidden = Boolean(entry);
  $("entry-id").value = "";
  $("entry-questions").value = entry ? entry.questions.join("\n") : "";
  $("entry-answer").value = entry ? entry.answer : "";
  $("entry-tags").value = entry ? entry.tags.join(", ") : "";
  $("entry-source").value = entry ? entry.source_url : "";
  $("entry-comment").value = "";
  $("save-entry").textContent = entry ? "Save" : "Create draft";
  $("publish-entry").hidden = !entry || status === "published";
  $("retire-entry").hidden = !entry || status === "retired";
  $("history-block").hidden = !entry;
  renderHistory(versions);
  for (const button of document.querySelectorAll(".entry-item")) {
    button.toggleAttribute("aria-current", Boolean(entry) && button.dataset.entryId === entry.id);
  }
}

function renderHistory(versions) {
  const latest = Math.max(0, ...versions.map((v) => v.version));
  $("history").replaceChildren(...versions.slice().reverse().map((v) => versionItem(v, v.version === latest)));
}

function versionItem(version, latest) {
  const item = el("li", "version");
  item.append(el("span", "who",
    `v${version.version} · ${version.action} · ${version.status} · by ${version.actor} · ${when(version.created_at)}`));
  if (version.comment) item.append(el("span", "comment", version.comment));
  const content = el("details");
  const questions = version.content.questions || [];
  content.append(el("summary", null, "Content"), el("p", "text", questions.join("\n")),
    el("p", "text answer", version.content.answer || ""));
  item.append(content);
  if (!latest) {
    const restore = el("button", "secondary", "Restore this version");
    restore.type = "button";
    restore.setAttribute("aria-label", `Restore version ${version.version}`);
    restore.addEventListener("click", () => entryChange(
      () => api("POST", entryPath(kb.entry.id, "restore"), { version: version.version, comment: $("entry-comment").value.trim() }),
      `Version ${version.version}'s content restored as a new version.`));
    item.append(restore);
  }
  return item;
}

// Make a change, then show the entry as it now is, its history and the list's badges.
async function entryChange(change, done) {
  clearEntryMessages();
  try {
    const entry = await change();
    await openEntry(entry.id);
    $("entry-done").textContent = done;
    searchEntries();
  } catch (error) {
    $("entry-error").textContent = error.message;
  }
}

function saveEntry(event) {
  event.preventDefault();
  const body = {
    questions: lines($("entry-questions").value),
    answer: $("entry-answer").value.trim(),
    tags: $("entry-tags").value.split(",").map((tag) => tag.trim()).filter(Boolean),
    source_url: $("entry-source").value.trim(),
    comment: $("entry-comment").value.trim(),
  };
  if (!body.questions.length || !body.answer) {
    $("entry-error").textContent = "An entry needs at least one question and an answer.";
    return;
  }
  if (kb.entry) {
    entryChange(() => api("PUT", entryPath(kb.entry.id), body), "Saved as a new version.");
  } else {
    entryChange(() => api("POST", "/entries", { ...body, id: $("entry-id").value.trim() }),
      "Draft created. Publish it when it is ready to be served.");
  }
}

function setStatus(action, done) {
  entryChange(() => api("POST", entryPath(kb.entry.id, action), { comment: $("entry-comment").value.trim() }), done);
}

// ---- suggestions -----------------------------------------------------------------------------

function renderSuggestionCount(suggestions) {
  $("suggestion-count").textContent = suggestions.length ? `(${suggestions.length})` : "";
}

function loadSuggestions() {
  return load("suggestions-status", () => api("GET", "/suggestions"), (suggestions) => {
    renderSuggestionCount(suggestions);
    $("suggestion-list").replaceChildren(...suggestions.map(suggestionCard));
  }, "No pending suggestions. Resolved hand-offs an agent answered appear here.");
}

function field(container, id, labelText, tag, value) {
  const label = el("label", null, labelText);
  label.htmlFor = id;
  const control = el(tag);
  control.id = id;
  control.value = value;
  container.append(label, control);
  return control;
}

function suggestionCard(suggestion) {
  const item = el("li", "card suggestion-card");
  const titleId = `suggestion-${suggestion.id}-title`;
  item.setAttribute("aria-labelledby", titleId);
  const title = el("h3", null, `Suggestion ${suggestion.id} · ticket ${suggestion.ticket_id}`);
  title.id = titleId;
  item.append(title, el("p", "meta", `answered by ${suggestion.agent} · proposed ${when(suggestion.created_at)}`));
  const questions = field(item, `suggestion-${suggestion.id}-questions`, "Questions (one per line)", "textarea",
    suggestion.questions.join("\n"));
  questions.rows = 3;
  const answer = field(item, `suggestion-${suggestion.id}-answer`, "Answer", "textarea", suggestion.answer);
  answer.rows = 5;
  const approve = el("button", null, "Approve and publish");
  approve.type = "button";
  const approveRow = el("div", "actions");
  approveRow.append(approve);
  item.append(approveRow);
  const reason = field(item, `suggestion-${suggestion.id}-reason`, "Reason to reject", "input", "");
  const reject = el("button", "secondary", "Reject");
  reject.type = "button";
  const rejectRow = el("div", "actions");
  rejectRow.append(reject);
  const error = el("p", "error");
  error.setAttribute("role", "alert");
  item.append(rejectRow, error);

  approve.addEventListener("click", () => review(error, async () => {
    const entry = await api("POST", `/suggestions/${suggestion.id}/approve`,
      { questions: lines(questions.value), answer: answer.value.trim() });
    return `Suggestion ${suggestion.id} published as entry ${entry.id}.`;
  }));
  reject.addEventListener("click", () => {
    if (!reason.value.trim()) {
      error.textContent = "Say why it is rejected: the reason is kept with the suggestion.";
      reason.focus();
      return;
    }
    review(error, async () => {
      await api("POST", `/suggestions/${suggestion.id}/reject`, { reason: reason.value.trim() });
      return `Suggestion ${suggestion.id} rejected.`;
    });
  });
  return item;
}

async function review(error, decide) {
  error.textContent = "";
  try {
    $("suggestions-done").textContent = await decide();
    $("suggestions-done").focus();  // the card and its buttons are gone; keep keyboard users on the outcome
    loadSuggestions();
  } catch (failure) {
    error.textContent = failure.message;
  }
}

// ---- usage -----------------------------------------------------------------------------------

function loadUsage() {
  for (const header of document.querySelectorAll("#usage-table th[data-order]")) {
    header.setAttribute("aria-sort", header.dataset.order === kb.usageOrder ? "descending" : "none");
  }
  const params = new URLSearchParams({ limit: String(USAGE_LIMIT), order: kb.usageOrder });
  return load("usage-status", () => api("GET", `/usage?${params}`), (rows) => {
    $("usage-table").hidden = !rows.length;
    $("usage-rows").replaceChildren(...rows.map(usageRow));
  }, "No entries yet.");
}

function usageRow(row) {
  const line = el("tr");
  const open = el("button", "link", row.entry_id);
  open.type = "button";
  open.addEventListener("click", () => openEntry(row.entry_id));
  const cells = [el("td"), el("td", null, row.question), el("td"), el("td", "num", row.served),
    el("td", "num", row.helpful), el("td", "num", row.unhelpful),
    el("td", null, row.last_served_at ? when(row.last_served_at) : "never")];
  cells[0].append(open);
  cells[2].append(statusBadge(row.status));
  line.append(...cells);
  return line;
}

// ---- gaps ------------------------------------------------------------------------------------

function loadGaps() {
  return load("gaps-status", () => api("GET", "/gaps"),
    (gaps) => $("gap-list").replaceChildren(...gaps.map(gapItem)),
    "No gaps: every question the bot handed off or was unsure about is covered by a published entry.");
}

function gapItem(gap) {
  const item = el("li", "card gap");
  const outcomes = Object.entries(gap.outcomes).map(([outcome, count]) => `${count} ${OUTCOMES[outcome] || outcome}`);
  const head = el("div", "row");
  head.append(el("strong", null, plural(gap.size, "question")),
    el("span", "meta", `${outcomes.join(", ")} · ${when(gap.first_seen)} – ${when(gap.last_seen)}`));
  const examples = el("ul", "examples");
  examples.setAttribute("aria-label", "Example questions");
  examples.append(...gap.examples.map((text) => el("li", null, text)));
  const write = el("button", "secondary", "Write an answer");
  write.type = "button";
  write.setAttribute("aria-label", `Write an answer to “${gap.examples[0] || ""}”`);
  write.addEventListener("click", () => newEntry(gap.examples));
  item.append(head, examples, write);
  return item;
}

// ---- wiring ----------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  for (const tab of document.querySelectorAll(".tab")) {
    tab.addEventListener("click", () => openView(tab.dataset.view));
  }
  $("search-form").addEventListener("submit", searchEntries);
  $("new-entry").addEventListener("click", () => newEntry([]));
  $("entry-form").addEventListener("submit", saveEntry);
  $("publish-entry").addEventListener("click", () => setStatus("publish", "Published: the bot serves it now."));
  $("retire-entry").addEventListener("click", () => setStatus("retire", "Retired: the bot no longer serves it."));
  for (const header of document.querySelectorAll("#usage-table th[data-order]")) {
    header.querySelector("button").addEventListener("click", () => {
      kb.usageOrder = header.dataset.order;
      loadUsage();
    });
  }
  // A role the API refuses gets its 403 reason ("editors only") instead of the console.
  setUpSignIn({ probe: () => api("GET", "/entries?limit=1"), onStart: start, onEnd: leave });
});
