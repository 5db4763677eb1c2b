// The REST API of docs/api.md, and the numbers of its JSON ("NaN", "Infinity", "-Infinity").

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
export const CSRF_COOKIE = "losslens_csrf";

// The value of a cookie readable by scripts (the CSRF token; the key's cookie is HTTP-only).
export function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return null;
}

// Every request of the dashboard. A state-changing one echoes the CSRF cookie in
// X-Losslens-CSRF (docs/api.md, "Authentication"). A 401 tells the page to sign in (after the
// caller has handled the error), unless `signIn: false`.
export async function api(path, options = {}) {
  const method = options.method || "GET";
  const headers = {};
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (!SAFE_METHODS.has(method)) {
    const token = cookie(CSRF_COOKIE);
    if (token) headers["X-Losslens-CSRF"] = token;
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
      signal: options.signal,
      cache: "no-store",
      credentials: "same-origin",
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(`The Losslens server cannot be reached (${err.message}).`, 0);
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const body = await response.json();
      if (body && body.detail) detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    } catch {
      // not JSON: keep the status text
    }
    if (response.status === 401 && options.signIn !== false) {
      detail += ". Sign in again with an API key.";
      // After the caller's own error handling (it runs in this task's microtasks).
      setTimeout(() => document.dispatchEvent(new CustomEvent("losslens:unauthorized")), 0);
    }
    throw new ApiError(`${method} ${path}: ${response.status} ${detail}`, response.status);
  }
  return response.status === 204 ? null : response.json();
}

export function num(v) {
  if (typeof v === "number") return v;
  if (v === "NaN") return NaN;
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  return v === null || v === undefined ? null : Number(v);
}

const q = encodeURIComponent;

export function getRun(id, signal) {
  return api(`/runs/${q(id)}`, { signal });
}

export function getDiagnoses(id, signal) {
  return api(`/runs/${q(id)}/diagnoses`, { signal }).then((b) => b.diagnoses);
}

export function listRuns(params, signal) {
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") sp.set(k, v);
  return api(`/runs?${sp}`, { signal });
}

export function listProjects(signal) {
  return api("/projects", { signal }).then((b) => b.projects);
}

// The session (docs/api.md, "Authentication"): {auth, project, grants}; a 401 means sign in.
export function getSession(signal) {
  return api("/session", { signal, signIn: false });
}

export function signIn(key) {
  return api("/session", { method: "POST", body: { key }, signIn: false });
}

export function signOut() {
  return api("/session", { method: "DELETE", signIn: false });
}

export function muteKind(runId, kind) {
  return api(`/runs/${q(runId)}/mutes/${q(kind)}`, { method: "PUT" });
}

export function unmuteKind(runId, kind) {
  return api(`/runs/${q(runId)}/mutes/${q(kind)}`, { method: "DELETE" });
}

export function getMutes(runId, signal) {
  return api(`/runs/${q(runId)}/mutes`, { signal }).then((b) => b.kinds);
}

// The server reads at most 200 keys per request; the URL is kept short as well (a key may be
// 250 characters): keys are sent one per repeated `key=` parameter, so a comma in a key is safe.
const KEYS_PER_REQUEST = 200;
const KEY_CHARS_PER_REQUEST = 6000;

export function keyChunks(keys) {
  const chunks = [];
  let part = [];
  let chars = 0;
  for (const k of keys) {
    const param = `key=${q(k)}`;
    if (part.length && (part.length >= KEYS_PER_REQUEST || chars + param.length > KEY_CHARS_PER_REQUEST)) {
      chunks.push(part);
      part = [];
      chars = 0;
    }
    part.push(param);
    chars += param.length + 1;
  }
  if (part.length) chunks.push(part);
  return chunks;
}

// One request (or a few, for many keys) for several keys of a run, answered in the order asked.
// Values are parsed into a Float64Array (NaN and ±Inf kept), steps into a Float64Array; walls
// (Unix seconds) when asked for.
export async function getSeries(runId, keys, { maxPoints, stepMin, stepMax, wall, signal } = {}) {
  const common = [];
  if (maxPoints) common.push(`max_points=${Math.max(10, Math.round(maxPoints))}`);
  if (stepMin !== null && stepMin !== undefined) common.push(`step_min=${Math.max(0, Math.floor(stepMin))}`);
  if (stepMax !== null && stepMax !== undefined) common.push(`step_max=${Math.max(0, Math.ceil(stepMax))}`);
  if (wall) common.push("wall=true");
  const bodies = await Promise.all(keyChunks(keys).map((part) =>
    api(`/runs/${q(runId)}/series?${part.concat(common).join("&")}`, { signal })));
  const byKey = new Map();
  for (const body of bodies) for (const s of body.series) byKey.set(s.key, parseSeries(s));
  return keys.map((k) => byKey.get(k) || parseSeries({ key: k, steps: [], values: [], wall: null, total: 0, downsampled: false }));
}

export function parseSeries(s) {
  const n = s.steps.length;
  const steps = new Float64Array(n);
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    steps[i] = s.steps[i];
    const v = s.values[i];
    values[i] = typeof v === "number" ? v : num(v);
  }
  const walls = s.wall ? Float64Array.from(s.wall) : null;
  return { key: s.key, steps, values, walls, total: s.total, downsampled: s.downsampled };
}
