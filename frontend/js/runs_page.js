// The runs of a project: status (live), last loss values, diagnosis badges; search, filters,
// sorting (on the server where it can), and a selection to compare.

import { listRuns, num } from "./api.js";
import { clear, clearError, fill, emptyState, fmtAgo, fmtCount, fmtNum, h, showError, statusPill } from "./dom.js";
import { badge } from "./diagnoses.js";
import { compareHref, selected, setSelected, toggle } from "./selection.js";

const FIRST = 200;
const LIMIT = 1000;
const POLL_MS = 2000;
// The page shows these keys' last values: the server summarises only them (not every key of
// every run).
const SUMMARY_KEYS = ["loss", "val/loss"];

function lastStep(r) {
  let best = null;
  for (const s of Object.values(r.summary || {})) if (s.last_step !== null && (best === null || s.last_step > best)) best = s.last_step;
  return best;
}

function lastOf(r, key) {
  const s = r.summary?.[key];
  return s ? num(s.last_value) : null;
}

const SEVERITY_WEIGHT = { critical: 1e6, warning: 1e3, info: 1 };

// How bad a run's diagnoses are: critical ones first, then warnings, then hints.
function badgeScore(r) {
  return (r.badges || []).reduce((acc, b) => acc + (SEVERITY_WEIGHT[b.severity] ?? 1) * (b.count || 1), 0);
}

// Sortable columns. Those with `server` are sorted by the server over every matching run; the
// others (values the server cannot sort by) in the browser over the runs loaded. Non-finite and
// missing values sort last in either direction.
const COLUMNS = [
  { id: "status", label: "Status", server: "status", get: (r) => r.status },
  { id: "name", label: "Name", server: "name", get: (r) => r.name },
  { id: "diagnoses", label: "Diagnoses", get: badgeScore, first: -1, what: "diagnoses" },
  { id: "loss", label: "loss", get: (r) => lastOf(r, "loss"), numeric: true, what: "last loss" },
  { id: "val_loss", label: "val/loss", get: (r) => lastOf(r, "val/loss"), numeric: true, what: "last val/loss" },
  { id: "step", label: "Step", get: (r) => lastStep(r), numeric: true, what: "last step",
    note: "the last step of loss or val/loss" },
  { id: "points", label: "Points", server: "num_points", get: (r) => r.num_points, numeric: true, first: -1 },
  { id: "created", label: "Created", server: "created_at", get: (r) => r.created_at, first: -1 },
];

function compareBy(col, dir) {
  return (a, b) => {
    const x = col.get(a);
    const y = col.get(b);
    const bad = (v) => v === null || v === undefined || (typeof v === "number" && !Number.isFinite(v));
    if (bad(x) || bad(y)) return bad(x) - bad(y);
    return (x < y ? -1 : x > y ? 1 : 0) * dir;
  };
}

function columnTitle(c) {
  const what = c.note ? `${c.label}: ${c.note}. ` : "";
  if (c.server) return `${what}Sort every matching run by ${c.label.toLowerCase()} (the server sorts).`;
  return `${what}Sorts only the runs loaded in this page (up to ${LIMIT.toLocaleString()}):`
    + ` the server cannot sort by ${c.what}.`;
}

// The server's order in words, for the notice under a partial list.
function orderText(sort) {
  const desc = sort.startsWith("-");
  const field = sort.replace(/^-/, "");
  if (field === "created_at") return desc ? "the newest" : "the oldest";
  if (field === "updated_at") return desc ? "the most recently updated" : "the least recently updated";
  if (field === "num_points") return desc ? "those with the most points" : "those with the fewest points";
  return `the first by ${field}${desc ? ", descending" : ""}`;
}

function parseSort(text) {
  const dir = text.startsWith("-") ? -1 : 1;
  const col = COLUMNS.find((c) => c.id === text.replace(/^-/, ""));
  return col ? { col: col.id, dir } : null;
}

function serverSortOf(sort) {
  const col = COLUMNS.find((c) => c.id === sort.col);
  return col?.server ? `${sort.dir < 0 ? "-" : ""}${col.server}` : null;
}

function valueCell(v, step) {
  if (v === null) return h("td", { class: "num muted" }, "–");
  const bad = !Number.isFinite(v);
  return h("td", { class: `num ${bad ? "nonfinite" : ""}`, title: step !== null ? `last value, at step ${step}` : null }, fmtNum(v));
}

export function mountRuns(root, params, app) {
  const sort = parseSort(params.get("sort") || "") || { col: "created", dir: -1 };
  const state = {
    // A key bound to one project sees only that one.
    project: app.boundProject || params.get("project") || "",
    q: params.get("q") || "",
    status: params.get("status") || "",
    tag: params.get("tag") || "",
    sort,
    // The order the server lists runs in (the newest first unless a server column is sorted).
    serverSort: serverSortOf(sort) || "-created_at",
    runs: [],
    total: 0,
    tags: new Set(),
  };
  let timer = null;
  let stopped = false;
  let inflight = null;
  const rows = new Map();

  const search = h("input", { type: "search", placeholder: "Search run names…", value: state.q, "aria-label": "Search run names", id: "run-search" });
  const statusSel = h("select", { "aria-label": "Status", id: "status-filter" },
    ["", "running", "finished", "failed", "crashed"].map((s) => h("option", { value: s }, s || "any status")));
  statusSel.value = state.status;
  const tagSel = h("select", { "aria-label": "Tag", id: "tag-filter" });
  const compareBtn = h("a", { class: "button primary", id: "compare-selected" });
  const clearSel = h("button", { type: "button", class: "link" }, "clear selection");
  const counter = h("span", { class: "muted" });
  const notice = h("p", { class: "notice", hidden: true });
  const thead = h("thead");
  const tbody = h("tbody");
  const table = h("table", { class: "runs", id: "runs-table" }, thead, tbody);
  const body = h("div", { class: "runs-body" }, table, notice);
  const projectText = h("span", { class: "muted" });
  fill(root, h("div", { class: "page" },
    h("div", { class: "page-head" }, h("h1", {}, "Runs"), projectText, counter),
    h("div", { class: "toolbar" }, search, statusSel, tagSel, h("span", { class: "spacer" }), clearSel, compareBtn),
    body));

  function syncUrl() {
    const sp = new URLSearchParams();
    sp.set("project", state.project);
    for (const k of ["q", "status", "tag"]) if (state[k]) sp.set(k, state[k]);
    if (state.sort.col !== "created" || state.sort.dir !== -1) sp.set("sort", `${state.sort.dir < 0 ? "-" : ""}${state.sort.col}`);
    history.replaceState(null, "", `#/runs?${sp}`);
  }

  function renderTags() {
    for (const r of state.runs) for (const t of r.tags) state.tags.add(t);
    if (state.tag) state.tags.add(state.tag);
    fill(tagSel, h("option", { value: "" }, "any tag"),
      [...state.tags].sort().map((t) => h("option", { value: t }, t)));
    tagSel.value = state.tag;
  }

  function renderSelection() {
    const ids = selected();
    compareBtn.textContent = ids.length ? `Compare selected (${ids.length})` : "Compare selected";
    compareBtn.href = ids.length ? compareHref(ids) : "#/compare";
    compareBtn.classList.toggle("disabled", ids.length === 0);
    clearSel.hidden = ids.length === 0;
    for (const [id, row] of rows) row.box.checked = ids.includes(id);
  }

  function renderHead() {
    const ths = COLUMNS.map((c) => {
      const active = state.sort.col === c.id;
      const arrow = active ? (state.sort.dir > 0 ? " ▲" : " ▼") : "";
      const sort = active ? (state.sort.dir > 0 ? "ascending" : "descending") : null;
      return h("th", {
        class: `${c.numeric ? "num" : ""} sortable ${c.server ? "server-sort" : "page-sort"}`,
        "aria-sort": sort, dataset: { col: c.id },
      },
      h("button", { type: "button", class: "th-btn", title: columnTitle(c), onclick: () => {
        state.sort = { col: c.id, dir: active ? -state.sort.dir : c.first || 1 };
        renderHead();
        syncUrl();
        const server = serverSortOf(state.sort);
        if (server && server !== state.serverSort) {
          state.serverSort = server;
          refresh();
        } else renderRows();
      } }, c.label, arrow));
    });
    fill(thead, h("tr", {}, h("th", { class: "select-col" }, ""), ths));
  }

  function rowFor(r) {
    const sig = JSON.stringify([r.status, r.name, r.tags, r.badges, r.summary?.loss, r.summary?.["val/loss"], r.num_points, r.created_at]);
    const old = rows.get(r.id);
    if (old && old.sig === sig) return old;
    const box = h("input", { type: "checkbox", "aria-label": `select ${r.name} for comparison`, checked: selected().includes(r.id) });
    box.addEventListener("change", () => toggle(r.id, box.checked));
    const step = lastStep(r);
    const tr = h("tr", { dataset: { runId: r.id, status: r.status } },
      h("td", { class: "select-col" }, box),
      h("td", {}, statusPill(r.status)),
      h("td", { class: "name-cell" },
        h("a", { href: `#/run/${encodeURIComponent(r.id)}`, class: "run-link" }, r.name),
        r.tags.length ? h("div", { class: "tags" }, r.tags.map((t) => h("button", {
          type: "button", class: "tag", title: `show runs tagged ${t}`, onclick: () => setFilter("tag", t),
        }, t))) : null),
      h("td", {}, h("div", { class: "badges" }, (r.badges || []).map((b) => badge(b)))),
      valueCell(lastOf(r, "loss"), r.summary?.loss?.last_step ?? null),
      valueCell(lastOf(r, "val/loss"), r.summary?.["val/loss"]?.last_step ?? null),
      h("td", { class: "num" }, step === null ? "–" : step.toLocaleString()),
      h("td", { class: "num", title: `${r.num_points.toLocaleString()} points stored` }, fmtCount(r.num_points)),
      h("td", { class: "muted", title: new Date(r.created_at).toLocaleString() }, fmtAgo(r.created_at)));
    const row = { tr, sig, box };
    rows.set(r.id, row);
    return row;
  }

  function renderRows() {
    // A server column: the server's order as it came; another: sorted here over what is loaded.
    const col = COLUMNS.find((c) => c.id === state.sort.col);
    const sorted = col.server ? state.runs : [...state.runs].sort(compareBy(col, state.sort.dir));
    const live = new Set(sorted.map((r) => r.id));
    for (const id of [...rows.keys()]) if (!live.has(id)) rows.delete(id);
    const frag = document.createDocumentFragment();
    for (const r of sorted) frag.appendChild(rowFor(r).tr);
    clear(tbody).appendChild(frag);
    counter.textContent = `· ${state.total.toLocaleString()} run${state.total === 1 ? "" : "s"}`;
    const filtered = state.q || state.status || state.tag;
    table.hidden = sorted.length === 0;
    for (const el of body.querySelectorAll(".empty")) el.remove();
    if (!sorted.length) {
      body.prepend(filtered
        ? h("div", { class: "empty" }, h("h2", {}, "No run matches these filters"),
          h("p", {}, "Change the search or the filters, or ",
            h("button", { type: "button", class: "link", onclick: resetFilters }, "clear them all"), "."))
        : emptyState("No runs yet",
          "Log a training run with the Losslens SDK: it shows up here within seconds, with its curves and diagnoses.",
          state.project));
    }
    notice.hidden = state.runs.length >= state.total;
    const col2 = COLUMNS.find((c) => c.id === state.sort.col);
    notice.textContent = `Showing ${orderText(state.serverSort)} ${state.runs.length.toLocaleString()} of`
      + ` ${state.total.toLocaleString()} runs`
      + (col2.server ? "." : `; sorting by ${col2.what} applies to those only.`)
      + " Narrow the search, or sort by another column, to see others.";
    renderSelection();
  }

  // Two requests at once: the newest FIRST runs, shown as soon as they come, and the rest (up
  // to LIMIT; sorting applies to what is loaded). No run is read twice.
  async function refresh() {
    if (inflight) inflight.abort();
    const ac = new AbortController();
    inflight = ac;
    const query = {
      project: state.project || null, q: state.q, status: state.status, tag: state.tag,
      sort: state.serverSort, summary_keys: SUMMARY_KEYS.join(","),
    };
    const restReq = listRuns({ ...query, limit: LIMIT - FIRST, offset: FIRST }, ac.signal);
    restReq.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
    try {
      const first = await listRuns({ ...query, limit: FIRST }, ac.signal);
      if (ac.signal.aborted || stopped) return;
      if (!state.runs.length || first.total <= FIRST) show(first.runs, first.total, "first");
      const rest = await restReq;
      if (ac.signal.aborted || stopped) return;
      const seen = new Set(first.runs.map((r) => r.id));
      show(first.runs.concat(rest.runs.filter((r) => !seen.has(r.id))), first.total, "all");
      clearError();
    } catch (err) {
      if (err.name !== "AbortError") showError(`Could not list runs: ${err.message}`);
    } finally {
      if (inflight === ac) inflight = null;
    }
    schedule();
  }

  function show(runs, total, phase) {
    state.runs = runs;
    state.total = total;
    renderTags();
    renderRows();
    const at = performance.now();
    window.__losslens = { ...(window.__losslens || {}), [phase === "first" ? "runsFirstAt" : "runsReadyAt"]: at };
    if (phase === "all") document.body.dataset.runsReady = String(Date.now());
  }

  function schedule() {
    clearTimeout(timer);
    if (!stopped && state.runs.some((r) => r.status === "running")) timer = setTimeout(refresh, POLL_MS);
  }

  function setFilter(name, value) {
    state[name] = value;
    if (name === "tag") tagSel.value = value;
    syncUrl();
    refresh();
  }

  function resetFilters() {
    search.value = "";
    statusSel.value = "";
    state.q = state.status = state.tag = "";
    syncUrl();
    refresh();
  }

  let debounce = null;
  search.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => setFilter("q", search.value.trim()), 250);
  });
  statusSel.addEventListener("change", () => setFilter("status", statusSel.value));
  tagSel.addEventListener("change", () => setFilter("tag", tagSel.value));
  clearSel.addEventListener("click", () => setSelected([]));
  const onSelection = () => renderSelection();
  document.addEventListener("losslens:selection", onSelection);

  function start() {
    if (stopped) return;
    if (state.project) app.rememberProject(state.project);
    app.showProject(state.project);
    fill(projectText, state.project ? ["in project ", h("b", {}, state.project)] : "in all projects");
    refresh();
  }

  renderHead();
  renderTags();
  renderSelection();
  if (state.project || params.has("project")) start();
  else {
    app.projectsReady.then(() => {
      state.project = app.defaultProject();
      start();
    });
  }
  return () => {
    stopped = true;
    clearTimeout(timer);
    clearTimeout(debounce);
    if (inflight) inflight.abort();
    document.removeEventListener("losslens:selection", onSelection);
  };
}
