// The state one page's charts share (x range, scale, smoothing, x by step or wall time), the
// toolbar that edits it, and the Plotly loader.

import { h, showError } from "./dom.js";

let plotlyPromise = null;

// Plotly is loaded once, from our own server (the plotly package's bundled file).
export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyPromise) {
    plotlyPromise = new Promise((resolve, reject) => {
      const meta = document.querySelector('meta[name="plotly-src"]');
      const script = document.createElement("script");
      script.src = meta ? meta.content : "/static/plotly.min.js";
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => {
        plotlyPromise = null;
        reject(new Error("the chart library (/static/plotly.min.js) could not be loaded"));
      };
      document.head.appendChild(script);
    });
  }
  return plotlyPromise;
}

// A chart that failed says so in the page (its load errors are shown by the chart itself).
function report(results) {
  for (const r of results) {
    if (r.status === "rejected" && !r.reason?.status && r.reason?.name !== "AbortError") {
      showError(`A chart could not be drawn: ${r.reason?.message || r.reason}`);
    }
  }
}

// Charts fetch when they come near the viewport (a run may have hundreds of keys); a chart
// out of view that misses a zoom or a live update is marked stale and catches up when seen.
export class View {
  constructor(state = {}) {
    this.state = { range: null, log: false, wall: false, smoothing: 0.6, ...state };
    this.charts = [];
    this.listeners = [];
    this.pending = new Set();
    this.seen = null;
    this.observer = new IntersectionObserver((entries) => this.onIntersect(entries), { rootMargin: "150px 0px" });
  }

  onRange(fn) {
    this.listeners.push(fn);
  }

  add(chart) {
    chart.visible = false;
    chart.stale = { overview: true };
    this.charts.push(chart);
    if (!this.seen) this.seen = new Promise((resolve) => { this.markSeen = resolve; });
    this.observer.observe(chart.plot);
  }

  onIntersect(entries) {
    for (const e of entries) {
      const chart = this.charts.find((c) => c.plot === e.target);
      if (!chart) continue;
      chart.visible = e.isIntersecting;
      if (chart.visible && chart.stale) this.refresh(chart, chart.stale);
    }
    if (this.markSeen) {
      this.markSeen();
      this.markSeen = null;
    }
  }

  // Fetch then draw one chart (or, out of view, remember to).
  refresh(chart, opts = {}) {
    if (!chart.visible) {
      chart.stale = { overview: Boolean(opts.overview || chart.stale?.overview) };
      return Promise.resolve();
    }
    chart.stale = null;
    const job = (async () => {
      if (await chart.load(opts)) await chart.render();
    })();
    this.pending.add(job);
    job.then(() => this.pending.delete(job), (err) => {
      this.pending.delete(job);
      report([{ status: "rejected", reason: err }]);
    });
    return job.catch(() => {});
  }

  // Resolves once the charts in view are drawn (none pending).
  async idle() {
    if (this.seen) await this.seen;
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }

  // A new step range (null: everything) for every chart: each re-fetches it at full resolution.
  setRange(range, source) {
    if (range && range[1] <= range[0]) range = [range[0], range[0] + 1];
    this.state.range = range;
    for (const c of this.charts) if (c !== source || !range) c.userY = {};
    for (const fn of this.listeners) fn(range);
    return this.reloadAll();
  }

  reloadAll(opts) {
    return Promise.all(this.charts.map((c) => this.refresh(c, opts)));
  }

  async renderAll() {
    report(await Promise.allSettled(this.charts.map((c) => c.render())));
  }

  destroy() {
    for (const c of this.charts) {
      this.observer.unobserve(c.plot);
      c.destroy();
    }
    this.charts = [];
    this.seen = null;
  }
}

export function fmtRange(range) {
  if (!range) return "all steps";
  return `steps ${Math.round(range[0]).toLocaleString()}–${Math.round(range[1]).toLocaleString()}`;
}

// The toolbar: smoothing, log scale, x by step or wall time, zoom reset.
export function toolbar(view, { wallToggle = true, smoothing = true, lead = null } = {}) {
  const value = h("output", { class: "smooth-value" }, view.state.smoothing.toFixed(2));
  const slider = h("input", {
    type: "range", min: "0", max: "0.99", step: "0.01", value: String(view.state.smoothing),
    "aria-label": "Smoothing", id: "smoothing",
  });
  slider.addEventListener("input", () => {
    view.state.smoothing = Number(slider.value);
    value.textContent = view.state.smoothing.toFixed(2);
    view.renderAll();
  });
  const log = h("input", { type: "checkbox", id: "log-scale", checked: view.state.log });
  log.addEventListener("change", () => {
    view.state.log = log.checked;
    for (const c of view.charts) c.userY = {};
    view.renderAll();
  });
  const xsel = h("select", { id: "x-axis", "aria-label": "x axis" },
    h("option", { value: "step" }, "step"), h("option", { value: "wall" }, "wall time"));
  xsel.value = view.state.wall ? "wall" : "step";
  xsel.addEventListener("change", () => {
    view.state.wall = xsel.value === "wall";
    view.reloadAll();
  });
  const rangeText = h("span", { class: "range-text" }, fmtRange(view.state.range));
  const reset = h("button", { type: "button", id: "reset-zoom", disabled: !view.state.range }, "Reset zoom");
  reset.addEventListener("click", () => view.setRange(null));
  view.onRange((r) => {
    rangeText.textContent = fmtRange(r);
    reset.disabled = !r;
  });
  return h("div", { class: "toolbar" },
    lead,
    smoothing ? h("label", {
      class: "ctl", title: "Exponential moving average of the training curves; the raw curve stays, faint",
    }, "Smoothing ", slider, value) : null,
    h("label", { class: "ctl" }, log, " Log scale"),
    wallToggle ? h("label", { class: "ctl" }, "x: ", xsel) : null,
    h("span", { class: "ctl zoom-ctl" }, rangeText, reset),
    h("span", { class: "hint" }, "Drag on a chart to zoom (it re-fetches that range at full resolution); double-click to reset."),
  );
}
