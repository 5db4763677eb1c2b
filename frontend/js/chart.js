// A line chart of one or more stacked panels sharing an x axis (steps or wall time).
// It fetches ~2 points per pixel; zooming re-fetches that step range at full resolution.

import { getSeries } from "./api.js";
import { h, plotlyText, showError } from "./dom.js";
import { loadPlotly } from "./view.js";
import { bandTrace, emaTrace, infTrace, nanTrace, rawTrace } from "./traces.js";
import {
  ema, extentIn, finitePoints, minMaxBand, nonFinite, parseAxisValue, splice, stepToX, xToStep, xsOf,
} from "./series.js";

export const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#d62728"];
const PLOT_CONFIG = {
  responsive: true,
  displaylogo: false,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
  doubleClick: "reset",
};

// A chart card: a header with the title and extra controls, and the plot's div.
export function chartCard(title, height, extra) {
  const plot = h("div", { class: "plot", style: { height: `${height}px` } });
  const card = h("section", { class: "chart-card" },
    h("header", { class: "chart-head" }, h("h3", {}, title), h("span", { class: "chart-status" }), extra || null),
    plot);
  return { card, plot };
}

export class LineChart {
  // panels: [{title, weight}], specs: [{id, run, key, label, color, panel, smooth, summary}]
  constructor(plot, view, { panels, specs, name }) {
    this.plot = plot;
    this.view = view;
    this.panels = panels;
    this.specs = specs;
    this.name = name;
    this.overview = null;
    this.detail = null;
    this.userY = {};
    this.bands = [];
    this.abort = null;
    this.listening = false;
  }

  keys() {
    return this.specs.map((s) => s.key);
  }

  // x by wall time when the page asks for it (a chart over steps only overrides this).
  wall() {
    return this.view.state.wall;
  }

  logScale() {
    return this.view.state.log;
  }

  plotWidth() {
    return Math.max(200, (this.plot.clientWidth || 800) - 90);
  }

  maxPoints() {
    return Math.round(2 * this.plotWidth());
  }

  async fetchAll(range, signal) {
    const wall = this.wall();
    const byRun = new Map();
    for (const s of this.specs) {
      if (!byRun.has(s.run)) byRun.set(s.run, []);
      byRun.get(s.run).push(s);
    }
    const out = new Map();
    await Promise.all([...byRun].map(async ([run, specs]) => {
      const got = await getSeries(run, specs.map((s) => s.key), {
        maxPoints: this.maxPoints(), stepMin: range?.[0], stepMax: range?.[1], wall, signal,
      });
      specs.forEach((s, i) => out.set(s.id, got[i]));
    }));
    return out;
  }

  // Fetch what the view needs: the whole run (once, or again when `overview`), and the zoomed
  // range at full resolution. A newer load aborts an older one.
  async load({ overview = false } = {}) {
    if (this.abort) this.abort.abort();
    const ac = new AbortController();
    this.abort = ac;
    const { range } = this.view.state;
    const wall = this.wall();
    this.plot.parentElement.classList.add("loading");
    try {
      const needOverview = overview || !this.overview || this.overviewWall !== wall;
      const [ov, det] = await Promise.all([
        needOverview ? this.fetchAll(null, ac.signal) : null,
        range ? this.fetchAll(range, ac.signal) : null,
      ]);
      if (ac.signal.aborted) return false;
      this.plot.parentElement.querySelector(".chart-status").textContent = "";
      if (ov) {
        this.overview = ov;
        this.overviewWall = wall;
      }
      this.detail = det;
      this.detailRange = range;
      return true;
    } catch (err) {
      if (err.name !== "AbortError") {
        showError(`Could not load the chart "${this.name}": ${err.message}`);
        this.plot.parentElement.querySelector(".chart-status").textContent = "could not load (see above)";
      }
      return false;
    } finally {
      if (this.abort === ac) this.plot.parentElement.classList.remove("loading");
    }
  }

  series(spec) {
    const ov = this.overview?.get(spec.id);
    const det = this.detail?.get(spec.id);
    if (det && this.detailRange) return splice(ov, det, this.detailRange[0], this.detailRange[1]);
    return ov;
  }

  refSeries() {
    for (const s of this.specs) {
      const got = this.overview?.get(s.id);
      if (got && got.walls && got.steps.length) return got;
    }
    return null;
  }

  traces() {
    const { smoothing } = this.view.state;
    const wall = this.wall();
    const out = [];
    const markers = [];
    const bucket = this.bucketWidth();
    for (const spec of this.specs) {
      const s = this.series(spec);
      if (!s) continue;
      const xs = xsOf(s, wall);
      const smooth = spec.smooth && smoothing > 0;
      const opts = { id: spec.id, label: plotlyText(spec.label), color: spec.color, yaxis: spec.panel ? `y${spec.panel + 1}` : "y", faint: smooth };
      const band = s.downsampled ? minMaxBand(xs, s.steps, s.values, bucket) : null;
      if (band) out.push(bandTrace(band, opts));
      out.push(rawTrace(finitePoints(xs, s.values), opts));
      if (smooth) out.push(emaTrace(ema(xs, s.values, smoothing), opts));
      // Non-finite points: markers at their step on the panel's overlay axis (fixed [0, 1]).
      // The legend counts them over the whole run when the reply was downsampled.
      const bad = nonFinite(xs, s.steps, s.values);
      const sum = s.downsampled ? spec.summary : null;
      const mopts = { ...opts, yaxis: `y${this.panels.length + (spec.panel || 0) + 1}` };
      if (bad.nan.length) markers.push(nanTrace(bad.nan, sum ? sum.nan_count : bad.nan.length, mopts));
      const inf = [...bad.pinf.map((p) => [...p, 1]), ...bad.ninf.map((p) => [...p, -1])];
      if (inf.length) markers.push(infTrace(inf, sum ? sum.inf_count : inf.length, mopts));
    }
    return out.concat(markers);
  }

  bucketWidth() {
    const range = this.view.state.range;
    let span = range ? range[1] - range[0] : 0;
    if (!range) {
      for (const s of this.specs) {
        const got = this.overview?.get(s.id);
        if (got && got.steps.length) span = Math.max(span, got.steps[got.steps.length - 1] - got.steps[0]);
      }
    }
    return Math.max(1, span / (this.plotWidth() / 2));
  }

  toX(step) {
    return this.wall() ? stepToX(this.refSeries(), step) : step;
  }

  // The legend sits under the x axis title, in a bottom margin as tall as its rows.
  legendRows(traces) {
    const entries = traces.filter((t) => t.showlegend !== false).length;
    return Math.ceil(entries / Math.max(1, Math.floor(this.plotWidth() / 180)));
  }

  layout(traces = []) {
    const { range } = this.view.state;
    const wall = this.wall();
    const log = this.logScale();
    const n = this.panels.length;
    const total = this.panels.reduce((a, p) => a + (p.weight || 1), 0);
    const gap = n > 1 ? 0.08 : 0;
    let top = 1;
    const layout = {
      uirevision: `${log}|${wall}`,
      margin: { l: 64, r: 16, t: 24, b: 50 + 19 * this.legendRows(traces) },
      hovermode: "x unified",
      showlegend: true,
      legend: { orientation: "h", traceorder: "normal", yref: "container", y: 0, yanchor: "bottom", x: 0, font: { size: 11 } },
      font: { family: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size: 12, color: "#1d2733" },
      paper_bgcolor: "#fff",
      plot_bgcolor: "rgba(0,0,0,0)",
      xaxis: {
        anchor: `y${n > 1 ? n : ""}`, type: wall ? "date" : "linear",
        title: { text: wall ? "wall time" : "step", standoff: 6 }, gridcolor: "#eef1f4", zeroline: false,
        showspikes: true, spikemode: "across", spikethickness: 1, spikecolor: "#9aa5b1",
      },
      annotations: [],
      shapes: [],
    };
    if (range) {
      layout.xaxis.range = [this.toX(range[0]), this.toX(range[1])];
      layout.xaxis.autorange = false;
    } else layout.xaxis.autorange = true;
    this.panels.forEach((p, i) => {
      const hgt = ((1 - gap * (n - 1)) * (p.weight || 1)) / total;
      const dom = [Math.max(0, top - hgt), top];
      top = dom[0] - gap;
      const id = i === 0 ? "yaxis" : `yaxis${i + 1}`;
      const axis = {
        domain: dom, anchor: "x", type: log ? "log" : "linear", gridcolor: "#eef1f4", zeroline: false,
        exponentformat: "e", title: { text: plotlyText(p.title || ""), font: { size: 11 } },
      };
      // Zoomed: y fits the points in view. Whole run: Plotly's autorange, except for a constant
      // series (autorange would put 1e-3 in [-1, 1], where it reads as zero).
      const fixed = this.userY[id] || this.fitY(i, range || [-Infinity, Infinity], log, !range);
      if (fixed) {
        axis.range = fixed;
        axis.autorange = false;
      } else axis.autorange = true;
      layout[id] = axis;
      layout[`yaxis${n + i + 1}`] = { overlaying: i === 0 ? "y" : `y${i + 1}`, range: [0, 1], visible: false, fixedrange: true };
    });
    for (const b of this.bands) layout.shapes.push(...this.bandShapes(b, this.bandsOver));
    layout.annotations.push(...this.bandLabels());
    return layout;
  }

  // After an x-only zoom the y axis is fitted to the points in view (a spike stays visible).
  fitY(panel, range, log, onlyFlat = false) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const spec of this.specs) {
      if ((spec.panel || 0) !== panel) continue;
      const s = this.series(spec);
      const e = s && extentIn(s, range[0], range[1], log);
      if (e) {
        lo = Math.min(lo, e[0]);
        hi = Math.max(hi, e[1]);
      }
    }
    if (!(lo <= hi) || (onlyFlat && lo !== hi)) return null;
    if (log) {
      const a = Math.log10(lo);
      const b = Math.log10(hi);
      const pad = Math.max(0.05, (b - a) * 0.06);
      return [a - pad, b + pad];
    }
    const pad = (hi - lo) * 0.06 || Math.abs(hi) * 0.5 || 1;
    return [lo - pad, hi + pad];
  }

  // The panel a diagnosis concerns: the one holding its subject key, the lr panel for an lr
  // finding, else the first.
  panelFor(d) {
    const bySubject = d.subject && this.specs.find((s) => s.key === d.subject);
    if (bySubject) return bySubject.panel || 0;
    const lr = /^lr_/.test(d.kind) && this.specs.find((s) => s.key === "lr" || s.key.startsWith("lr/"));
    return lr ? lr.panel || 0 : 0;
  }

  // A diagnosis' step range: a band shaded behind the curves of its panel (framed over a
  // heatmap); the diagnosis the user picked is stronger and labelled.
  bandShapes(b, over = false) {
    let x0 = b.start;
    let x1 = b.end;
    if (x1 - x0 < 1) x1 = x0 + 1;
    x0 = this.toX(x0);
    x1 = this.toX(x1);
    const yref = b.panel ? `y${b.panel + 1} domain` : "y domain";
    const base = { xref: "x", yref, x0, x1, y0: 0, y1: 1, name: b.id };
    if (over) {
      const line = { color: b.color, width: b.focused ? 3 : 1.5 };
      return [{ ...base, type: "rect", fillcolor: b.color, opacity: b.focused ? 0.25 : b.faint ? 0.08 : 0.12, line, layer: "above" }];
    }
    // Resolved and muted findings: a lighter grey band.
    const opacity = b.focused ? 0.2 : b.faint ? 0.06 : 0.08;
    const shapes = [{ ...base, type: "rect", fillcolor: b.color, opacity, line: { width: 0 }, layer: "below" }];
    if (b.focused) {
      const line = { color: b.color, width: 1.5, dash: "dot" };
      for (const x of [x0, x1]) shapes.push({ type: "line", xref: "x", yref, x0: x, x1: x, y0: 0, y1: 1, line, layer: "below" });
    }
    return shapes;
  }

  bandLabels() {
    return this.bands.filter((b) => b.focused).map((b) => ({
      xref: "x", yref: b.panel ? `y${b.panel + 1} domain` : "y domain", x: this.toX(b.start), y: 1,
      xanchor: "left", yanchor: "top", showarrow: false, text: plotlyText(b.label),
      font: { size: 11, color: b.color }, bgcolor: "rgba(255,255,255,0.85)",
    }));
  }

  async render() {
    if (!this.overview) return;
    if (!window.Plotly) await loadPlotly();
    const traces = this.traces();
    await window.Plotly.react(this.plot, traces, this.layout(traces), PLOT_CONFIG);
    if (!this.listening) {
      this.listening = true;
      this.plot.on("plotly_relayout", (ev) => this.onRelayout(ev));
    }
    this.plot.dataset.renders = String(Number(this.plot.dataset.renders || 0) + 1);
    this.plot.dispatchEvent(new CustomEvent("losslens:rendered", { bubbles: true }));
  }

  onRelayout(ev) {
    if (!ev) return;
    for (const [k, v] of Object.entries(ev)) {
      const m = k.match(/^(yaxis\d*)\.(range\[0\]|autorange)$/);
      if (!m) continue;
      if (m[2] === "autorange") delete this.userY[m[1]];
      else this.userY[m[1]] = [v, ev[`${m[1]}.range[1]`]];
    }
    if (ev["xaxis.autorange"]) {
      this.userY = {};
      this.view.setRange(null, this);
      return;
    }
    let a = ev["xaxis.range[0]"];
    let b = ev["xaxis.range[1]"];
    if (a === undefined && Array.isArray(ev["xaxis.range"])) [a, b] = ev["xaxis.range"];
    if (a === undefined || b === undefined) {
      if (Object.keys(ev).some((k) => k.startsWith("yaxis"))) this.render();
      return;
    }
    a = parseAxisValue(a);
    b = parseAxisValue(b);
    if (this.wall()) {
      const ref = this.refSeries();
      a = xToStep(ref, a);
      b = xToStep(ref, b);
    }
    this.view.setRange([Math.max(0, Math.floor(a)), Math.max(0, Math.ceil(b))], this);
  }

  destroy() {
    if (this.abort) this.abort.abort();
    if (window.Plotly) window.Plotly.purge(this.plot);
  }
}
