// CrowdDesk analytics dashboard, for every role. Talks only to /analytics/api; sign-in and element
// helpers come from session.js and dom.js. Charts arrive as SVG drawn by the server and are shown
// as images (the page's policy allows data: images, and an image runs no script); every text,
// customers' questions included, is set with textContent.
"use strict";

const ANALYTICS_API = "/analytics/api";
const DAY_MS = 24 * 60 * 60 * 1000;
const GAP_LIMIT = 10;
const NO_CONVERSATIONS = "No conversations in this period.";
// Figures for which a rise is bad news: their arrow keeps its direction but turns red.
const LOWER_IS_BETTER = new Set([
  "handoff_rate", "kb_not_helpful", "first_reply_p50_minutes", "first_reply_p90_minutes", "still_waiting",
  "sla_breaches",
]);
const CHART_NAMES = {
  automation: "Conversations per day", first_reply: "First human reply", sla: "SLA", queue: "Queue", csat: "CSAT",
};

const dashboard = { loads: 0 };  // numbers each load, so a slower earlier answer can't overwrite a newer one

const api = (path, params) => callApi(ANALYTICS_API, "GET", `${path}?${params}`);

// ---- period ----------------------------------------------------------------------------------

const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);
const nextDay = (day) => isoDay(Date.parse(`${day}T00:00:00Z`) + DAY_MS);

// The query for the chosen period (the API's default is the last 7 days); null while a custom
// period lacks a date.
function periodParams() {
  const params = new URLSearchParams();
  const choice = $("period").value;
  if (choice === "30") params.set("since", new Date(Date.now() - 30 * DAY_MS).toISOString());
  if (choice === "custom") {
    if (!$("since").value || !$("until").value) return null;
    params.set("since", $("since").value);
    // The page's "to" day is included; the API's until is not.
    params.set("until", nextDay($("until").value));
  }
  return params;
}

function showCustomDates() {
  const custom = $("period").value === "custom";
  $("custom-dates").hidden = !custom;
  if (custom) {
    const today = isoDay(Date.now());
    for (const id of ["since", "until"]) if (!$(id).value) $(id).value = today;
  }
}

const moment = (iso) => `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;

// ---- values ----------------------------------------------------------------------------------

function formatted(unit, value) {
  if (value === null || value === undefined) return "–";
  return {
    count: () => String(Math.round(value)),
    share: () => `${(value * 100).toFixed(1)}%`,
    minutes: () => `${value.toFixed(1)} min`,
    score: () => value.toFixed(2),
  }[unit]();
}

// "▲ +4", "▼ −12.5 pts": a share's change is in points.
function change(figure) {
  if (figure.change === null) return { text: "no comparison", tone: "flat" };
  const { unit } = figure;
  const amount = unit === "share" ? figure.change * 100 : figure.change;
  const digits = { count: 0, share: 1, minutes: 1, score: 2 }[unit];
  const size = Math.abs(amount).toFixed(digits);
  if (Number(size) === 0) return { text: "= no change", tone: "flat" };
  const rose = amount > 0;
  const good = rose !== LOWER_IS_BETTER.has(figure.name);
  const sign = rose ? "+" : "−";
  return { text: `${rose ? "▲" : "▼"} ${sign}${size}${unit === "share" ? " pts" : ""}`, tone: good ? "good" : "bad" };
}

// ---- loading ---------------------------------------------------------------------------------

function start() {
  $("dashboard").hidden = false;
  const role = signedIn.session.agent.role;
  $("agents-hint").textContent = role === "agent"
    ? "Tickets opened in the period that are assigned to you (colleagues' counts are for editors and admins)."
    : "Tickets opened in the period, by the agent they are assigned to.";
  load();
}

function leave() {
  dashboard.loads += 1;
  $("dashboard").hidden = true;
  for (const id of ["headline", "charts", "agent-rows", "unhelpful", "gaps", "gaps-chart"]) $(id).replaceChildren();
  $("period-shown").textContent = "";
  $("dashboard-status").textContent = "";
}

function showStatus(id, text, isError) {
  const status = $(id);
  status.className = isError ? "error" : "empty";
  status.setAttribute("role", isError ? "alert" : "status");
  status.textContent = text;
}

async function load(event) {
  if (event) event.preventDefault();
  const params = periodParams();
  if (!params) {
    showStatus("dashboard-status", "Pick both dates of the custom period.", true);
    return;
  }
  if ($("channel").value) params.set("channel", $("channel").value);
  const attempt = ++dashboard.loads;
  showStatus("dashboard-status", "Loading…");
  loadGaps(attempt, params);
  try {
    const view = await api("/scorecard", params);
    if (attempt !== dashboard.loads) return;
    render(view);
    const none = view.scorecard.current.volume.conversations === 0;
    showStatus("dashboard-status", none ? NO_CONVERSATIONS : "");
  } catch (error) {
    if (attempt === dashboard.loads && signedIn.session) showStatus("dashboard-status", error.message, true);
  }
}

async function loadGaps(attempt, params) {
  $("gaps").replaceChildren();
  $("gaps-chart").replaceChildren();
  if (!signedIn.session || signedIn.session.agent.role === "agent") {
    showStatus("gaps-status", "The gap report quotes customers from conversations of the whole team: "
      + "editors and admins read it.");
    return;
  }
  showStatus("gaps-status", "Grouping questions…");
  const gapParams = new URLSearchParams(params);
  gapParams.delete("channel");
  gapParams.set("limit", String(GAP_LIMIT));
  try {
    const gaps = await api("/gaps", gapParams);
    if (attempt !== dashboard.loads) return;
    $("gaps-chart").replaceChildren(chartFigure("gaps", gaps.chart, "Top gaps"));
    $("gaps").replaceChildren(...gaps.clusters.map(gapItem));
    const capped = gaps.clustered < gaps.questions ? ` (${gaps.note})` : "";
    showStatus("gaps-status", gaps.clusters.length
      ? `${gaps.questions} unanswered questions in this period${capped}.`
      : "No unanswered questions in this period.");
  } catch (error) {
    if (attempt === dashboard.loads && signedIn.session) showStatus("gaps-status", error.message, true);
  }
}

// ---- rendering -------------------------------------------------------------------------------

function render(view) {
  const { period, previous_period: previous } = view.scorecard;
  $("period-shown").textContent = `${moment(period.since)} to ${moment(period.until)} UTC, `
    + `${period.channel ? `channel ${period.channel}` : "all channels"}; `
    + `compared with ${moment(previous.since)} to ${moment(previous.until)}`;
  renderChannels(view.channels);
  $("headline").replaceChildren(...view.headline.map(headlineCard));
  $("charts").replaceChildren(
    ...Object.entries(view.charts).map(([name, svg]) => chartFigure(name, svg, CHART_NAMES[name] || name)));
  const people = view.scorecard.current.people;
  const agents = Object.entries(people.tickets_per_agent);
  $("agent-rows").replaceChildren(...agents.map(([agent, tickets]) => agentRow(agent, tickets)));
  $("agents-empty").hidden = agents.some(([, tickets]) => tickets > 0);
  const unhelpful = view.scorecard.current.content.most_unhelpful;
  $("unhelpful").replaceChildren(...unhelpful.map(unhelpfulItem));
  $("unhelpful-empty").hidden = unhelpful.length > 0;
}

function renderChannels(channels) {
  const select = $("channel");
  const chosen = select.value;
  const options = [el("option", null, "All channels"), ...channels.map((name) => el("option", null, name))];
  options[0].value = "";
  select.replaceChildren(...options);
  select.value = channels.includes(chosen) ? chosen : "";
}

function headlineCard(figure) {
  const card = el("li", "metric");
  card.dataset.metric = figure.name;
  const shift = change(figure);
  const delta = el("span", `change ${shift.tone}`, shift.text);
  card.append(el("span", "label", figure.label), el("strong", "value", formatted(figure.unit, figure.current)),
    delta, el("span", "previous", `previous: ${formatted(figure.unit, figure.previous)}`));
  return card;
}

// The chart's title, the first <title> of its SVG, read as text: parsing the SVG in the page
// would apply its inline styles, which the policy refuses.
function chartTitle(svg) {
  const match = /<title>([^<]*)<\/title>/.exec(svg);
  if (!match) return null;
  const entities = { "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'", "&apos;": "'", "&amp;": "&" };
  return match[1].replace(/&(lt|gt|quot|#39|apos|amp);/g, (entity) => entities[entity]);
}

// The chart's own title (drawn in the SVG) is its text alternative.
function chartFigure(name, svg, fallback) {
  const image = el("img");
  image.alt = chartTitle(svg) || fallback;
  image.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
  const figure = el("figure", "chart");
  figure.dataset.chart = name;
  figure.append(image);
  return figure;
}

// The scorecard's key for tickets nobody claimed.
const UNASSIGNED = "(none)";

function agentRow(agent, tickets) {
  const row = el("tr");
  row.append(el("td", null, agent === UNASSIGNED ? "not claimed yet" : agent), el("td", "num", tickets));
  return row;
}

function unhelpfulItem(entry) {
  const item = el("li");
  item.append(el("strong", "entry-id", entry.entry_id), el("span", "question", entry.question),
    el("span", "meta", `${entry.not_helpful} × Not helpful`));
  return item;
}

function gapItem(gap) {
  const item = el("li");
  item.append(el("strong", null, `${gap.size} question${gap.size === 1 ? "" : "s"}`),
    el("span", "question", gap.examples.join(" · ")));
  return item;
}

// ---- wiring ----------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("filters").addEventListener("submit", load);
  $("period").addEventListener("change", () => {
    showCustomDates();
    load();
  });
  $("channel").addEventListener("change", () => load());
  // Every role reads the dashboard, so there is no role to probe for.
  setUpSignIn({ probe: async () => {}, onStart: start, onEnd: leave });
});
