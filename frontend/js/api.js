// The REST API of docs/api.md, and the numbers of its JSON ("NaN", "Infinity", "-Infinity").

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

export async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method: options.method || "GET",
      headers: options.body ? { "Content-Type": "application/json" } : undefined,
      body: options.body ? JSON.stringify(options.body) : undefined,
      signal: options.signal,
      cache: "no-store",
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
    if (response.status === 401) {
      detail += ". This server requires an API key with the read scope (it sees none, or a revoked one).";
    }
    throw new ApiError(`${options.method || "GET"} ${path}: ${response.status} ${detail}`, response.status);
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

// One request for several keys of a run. Values are parsed into a Float64Array (NaN and ±Inf
// kept), steps into a Float64Array; walls (Unix seconds) when asked for.
export async function getSeries(runId, keys, { maxPoints, stepMin, stepMax, wall, signal } = {}) {
  const out = [];
  for (let i = 0; i < keys.length; i += 200) {
    const part = keys.slice(i, i + 200);
    const sp = [`keys=${part.map(q).join(",")}`];
    if (maxPoints) sp.push(`max_points=${Math.max(10, Math.round(maxPoints))}`);
    if (stepMin !== null && stepMin !== undefined) sp.push(`step_min=${Math.max(0, Math.floor(stepMin))}`);
    if (stepMax !== null && stepMax !== undefined) sp.push(`step_max=${Math.max(0, Math.ceil(stepMax))}`);
    if (wall) sp.push("wall=true");
    const body = await api(`/runs/${q(runId)}/series?${sp.join("&")}`, { signal });
    for (const s of body.series) out.push(parseSeries(s));
  }
  return out;
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
