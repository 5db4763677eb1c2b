// The single page: the session (sign-in when the server asks for API keys), a hash router over
// the Runs, Run and Compare views, and the project switcher.

import { getSession, listProjects, signIn, signOut } from "./api.js";
import { clearError, fill, h, showError } from "./dom.js";
import { mountCompare } from "./compare_page.js";
import { mountRun } from "./run_page.js";
import { mountRuns } from "./runs_page.js";

const PROJECT_KEY = "losslens.project";
const select = document.getElementById("project-select");
const projectSwitch = document.getElementById("project-switch");
const projectFixed = document.getElementById("project-fixed");
const signOutBtn = document.getElementById("sign-out");
const nav = document.querySelector(".nav");
const root = document.getElementById("app");
let projects = [];
let unmount = null;
// null until the server said who we are; then {auth, project, grants}.
let session = null;

// Errors are shown in the page, not only in the console.
window.addEventListener("error", (e) => showError(`Unexpected error: ${e.message}`));
window.addEventListener("unhandledrejection", (e) => {
  if (e.reason && e.reason.name === "AbortError") return;
  showError(`Unexpected error: ${e.reason && e.reason.message ? e.reason.message : e.reason}`);
});

const app = {
  // The project of the signed-in key, or null (a key of every project, or auth off).
  get boundProject() {
    return session?.project ?? null;
  },
  can(grant) {
    return Boolean(session && session.grants.includes(grant));
  },
  defaultProject() {
    if (this.boundProject) return this.boundProject;
    const saved = localStorage.getItem(PROJECT_KEY);
    if (saved !== null && projects.some((p) => p.name === saved)) return saved;
    const recent = [...projects].sort((a, b) => String(b.last_activity).localeCompare(String(a.last_activity)))[0];
    return recent ? recent.name : "";
  },
  rememberProject(name) {
    if (!this.boundProject) localStorage.setItem(PROJECT_KEY, name);
  },
  // Show a project in the switcher (adding it if the list predates it) without navigating.
  showProject(name) {
    if (name && ![...select.options].some((o) => o.value === name)) select.append(h("option", { value: name }, name));
    select.value = name || "";
  },
};

function renderProjects() {
  const current = select.value;
  fill(select, h("option", { value: "" }, "All projects"),
    ...projects.map((p) => h("option", { value: p.name }, `${p.name} (${p.num_runs})`)));
  app.showProject(current);
}

select.addEventListener("change", () => {
  app.rememberProject(select.value);
  location.hash = `#/runs?project=${encodeURIComponent(select.value)}`;
});

// The top bar after sign-in: a key bound to one project shows it (no switching); a sign-out
// link when the server asks for keys at all.
function renderSession() {
  const signedIn = session !== null;
  nav.hidden = !signedIn;
  projectSwitch.hidden = !signedIn || Boolean(app.boundProject);
  projectFixed.hidden = !signedIn || !app.boundProject;
  if (app.boundProject) {
    fill(projectFixed, "Project ", h("b", {}, app.boundProject));
    projectFixed.title = `This API key belongs to project ${app.boundProject} (grants: ${session.grants.join(", ")})`;
  }
  signOutBtn.hidden = !signedIn || !session.auth;
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/runs";
  const [path, query] = raw.split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(query || "") };
}

function route() {
  if (unmount) unmount();
  unmount = null;
  if (session === null) return; // the sign-in form (or the session check) holds the page
  clearError();
  const { parts, params } = parseHash();
  const page = parts[0] || "runs";
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === page);
  window.scrollTo(0, 0);
  document.title = "Losslens";
  if (page === "run" && parts[1]) unmount = mountRun(root, decodeURIComponent(parts[1]), app);
  else if (page === "compare") unmount = mountCompare(root, params, app);
  else if (page === "runs") unmount = mountRuns(root, params, app);
  else {
    fill(root, h("div", { class: "empty" }, h("h2", {}, "Page not found"),
      h("p", {}, h("a", { href: "#/runs" }, "Go to the runs"))));
  }
}

// Signed in (or auth off): the project list, then the page the URL names. The page routes at
// once; the project list arrives in parallel (the runs page waits for it only when the URL
// names no project).
function enter(who) {
  session = who;
  projects = [];
  select.value = "";
  renderSession();
  renderProjects();
  app.projectsReady = listProjects().then((list) => {
    projects = list;
    renderProjects();
    return list;
  }, (err) => {
    showError(`Could not list projects: ${err.message}`);
    return [];
  });
  route();
}

function showSignIn(message = "") {
  if (unmount) unmount();
  unmount = null;
  session = null;
  renderSession();
  document.title = "Sign in · Losslens";
  const key = h("input", {
    type: "password", id: "api-key", name: "key", autocomplete: "off", spellcheck: "false",
    placeholder: "ll_…", required: true, "aria-describedby": "api-key-help",
  });
  const error = h("p", { class: "signin-error", id: "signin-error", role: "alert", hidden: !message }, message);
  const submit = h("button", { type: "submit", class: "primary", id: "sign-in" }, "Sign in");
  const form = h("form", { class: "signin", id: "signin-form" },
    h("h1", {}, "Sign in"),
    h("p", {}, "This Losslens server asks for an API key."),
    h("label", { for: "api-key" }, "API key"),
    key,
    h("p", { class: "hint-line", id: "api-key-help" },
      "Create one on the server with ", h("code", {}, "losslens keys create --project P --scope read"),
      " and paste the key it prints."),
    error,
    submit);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = key.value.trim();
    if (!value) return;
    submit.disabled = true;
    error.hidden = true;
    try {
      const who = await signIn(value);
      clearError();
      enter(who);
    } catch (err) {
      error.textContent = err.status === 401
        ? "This key is unknown or revoked. Check it, or create a new one."
        : `Could not sign in: ${err.message}`;
      error.hidden = false;
      submit.disabled = false;
      key.select();
    }
  });
  fill(root, form);
  key.focus();
}

signOutBtn.addEventListener("click", async () => {
  try {
    await signOut();
  } catch (err) {
    showError(`Could not sign out: ${err.message}`);
    return;
  }
  clearError();
  showSignIn();
});

// Any request answered 401 later (key revoked, cookie gone): back to the sign-in form.
document.addEventListener("losslens:unauthorized", () => {
  if (session === null || !session.auth) return;
  clearError();
  showSignIn("Your session ended (the key was revoked or the cookie expired). Sign in again.");
});

async function boot() {
  try {
    enter(await getSession());
  } catch (err) {
    if (err.status === 401) showSignIn();
    else {
      fill(root, h("div", { class: "empty" }, h("h2", {}, "The Losslens server does not answer"),
        h("p", {}, err.message), h("p", {}, h("button", { type: "button", onclick: boot }, "Try again"))));
    }
  }
}

window.addEventListener("hashchange", route);
boot();
