// Diagnoses: the cards of the panel, the badges of the runs list, and the bands on charts.

import { SEVERITY_COLOR, bySeverity, fmtNum, h } from "./dom.js";

export function kindLabel(kind) {
  return kind.replace(/_/g, " ");
}

const SEVERITIES = new Set(["critical", "warning", "info"]);

// A badge of the runs list: {kind, severity, count} as the server gives it (the most severe
// level of the kind's active, unmuted diagnoses, and how many there are, e.g. one per layer).
export function badge({ kind, severity, count = 1 }) {
  const sev = SEVERITIES.has(severity) ? severity : "info";
  const many = count > 1;
  return h("span", {
    class: `badge sev-${sev}`,
    title: `${kind}: ${sev}${many ? `, ${count} diagnoses (e.g. one per layer)` : ""}`,
    dataset: { kind, severity: sev, count: String(count) },
  }, kindLabel(kind), many ? h("span", { class: "badge-count" }, `×${count}`) : null);
}

export function stepText(d, lastStep) {
  if (d.step_start === null || d.step_start === undefined) return null;
  const end = d.step_end ?? lastStep;
  if (end === null || end === undefined || end === d.step_start) return `step ${d.step_start.toLocaleString()}`;
  return `steps ${d.step_start.toLocaleString()}–${end.toLocaleString()}`;
}

function evidenceValue(v) {
  if (typeof v === "number" || typeof v === "string") return fmtNum(v);
  if (Array.isArray(v) && v.length <= 8 && v.every((x) => typeof x === "number")) return v.map(fmtNum).join(", ");
  const text = JSON.stringify(v);
  return text.length > 120 ? `${text.slice(0, 117)}…` : text;
}

// One diagnosis. `mute` ({muted, onToggle}) adds the mute/unmute control of its kind (admins).
export function diagnosisCard(d, { onZoom, lastStep, compact = false, mute = null } = {}) {
  const steps = stepText(d, lastStep);
  const zoomable = steps && onZoom;
  const evidence = Object.entries(d.evidence || {});
  const resolved = d.status === "resolved";
  const card = h("article", {
    class: `diag sev-${d.severity} ${resolved ? "resolved" : ""} ${d.muted ? "muted-diag" : ""} ${zoomable ? "zoomable" : ""}`,
    dataset: { kind: d.kind, id: String(d.id), status: d.status, muted: String(Boolean(d.muted)) },
    tabindex: zoomable ? "0" : null,
    title: zoomable ? "Click to zoom the charts to this range" : null,
  },
  h("div", { class: "diag-head" },
    h("span", { class: `sev-chip sev-${d.severity}` }, d.severity),
    h("span", { class: "diag-title" }, d.title),
    h("span", { class: "diag-tags" },
      resolved ? h("span", { class: "state-tag resolved-tag", title: "This finding no longer holds; kept with its range" }, "resolved") : null,
      d.muted ? h("span", { class: "state-tag muted-tag", title: "Muted for this run: kept here, but off the runs list badges and the SDK callback" }, "muted") : null)),
  h("div", { class: "diag-meta" },
    h("span", { class: "mono" }, d.kind),
    d.subject ? h("span", {}, " · ", h("span", { class: "mono" }, d.subject)) : null,
    steps ? h("span", { class: "diag-steps" }, ` · ${steps}`) : h("span", {}, d.source === "model_check" ? " · model check" : ""),
  ),
  !compact && evidence.length
    ? h("dl", { class: "evidence" }, evidence.slice(0, 12).map(([k, v]) => [h("dt", {}, k), h("dd", {}, evidenceValue(v))]))
    : null,
  d.recommendation ? h("p", { class: "recommendation" }, h("b", {}, "Try: "), d.recommendation) : null,
  mute ? muteControl(d.kind, mute) : null);
  if (zoomable) {
    card.addEventListener("click", () => onZoom(d));
    card.addEventListener("keydown", (e) => {
      if (e.target === card && (e.key === "Enter" || e.key === " ")) {
        e.preventDefault();
        onZoom(d);
      }
    });
  }
  return card;
}

function muteControl(kind, { muted, onToggle }) {
  const button = h("button", {
    type: "button", class: "link mute-toggle", dataset: { kind, action: muted ? "unmute" : "mute" },
    title: muted
      ? `Unmute ${kindLabel(kind)} for this run: it counts again in the runs list and the SDK callback`
      : `Mute ${kindLabel(kind)} for this run (every subject): still listed here, greyed, but off the runs list badges and the SDK callback`,
  }, muted ? "unmute" : "mute", " ", h("span", { class: "mono" }, kind));
  button.addEventListener("click", async (e) => {
    e.stopPropagation(); // not a zoom
    button.disabled = true;
    try {
      await onToggle(kind, !muted);
    } finally {
      button.disabled = false;
    }
  });
  return h("div", { class: "diag-actions" }, button);
}

// `muteFor(d)` gives the mute control's {muted, onToggle} of a card, or null (none).
export function diagnosesList(diagnoses, { muteFor = null, ...opts } = {}) {
  if (!diagnoses.length) {
    return h("p", { class: "muted" }, "No diagnoses: nothing looks wrong so far. Rules run as points arrive; findings show here and on the curves.");
  }
  return h("div", { class: "diag-list" }, [...diagnoses].sort(bySeverity).map((d) =>
    diagnosisCard(d, { ...opts, mute: muteFor ? muteFor(d) : null })));
}

// A layer diagnosis goes to the per-layer chart its kind speaks of.
const FAMILY_WORDS = [
  [/dead|zero/, "act_zero_frac"], [/satur/, "act_sat_frac"], [/update/, "update_ratio"],
  [/weight/, "weight_norm"], [/grad|explod|vanish/, "grad_norm"], [/activ/, "act_std"],
];

// Which chart a diagnosis concerns: the chart holding its subject key, a per-layer chart of its
// subject module, else the loss chart (the first).
export function chartFor(d, charts) {
  if (!charts.length) return null;
  if (d.subject) {
    const exact = charts.find((c) => c.keys().includes(d.subject));
    if (exact) return exact;
    const group = charts.find((c) => c.keys().some((k) => k.startsWith(`${d.subject}/`)));
    if (group && !group.family) return group;
    const layers = charts.filter((c) => c.keys().some((k) => k.endsWith(`/${d.subject}`)));
    const words = FAMILY_WORDS.find(([re]) => re.test(d.kind));
    const best = words && layers.find((c) => c.family === words[1]);
    if (best || layers.length) return best || layers[0];
  }
  // Without a subject: a gradient or update finding goes to that chart, the others to the loss.
  const words = FAMILY_WORDS.find(([re]) => re.test(d.kind));
  if (words && /grad|explod|vanish|update/.test(d.kind)) {
    const global = charts.find((c) => !c.family && c.keys().includes(words[1]));
    const layer = charts.find((c) => c.family === words[1]);
    if (global || layer) return global || layer;
  }
  return charts[0];
}

// The steps to show for a diagnosis: its range with half its width on each side, not past
// the run's last step.
export function zoomRange(d, lastStep) {
  const start = d.step_start;
  const end = d.step_end ?? lastStep ?? start;
  const pad = Math.max(5, Math.round((end - start) * 0.5));
  const hi = lastStep !== null && lastStep !== undefined && lastStep >= end ? Math.min(end + pad, lastStep) : end + pad;
  return [Math.max(0, start - pad), Math.max(hi, end + 1)];
}

// Give each chart the bands of the diagnoses it concerns (step range, severity colour, panel);
// `focus` is the id of the diagnosis the user picked.
export function assignBands(diagnoses, charts, lastStep, focus = null) {
  for (const c of charts) c.bands = [];
  for (const d of diagnoses) {
    if (d.step_start === null || d.step_start === undefined) continue;
    const chart = chartFor(d, charts);
    if (!chart) continue;
    chart.bands.push({
      id: `diag-${d.id}`,
      start: d.step_start,
      end: d.step_end ?? lastStep ?? d.step_start,
      color: d.status === "resolved" || d.muted ? "#8a96a3" : SEVERITY_COLOR[d.severity] || "#888",
      faint: d.status === "resolved" || Boolean(d.muted),
      panel: chart.panelFor(d),
      focused: d.id === focus,
      label: `${d.severity}${d.status === "resolved" ? " (resolved)" : ""}${d.muted ? " (muted)" : ""}: ${d.title}`,
    });
  }
}
