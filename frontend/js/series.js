// Pure functions over parsed series ({steps, values, walls} typed arrays): smoothing, the
// min/max band of downsampled data, non-finite points, and zoomed detail spliced into an overview.

// Debiased exponential moving average over the finite values (as TensorBoard's smoothing):
// weight 0 is no smoothing, 0.99 very smooth. Non-finite points are skipped, not propagated.
export function ema(xs, values, weight) {
  const x = [];
  const y = [];
  let last = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    last = last * weight + (1 - weight) * v;
    n += 1;
    x.push(xs[i]);
    y.push(weight > 0 ? last / (1 - weight ** n) : v);
  }
  return { x, y };
}

// Finite points only: the line connects across a NaN (drawn as a marker), never breaks.
export function finitePoints(xs, values) {
  const x = [];
  const y = [];
  for (let i = 0; i < values.length; i++) {
    if (Number.isFinite(values[i])) {
      x.push(xs[i]);
      y.push(values[i]);
    }
  }
  return { x, y };
}

export function nonFinite(xs, steps, values) {
  const out = { nan: [], pinf: [], ninf: [] };
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isNaN(v)) out.nan.push([xs[i], steps[i]]);
    else if (v === Infinity) out.pinf.push([xs[i], steps[i]]);
    else if (v === -Infinity) out.ninf.push([xs[i], steps[i]]);
  }
  return out;
}

// The min/max envelope of the points per bucket of `bucketWidth` steps, as one closed polygon (upper edge left to
// right, lower edge back): drawn where the server answered with downsampled points, so the
// spread inside each pixel-wide bucket stays visible. Computed from the points we received
// (MinMax-LTTB keeps each bucket's extremes, so the envelope is faithful at this resolution).
export function minMaxBand(xs, steps, values, bucketWidth) {
  const n = values.length;
  if (n < 3) return null;
  const lo = steps[0];
  const width = Math.max(1, bucketWidth);
  const upX = [];
  const upY = [];
  const dnY = [];
  let b = -1;
  let bmin = 0;
  let bmax = 0;
  let firstX = 0;
  let lastX = 0;
  const flush = () => {
    upX.push(firstX, lastX);
    upY.push(bmax, bmax);
    dnY.push(bmin, bmin);
  };
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    const bi = Math.floor((steps[i] - lo) / width);
    if (bi !== b) {
      if (b >= 0) flush();
      b = bi;
      bmin = bmax = v;
      firstX = xs[i];
    }
    if (v < bmin) bmin = v;
    if (v > bmax) bmax = v;
    lastX = xs[i];
  }
  if (b < 0) return null;
  flush();
  const x = upX.concat(upX.slice().reverse());
  const y = upY.concat(dnY.reverse());
  return { x, y };
}

// The overview outside [lo, hi] with the full-resolution detail inside: panning past the
// zoomed range still shows (coarser) data, and the zoomed range shows every point fetched.
export function splice(overview, detail, lo, hi) {
  if (!overview) return detail;
  const idx = [];
  const pick = (s, i) => idx.push([s, i]);
  const o = overview;
  let i = 0;
  while (i < o.steps.length && o.steps[i] < lo) pick(o, i++);
  for (let j = 0; j < detail.steps.length; j++) pick(detail, j);
  while (i < o.steps.length && o.steps[i] <= hi) i++;
  while (i < o.steps.length) pick(o, i++);
  const steps = new Float64Array(idx.length);
  const values = new Float64Array(idx.length);
  const walls = o.walls && detail.walls ? new Float64Array(idx.length) : null;
  idx.forEach(([s, k], n) => {
    steps[n] = s.steps[k];
    values[n] = s.values[k];
    if (walls) walls[n] = s.walls[k];
  });
  return { ...detail, steps, values, walls, total: overview.total, downsampled: overview.downsampled || detail.downsampled };
}

// The x of each point: the step, or (x by wall time) local-time milliseconds for a Plotly date
// axis (Plotly shows date numbers as UTC: shifting by the offset shows the viewer's clock).
export const TZ_SHIFT_MS = new Date().getTimezoneOffset() * 60000;

export function xsOf(series, wall) {
  if (!wall || !series.walls) return series.steps;
  const xs = new Float64Array(series.walls.length);
  for (let i = 0; i < xs.length; i++) xs[i] = series.walls[i] * 1000 - TZ_SHIFT_MS;
  return xs;
}

// Step <-> wall-time x through the points of a series that has walls (monotone in practice).
export function stepToX(series, step) {
  if (!series || !series.walls || !series.steps.length) return step;
  const i = Math.min(series.steps.length - 1, Math.max(0, lowerBound(series.steps, step)));
  return series.walls[i] * 1000 - TZ_SHIFT_MS;
}

export function xToStep(series, x) {
  if (!series || !series.walls || !series.steps.length) return x;
  const ms = x + TZ_SHIFT_MS;
  let best = 0;
  for (let i = 0; i < series.walls.length; i++) {
    if (series.walls[i] * 1000 <= ms) best = i;
    else break;
  }
  return series.steps[best];
}

export function lowerBound(arr, v) {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (arr[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Plotly's relayout gives date-axis ranges as "YYYY-MM-DD HH:MM:SS.sss" strings (in the same
// shifted clock as xsOf); numbers on a linear axis.
export function parseAxisValue(v) {
  if (typeof v === "number") return v;
  const t = Date.parse(String(v).replace(" ", "T") + "Z");
  return Number.isNaN(t) ? Number(v) : t;
}

// Finite extent of values whose step lies in [lo, hi] (for fitting y after an x-only zoom).
export function extentIn(series, lo, hi, positiveOnly) {
  let min = Infinity;
  let max = -Infinity;
  const { steps, values } = series;
  for (let i = lowerBound(steps, lo); i < steps.length && steps[i] <= hi; i++) {
    const v = values[i];
    if (!Number.isFinite(v) || (positiveOnly && v <= 0)) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return min <= max ? [min, max] : null;
}
