// Which charts a run's keys make: the loss chart (loss, val/loss; lr below on the same x), a
// chart per key group (prefix before `/`), and per-layer heatmaps.

import { LAYER_FAMILIES, layerHeight, layerKeys } from "./heatmap.js";
import { PALETTE } from "./chart.js";

const natural = new Intl.Collator(undefined, { numeric: true }).compare;
const LOSS_KEYS = ["loss", "val/loss"];

function magnitude(s) {
  if (!s || s.min === null || s.max === null) return null;
  const m = Math.max(Math.abs(s.min), Math.abs(s.max));
  return m > 0 ? Math.log10(m) : null;
}

// Keys of one group share a panel, unless their sizes differ by over 1.5 decades (then each
// gets its own panel on the shared x axis, up to 6).
function groupPanels(keys, summary) {
  const mags = keys.map((k) => magnitude(summary[k])).filter((m) => m !== null);
  const spread = mags.length ? Math.max(...mags) - Math.min(...mags) : 0;
  if (keys.length > 1 && keys.length <= 6 && spread > 1.5) return keys.map((k) => ({ title: k, keys: [k] }));
  return [{ title: "", keys }];
}

// One plan entry per chart: {id, kind: "line"|"layer", title, panels|family, keys, height}.
export function planCharts(summary) {
  const keys = Object.keys(summary).sort(natural);
  const used = new Set();
  const plans = [];
  const lossKeys = LOSS_KEYS.filter((k) => k in summary);
  const lrKeys = keys.filter((k) => k === "lr" || k.startsWith("lr/"));
  if (lossKeys.length || lrKeys.length) {
    const panels = [];
    if (lossKeys.length) panels.push({ title: "loss", keys: lossKeys, weight: 3 });
    if (lrKeys.length) panels.push({ title: "learning rate", keys: lrKeys, weight: lossKeys.length ? 1.1 : 1 });
    plans.push({
      id: "main", kind: "line", title: lossKeys.length ? "Loss" : "Learning rate", panels,
      height: lossKeys.length && lrKeys.length ? 480 : 380,
    });
    for (const k of [...lossKeys, ...lrKeys]) used.add(k);
  }
  const layers = [];
  for (const family of Object.keys(LAYER_FAMILIES)) {
    const fk = layerKeys(family, keys);
    if (!fk.length) continue;
    fk.forEach((k) => used.add(k));
    layers.push({ id: `layer:${family}`, kind: "layer", family, title: LAYER_FAMILIES[family].title, keys: fk, height: layerHeight(fk.length) });
  }
  const groups = new Map();
  for (const k of keys) {
    if (used.has(k)) continue;
    const slash = k.indexOf("/");
    const g = slash > 0 ? k.slice(0, slash) : k;
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(k);
  }
  const order = [...groups.keys()].sort((a, b) => (a === "sys") - (b === "sys") || natural(a, b));
  const lines = [];
  for (const g of order) {
    const gk = groups.get(g);
    const panels = groupPanels(gk, summary);
    lines.push({ id: `group:${g}`, kind: "line", title: g, panels, height: Math.min(620, 200 + panels.length * 90) });
  }
  // Global gradient norm first, then the per-layer views next to it, then the rest.
  const gradFirst = lines.filter((p) => p.id === "group:grad_norm" || p.id === "group:grad_nonfinite");
  return [...plans, ...gradFirst, ...layers, ...lines.filter((p) => !gradFirst.includes(p))];
}

// The series specs of a line plan: colours per chart, smoothing for the training loss.
export function lineSpecs(plan, runId, summary) {
  const specs = [];
  let i = 0;
  plan.panels.forEach((p, panel) => {
    for (const key of p.keys) {
      const color = key === "loss" ? PALETTE[0] : key === "val/loss" ? PALETTE[1] : key === "lr" ? PALETTE[2] : PALETTE[(i + 3) % PALETTE.length];
      i += 1;
      specs.push({ id: `${runId}|${key}`, run: runId, key, label: key, color, panel, smooth: key === "loss", summary: summary[key] });
    }
  });
  return specs;
}

// Nested config as rows of dotted paths and values (strings shown as text, never as markup).
export function flattenConfig(obj, prefix = "", out = []) {
  for (const [k, v] of Object.entries(obj || {})) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) flattenConfig(v, path, out);
    else out.push([path, typeof v === "string" ? v : JSON.stringify(v)]);
  }
  return out;
}
