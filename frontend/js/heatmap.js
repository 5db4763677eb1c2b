// Per-layer keys (`grad_norm/<module>`, `act_zero_frac/<module>`, …) as a heatmap of layers ×
// steps, with a line view. Always over steps (a wall-time x has no fixed bucket width).

import { h, plotlyText } from "./dom.js";
import { LineChart, PALETTE } from "./chart.js";
import { uid } from "./traces.js";
import { lowerBound } from "./series.js";

export const LAYER_FAMILIES = {
  grad_norm: { title: "Gradient norm per layer", scale: "log" },
  weight_norm: { title: "Weight norm per layer", scale: "log" },
  update_ratio: { title: "Update ratio ‖Δw‖/‖w‖ per layer", scale: "log" },
  act_mean: { title: "Activation mean per layer", scale: "diverging" },
  act_std: { title: "Activation std per layer", scale: "log" },
  act_zero_frac: { title: "Dead fraction per layer (outputs exactly zero)", scale: "fraction" },
  act_sat_frac: { title: "Saturated fraction per layer (outputs at their bounds)", scale: "fraction" },
};

const COLORSCALES = {
  log: "Viridis",
  fraction: [[0, "#fbfbfd"], [0.2, "#fdd0a2"], [0.5, "#f16913"], [1, "#7f0000"]],
  diverging: "RdBu",
};

const natural = new Intl.Collator(undefined, { numeric: true }).compare;

export function layerKeys(family, keys) {
  return keys.filter((k) => k.startsWith(`${family}/`)).sort(natural);
}

export function layerHeight(nModules) {
  return Math.min(640, Math.max(240, nModules * 18 + 110));
}

export class LayerChart extends LineChart {
  constructor(plot, view, { family, run, keys, summary }) {
    const info = LAYER_FAMILIES[family];
    const specs = keys.map((key, i) => ({
      id: `${run}|${key}`, run, key, label: key.slice(family.length + 1), color: PALETTE[i % PALETTE.length],
      panel: 0, smooth: false, summary: summary?.[key],
    }));
    super(plot, view, { panels: [{ title: "" }], specs, name: info.title });
    this.family = family;
    this.info = info;
    this.mode = "heatmap";
  }

  wall() {
    return false;
  }

  get bandsOver() {
    return this.mode === "heatmap";
  }

  logScale() {
    return this.info.scale === "log" || this.view.state.log;
  }

  columns() {
    return Math.max(20, Math.round(this.plotWidth() / 5));
  }

  maxPoints() {
    if (this.mode === "heatmap") return Math.max(100, 2 * this.columns());
    return Math.round(this.specs.length > 8 ? this.plotWidth() : 2 * this.plotWidth());
  }

  toggleButton() {
    const btn = h("button", { type: "button", class: "small", title: "Switch between the heatmap and one line per layer" }, "Lines");
    btn.addEventListener("click", async () => {
      this.mode = this.mode === "heatmap" ? "lines" : "heatmap";
      btn.textContent = this.mode === "heatmap" ? "Lines" : "Heatmap";
      this.overview = null;
      this.userY = {};
      await this.view.refresh(this, { overview: true });
    });
    return btn;
  }

  extent() {
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of this.specs) {
      const got = this.overview?.get(s.id);
      if (got && got.steps.length) {
        lo = Math.min(lo, got.steps[0]);
        hi = Math.max(hi, got.steps[got.steps.length - 1]);
      }
    }
    return lo <= hi ? [lo, hi] : [0, 1];
  }

  traces() {
    if (this.mode !== "heatmap") return super.traces();
    const [lo, hi] = this.view.state.range || this.extent();
    // no more columns than records in view: layers logged every N steps would otherwise
    // leave N-1 empty columns between records (thin stripes instead of cells)
    let records = 1;
    for (const spec of this.specs) {
      const s = this.series(spec);
      if (!s) continue;
      let n = 0;
      for (let i = lowerBound(s.steps, lo); i < s.steps.length && s.steps[i] <= hi; i++) n++;
      records = Math.max(records, n);
    }
    const cols = Math.min(this.columns(), records);
    const width = Math.max(1, (hi - lo + 1) / cols);
    const centers = Array.from({ length: cols }, (_, c) => lo + (c + 0.5) * width);
    const scale = this.info.scale;
    const z = [];
    const custom = [];
    const bad = { x: [], y: [], text: [] };
    this.specs.forEach((spec, row) => {
      const zr = new Array(cols).fill(null);
      const cr = new Array(cols).fill(null);
      const s = this.series(spec);
      const sum = new Float64Array(cols);
      const cnt = new Float64Array(cols);
      const mn = new Float64Array(cols).fill(Infinity);
      const mx = new Float64Array(cols).fill(-Infinity);
      const nonfinite = new Map();
      if (s) {
        for (let i = lowerBound(s.steps, lo); i < s.steps.length && s.steps[i] <= hi; i++) {
          const c = Math.min(cols - 1, Math.floor((s.steps[i] - lo) / width));
          const v = s.values[i];
          if (!Number.isFinite(v)) {
            nonfinite.set(c, Number.isNaN(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
            continue;
          }
          sum[c] += v;
          cnt[c] += 1;
          if (v < mn[c]) mn[c] = v;
          if (v > mx[c]) mx[c] = v;
        }
      }
      for (let c = 0; c < cols; c++) {
        if (!cnt[c]) continue;
        const mean = sum[c] / cnt[c];
        zr[c] = scale === "log" ? (mean > 0 ? Math.log10(mean) : null) : mean;
        cr[c] = [plotlyText(spec.label), mean, mn[c], mx[c]];
      }
      for (const [c, kind] of nonfinite) {
        bad.x.push(centers[c]);
        bad.y.push(row);
        bad.text.push(`${plotlyText(spec.label)}: ${kind} near step ${Math.round(centers[c])}`);
      }
      z.push(zr);
      custom.push(cr);
    });
    const heat = {
      type: "heatmap", x: centers, y: this.specs.map((_, i) => i), z, customdata: custom, uid: uid(`${this.family}:heat`),
      colorscale: COLORSCALES[scale], hoverongaps: false, name: plotlyText(this.info.title), showlegend: false,
      hovertemplate: "%{customdata[0]}<br>step ≈ %{x:.0f}<br>mean %{customdata[1]:.4g}"
        + " (min %{customdata[2]:.4g}, max %{customdata[3]:.4g})<extra></extra>",
      colorbar: { thickness: 12, len: 0.9, title: { text: scale === "log" ? "log10" : "", side: "right" } },
    };
    if (scale === "fraction") Object.assign(heat, { zmin: 0, zmax: 1 });
    if (scale === "diverging") Object.assign(heat, { zmid: 0, reversescale: true });
    const out = [heat];
    if (bad.x.length) {
      out.push({
        type: "scatter", mode: "markers", x: bad.x, y: bad.y, text: bad.text, uid: uid(`${this.family}:bad`),
        name: `NaN/Inf ×${bad.x.length} cells`, hovertemplate: "%{text}<extra></extra>",
        marker: { symbol: "x-thin-open", size: 9, color: "#c1121f", line: { width: 2, color: "#c1121f" } },
      });
    }
    return out;
  }

  layout(traces) {
    const base = super.layout(traces);
    if (this.mode !== "heatmap") return base;
    const names = this.specs.map((s) => (s.label.length > 28 ? `${s.label.slice(0, 27)}…` : s.label));
    const longest = names.reduce((a, n) => Math.max(a, n.length), 4);
    const range = this.view.state.range;
    base.uirevision = `heat|${this.family}`;
    base.hovermode = "closest";
    base.showlegend = traces.length > 1; // the NaN/Inf markers
    base.margin = { l: Math.min(220, 16 + longest * 7), r: 16, t: 16, b: base.showlegend ? 76 : 56 };
    base.xaxis = { ...base.xaxis, type: "linear", range: range || undefined, autorange: !range, showspikes: false };
    base.yaxis = {
      tickvals: this.specs.map((_, i) => i), ticktext: names.map(plotlyText), autorange: "reversed",
      range: this.userY.yaxis, gridcolor: "rgba(0,0,0,0)", zeroline: false, type: "linear",
    };
    if (base.yaxis.range) base.yaxis.autorange = false;
    delete base.yaxis2;
    return base;
  }
}
