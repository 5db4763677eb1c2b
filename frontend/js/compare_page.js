// Compare: one key across the selected runs, overlaid; their diagnoses side by side.

import { getDiagnoses, getRun } from "./api.js";
import { chartCard, LineChart, PALETTE } from "./chart.js";
import { diagnosesList, zoomRange } from "./diagnoses.js";
import { clear, clearError, fill, h, showError, statusPill } from "./dom.js";
import { compareHref, selected, setSelected } from "./selection.js";
import { loadPlotly, toolbar, View } from "./view.js";

const POLL_MS = 1000;
const natural = new Intl.Collator(undefined, { numeric: true }).compare;

export function mountCompare(root, params, app) {
  const ids = (params.get("runs") || selected().join(",")).split(",").filter(Boolean);
  const view = new View();
  let runs = [];
  let diags = [];
  let key = params.get("key") || "";
  let stopped = false;
  let timer = null;

  if (!ids.length) {
    fill(root, h("div", { class: "page" }, h("div", { class: "page-head" }, h("h1", {}, "Compare")),
      h("div", { class: "empty" }, h("h2", {}, "No runs selected"),
        h("p", {}, "Tick the runs to compare on the ", h("a", { href: "#/runs" }, "Runs page"),
          ' (the checkbox left of each name), then press "Compare selected". One key is overlaid across them, their diagnoses side by side.'))));
    return () => {};
  }

  const keySel = h("select", { id: "compare-key", "aria-label": "Key to compare" });
  const chartBox = h("div", { class: "charts" });
  const columns = h("div", { class: "compare-columns" });
  fill(root, h("div", { class: "page compare-page" },
    h("div", { class: "page-head" }, h("a", { href: "#/runs", class: "back" }, "← Runs"), h("h1", {}, "Compare"),
      h("span", { class: "muted" }, `${ids.length} run${ids.length === 1 ? "" : "s"}`)),
    toolbar(view, { wallToggle: false, lead: h("label", { class: "ctl" }, "Key ", keySel) }),
    chartBox,
    h("h2", { class: "section-title" }, "Diagnoses"),
    columns));

  function allKeys() {
    const keys = new Set();
    for (const r of runs) for (const k of Object.keys(r.summary)) keys.add(k);
    return [...keys].sort((a, b) => (b === "loss") - (a === "loss") || (b === "val/loss") - (a === "val/loss") || natural(a, b));
  }

  function renderKeySelect() {
    const keys = allKeys();
    if (!key || !keys.includes(key)) key = keys[0] || "";
    fill(keySel, ...keys.map((k) => h("option", { value: k }, k)));
    keySel.value = key;
  }

  function renderColumns() {
    fill(columns, ...runs.map((r, i) => h("section", { class: "compare-col", dataset: { runId: r.id } },
      h("header", { class: "compare-col-head" },
        h("span", { class: "swatch", style: { background: PALETTE[i % PALETTE.length] } }),
        h("a", { href: `#/run/${encodeURIComponent(r.id)}`, class: "run-link" }, r.name),
        statusPill(r.status),
        h("button", { type: "button", class: "link remove", title: "Remove from the comparison", onclick: () => remove(r.id) }, "remove")),
      r.summary[key] ? null : h("p", { class: "muted" }, `This run has no key "${key}".`),
      diagnosesList(diags[i], {
        compact: true,
        lastStep: r.summary[key]?.last_step,
        onZoom: (d) => view.setRange(zoomRange(d, r.summary[key]?.last_step)),
      }))));
  }

  function remove(id) {
    const left = ids.filter((x) => x !== id);
    setSelected(selected().filter((x) => x !== id));
    location.hash = left.length ? `${compareHref(left)}&key=${encodeURIComponent(key)}` : "#/compare?runs=";
  }

  function buildChart() {
    view.destroy();
    clear(chartBox);
    const { card, plot } = chartCard(key ? `${key} across ${runs.length} runs` : "No keys", 440);
    card.dataset.chart = "compare";
    chartBox.append(card);
    if (!key) return;
    const specs = runs.filter((r) => r.summary[key]).map((r) => ({
      id: `${r.id}|${key}`, run: r.id, key, label: r.name, color: PALETTE[runs.indexOf(r) % PALETTE.length],
      panel: 0, smooth: true, summary: r.summary[key],
    }));
    view.add(new LineChart(plot, view, { panels: [{ title: key }], specs, name: `${key} across runs` }));
  }

  async function load() {
    const got = await Promise.allSettled(ids.map((id) => Promise.all([getRun(id), getDiagnoses(id)])));
    const failed = got.filter((g) => g.status === "rejected");
    if (failed.length) showError(`${failed.length} of the selected runs could not be loaded: ${failed[0].reason.message}`);
    const ok = got.filter((g) => g.status === "fulfilled").map((g) => g.value);
    return { runs: ok.map((v) => v[0]), diags: ok.map((v) => v[1]) };
  }

  async function start() {
    ({ runs, diags } = await load());
    if (stopped) return;
    if (runs[0]) app.showProject(runs[0].project);
    renderKeySelect();
    renderColumns();
    buildChart();
    history.replaceState(null, "", `${compareHref(runs.map((r) => r.id))}&key=${encodeURIComponent(key)}`);
    if (view.seen) await view.seen;
    loadPlotly().catch((err) => showError(err.message));
    await view.idle();
    document.body.dataset.compareReady = key;
    schedule();
  }

  function schedule() {
    clearTimeout(timer);
    if (!stopped && runs.some((r) => r.status === "running")) timer = setTimeout(poll, POLL_MS);
  }

  async function poll() {
    try {
      const before = new Map(runs.map((r) => [r.id, JSON.stringify(r.summary[key])]));
      const fresh = await load();
      if (stopped) return;
      const changed = fresh.runs.some((r) => before.get(r.id) !== JSON.stringify(r.summary[key]));
      const diagChanged = JSON.stringify(fresh.diags) !== JSON.stringify(diags);
      ({ runs, diags } = fresh);
      const chart = view.charts[0];
      if (chart) for (const s of chart.specs) s.summary = runs.find((r) => r.id === s.run)?.summary[key];
      if (diagChanged || changed) renderColumns();
      if (changed && chart) await view.refresh(chart, { overview: true });
      clearError();
    } catch (err) {
      showError(`Live update failed (retrying): ${err.message}`);
    }
    schedule();
  }

  keySel.addEventListener("change", async () => {
    key = keySel.value;
    history.replaceState(null, "", `${compareHref(runs.map((r) => r.id))}&key=${encodeURIComponent(key)}`);
    renderColumns();
    buildChart();
    await view.setRange(null);
    await view.idle();
    document.body.dataset.compareReady = key;
  });

  start();
  return () => {
    stopped = true;
    clearTimeout(timer);
    view.destroy();
  };
}
