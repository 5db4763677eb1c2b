// The single page: a hash router over the Runs, Run and Compare views, and the project switcher.

import { listProjects } from "./api.js";
import { clearError, fill, h, showError } from "./dom.js";
import { mountCompare } from "./compare_page.js";
import { mountRun } from "./run_page.js";
import { mountRuns } from "./runs_page.js";

const PROJECT_KEY = "losslens.project";
const select = document.getElementById("project-select");
const root = document.getElementById("app");
let projects = [];
let unmount = null;

// Errors are shown in the page, not only in the console.
window.addEventListener("error", (e) => showError(`Unexpected error: ${e.message}`));
window.addEventListener("unhandledrejection", (e) => {
  if (e.reason && e.reason.name === "AbortError") return;
  showError(`Unexpected error: ${e.reason && e.reason.message ? e.reason.message : e.reason}`);
});

const app = {
  defaultProject() {
    const saved = localStorage.getItem(PROJECT_KEY);
    if (saved !== null && projects.some((p) => p.name === saved)) return saved;
    const recent = [...projects].sort((a, b) => String(b.last_activity).localeCompare(String(a.last_activity)))[0];
    return recent ? recent.name : "";
  },
  rememberProject(name) {
    localStorage.setItem(PROJECT_KEY, name);
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

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/runs";
  const [path, query] = raw.split("?");
  return { parts: path.split("/").filter(Boolean), params: new URLSearchParams(query || "") };
}

function route() {
  if (unmount) unmount();
  unmount = null;
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

// The page routes at once; the project list arrives in parallel (the runs page waits for it
// only when the URL names no project).
app.projectsReady = listProjects().then((list) => {
  projects = list;
  renderProjects();
  return list;
}, (err) => {
  showError(`Could not list projects: ${err.message}`);
  return [];
});
renderProjects();
window.addEventListener("hashchange", route);
route();
