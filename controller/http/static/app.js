// The meshplane dashboard: reads the mesh, the workloads and the last solve from the
// HTTP API, draws them (cytoscape graph, power bars, uPlot fleet chart, table), asks
// the what-if planner, and re-reads everything when /api/v1/version moves (long-polled:
// an EventSource could not send the Authorization header the operator requires).
//
// Workload names, reasons and messages are written by users: they reach the page only
// through textContent and DOM nodes, never as HTML.
/* global cytoscape, uPlot */

const API = "api/v1/"; // relative: the page works behind a path prefix (kubectl proxy)
const POLL_MS = 2000;
const LONG_POLL_S = 25;
const TOKEN_KEY = "meshplane.token";
const FLEET_COLOURS = ["#16a34a", "#0891b2", "#ca8a04", "#db2777", "#7c3aed", "#ea580c"];
const WORKLOAD_COLOURS = ["#f59e0b", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16", "#f97316", "#14b8a6"];

const $ = (id) => document.getElementById(id);

// What the browser test reads (and a curious operator in the console).
const hook = { ready: false, version: null, renders: 0, nodes: 0, edges: 0, sites: [], workloads: [], whatIf: null };
window.__meshplane = hook;

const state = {
  version: null, mesh: null, workloads: [], solve: null, cy: null, plot: null, nodeKey: "",
  expanded: null, // the workload whose explanation is open
  details: new Map(), // "version:namespace/name" -> its GET /workloads/{ns}/{name} answer
};

// ---- DOM helpers -------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key.startsWith("data-") || key.startsWith("aria-")) node.setAttribute(key, String(value));
    else node[key] = value;
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmt(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return Number(value).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

// 602001000 -> "602.0M": tokens/s span nine orders of magnitude across the mesh.
function fmtRate(value) {
  if (value === null || value === undefined) return "—";
  const abs = Math.abs(value);
  for (const [limit, suffix] of [[1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
    if (abs >= limit) return `${(value / limit).toFixed(1)}${suffix}`;
  }
  return value.toFixed(0);
}

const sitesText = (sites) => (sites && sites.length ? sites.join(", ") : "—");

// ---- API ---------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(API + path, { cache: "no-store", ...options, headers });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.status === 401 || response.status === 403) hook.denied = response.status;
  if (!response.ok) {
    const detail = body && typeof body.detail === "string" ? body.detail
      : body && body.detail ? JSON.stringify(body.detail) : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, detail);
  }
  return body;
}

function showBanner(message) {
  const banner = $("banner");
  banner.textContent = message || "";
  banner.hidden = !message;
}

function explain(error) {
  if (error instanceof ApiError && error.status === 401) return "The API needs a token: paste one in the Token field.";
  if (error instanceof ApiError && error.status === 403) return `This token may not read the mesh: ${error.message}`;
  return `Cannot read the mesh: ${error.message}`;
}

function setLive(kind, text) {
  const live = $("live");
  live.dataset.state = kind;
  live.textContent = text;
}

// ---- graph -------------------------------------------------------------------------

function siteCapacity(site) {
  return (site.power.firmMW || 0) + (site.power.flexibleMW || 0);
}

function graphElements(mesh, workloads) {
  const nodes = [];
  const edges = [];
  const maxMW = Math.max(1, ...mesh.sites.map(siteCapacity));
  const regions = new Set(mesh.userRegions || []);
  for (const link of mesh.links || []) regions.add(link.to);
  for (const site of mesh.sites) regions.add(site.region);
  for (const region of [...regions].sort()) {
    nodes.push({ data: { id: `region:${region}`, label: region, type: "region" } });
  }
  for (const site of mesh.sites) {
    // Area grows with power: a 1.2 GW site reads big next to a 5 MW one, a 2 MW fleet still shows.
    const size = 22 + 58 * Math.sqrt(siteCapacity(site) / maxMW);
    nodes.push({
      data: {
        id: `site:${site.name}`, label: `${site.name}\n${fmt(siteCapacity(site), 0)} MW`, size,
        type: site.kind === "EdgeFleet" ? "fleet" : "factory", cordoned: site.cordoned ? "yes" : "no",
      },
    });
  }
  const linked = new Set();
  for (const link of mesh.links || []) {
    linked.add(`${link.from}->${link.to}`);
    edges.push({ data: { id: `link:${link.from}->${link.to}`, source: `site:${link.from}`, target: `region:${link.to}`,
      label: `${fmt(link.latencyMs, 0)} ms`, type: "link" } });
  }
  for (const site of mesh.sites) {
    // A site always serves its own region; draw that tie when no explicit link does.
    if (!linked.has(`${site.name}->${site.region}`)) {
      edges.push({ data: { id: `home:${site.name}`, source: `site:${site.name}`, target: `region:${site.region}`, label: "", type: "home" } });
    }
  }
  const known = new Set(mesh.sites.map((s) => s.name));
  workloads.forEach((w, index) => {
    if (w.phase !== "Placed") return;
    const colour = WORKLOAD_COLOURS[index % WORKLOAD_COLOURS.length];
    for (const user of w.users || []) {
      if (!regions.has(user.region)) continue;
      for (const site of w.sites || []) {
        if (!known.has(site)) continue;
        edges.push({ data: { id: `wl:${w.namespace}/${w.name}:${user.region}->${site}`, source: `region:${user.region}`,
          target: `site:${site}`, label: w.name, type: "workload", colour, width: 1.5 + 3 * (user.weight || 0) } });
      }
    }
  });
  return { nodes, edges };
}

const GRAPH_STYLE = [
  { selector: "node", style: { label: "data(label)", "font-size": 11, "text-wrap": "wrap", "text-valign": "bottom",
    "text-margin-y": 3, color: "#1f2937", "text-outline-color": "#fbfcfd", "text-outline-width": 2 } },
  { selector: 'node[type = "factory"]', style: { shape: "round-rectangle", "background-color": "#2563eb",
    width: "data(size)", height: "data(size)" } },
  { selector: 'node[type = "fleet"]', style: { shape: "hexagon", "background-color": "#16a34a",
    width: "data(size)", height: "data(size)" } },
  { selector: 'node[cordoned = "yes"]', style: { "background-opacity": 0.35, "border-width": 2, "border-style": "dashed",
    "border-color": "#b91c1c" } },
  { selector: 'node[type = "region"]', style: { shape: "ellipse", "background-color": "#e5e7eb", "border-color": "#9ca3af",
    "border-width": 1, width: 14, height: 14, "font-size": 10, color: "#6b7280", "text-valign": "center", "text-halign": "right",
    "text-margin-x": 3, "text-margin-y": 0 } },
  { selector: "edge", style: { "curve-style": "bezier", width: 1.5, "line-color": "#94a3b8", label: "data(label)",
    "font-size": 9, color: "#64748b", "text-rotation": "autorotate", "text-background-color": "#fbfcfd",
    "text-background-opacity": 1, "text-background-padding": 1 } },
  { selector: 'edge[type = "home"]', style: { "line-style": "dotted", "line-color": "#cbd5e1" } },
  { selector: 'edge[type = "workload"]', style: { "line-color": "data(colour)", width: "data(width)", "line-style": "dashed",
    "target-arrow-shape": "triangle", "target-arrow-color": "data(colour)", color: "data(colour)", "arrow-scale": 0.8 } },
];

function renderGraph(mesh, workloads) {
  const container = $("graph");
  const { nodes, edges } = graphElements(mesh, workloads);
  const nodeKey = nodes.map((n) => n.data.id).join("|");
  if (!state.cy) {
    state.cy = cytoscape({ container, style: GRAPH_STYLE, minZoom: 0.3, maxZoom: 3 });
  }
  const cy = state.cy;
  cy.batch(() => {
    if (nodeKey !== state.nodeKey) cy.elements().remove();
    else cy.edges().remove();
    for (const node of nodes) {
      const existing = cy.getElementById(node.data.id);
      if (existing.nonempty()) existing.data(node.data);
      else cy.add({ group: "nodes", ...node });
    }
    cy.add(edges.map((edge) => ({ group: "edges", ...edge })));
  });
  if (nodeKey !== state.nodeKey) {
    // Seeded on a circle and not randomised, so the same mesh lays out the same way.
    cy.nodes().forEach((node, i, all) => {
      const angle = (2 * Math.PI * i) / all.length;
      node.position({ x: 300 * Math.cos(angle), y: 200 * Math.sin(angle) });
    });
    cy.layout({ name: "cose", animate: false, randomize: false, nodeRepulsion: () => 9000, idealEdgeLength: () => 45,
      edgeElasticity: () => 80, gravity: 1.2, nodeOverlap: 12, padding: 12, numIter: 2000, componentSpacing: 40,
      // Laid out in the container's own proportions, so the fit below fills it.
      boundingBox: { x1: 0, y1: 0, w: Math.max(container.clientWidth, 300), h: Math.max(container.clientHeight, 200) } }).run();
    cy.fit(undefined, 16);
    state.nodeKey = nodeKey;
  }
  container.dataset.nodes = String(cy.nodes().length);
  container.dataset.edges = String(cy.edges().length);
  hook.nodes = cy.nodes().length;
  hook.edges = cy.edges().length;
  hook.graph = { nodes: cy.nodes().map((n) => n.id()), edges: cy.edges().map((e) => e.id()) };
}

// ---- power bars --------------------------------------------------------------------

function renderPower(mesh) {
  const box = $("power");
  const maxMW = Math.max(1, ...mesh.sites.map(siteCapacity));
  const rows = [];
  for (const site of mesh.sites) {
    const p = site.power;
    const firmUsed = p.firmAllocatedMW || 0;
    const flexUsed = p.flexibleAllocatedMW || 0;
    const curtailed = p.curtailedMW || 0;
    const firmFree = Math.max(0, (p.firmMW || 0) - firmUsed);
    const flexFree = Math.max(0, (p.flexibleMW || 0) - curtailed - flexUsed);
    // Widths are shares of the site's own capacity, so a 5 MW site's bar is as readable
    // as a 1.2 GW one; the figure on the right gives the scale.
    const total = Math.max(siteCapacity(site), 1e-9);
    const bar = el("div", { class: "bar", title: `${site.name}: ${fmt(firmUsed + flexUsed)} of ${fmt(siteCapacity(site))} MW used` });
    for (const [cls, mw, what] of [["used-firm", firmUsed, "firm used"], ["free-firm", firmFree, "firm free"],
      ["used-flex", flexUsed, "flexible used"], ["free-flex", flexFree, "flexible free"], ["curtailed", curtailed, "curtailed"]]) {
      if (mw <= 0) continue;
      const segment = el("span", { class: cls, title: `${what}: ${fmt(mw)} MW` });
      segment.style.width = `${(100 * mw) / total}%`; // CSSOM, which the CSP allows (no style attribute in markup)
      bar.append(segment);
    }
    const siteClass = ["site", site.kind === "EdgeFleet" ? "fleet" : "factory", site.cordoned ? "cordoned" : ""].join(" ");
    rows.push(
      el("div", { class: siteClass, title: `${site.kind} in ${site.region} (${site.country})`, "data-site": site.name, text: site.name }),
      bar,
      el("div", { class: "figure", text: `${fmt(firmUsed + flexUsed)} / ${fmt(siteCapacity(site), 0)} MW` }),
    );
  }
  box.replaceChildren(...rows);
  box.dataset.maxMw = String(maxMW);
}

// ---- clusters ----------------------------------------------------------------------

// The operator's own cluster ("local") is not in mesh.clusters: the sites without a
// member cluster say cluster "local" (an older API says nothing: local too).
function clusterList(mesh) {
  const local = {
    name: "local", state: "Reachable", reason: "Local", message: "the cluster the operator runs in", local: true,
    sites: mesh.sites.filter((s) => (s.cluster || "local") === "local").map((s) => s.name),
  };
  return [local, ...(mesh.clusters || [])];
}

function renderClusters(mesh) {
  const clusters = clusterList(mesh);
  const rows = clusters.flatMap((c) => {
    const said = [c.reason, c.message].filter(Boolean).join(": ");
    const title = said + (c.lastSeen ? ` (last seen ${c.lastSeen})` : "")
      + (c.defined === false ? " — no MemberCluster of this name" : "");
    return [
      el("div", { class: "cluster-name", "data-cluster": c.name, title: c.local ? c.message : `MemberCluster ${c.name}`,
        text: c.name }),
      el("span", { class: `badge state-${c.state}`, "data-state": c.state, title, text: c.state }),
      el("div", { class: "cluster-sites", text: sitesText(c.sites) }),
    ];
  });
  $("clusters").replaceChildren(...rows);
  hook.clusters = clusters.map((c) => ({ name: c.name, state: c.state, sites: c.sites || [] }));
}

// ---- solver ------------------------------------------------------------------------

function renderSolver(solve) {
  const gap = Number.isFinite(solve.gap) ? `${(100 * solve.gap).toFixed(2)} %` : "—";
  const items = [
    ["status", solve.status], ["gap", gap], ["version", solve.version],
    ["objective", fmtRate(solve.objective), fmt(solve.objective, 1)], ["bound", fmtRate(solve.bound), fmt(solve.bound, 1)],
    ["solve", `${fmt(solve.solveMs, 0)} ms`],
    ["start", solve.warm ? "warm" : "cold"], ["placed", `${solve.placedWorkloads} / ${solve.workloads}`],
    ["time limit", solve.wallLimitHit ? "hit" : "not hit"],
  ];
  $("solver").replaceChildren(...items.flatMap(([k, v, full]) => [
    el("dt", { text: k }), el("dd", { "data-field": k, title: full, text: v ?? "—" })]));
}

// ---- fleets chart ------------------------------------------------------------------

function renderFleets(mesh) {
  const box = $("fleets");
  const fleets = mesh.sites.filter((s) => s.kind === "EdgeFleet" && Array.isArray(s.onlineDevicesNext24h));
  if (!fleets.length) {
    box.replaceChildren(el("p", { class: "empty", text: "No edge fleets in the mesh." }));
    state.plot = null;
    return;
  }
  const xs = fleets[0].onlineDevicesNext24h.map((p) => Date.parse(p.at) / 1000);
  const data = [xs, ...fleets.map((f) => {
    const byTime = new Map(f.onlineDevicesNext24h.map((p) => [Date.parse(p.at) / 1000, p.devices]));
    return xs.map((x) => (byTime.has(x) ? byTime.get(x) : null));
  })];
  const series = [{ label: "time (UTC)", value: (u, v) => (v == null ? "—" : new Date(v * 1000).toISOString().slice(11, 16)) },
    ...fleets.map((f, i) => ({ label: f.name, stroke: FLEET_COLOURS[i % FLEET_COLOURS.length], width: 2,
      value: (u, v) => (v == null ? "—" : Math.round(v).toLocaleString("en-US")) }))];
  const key = fleets.map((f) => f.name).join("|");
  const width = Math.max(300, box.clientWidth || 480);
  if (state.plot && state.plot.key === key) {
    state.plot.setData(data);
  } else {
    if (state.plot) state.plot.destroy();
    box.replaceChildren();
    state.plot = new uPlot({
      width, height: 230, series,
      scales: { x: { time: true } },
      axes: [{ values: (u, ticks) => ticks.map((t) => new Date(t * 1000).toISOString().slice(11, 16)) },
        { size: 60, values: (u, ticks) => ticks.map((t) => fmtRate(t)) }],
      legend: { live: true },
    }, data, box);
    state.plot.key = key;
  }
  box.dataset.fleets = String(fleets.length);
}

// ---- workloads table ---------------------------------------------------------------

function renderPhaseFilter(workloads) {
  const select = $("filter-phase");
  const chosen = select.value;
  const phases = [...new Set(workloads.map((w) => w.phase))].sort();
  select.replaceChildren(el("option", { value: "", text: "every phase" }),
    ...phases.map((p) => el("option", { value: p, text: p })));
  select.value = phases.includes(chosen) ? chosen : "";
}

function workloadMatches(w, text, phase) {
  if (phase && w.phase !== phase) return false;
  if (!text) return true;
  const haystack = [w.namespace, w.name, `${w.namespace}/${w.name}`, w.type, w.phase, w.reason, w.message, ...(w.sites || [])]
    .join(" ").toLowerCase();
  return text.toLowerCase().split(/\s+/).filter(Boolean).every((word) => haystack.includes(word));
}

// Ready replicas where the operator delivers the workload ("—" where it does not):
// amber while delivering or progressing, red when degraded or its cluster is unreachable.
function readyCell(w) {
  if (!w.ready) return el("td", { class: "num ready", text: "—" });
  const available = w.available;
  const reason = available ? available.reason : "";
  const cls = !available || available.status === "True" ? "ready-ok"
    : reason === "Degraded" || reason === "ClusterUnreachable" ? "ready-bad" : "ready-warn";
  const messages = (w.assignments || []).filter((a) => a.deliveryMessage)
    .map((a) => `${a.site}${a.cluster ? ` (${a.cluster})` : ""}: ${a.deliveryMessage}`);
  const title = messages.length ? messages.join("\n") : (available ? available.message : "");
  return el("td", { class: `num ready ${cls}`, "data-reason": reason, title, text: w.ready });
}

function renderWorkloads() {
  const text = $("filter-text").value.trim();
  const phase = $("filter-phase").value;
  const shown = state.workloads.filter((w) => workloadMatches(w, text, phase));
  const rows = [];
  for (const w of shown) {
    const key = `${w.namespace}/${w.name}`;
    const open = state.expanded === key;
    const row = el("tr", { class: "workload", "data-key": key, "data-phase": w.phase, tabIndex: 0, "aria-expanded": String(open) },
      el("td", { class: "name" }, el("span", { class: "ns", text: `${w.namespace}/` }), w.name),
      el("td", { text: w.type }),
      el("td", {}, el("span", { class: `phase phase-${w.phase}`, text: w.phase })),
      el("td", { class: "sites", text: sitesText(w.sites) }),
      readyCell(w),
      el("td", { class: "num", text: w.phase === "Placed" ? fmt(w.powerMW, 1) : "—" }),
      el("td", { class: "num", text: w.phase === "Placed" ? fmtRate(w.tokensPerSecond) : "—" }),
      el("td", { class: "reason", title: w.message || "", text: w.phase === "Placed" ? w.reason : (w.message || w.reason) }),
    );
    row.addEventListener("click", () => toggleDetail(key));
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        toggleDetail(key);
      }
    });
    rows.push(row);
    if (open) rows.push(el("tr", { class: "detail", "data-detail": key }, el("td", { colSpan: 8 }, detailBody(key))));
  }
  if (!rows.length) rows.push(el("tr", {}, el("td", { class: "empty", colSpan: 8, text: "No workload matches." })));
  $("workloads").tBodies[0].replaceChildren(...rows);
  $("workload-count").textContent = `${shown.length} of ${state.workloads.length}`;
}

// ---- one workload's explanation (GET /workloads/{namespace}/{name}) ----------------

async function toggleDetail(key) {
  state.expanded = state.expanded === key ? null : key;
  renderWorkloads();
  if (state.expanded !== key || state.details.has(`${state.version}:${key}`)) return;
  const [namespace, name] = key.split("/");
  let detail;
  try {
    detail = await api(`workloads/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`);
  } catch (error) {
    detail = { error: error.message };
  }
  state.details.set(`${state.version}:${key}`, detail);
  if (state.expanded === key) renderWorkloads();
}

function detailBody(key) {
  const detail = state.details.get(`${state.version}:${key}`);
  if (!detail) return el("p", { class: "muted", text: "reading…" });
  if (detail.error) return el("p", { class: "error", text: detail.error });
  const x = detail.explanation || {};
  const parts = [el("p", { class: "explain-message", text: x.message || detail.message || "" })];
  if ((detail.assignments || []).length) {
    parts.push(el("h4", { text: "Assignments" }), el("ul", {}, detail.assignments.map((a) => el("li", {
      text: `${a.site}: ${a.devices.toLocaleString("en-US")} × ${a.acceleratorModel}, ${fmt(a.powerMW, 2)} MW, `
        + `${fmtRate(a.tokensPerSecond)} tokens/s${a.latencyMs == null ? "" : `, ${fmt(a.latencyMs, 0)} ms`}`
        + (a.cluster ? `, ${a.readyReplicas ?? 0}/${a.replicas ?? 0} ready in ${a.cluster}` : "")
        + (a.deliveryMessage ? ` (${a.deliveryMessage})` : "") }))));
  }
  const rejections = Object.entries(x.rejections || {}).sort((a, b) => b[1] - a[1]);
  if (rejections.length) {
    parts.push(el("h4", { text: "Sites rejected" }),
      el("ul", { class: "rejections" }, rejections.map(([why, count]) => el("li", { "data-filter": why, text: `${count} × ${why}` }))));
  }
  parts.push(el("h4", { text: `Feasible sites (${x.feasibleSiteCount ?? (x.feasibleSites || []).length})` }),
    el("p", { class: "feasible", text: sitesText(x.feasibleSites) }));
  if ((x.candidates || []).length) {
    parts.push(el("h4", { text: "Cheapest candidates" }), el("ul", {}, x.candidates.slice(0, 5).map((c) => el("li", {
      text: `${c.site} (${c.acceleratorModel}): ${fmt(c.devices, 0)} devices, ${fmt(c.latencyMs, 0)} ms` }))));
  }
  if ((x.displacedBy || []).length) {
    parts.push(el("h4", { text: "Displaced by" }), el("p", { text: x.displacedBy.join(", ") }));
  }
  return el("div", { class: "explain" }, parts);
}

// ---- what-if -----------------------------------------------------------------------

const CHANGE_KINDS = [
  ["moved", "moved"], ["newlyPlaced", "newly placed"], ["newlyUnschedulable", "unschedulable"], ["newlyPreempted", "preempted"],
];

function renderWhatIf(diff) {
  const workloadRows = [];
  for (const [field, label] of CHANGE_KINDS) {
    for (const move of diff[field] || []) {
      workloadRows.push(el("tr", { "data-change": field, "data-key": move.key },
        el("td", { class: `change-${field}`, text: label }),
        el("td", { text: move.key }),
        el("td", { text: `${move.beforePhase} → ${move.afterPhase}` }),
        el("td", { "data-before": sitesText(move.beforeSites), "data-after": sitesText(move.afterSites),
          text: `${sitesText(move.beforeSites)} → ${sitesText(move.afterSites)}` }),
        el("td", { class: "reason", text: move.reason || "" }),
      ));
    }
  }
  for (const [field, label] of [["removed", "removed"], ["added", "added"]]) {
    for (const key of diff[field] || []) {
      workloadRows.push(el("tr", { "data-change": field, "data-key": key },
        el("td", { class: `change-${field}`, text: label }), el("td", { text: key }), el("td"), el("td"), el("td")));
    }
  }
  if (!workloadRows.length) workloadRows.push(el("tr", {}, el("td", { class: "empty", colSpan: 5, text: "No workload changes." })));
  const arrow = (before, after, format) => {
    const cls = after > before ? "up" : after < before ? "down" : "";
    return [format(before), " → ", el("span", { class: cls, text: format(after) })];
  };
  const siteRows = (diff.sites || []).map((s) => el("tr", { "data-site": s.site },
    el("td", { text: s.site }), el("td", { text: s.kind }),
    el("td", { class: "num", "data-before": s.mwBefore, "data-after": s.mwAfter }, ...arrow(s.mwBefore, s.mwAfter, (v) => fmt(v, 1))),
    el("td", { class: "num", "data-before": s.tokensPerSecondBefore, "data-after": s.tokensPerSecondAfter },
      ...arrow(s.tokensPerSecondBefore, s.tokensPerSecondAfter, fmtRate)),
  ));
  if (!siteRows.length) siteRows.push(el("tr", {}, el("td", { class: "empty", colSpan: 4, text: "No site changes." })));
  $("whatif-workloads").tBodies[0].replaceChildren(...workloadRows);
  $("whatif-sites").tBodies[0].replaceChildren(...siteRows);
  $("whatif-result").hidden = false;
}

async function runWhatIf(event) {
  event.preventDefault();
  const changes = $("whatif-changes").value.split("\n").map((line) => line.trim()).filter((line) => line && !line.startsWith("#"));
  const status = $("whatif-status");
  status.classList.remove("error");
  if (!changes.length) {
    status.textContent = "Write at least one change.";
    status.classList.add("error");
    return;
  }
  const button = $("whatif-run");
  button.disabled = true;
  status.textContent = "planning…";
  hook.whatIf = null;
  const started = performance.now();
  try {
    const answer = await api("plan", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ changes }) });
    renderWhatIf(answer.diff);
    const solve = answer.plan && answer.plan.solve;
    status.textContent = `${changes.length} change${changes.length === 1 ? "" : "s"}, planned in ${fmt(performance.now() - started, 0)} ms`
      + (solve && solve.status ? ` (${solve.status})` : "");
    hook.whatIf = { changes, diff: answer.diff };
  } catch (error) {
    $("whatif-result").hidden = true;
    status.textContent = error.message;
    status.classList.add("error");
    hook.whatIf = { changes, error: error.message };
  } finally {
    button.disabled = false;
  }
}

// ---- refresh and polling -----------------------------------------------------------

async function refresh() {
  const [mesh, workloads, solve] = await Promise.all([api("mesh"), api("workloads"), api("solve")]);
  state.mesh = mesh;
  state.workloads = workloads.items || [];
  state.solve = solve;
  if (state.version !== mesh.version) state.details.clear();
  state.version = mesh.version;
  renderGraph(mesh, state.workloads);
  renderPower(mesh);
  renderClusters(mesh);
  renderSolver(solve);
  renderFleets(mesh);
  renderPhaseFilter(state.workloads);
  renderWorkloads();
  $("stamp").textContent = `version ${mesh.version} · solved for ${mesh.at}`;
  Object.assign(hook, {
    version: mesh.version, renders: hook.renders + 1, ready: true,
    sites: mesh.sites.map((s) => s.name), workloads: state.workloads.map((w) => `${w.namespace}/${w.name}`),
  });
  document.body.dataset.version = String(mesh.version);
}

// Following the mesh: GET version?after=N is a long poll (the server answers when the
// version passes N, or after `wait` seconds with N unchanged), so a new outcome shows
// at once without a request every 2 s. A server that answers at once anyway is asked
// again only after POLL_MS. A token change aborts the pending poll and starts afresh.
let follower = null;
const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
});

async function follow(signal) {
  while (!signal.aborted) {
    const asked = performance.now();
    let changed = false;
    try {
      const path = state.version === null ? "version" : `version?after=${state.version}&wait=${LONG_POLL_S}`;
      const { version } = await api(path, { signal });
      if (signal.aborted) return;
      changed = version !== state.version;
      if (changed) await refresh();
      setLive("live", "live");
      showBanner("");
    } catch (error) {
      if (signal.aborted) return;
      setLive("error", "offline");
      showBanner(explain(error));
      // A fault of the page itself (not an answer of the API) belongs in the console.
      if (!(error instanceof ApiError) && !(error instanceof TypeError && /fetch/i.test(error.message))) console.error(error);
      await sleep(POLL_MS, signal);
      continue;
    }
    if (!changed && performance.now() - asked < POLL_MS) await sleep(POLL_MS, signal);
  }
}

function restartFollowing() {
  if (follower) follower.abort();
  follower = new AbortController();
  follow(follower.signal);
}

function setUpToken() {
  const input = $("token");
  input.value = sessionStorage.getItem(TOKEN_KEY) || "";
  input.addEventListener("change", () => {
    const token = input.value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
    state.version = null; // re-read everything with the new identity
    restartFollowing();
  });
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault(); // Enter in the field: apply it, do not navigate
    input.dispatchEvent(new Event("change"));
  });
  $("token-clear").addEventListener("click", () => {
    input.value = "";
    input.dispatchEvent(new Event("change"));
  });
}

function start() {
  setUpToken();
  $("filter-text").addEventListener("input", renderWorkloads);
  $("filter-phase").addEventListener("change", renderWorkloads);
  $("whatif").addEventListener("submit", runWhatIf);
  window.addEventListener("resize", () => {
    if (state.plot) state.plot.setSize({ width: Math.max(300, $("fleets").clientWidth), height: 230 });
  });
  restartFollowing();
}

start();
