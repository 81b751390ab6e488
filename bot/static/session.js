// The sign-in both consoles share (/desk for agents, /kb for editors): the desk API's POST /login
// gives a token, kept in sessionStorage (never in a URL) and revoked on sign-out. Each console
// names an API call only its roles may make; a 403 there shows the API's reason instead.
"use strict";

const DESK_API = "/desk/api";
const SESSION_KEY = "crowddesk.desk.session";
const SESSION_ENDED = "Your session has ended; please sign in again.";

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

const signedIn = {
  session: null,  // {token, agent: {id, name, role}}
  app: null,      // the console: {probe(), onStart(session), onEnd()}
};

// `base` + `path` with the session's token; an error carries the API's reason and status.
async function callApi(base, method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (signedIn.session) headers.Authorization = `Bearer ${signedIn.session.token}`;
  const response = await fetch(base + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401 && signedIn.session) endSession(SESSION_ENDED);
  if (!response.ok) {
    throw new ApiError(data.error || `${method} ${path} failed (${response.status})`, response.status);
  }
  return data;
}

function storedSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY));
  } catch {
    return null;
  }
}

async function signIn(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  try {
    const session = await callApi(DESK_API, "POST", "/login", {
      agent_id: $("agent-id").value.trim(), password: $("password").value,
    });
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
    $("password").value = "";
    await enter(session);
  } catch (error) {
    $("login-error").textContent = error.message;
  }
}

async function enter(session) {
  signedIn.session = session;
  $("login").hidden = true;
  $("session").hidden = false;
  $("signed-in-as").textContent = `${session.agent.name} (${session.agent.id})`;
  try {
    await signedIn.app.probe();
  } catch (error) {
    if (error.status === 403) {
      // Signed in, but this console is for other roles: say so and offer Sign out.
      $("forbidden-reason").textContent = error.message;
      $("forbidden").hidden = false;
      return;
    }
    if (!signedIn.session) return;  // a 401 has signed out already
    // Anything else (the server restarting, say) is the console's to show; it starts anyway.
  }
  signedIn.app.onStart(session);
}

function endSession(message) {
  sessionStorage.removeItem(SESSION_KEY);
  signedIn.session = null;
  signedIn.app.onEnd();
  $("session").hidden = true;
  $("forbidden").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = typeof message === "string" ? message : "";
  $("agent-id").focus();
}

async function signOutButton() {
  const token = signedIn.session && signedIn.session.token;
  endSession("");
  if (!token) return;
  // Revoke the token on the server too, so a copy of it can't outlive the session.
  await fetch(`${DESK_API}/logout`, { method: "POST", headers: { Authorization: `Bearer ${token}` } })
    .catch(() => {});
}

function input(id, name, type, autocomplete) {
  const node = el("input");
  Object.assign(node, { id, name, type, autocomplete, required: true });
  return node;
}

// The form inside the page's #login; its id field's label is the page's data-id-label.
function renderSignInForm() {
  const section = $("login");
  const title = el("h2", null, "Sign in");
  title.id = "login-title";
  const form = el("form");
  form.id = "login-form";
  const idLabel = el("label", null, section.dataset.idLabel);
  idLabel.htmlFor = "agent-id";
  const passwordLabel = el("label", null, "Password");
  passwordLabel.htmlFor = "password";
  const submit = el("button", null, "Sign in");
  submit.type = "submit";
  const error = el("p", "error");
  error.id = "login-error";
  error.setAttribute("role", "alert");
  form.append(idLabel, input("agent-id", "agent_id", "text", "username"),
    passwordLabel, input("password", "password", "password", "current-password"), submit, error);
  section.replaceChildren(title, form);
}

// Wire the sign-in form and Sign out for `app`, and resume a session kept by this tab.
function setUpSignIn(app) {
  signedIn.app = app;
  renderSignInForm();
  $("login-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOutButton);
  const session = storedSession();
  if (session) enter(session);
}
