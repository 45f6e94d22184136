// The dashboard page: loads the state once, then follows the server's event stream. Every text
// from the cluster goes in through textContent (log lines and messages are data, never markup).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const WINDOW_S = 15 * 60;
const COLORS = { gateway: "#58a6ff", order: "#d2a8ff", product: "#3fb950", payment: "#f0883e" };
const LAYOUT = { gateway: [30, 118], order: [250, 118], product: [470, 40], payment: [470, 196] };
const OPEN = new Set(["Detected", "Triaging", "Planning", "AwaitingApproval", "Mitigating", "Validating", "Undoing"]);
const state = { incidents: new Map(), scenarios: new Map(), series: { errorRatio: {}, p95Seconds: {} },
                markers: [], detail: null };

function el(tag, attrs = {}, text) {
  const ns = ["svg", "g", "rect", "text", "line", "polyline", "defs", "marker", "path"].includes(tag);
  const e = ns ? document.createElementNS(SVG, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
const fmtPct = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(v < 0.1 ? 1 : 0)}%`);
const fmtMs = (v) => (v === null || v === undefined ? "–" : `${Math.round(v * 1000)} ms`);
const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : "");

// -- service map ---------------------------------------------------------------------------
function renderMap(health) {
  const svg = document.getElementById("map");
  svg.replaceChildren();
  const defs = el("defs");
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "10", refY: "5", markerWidth: "7",
                                markerHeight: "7", orient: "auto-start-reverse" });
  marker.append(el("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#2a3541" }));
  defs.append(marker);
  svg.append(defs);
  for (const e of health.edges) {
    const [x1, y1] = LAYOUT[e.from], [x2, y2] = LAYOUT[e.to];
    svg.append(el("line", { class: "edge", x1: x1 + 140, y1: y1 + 32, x2: x2, y2: y2 + 32 }));
  }
  for (const n of health.nodes) {
    const [x, y] = LAYOUT[n.name];
    const g = el("g", { class: `node ${n.status}`, "data-service": n.name, "data-status": n.status,
                        transform: `translate(${x},${y})` });
    g.append(el("rect", { width: 140, height: 64 }));
    g.append(el("text", { class: "name", x: 10, y: 20 }, n.name));
    const ready = n.desired === null || n.desired === undefined ? "" : `${n.ready ?? 0}/${n.desired} ready`;
    g.append(el("text", { x: 10, y: 37 }, `${ready}  ${fmtPct(n.errorRatio)} err`));
    g.append(el("text", { x: 10, y: 53 }, n.why ? n.why.slice(0, 22) : `P95 ${fmtMs(n.p95Seconds)}`));
    g.append(el("title", {}, `${n.name}: ${n.status}${n.why ? " — " + n.why : ""}`));
    svg.append(g);
  }
  const prom = document.getElementById("prometheus");
  prom.textContent = health.prometheus ? "Prometheus ok" : "Prometheus not answering";
  prom.className = `pill ${health.prometheus ? "on" : "off"}`;
}

// -- incidents and scenarios -----------------------------------------------------------------
function renderIncidents() {
  const body = document.querySelector("#incidents tbody");
  body.replaceChildren();
  const rows = [...state.incidents.values()].sort((a, b) => (b.detectedAt || "").localeCompare(a.detectedAt || ""));
  for (const r of rows) {
    const tr = el("tr", { "data-incident": r.name, "data-phase": r.phase });
    tr.append(el("td", {}, r.name), el("td", {}, r.service), el("td", {}, r.symptom));
    const td = el("td");
    td.append(el("span", { class: `phase ${r.phase} ${OPEN.has(r.phase) ? "open" : ""}` }, r.phase));
    tr.append(td, el("td", {}, String(r.attempts ?? 0)), el("td", {}, r.timeToDetect || "–"),
              el("td", {}, r.timeToMitigate || "–"));
    tr.addEventListener("click", () => openDetail(r.name));
    body.append(tr);
  }
  document.getElementById("no-incidents").hidden = rows.length > 0;
}

function renderScenarios() {
  const ul = document.getElementById("scenarios");
  ul.replaceChildren();
  for (const s of state.scenarios.values()) {
    ul.append(el("li", { "data-scenario": s.name }, `${s.name} (${s.type}): ${s.phase || "Pending"}`));
  }
  if (!state.scenarios.size) ul.append(el("li", { class: "muted" }, "none"));
}

function incidentMarkers(r) {
  const out = [];
  if (r.detectedAt) out.push({ at: r.detectedAt, kind: "detected", label: `${r.service} ${r.symptom} detected` });
  if (r.mitigatedAt) out.push({ at: r.mitigatedAt, kind: "mitigated", label: `${r.service} ${r.symptom} mitigated` });
  if (r.resolvedAt) out.push({ at: r.resolvedAt, kind: "resolved", label: `${r.service} ${r.symptom} resolved` });
  return out;
}

// -- charts ----------------------------------------------------------------------------------
function renderChart(id, bySvc, scale, fmt, slo) {
  const svg = document.getElementById(id);
  svg.replaceChildren();
  // The last 15 minutes, or less while there is less history (at least 3 minutes).
  const now = Date.now() / 1000, W = 600, H = 140, pad = 18;
  let first = now;
  for (const pts of Object.values(bySvc)) if (pts.length) first = Math.min(first, pts[0][0]);
  const span = Math.min(WINDOW_S, Math.max(180, now - first + 20)), t0 = now - span;
  let max = slo * 1.5;
  for (const pts of Object.values(bySvc)) for (const [, v] of pts) max = Math.max(max, v);
  max = Math.min(max, scale);
  const x = (t) => ((t - t0) / span) * W;
  svg.append(el("text", { x: W - 70, y: H - 4 }, `last ${Math.round(span / 60)} min`));
  const y = (v) => H - pad - (Math.min(v, max) / max) * (H - 2 * pad);
  svg.append(el("line", { class: "slo", x1: 0, x2: W, y1: y(slo), y2: y(slo) }));
  svg.append(el("text", { x: 4, y: y(slo) - 3 }, `SLO ${fmt(slo)}`));
  svg.append(el("text", { x: 4, y: 12 }, fmt(max)));
  for (const m of state.markers) {
    const t = new Date(m.at).getTime() / 1000;
    if (t < t0) continue;
    const line = el("line", { class: `mark ${m.kind}`, x1: x(t), x2: x(t), y1: 0, y2: H });
    line.append(el("title", {}, `${clock(m.at)} ${m.label}`));
    svg.append(line);
  }
  for (const [svc, pts] of Object.entries(bySvc)) {
    const shown = pts.filter(([t]) => t >= t0);
    if (!shown.length) continue;
    svg.append(el("polyline", { "data-service": svc, stroke: COLORS[svc] || "#aaa",
                                points: shown.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ") }));
  }
}

function renderCharts() {
  renderChart("chart-errors", state.series.errorRatio, 1, fmtPct, 0.1);
  renderChart("chart-p95", state.series.p95Seconds, 10, fmtMs, 0.5);
  const legend = document.getElementById("chart-legend");
  legend.replaceChildren();
  for (const [svc, c] of Object.entries(COLORS)) {
    const s = el("span");
    s.append(el("span", { class: "dot", style: `background:${c}` }), document.createTextNode(svc));
    legend.append(s);
  }
  for (const k of ["fault", "detected", "mitigated", "resolved"]) legend.append(el("span", { class: `mark-${k}` }, `┆ ${k}`));
}

function addHealthPoint(health) {
  const t = new Date(health.at).getTime() / 1000;
  for (const n of health.nodes) {
    for (const [key, v] of [["errorRatio", n.errorRatio], ["p95Seconds", n.p95Seconds]]) {
      if (v === null || v === undefined) continue;
      const pts = (state.series[key][n.name] ||= []);
      pts.push([t, v]);
      while (pts.length && pts[0][0] < t - WINDOW_S) pts.shift();
    }
  }
}

// -- the agents' log -------------------------------------------------------------------------
function addLog(line) {
  const ol = document.getElementById("log");
  const li = el("li", { class: line.type });
  li.append(el("time", {}, clock(line.at)), document.createTextNode(`${line.object} ${line.reason}: ${line.message}`));
  ol.prepend(li);
  while (ol.children.length > 300) ol.lastChild.remove();
}

// -- incident detail -------------------------------------------------------------------------
async function openDetail(name) {
  const resp = await fetch(`/api/incidents/${encodeURIComponent(name)}`);
  if (!resp.ok) {
    showNote(`incident ${name} is not here (${resp.status}): a finished incident is removed after its TTL; ` +
             "its Events and the operator's metrics keep its record");
    return;
  }
  const d = await resp.json();
  state.detail = name;
  const aside = document.getElementById("detail");
  aside.hidden = false;
  aside.dataset.incident = name;
  document.getElementById("detail-title").textContent = `${d.name} · ${d.phase}`;
  document.getElementById("detail-summary").textContent = d.summary || d.message || "";
  const facts = document.getElementById("detail-facts");
  facts.replaceChildren();
  const llm = d.llm && d.llm.calls ? `${d.llm.calls} call(s), ${d.llm.promptTokens + d.llm.completionTokens} tokens`
    : "none (rules planner)";
  const suspect = d.diagnosis.suspect ? `${d.diagnosis.suspect.kind}/${d.diagnosis.suspect.name}` : "";
  const fallbacks = (d.llm && d.llm.reasons || []).map((r) => `${r.stage}: ${r.reason}`).join("; ");
  for (const [k, v] of [["service", d.service], ["symptom", d.symptom], ["diagnosis", d.diagnosis.summary],
                        ["diagnosed by", d.diagnosis.diagnosedBy], ["model diagnosis", d.modelDiagnosis],
                        ["suspect", suspect],
                        ["evidence", (d.diagnosis.evidence || []).join("; ")], ["root cause", d.diagnosis.rootCause],
                        ["planner", d.diagnosis.planner], ["confidence", d.diagnosis.confidence],
                        ["fallback", d.diagnosis.fallbackReason], ["triage", d.triageSummary],
                        ["time to detect", d.timeToDetect], ["time to mitigate", d.timeToMitigate], ["LLM", llm],
                        ["rules took over", fallbacks]]) {
    if (v === undefined || v === null || v === "") continue;
    facts.append(el("dt", {}, k), el("dd", {}, String(v)));
  }
  const steps = document.getElementById("detail-steps");
  steps.replaceChildren();
  for (const s of d.steps) {
    const li = el("li", { "data-kind": s.kind });
    li.append(el("time", {}, clock(s.at) + " "), el("span", { class: "kind" }, s.kind), el("strong", {}, s.title));
    if (s.text) li.append(el("div", {}, s.text));
    if (s.kind === "validation" && (s.before || s.after)) {
      li.append(el("pre", {}, `before: ${fmtPct(s.before?.errorRatio)} err, P95 ${fmtMs(s.before?.p95Seconds)}\n` +
                              `after:  ${fmtPct(s.after?.errorRatio)} err, P95 ${fmtMs(s.after?.p95Seconds)}`));
    }
    if (s.undo) li.append(el("pre", {}, `undo record: ${JSON.stringify(s.undo).slice(0, 400)}`));
    steps.append(li);
  }
}
document.getElementById("close-detail").addEventListener("click", () => {
  document.getElementById("detail").hidden = true;
  state.detail = null;
});

function showNote(text) {
  const note = document.getElementById("link-note");
  note.textContent = text;
  note.hidden = false;
}

// A notification's link (`?namespace=…&incident=…`) opens that incident's detail, when it is in the
// namespace this dashboard shows; else it says which namespace the link was for.
function openLinked(namespace) {
  const params = new URLSearchParams(window.location.search);
  const name = params.get("incident");
  if (!name) return;
  const wanted = params.get("namespace");
  if (wanted && wanted !== namespace) {
    showNote(`the link is for incident ${name} in namespace ${wanted}; this dashboard shows namespace ${namespace}`);
    return;
  }
  openDetail(name);
}

// -- start -----------------------------------------------------------------------------------
async function load() {
  const s = await (await fetch("/api/state")).json();
  document.getElementById("namespace").textContent = `namespace ${s.namespace}`;
  renderMap(s.health);
  for (const r of s.incidents) state.incidents.set(r.name, r);
  for (const sc of s.scenarios) state.scenarios.set(sc.name, sc);
  renderIncidents();
  renderScenarios();
  for (const line of s.log) addLog(line);
  const series = await (await fetch("/api/series?minutes=15")).json();
  state.series = series.series;
  state.markers = series.markers;
  renderCharts();
  openLinked(s.namespace);
}

function follow() {
  const pill = document.getElementById("stream");
  const es = new EventSource("/api/stream");
  es.onopen = () => { pill.textContent = "live"; pill.className = "pill on"; };
  es.onerror = () => { pill.textContent = "reconnecting…"; pill.className = "pill off"; };
  es.addEventListener("health", (e) => {
    const h = JSON.parse(e.data);
    renderMap(h);
    addHealthPoint(h);
    renderCharts();
  });
  es.addEventListener("incident", (e) => {
    const r = JSON.parse(e.data);
    if (r.event === "DELETED") state.incidents.delete(r.name); else state.incidents.set(r.name, r);
    const keep = state.markers.filter((m) => !m.label.startsWith(`${r.service} ${r.symptom} `));
    state.markers = keep.concat(incidentMarkers(r));
    renderIncidents();
    if (state.detail === r.name) openDetail(r.name);
  });
  es.addEventListener("scenario", (e) => {
    const s = JSON.parse(e.data);
    if (s.event === "DELETED") state.scenarios.delete(s.name); else state.scenarios.set(s.name, s);
    const mine = (m) => m.label === `${s.type} injected (${s.name})` || m.label === `${s.name} reverted`;
    state.markers = state.markers.filter((m) => !mine(m));
    if (s.injectedAt) state.markers.push({ at: s.injectedAt, kind: "fault", label: `${s.type} injected (${s.name})` });
    if (s.revertedAt) state.markers.push({ at: s.revertedAt, kind: "reverted", label: `${s.name} reverted` });
    renderScenarios();
    renderCharts();
  });
  es.addEventListener("log", (e) => addLog(JSON.parse(e.data)));
}

load().then(follow, (err) => {
  document.getElementById("stream").textContent = `failed to load: ${err}`;
  follow();
});
