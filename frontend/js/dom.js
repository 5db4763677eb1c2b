// DOM building without innerHTML: every string a user wrote goes in as a text node.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "style") Object.assign(el.style, value);
    else if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "value" || name === "checked" || name === "disabled") el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// Replace an element's children (arrays flattened; null, undefined and false skipped).
export function fill(el, ...children) {
  append(clear(el), children);
  return el;
}

// Text for Plotly (legend names, titles, hover): Plotly reads a small HTML subset in its
// strings, so user text is entity-escaped and shows literally.
export function plotlyText(s) {
  return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

export function fmtNum(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "string") return v === "Infinity" ? "+Inf" : v === "-Infinity" ? "-Inf" : v;
  if (!Number.isFinite(v)) return Number.isNaN(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
  return String(Number(v.toPrecision(4)));
}

export function fmtCount(n) {
  if (n >= 1e6) return `${Number((n / 1e6).toPrecision(3))}M`;
  if (n >= 1e4) return `${Number((n / 1e3).toPrecision(3))}k`;
  return String(n);
}

export function fmtAgo(iso) {
  if (!iso) return "–";
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  if (s < 86400 * 30) return `${Math.round(s / 86400)} d ago`;
  return new Date(iso).toLocaleDateString();
}

export function fmtDate(iso) {
  return iso ? new Date(iso).toLocaleString() : "–";
}

// ---- the error banner: errors are shown in the page, not only in the console ----

export function showError(message) {
  const banner = document.getElementById("error-banner");
  // Signed out (a 401 under a live page): the sign-in form says why; requests that were in
  // flight when the session ended must not stack a banner over it.
  if (!banner || document.getElementById("signin-form")) return;
  clear(banner);
  banner.append(
    h("span", { class: "error-text" }, String(message)),
    h("button", { class: "link", type: "button", onclick: clearError }, "Dismiss"),
  );
  banner.hidden = false;
}

export function clearError() {
  const banner = document.getElementById("error-banner");
  if (banner) banner.hidden = true;
}

// ---- empty states ----

export function sdkSnippet(project) {
  const name = JSON.stringify(project || "my-project");
  return [
    "# pip install ./client_sdk        (from the Losslens checkout)",
    "import client_sdk",
    `client_sdk.init(project=${name}, name="first-run", config={"lr": 3e-4},`,
    `                url=${JSON.stringify(window.location.origin)})`,
    "client_sdk.watch(model, optimizer)  # optional: per-layer gradients, activations, lr",
    "for step in range(1000):",
    "    loss = train_step()",
    '    client_sdk.log({"loss": loss}, step=step)',
    "client_sdk.finish()",
  ].join("\n");
}

export function emptyState(title, text, project) {
  return h(
    "div",
    { class: "empty" },
    h("h2", {}, title),
    h("p", {}, text),
    h("pre", { class: "snippet" }, sdkSnippet(project)),
  );
}

const STATUS_TITLES = {
  running: "running: the training process is sending points or heartbeats",
  finished: "finished: the training script called finish()",
  failed: "failed: the training script ended with an uncaught exception (or finished with status failed)",
  crashed: "crashed: the run's heartbeat stopped (the process died, or lost the server) without finishing",
};

export function statusPill(status) {
  return h("span", { class: `status status-${status}`, title: STATUS_TITLES[status] || `status: ${status}` }, status);
}

// Severity colours, shared by badges, diagnosis cards and the bands drawn on charts.
export const SEVERITY_COLOR = { critical: "#d62828", warning: "#e08a00", info: "#2a7ab8" };
const SEVERITY_RANK = { critical: 0, warning: 1, info: 2 };

// Active before muted before resolved; then the most severe, then the earliest.
function standing(d) {
  return d.status !== "active" ? 2 : d.muted ? 1 : 0;
}

export function bySeverity(a, b) {
  return (
    standing(a) - standing(b) ||
    (SEVERITY_RANK[a.severity] ?? 3) - (SEVERITY_RANK[b.severity] ?? 3) ||
    (a.step_start ?? 0) - (b.step_start ?? 0)
  );
}
