// One run: the loss chart (with lr below), a chart per key group, per-layer heatmaps, the
// diagnoses (a panel, and bands on the curves), config and tags. Live while the run is running.

import { getDiagnoses, getMutes, getRun, muteKind, unmuteKind } from "./api.js";
import { chartCard, LineChart } from "./chart.js";
import { assignBands, chartFor, diagnosesList, kindLabel, zoomRange } from "./diagnoses.js";
import { clear, clearError, fill, emptyState, fmtAgo, fmtDate, h, showError, statusPill } from "./dom.js";
import { LayerChart } from "./heatmap.js";
import { flattenConfig, lineSpecs, planCharts } from "./plan.js";
import { selected, toggle } from "./selection.js";
import { loadPlotly, toolbar, View } from "./view.js";

const POLL_MS = 1000;

function lastStepOf(run) {
  let best = null;
  for (const s of Object.values(run.summary || {})) if (s.last_step !== null && (best === null || s.last_step > best)) best = s.last_step;
  return best;
}

function seriesSig(s) {
  return s ? `${s.count}|${s.last_step}|${s.last_value}|${s.nan_count}|${s.inf_count}` : "";
}

export function mountRun(root, runId, app) {
  const view = new View();
  let run = null;
  let diagnoses = [];
  let mutedKinds = new Set();
  let keysSig = "";
  let focus = null;
  let stopped = false;
  let timer = null;

  const title = h("h1", { class: "run-name" }, "Loading run…");
  const headMeta = h("div", { class: "run-meta" });
  // Problems with the run itself (not its training): points the SDK dropped, a crash.
  const alerts = h("div", { class: "run-alerts" });
  const liveNote = h("span", { class: "live-note", hidden: true }, "live · updates every second");
  const charts = h("div", { class: "charts" });
  const bar = toolbar(view);
  const diagBox = h("div", { class: "diag-box" });
  const diagCount = h("span", { class: "count" });
  const configBox = h("div");
  const detailsBox = h("dl", { class: "details" });
  fill(root, h("div", { class: "page run-page" },
    h("div", { class: "page-head" }, h("a", { href: "#/runs", class: "back" }, "← Runs"), title, liveNote),
    headMeta,
    alerts,
    bar,
    h("div", { class: "run-layout" }, charts,
      h("aside", { class: "side" },
        h("section", { class: "panel", id: "diagnoses-panel" }, h("h2", {}, "Diagnoses ", diagCount), diagBox),
        h("section", { class: "panel" }, h("h2", {}, "Config"), configBox),
        h("section", { class: "panel" }, h("h2", {}, "Details"), detailsBox)))));

  view.onRange((range) => {
    if (range || focus === null) return;
    focus = null;
    renderDiagnoses();
  });

  // The header and config are rebuilt only when they change (not on every live poll: a click
  // on the checkbox must not land on an element being replaced); the details always.
  let headSig = "";
  function renderHead() {
    renderDetails();
    renderAlerts();
    const sig = JSON.stringify([run.name, run.status, run.project, run.tags, run.created_at, run.config]);
    if (sig === headSig) return;
    headSig = sig;
    title.textContent = run.name;
    document.title = `${run.name} · Losslens`;
    liveNote.hidden = run.status !== "running";
    const box = h("input", { type: "checkbox", checked: selected().includes(run.id), id: "select-compare" });
    box.addEventListener("change", () => toggle(run.id, box.checked));
    fill(headMeta,
      statusPill(run.status),
      h("span", {}, "project ", h("a", { href: `#/runs?project=${encodeURIComponent(run.project)}` }, run.project)),
      run.tags.length ? h("span", { class: "tags" }, run.tags.map((t) => h("a", {
        class: "tag", href: `#/runs?project=${encodeURIComponent(run.project)}&tag=${encodeURIComponent(t)}`,
      }, t))) : null,
      h("span", { class: "muted" }, `started ${fmtAgo(run.created_at)}`),
      h("label", { class: "ctl" }, box, " select for comparison"),
    );
    const cfg = flattenConfig(run.config);
    fill(configBox, cfg.length
      ? h("table", { class: "config" }, h("tbody", {}, cfg.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))))
      : h("p", { class: "muted" }, "No config. Pass config={...} to client_sdk.init() to keep the hyper-parameters with the run."));
  }

  function renderDetails() {
    const rows = [
      ["id", run.id], ["status", run.status], ["created", fmtDate(run.created_at)],
      ["last heartbeat", fmtDate(run.heartbeat_at)], ["finished", run.finished_at ? fmtDate(run.finished_at) : "–"],
      ["points", run.num_points.toLocaleString()], ["keys", String(Object.keys(run.summary).length)],
    ];
    if (run.dropped_points) rows.push(["dropped points", `${run.dropped_points.toLocaleString()} (the SDK could not keep them)`]);
    fill(detailsBox, ...rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", { class: k === "id" ? "mono" : k === "dropped points" ? "warn-text" : null }, v)]));
  }

  let alertsSig = "";
  function renderAlerts() {
    const sig = JSON.stringify([run.dropped_points, run.status, run.heartbeat_at]);
    if (sig === alertsSig) return;
    alertsSig = sig;
    const lines = [];
    if (run.dropped_points > 0) {
      const n = run.dropped_points.toLocaleString();
      lines.push(h("p", { class: "alert alert-warning", id: "dropped-points" },
        h("b", {}, `${n} point${run.dropped_points === 1 ? "" : "s"} dropped`),
        ` by the SDK, which could not keep ${run.dropped_points === 1 ? "it" : "them"}: the curves have gaps.`
        + " Its in-memory queue filled up (logging faster than it could send), or its disk spool"
        + " reached LOSSLENS_SPOOL_MAX_BYTES. Log less often, or give the spool more room."));
    }
    if (run.status === "crashed") {
      lines.push(h("p", { class: "alert alert-crashed", id: "crashed-note" },
        h("b", {}, "Crashed: "),
        `its heartbeat stopped${run.heartbeat_at ? ` (last heard ${fmtAgo(run.heartbeat_at)}, ${fmtDate(run.heartbeat_at)})` : ""}`
        + " without the run finishing: the training process died or lost the server. Points it still"
        + " had may be in its spool; upload them with ", h("code", {}, "losslens sync"), "."));
    }
    fill(alerts, lines);
    alerts.hidden = !lines.length;
  }

  function zoomTo(d) {
    focus = d.id;
    for (const el of diagBox.querySelectorAll(".diag")) el.classList.toggle("focused", el.dataset.id === String(d.id));
    assignBands(diagnoses, view.charts, lastStepOf(run), focus);
    view.setRange(zoomRange(d, lastStepOf(run)));
    const chart = chartFor(d, view.charts);
    const card = chart?.plot.closest(".chart-card");
    if (card) {
      card.scrollIntoView({ behavior: "smooth", block: "center" });
      card.classList.remove("flash");
      void card.offsetWidth;
      card.classList.add("flash");
    }
  }

  // Mute a kind for this run (admins): its diagnoses stay listed, greyed, and leave the runs
  // list badges. Kinds muted before they fired are listed below the cards.
  async function setMuted(kind, mute) {
    try {
      await (mute ? muteKind(runId, kind) : unmuteKind(runId, kind));
      const [d, m] = await Promise.all([getDiagnoses(runId), getMutes(runId)]);
      if (stopped) return;
      diagnoses = d;
      mutedKinds = new Set(m);
      renderDiagnoses();
      await Promise.all(view.charts.map((c) => c.render().catch((err) => showError(err.message))));
    } catch (err) {
      showError(`Could not ${mute ? "mute" : "unmute"} ${kind}: ${err.message}`);
    }
  }

  function renderDiagnoses() {
    const resolved = diagnoses.filter((d) => d.status !== "active").length;
    const muted = diagnoses.filter((d) => d.status === "active" && d.muted).length;
    const active = diagnoses.length - resolved - muted;
    const counts = [`${active} active`, muted ? `${muted} muted` : null, resolved ? `${resolved} resolved` : null];
    diagCount.textContent = diagnoses.length ? counts.filter(Boolean).join(", ") : "";
    const admin = app.can("admin");
    const muteFor = admin ? (d) => ({ muted: Boolean(d.muted), onToggle: setMuted }) : null;
    const shown = new Set(diagnoses.map((d) => d.kind));
    const silent = [...mutedKinds].filter((k) => !shown.has(k)).sort();
    fill(diagBox, diagnosesList(diagnoses, { onZoom: zoomTo, lastStep: lastStepOf(run), muteFor }),
      silent.length ? h("p", { class: "muted-kinds" }, "Also muted for this run: ", silent.map((k, i) => [
        i ? ", " : null, h("span", { class: "mono", title: kindLabel(k) }, k),
        admin ? [" (", h("button", { type: "button", class: "link mute-toggle", dataset: { kind: k, action: "unmute" },
          onclick: () => setMuted(k, false) }, "unmute"), ")"] : null,
      ])) : null);
    for (const el of diagBox.querySelectorAll(".diag")) el.classList.toggle("focused", el.dataset.id === String(focus));
    assignBands(diagnoses, view.charts, lastStepOf(run), focus);
  }

  function buildCharts() {
    view.destroy();
    clear(charts);
    keysSig = Object.keys(run.summary).sort().join("\n");
    const plans = planCharts(run.summary);
    bar.hidden = !plans.length;
    if (!plans.length) {
      charts.append(emptyState("No points logged yet",
        run.status === "running"
          ? "This run exists but has not sent any point. Points logged like this appear here within a second:"
          : "This run has no points. Log them from the training loop:",
        run.project));
      return;
    }
    for (const plan of plans) {
      const layer = plan.kind === "layer";
      const { card, plot } = chartCard(plan.title, plan.height);
      card.dataset.chart = plan.id;
      const chart = layer
        ? new LayerChart(plot, view, { family: plan.family, run: run.id, keys: plan.keys, summary: run.summary })
        : new LineChart(plot, view, { panels: plan.panels, specs: lineSpecs(plan, run.id, run.summary), name: plan.title });
      if (layer) card.querySelector(".chart-head").append(chart.toggleButton());
      chart.plan = plan;
      view.add(chart);
      charts.append(card);
    }
  }

  async function start() {
    try {
      let muted;
      [run, diagnoses, muted] = await Promise.all([getRun(runId), getDiagnoses(runId), getMutes(runId).catch(() => [])]);
      mutedKinds = new Set(muted);
    } catch (err) {
      fill(charts, h("div", { class: "empty" }, h("h2", {}, err.status === 404 ? "Run not found" : "Could not load this run"),
        h("p", {}, err.message), h("p", {}, h("a", { href: "#/runs" }, "Back to the runs"))));
      title.textContent = "Run";
      return;
    }
    if (stopped) return;
    app.showProject(run.project);
    renderHead();
    buildCharts();
    renderDiagnoses();
    // Plotly (4.8 MB) is parsed once the series requests are on their way, not before: its
    // first parse holds the main thread for a while.
    if (view.seen) await view.seen;
    loadPlotly().catch((err) => showError(err.message));
    await view.idle(); // the charts in view are drawn; the others load as they scroll in
    if (stopped) return;
    window.__losslens = { ...(window.__losslens || {}), runReadyAt: performance.now() };
    document.body.dataset.runReady = runId;
    schedule();
  }

  function schedule() {
    clearTimeout(timer);
    if (!stopped && run.status === "running") timer = setTimeout(poll, POLL_MS);
  }

  // Live: while the run is running, re-read it and its diagnoses every second; charts whose
  // keys changed re-fetch (the user's zoom stays: the range is page state, uirevision keeps UI).
  async function poll() {
    try {
      const [r, d] = await Promise.all([getRun(runId), getDiagnoses(runId)]);
      if (stopped) return;
      const before = run.summary;
      run = r;
      renderHead();
      const diagChanged = JSON.stringify(d) !== JSON.stringify(diagnoses);
      diagnoses = d;
      if (Object.keys(r.summary).sort().join("\n") !== keysSig) {
        buildCharts();
        renderDiagnoses();
        await view.idle();
      } else {
        const changed = new Set(Object.keys(r.summary).filter((k) => seriesSig(r.summary[k]) !== seriesSig(before[k])));
        for (const c of view.charts) for (const s of c.specs) s.summary = r.summary[s.key];
        if (diagChanged || changed.size) renderDiagnoses();
        await Promise.all(view.charts.map((c) => {
          if (c.keys().some((k) => changed.has(k))) return view.refresh(c, { overview: true });
          return diagChanged ? c.render().catch((err) => showError(err.message)) : null;
        }));
      }
      clearError();
    } catch (err) {
      if (err.name !== "AbortError") showError(`Live update failed (retrying): ${err.message}`);
    }
    schedule();
  }

  start();
  return () => {
    stopped = true;
    clearTimeout(timer);
    view.destroy();
  };
}
