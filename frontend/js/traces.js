// Plotly traces of one series: the min/max band, the raw line, the smoothed line, and markers
// for NaN and ±Inf. Labels arrive escaped for Plotly (plotlyText).

export const NAN_COLOR = "#c1121f";

// Plotly uses a trace's uid in CSS selectors: keep it to letters and digits.
export function uid(text) {
  let a = 5381;
  let b = 52711;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = (a * 33) ^ c;
    b = (b * 31) ^ c;
  }
  return `u${(a >>> 0).toString(36)}${(b >>> 0).toString(36)}`;
}

export function rgba(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

export function bandTrace(band, { id, label, color, yaxis }) {
  return {
    type: "scatter", mode: "lines", x: band.x, y: band.y, yaxis, fill: "toself",
    fillcolor: rgba(color, 0.16), line: { width: 0 }, hoverinfo: "skip", showlegend: false,
    legendgroup: uid(id), name: `${label} min–max`, uid: uid(`${id}:band`),
  };
}

export function rawTrace(pts, { id, label, color, yaxis, faint }) {
  return {
    type: "scatter", mode: pts.x.length < 60 ? "lines+markers" : "lines", x: pts.x, y: pts.y, yaxis,
    name: label, legendgroup: uid(id), uid: uid(`${id}:raw`),
    line: { color, width: faint ? 1 : 1.6 }, marker: { size: 4 }, opacity: faint ? 0.35 : 1,
    hovertemplate: `${label}: %{y:.4g}<extra></extra>`,
  };
}

export function emaTrace(pts, { id, label, color, yaxis }) {
  return {
    type: "scatter", mode: "lines", x: pts.x, y: pts.y, yaxis, name: `${label} (smoothed)`,
    legendgroup: uid(id), uid: uid(`${id}:ema`), line: { color, width: 2.2 },
    hovertemplate: `${label} smoothed: %{y:.4g}<extra></extra>`,
  };
}

// pts: [x, step] pairs. On an overlay y axis fixed to [0, 1]: at the top of the panel.
export function nanTrace(pts, count, { id, label, yaxis }) {
  return {
    type: "scatter", mode: "markers", x: pts.map((q) => q[0]), y: pts.map(() => 0.95),
    customdata: pts.map((q) => q[1]), yaxis, name: `${label}: NaN ×${count}`,
    legendgroup: uid(id), uid: uid(`${id}:nan`),
    marker: { symbol: "x-thin-open", size: 10, color: NAN_COLOR, line: { width: 2, color: NAN_COLOR } },
    hovertemplate: `${label} = NaN at step %{customdata}<extra></extra>`,
  };
}

// pts: [x, step, sign] triples; +Inf at the top of the panel, -Inf at the bottom.
export function infTrace(pts, count, { id, label, yaxis }) {
  return {
    type: "scatter", mode: "markers", x: pts.map((q) => q[0]), y: pts.map((q) => (q[2] > 0 ? 0.985 : 0.015)),
    customdata: pts.map((q) => [q[1], q[2] > 0 ? "+Inf" : "-Inf"]), yaxis,
    name: `${label}: ±Inf ×${count}`, legendgroup: uid(id), uid: uid(`${id}:inf`),
    marker: { symbol: pts.map((q) => (q[2] > 0 ? "triangle-up" : "triangle-down")), size: 9, color: NAN_COLOR },
    hovertemplate: `${label} = %{customdata[1]} at step %{customdata[0]}<extra></extra>`,
  };
}
