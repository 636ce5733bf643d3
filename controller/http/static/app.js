// The meshplane dashboard: reads the mesh, the workloads and the last solve from the
// HTTP API, draws them (cytoscape graph, power bars, uPlot fleet chart, table), then the
// next 24 hours as the operator plans them (uPlot step charts per factory, grid events,
// planned moves), asks the what-if planner, and re-reads everything when
// /api/v1/version moves (long-polled: an EventSource could not send the Authorization
// header the operator requires).
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
const hook = { ready: false, version: null, renders: 0, nodes: 0, edges: 0, sites: [], workloads: [], whatIf: null,
  timeline: null, timelineCharts: {} };
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

// ---- graph: the mesh as a map of regions -------------------------------------------
//
// Each region is a box (a cytoscape compound node) holding its sites and, when people
// use the mesh from there, a "users" node. The boxes are placed like a map: columns
// west to east by a small table of country centroids, north on top within a column,
// as many columns as fill the panel best; nothing random, so the same mesh always gets
// the same picture. Work is drawn aggregated: one edge per (user region, site), its
// width and label the number of placed assignments it carries. An assignment counts
// once, from its workload's main user region (the heaviest); work without user regions
// (training, batch) counts on its site. A site's fill is the share of its usable power
// in use (red: power is short), a ring marks a curtailed site. Labels never overlap:
// placeLabels shows them greedily, most important first, and hides a label that would
// cover another label or a node (zoom in to read more).

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif';
const SITE_PX = 10; // font sizes, in model pixels (rendered at the zoom)
const GROUP_PX = 11;
const EDGE_PX = 10;
const LINE = 1.2; // line height of a wrapped label
const MIN_LABEL_PX = 7; // a label rendered smaller than this is hidden (zoom in to read it)
const GROUP_READ_PX = 8; // a region's name is drawn at least this large, whatever the zoom
const MIN_NODE_PX = 8; // so is the label of a site rendered smaller than this
const USERS_SIZE = 10;
const MIN_SITE = 12; // site node sizes: area grows with power
const MAX_SITE = 40;
const RING = 5; // room for the ring around a site (curtailed, or found by the search); its label's gap
const PAD = 6; // a region box's padding (cytoscape's compound padding)
const GAP_X = 10; // between sites in a box
const GAP_Y = 6;
const GROUP_GAP_X = 14; // between boxes
const GROUP_GAP_Y = 8;
const GROUP_LABEL_H = Math.ceil(GROUP_PX * LINE) + 4; // a box's label sits above it
const MAJOR_FLOWS = 36; // more flows than this: the smaller ones are drawn faint and unlabelled
const FIT_PAD = 10;
const MAX_FIT_ZOOM = 1.2; // a small mesh is spread out to fill the panel, not blown up
const FEW_LINKS = 30; // with more latency links than this, only those of the sites searched for are drawn
const FEW_FLOWS = 30; // with at most this many flows, a flow of one workload is labelled with its name
// share of usable power in use -> fill, in four steps a glance tells apart (the legend's)
const SHARE_STEPS = [[0.6, "#bfdbfe"], [0.8, "#60a5fa"], [0.95, "#f59e0b"], [Infinity, "#dc2626"]];
const SHORT_SHARE = 0.95; // "power short" from here

// Rough centroids [longitude, latitude] of the countries a mesh is likely to name; a
// region's country comes from its sites, else from its name ("us-east" -> US, "eu-" ->
// Europe); a region of no known place is put after the others, by name.
const COUNTRY_AT = {
  US: [-98, 39], CA: [-96, 56], MX: [-102, 23], BR: [-51, -10], AR: [-64, -34], CL: [-71, -33], CO: [-74, 4],
  PE: [-76, -10], IE: [-8, 53], GB: [-2, 54], IS: [-19, 65], PT: [-8, 39.5], ES: [-4, 40], FR: [2, 46], BE: [4.5, 50.5],
  NL: [5, 52], LU: [6, 49.7], CH: [8, 47], DE: [10, 51], DK: [10, 56], NO: [9, 61], IT: [12, 43], AT: [14, 47.5],
  CZ: [15, 50], SE: [16, 62], PL: [19, 52], HU: [19, 47], FI: [26, 63], RO: [25, 46], GR: [22, 39], UA: [31, 49],
  TR: [35, 39], IL: [35, 31], EG: [30, 27], SA: [45, 24], QA: [51, 25.3], AE: [54, 24], ZA: [25, -29], NG: [8, 9],
  KE: [38, 0], IN: [79, 22], SG: [104, 1.3], MY: [102, 4], TH: [101, 15], VN: [106, 16], ID: [113, -1], PH: [122, 12],
  CN: [104, 35], HK: [114, 22.3], TW: [121, 23.7], KR: [128, 36], JP: [138, 37], AU: [134, -25], NZ: [174, -41],
};
const PREFIX_COUNTRY = { uk: "GB", eu: "DE", me: "AE", ap: "SG", af: "ZA", sa: "BR", la: "BR", na: "US" };
const BIG_COUNTRIES = new Set(["US", "CA", "BR", "AU", "CN", "IN", "AR"]);
const DIRECTIONS = [["north", 0, 1], ["south", 0, -1], ["east", 1, 0], ["west", -1, 0]];

let measurer = null;
function textWidth(text, px, weight = "normal") {
  measurer ??= document.createElement("canvas").getContext("2d");
  measurer.font = `${weight} ${px}px ${FONT}`;
  return Math.max(0, ...String(text).split("\n").map((line) => measurer.measureText(line).width));
}

// 0.0437 -> "0.04", 8.92 -> "8.9", 142.3 -> "142", 1200 -> "1,200"
function fmtMW(mw) {
  if (!mw) return "0";
  return fmt(mw, mw >= 10 ? 0 : mw >= 1 ? 1 : 2);
}

function siteCapacity(site) {
  return (site.power.firmMW || 0) + (site.power.flexibleMW || 0);
}

// Used and usable power (usable: what is left of firm + flexible once curtailed, what
// the solver could give out), and the share in use; null when nothing is usable.
function sitePower(site) {
  const p = site.power;
  const used = (p.firmAllocatedMW || 0) + (p.flexibleAllocatedMW || 0);
  const usable = p.firmAvailableMW === undefined ? siteCapacity(site) - (p.curtailedMW || 0)
    : used + (p.firmAvailableMW || 0) + (p.flexibleAvailableMW || 0);
  return { used, usable, share: usable > 1e-9 ? Math.min(1, used / usable) : null, curtailed: p.curtailedMW || 0 };
}

function shareColour(share) {
  if (share === null) return "#e5e7eb";
  return SHARE_STEPS.find(([below]) => share < below)[1];
}

// Names compared by code point, not by locale: the same order in every browser (and
// in the tests, which sort the same way).
const byName = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

// The main user region of a workload: its heaviest, ties by name; null without users.
function mainUserRegion(w) {
  const users = [...(w.users || [])].sort((a, b) => (b.weight || 0) - (a.weight || 0) || byName(a.region, b.region));
  return users.length ? users[0].region : null;
}

function regionCountries(sites) {
  const counts = new Map();
  for (const s of sites) counts.set(s.country, (counts.get(s.country) || 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || byName(a[0], b[0])).map(([c]) => c);
}

function regionPlace(name, countries) {
  let country = countries[0];
  if (!country) {
    const prefix = name.toLowerCase().split(/[^a-z]+/)[0];
    country = PREFIX_COUNTRY[prefix] || prefix.toUpperCase();
  }
  const base = COUNTRY_AT[country];
  if (!base) return null;
  const [stepLon, stepLat] = BIG_COUNTRIES.has(country) ? [16, 8] : [4, 2.5];
  let [lon, lat] = base;
  for (const word of name.toLowerCase().split(/[^a-z]+/).slice(1)) {
    for (const [dir, dx, dy] of DIRECTIONS) {
      if (word.includes(dir)) {
        lon += dx * stepLon;
        lat += dy * stepLat;
      }
    }
  }
  return { lon, lat };
}

// Everything the graph draws, from the API's answers.
function meshModel(mesh, workloads) {
  const sites = new Map(mesh.sites.map((s) => [s.name, s]));
  const regions = new Map();
  const region = (name) => {
    if (!regions.has(name)) regions.set(name, { name, sites: [], users: false, unplaced: 0, out: 0 });
    return regions.get(name);
  };
  for (const s of mesh.sites) region(s.region).sites.push(s);
  for (const r of mesh.userRegions || []) region(r).users = true;
  for (const link of mesh.links || []) region(link.to).users = true;
  const flows = new Map();
  const local = new Map(); // site -> placed assignments of workloads without user regions
  const incoming = new Map(); // site -> placed assignments from user regions
  let assignments = 0;
  for (const w of workloads) {
    const key = `${w.namespace}/${w.name}`;
    const main = mainUserRegion(w);
    for (const u of w.users || []) region(u.region).users = true;
    if (w.phase !== "Placed") {
      if (main) region(main).unplaced += 1;
      continue;
    }
    const placedOn = (w.assignments && w.assignments.length ? w.assignments.map((a) => a.site) : w.sites) || [];
    for (const site of placedOn) {
      if (!sites.has(site)) continue;
      assignments += 1;
      if (!main) {
        local.set(site, (local.get(site) || 0) + 1);
        continue;
      }
      const id = `flow:${main}->${site}`;
      if (!flows.has(id)) flows.set(id, { id, region: main, site, count: 0, workloads: [] });
      const flow = flows.get(id);
      flow.count += 1;
      if (!flow.workloads.includes(key)) flow.workloads.push(key);
      incoming.set(site, (incoming.get(site) || 0) + 1);
      region(main).out += 1;
    }
  }
  for (const r of regions.values()) {
    r.countries = regionCountries(r.sites);
    r.place = regionPlace(r.name, r.countries);
  }
  const maxMW = Math.max(1, ...mesh.sites.map(siteCapacity));
  return { mesh, sites, regions, flows, local, incoming, assignments, maxMW, workloads };
}

function siteLabel(site, power) {
  const offline = site.kind === "EdgeFleet" && site.onlineDevices === 0;
  const second = site.cordoned ? "cordoned" : offline ? "offline" : `${fmtMW(power.used)}/${fmtMW(power.usable)} MW`;
  return `${site.name}\n${second}`;
}

function siteSize(model, site) {
  return MIN_SITE + (MAX_SITE - MIN_SITE) * Math.sqrt(siteCapacity(site) / model.maxMW);
}

function graphElements(model) {
  const nodes = [];
  const edges = [];
  const regionNames = [...model.regions.keys()].sort();
  for (const name of regionNames) {
    const r = model.regions.get(name);
    nodes.push({ data: { id: `group:${name}`, label: r.countries.length ? `${name} · ${r.countries.join("/")}` : name,
      type: "group", region: name } });
  }
  for (const name of regionNames) {
    const r = model.regions.get(name);
    if (r.users) {
      nodes.push({ data: { id: `region:${name}`, parent: `group:${name}`, type: "users", region: name, size: USERS_SIZE,
        unplaced: r.unplaced, label: r.unplaced ? `${r.unplaced} unplaced` : "" } });
    }
    for (const site of r.sites) {
      const power = sitePower(site);
      const offline = site.kind === "EdgeFleet" && site.onlineDevices === 0;
      nodes.push({ data: {
        id: `site:${site.name}`, parent: `group:${name}`, label: siteLabel(site, power), name: site.name,
        type: site.kind === "EdgeFleet" ? "fleet" : "factory", region: name, capacity: siteCapacity(site),
        size: siteSize(model, site),
        fill: offline || site.cordoned ? "#e5e7eb" : shareColour(power.share), share: power.share ?? -1,
        cordoned: site.cordoned ? "yes" : "no", curtailed: power.curtailed > 1e-9 ? "yes" : "no",
        offline: offline ? "yes" : "no",
      } });
    }
  }
  const few = model.flows.size <= FEW_FLOWS;
  // the MAJOR_FLOWS largest flows (fewer on a tie) are drawn; the rest faint, lit by a search
  const counts = [...model.flows.values()].map((f) => f.count).sort((a, b) => b - a);
  const major = counts.length > MAJOR_FLOWS ? counts[MAJOR_FLOWS] + 1 : 0;
  for (const f of model.flows.values()) {
    edges.push({ data: { id: f.id, source: `region:${f.region}`, target: `site:${f.site}`, type: "flow", count: f.count,
      width: 1 + 1.4 * Math.sqrt(f.count), minor: f.count < major ? "yes" : "no",
      label: f.count === 1 && few ? f.workloads[0].split("/")[1] : String(f.count) } });
  }
  for (const link of model.mesh.links || []) {
    if (!model.sites.has(link.from)) continue;
    edges.push({ data: { id: `link:${link.from}->${link.to}`, source: `site:${link.from}`, target: `region:${link.to}`,
      type: "link", label: `${fmt(link.latencyMs, 0)} ms` } });
  }
  return { nodes, edges };
}

// ---- the map layout ---------------------------------------------------------------

// One region's box: the users node on top, then factories and fleets, largest first, on
// a grid whose cells are as wide as their labels (drawn right of the node).
function regionBlock(model, r, shape = 2) {
  // the users node sits alone in a thin first row, its label ("12 unplaced") to its right
  const usersLabel = r.users && r.unplaced ? `${r.unplaced} unplaced` : "";
  const usersRow = r.users ? { id: `region:${r.name}`, w: USERS_SIZE + (usersLabel ? 4 + textWidth(usersLabel, SITE_PX, 600) : 0),
    h: Math.max(USERS_SIZE, usersLabel ? SITE_PX * LINE + 2 : 0) } : null;
  const sites = [...r.sites].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === "AIFactory" ? -1 : 1)
    || siteCapacity(b) - siteCapacity(a) || byName(a.name, b.name));
  const members = sites.map((site) => {
    const size = siteSize(model, site);
    // the widest second line this site's label can have, so a new plan does not move it
    const most = fmtMW(siteCapacity(site));
    const widest = `${most.length >= 4 ? most : "0.00"}/${most} MW`;
    const labelW = Math.max(textWidth(site.name, SITE_PX), textWidth(widest, SITE_PX), textWidth("cordoned", SITE_PX));
    return { id: `site:${site.name}`, size, w: size + 3 * RING + labelW + 2,
      h: Math.max(size + 2 * RING, 2 * SITE_PX * LINE + 4) };
  });
  // a cell is about three times as wide as tall; `shape` rows per column makes a box
  // about square (2), taller (4) or flatter (1, 0.5): mapLayout tries each
  const n = members.length;
  const cols = n <= 1 ? 1 : Math.min(n, Math.ceil(Math.sqrt(n / shape)));
  const rows = Math.ceil(n / cols);
  const colW = new Array(cols).fill(0);
  const rowH = new Array(rows).fill(0);
  members.forEach((m, i) => {
    colW[i % cols] = Math.max(colW[i % cols], m.w);
    rowH[Math.floor(i / cols)] = Math.max(rowH[Math.floor(i / cols)], m.h);
  });
  const gridW = n ? colW.reduce((a, b) => a + b, 0) + GAP_X * (cols - 1) : 0;
  const gridH = n ? rowH.reduce((a, b) => a + b, 0) + GAP_Y * (rows - 1) : 0;
  const topH = usersRow ? usersRow.h + (n ? GAP_Y : 0) : 0;
  const innerW = Math.max(gridW, usersRow ? usersRow.w : 0);
  const label = r.countries.length ? `${r.name} · ${r.countries.join("/")}` : r.name;
  const w = Math.max(innerW + 2 * PAD, textWidth(label, GROUP_PX, 600) + 8);
  const h = GROUP_LABEL_H + topH + gridH + 2 * PAD;
  const colX = colW.map((_, i) => colW.slice(0, i).reduce((a, b) => a + b, 0) + GAP_X * i);
  const rowY = rowH.map((_, i) => rowH.slice(0, i).reduce((a, b) => a + b, 0) + GAP_Y * i);
  const at = (x0, y0) => {
    const left = x0 + (w - innerW) / 2;
    const top = y0 + GROUP_LABEL_H + PAD;
    const out = usersRow ? [[usersRow.id, { x: left + USERS_SIZE / 2, y: top + usersRow.h / 2 }]] : [];
    members.forEach((m, i) => {
      const row = Math.floor(i / cols);
      const col = i % cols;
      out.push([m.id, { x: left + colX[col] + RING + m.size / 2, y: top + topH + rowY[row] + rowH[row] / 2 }]);
    });
    return out;
  };
  return { name: r.name, place: r.place, w, h, at };
}

// Contiguous runs of `heights` (in order) in at most k columns, the tallest as short as
// can be: a binary search on the tallest, each tried by filling columns greedily.
function splitColumns(heights, k) {
  const fill = (limit) => {
    const runs = [[]];
    let sum = 0;
    heights.forEach((h, i) => {
      if (runs[runs.length - 1].length && sum + h > limit) {
        runs.push([]);
        sum = 0;
      }
      runs[runs.length - 1].push(i);
      sum += h;
    });
    return runs;
  };
  let lo = Math.max(...heights);
  let hi = heights.reduce((a, b) => a + b, 0);
  for (let step = 0; step < 40 && hi - lo > 0.5; step += 1) {
    const mid = (lo + hi) / 2;
    if (fill(mid).length <= k) hi = mid;
    else lo = mid;
  }
  return fill(hi);
}

// Node positions for a panel of width x height pixels: the region boxes in columns
// west to east, north on top, in the box shape and column count that let the picture
// be drawn largest; the space left over is spread between the boxes.
function mapLayout(model, width, height) {
  let best = null;
  for (const shape of [4, 2, 1, 0.5]) {
    const candidate = packRegions([...model.regions.values()].map((r) => regionBlock(model, r, shape)), width, height);
    if (candidate && (!best || candidate.score > best.score * 1.0001)) best = candidate;
  }
  if (!best) return { positions: new Map(), columns: 0, zoom: 1 };
  // the room the picture gets in model pixels, at the zoom it will be drawn
  const zoom = Math.min(best.zoom, MAX_FIT_ZOOM);
  const roomW = Math.max(best.w, width / zoom);
  const roomH = Math.max(best.h, height / zoom);
  const widths = best.columns.map((col) => Math.max(...col.map((b) => b.w)));
  // spread between the columns and between the boxes of a column (a lone one is centred)
  const k = best.columns.length;
  const spareX = k > 1 ? (roomW - best.w) / (k - 1) : 0;
  const positions = new Map();
  let x = k > 1 ? 0 : (roomW - best.w) / 2;
  best.columns.forEach((col, c) => {
    const used = col.reduce((sum, b) => sum + b.h, 0) + GROUP_GAP_Y * (col.length - 1);
    // the tallest column from top to bottom, the others spread evenly (no box stuck to an edge)
    const spareY = col.length > 1 && used >= best.h - 1 ? (roomH - used) / (col.length - 1) : (roomH - used) / (col.length + 1);
    let y = col.length > 1 && used >= best.h - 1 ? 0 : spareY;
    for (const b of col) {
      for (const [id, p] of b.at(x + (widths[c] - b.w) / 2, y)) positions.set(id, p);
      y += b.h + GROUP_GAP_Y + spareY;
    }
    x += widths[c] + GROUP_GAP_X + spareX;
  });
  return { positions, columns: best.columns.length, zoom };
}

// Within a column: by continent, west first (a column may hold the east of one and the
// west of the next), then north first; unknown places last.
const band = (place) => (place.lon < -30 ? 0 : place.lon < 45 ? 1 : place.lon < 90 ? 2 : 3);
function northFirst(a, b) {
  if (!a.place || !b.place) return (a.place ? -1 : b.place ? 1 : 0) || byName(a.name, b.name);
  return band(a.place) - band(b.place) || b.place.lat - a.place.lat || byName(a.name, b.name);
}

// The boxes in k columns west to east (contiguous in longitude, north on top), for the
// k that lets the picture be drawn largest in width x height, continents kept apart.
function packRegions(blocks, width, height) {
  const known = blocks.filter((b) => b.place).sort((a, b) => a.place.lon - b.place.lon || b.place.lat - a.place.lat
    || byName(a.name, b.name));
  const unknown = blocks.filter((b) => !b.place).sort((a, b) => byName(a.name, b.name));
  const ordered = [...known, ...unknown];
  const heights = ordered.map((b) => b.h + GROUP_GAP_Y);
  // the runs of one continent (unknown places are one more)
  const bands = [];
  ordered.forEach((b, i) => {
    const key = b.place ? band(b.place) : 9;
    if (!bands.length || bands[bands.length - 1].key !== key) bands.push({ key, members: [] });
    bands[bands.length - 1].members.push(i);
  });
  const candidates = [];
  for (let k = 1; k <= Math.min(ordered.length, 14); k += 1) {
    candidates.push(splitColumns(heights, k));
    if (k < bands.length) continue;
    // k columns that keep continents apart: one per continent, then one more each time
    // for the continent whose tallest column is tallest
    const per = bands.map(() => 1);
    const split = (j) => splitColumns(bands[j].members.map((i) => heights[i]), per[j])
      .map((run) => run.map((x) => bands[j].members[x]));
    const tallest = (j) => Math.max(...split(j).map((run) => run.reduce((sum, i) => sum + heights[i], 0)));
    for (let extra = k - bands.length; extra > 0; extra -= 1) {
      let j = 0;
      bands.forEach((_, i) => {
        if (per[i] < bands[i].members.length && (per[j] >= bands[j].members.length || tallest(i) > tallest(j))) j = i;
      });
      if (per[j] >= bands[j].members.length) break;
      per[j] += 1;
    }
    candidates.push(bands.flatMap((_, j) => split(j)));
  }
  let best = null;
  for (const runs of candidates) {
    const columns = runs.map((run) => run.map((i) => ordered[i]).sort(northFirst));
    const w = columns.reduce((sum, col) => sum + Math.max(...col.map((b) => b.w)), 0) + GROUP_GAP_X * (columns.length - 1);
    const h = Math.max(...columns.map((col) => col.reduce((sum, b) => sum + b.h, 0) + GROUP_GAP_Y * (col.length - 1)));
    const zoom = Math.min(width / w, height / h);
    // a column holding two continents costs a tenth of the size; beyond MAX_FIT_ZOOM size
    // gains nothing (a small mesh gets the most map-like arrangement)
    const mixed = columns.reduce((sum, col) => sum + col.filter((b, i) => i > 0 && b.place && col[i - 1].place
      && band(b.place) !== band(col[i - 1].place)).length, 0);
    const score = Math.min(zoom, MAX_FIT_ZOOM) * (1 - 0.1 * mixed);
    if (!best || score > best.score * 1.0001) best = { columns, w, h, zoom, score };
  }
  return best;
}

// ---- labels that do not collide ----------------------------------------------------

const intersects = (a, b, margin = 0) => a.x1 < b.x2 + margin && b.x1 < a.x2 + margin
  && a.y1 < b.y2 + margin && b.y1 < a.y2 + margin;

// Most important first: region names, what the search found, regions with unplaced
// work, sites by power, then the busiest flows, then links.
function labelRank(ele) {
  if (ele.isNode() && ele.isParent()) return [0, 0];
  if (ele.hasClass("match")) return [1, 0];
  const type = ele.data("type");
  if (type === "users") return [2, -ele.data("unplaced")];
  if (type === "factory" || type === "fleet") return [3, -ele.data("capacity")];
  if (type === "flow") return [4, -ele.data("count")];
  return [5, 0];
}

function placeLabels() {
  const cy = state.cy;
  if (!cy) return;
  const zoom = cy.zoom();
  // region names stay readable when zoomed out: their font grows as the zoom shrinks
  const groupPx = Math.max(GROUP_PX, GROUP_READ_PX / zoom);
  if (state.groupPx !== groupPx) {
    cy.batch(() => cy.nodes(":parent").style("font-size", groupPx));
    state.groupPx = groupPx;
  }
  const labelBox = { includeNodes: false, includeEdges: false, includeLabels: true, includeOverlays: false,
    includeUnderlays: false };
  const bodies = cy.nodes().filter((n) => !n.isParent() && n.visible())
    .map((n) => [n.id(), n.boundingBox({ includeLabels: false, includeOverlays: false, includeUnderlays: false })]);
  const candidates = cy.elements().filter((e) => e.visible() && e.data("label")).toArray()
    .map((e) => [labelRank(e), e.id(), e]).sort((a, b) => a[0][0] - b[0][0] || a[0][1] - b[0][1] || byName(a[1], b[1]))
    .map(([, , e]) => e);
  const taken = [];
  const shown = [];
  const hidden = [];
  const margin = 2 / zoom; // two screen pixels between labels
  for (const ele of candidates) {
    const group = ele.isNode() && ele.isParent();
    const lit = ele.hasClass("match") || ele.hasClass("near");
    let ok = group || (!ele.hasClass("dim") && (ele.data("minor") !== "yes" || lit));
    if (ok && !ele.hasClass("match")) {
      ok = ele.numericStyle("font-size") * zoom >= MIN_LABEL_PX
        && (group || ele.isEdge() || ele.data("type") === "users" || ele.width() * zoom >= MIN_NODE_PX);
    }
    const box = ele.boundingBox(labelBox);
    if (ok) ok = !taken.some((t) => intersects(t, box, margin));
    if (ok) ok = !bodies.some(([id, body]) => id !== ele.id() && intersects(body, box));
    if (ok) {
      taken.push(box);
      shown.push(ele);
    } else {
      hidden.push(ele);
    }
  }
  cy.batch(() => {
    for (const ele of shown) ele.removeClass("nolabel");
    for (const ele of hidden) ele.addClass("nolabel");
  });
  hook.labels = { shown: shown.map((e) => e.id()), hidden: hidden.map((e) => e.id()), zoom };
}

let labelsPending = false;
function placeLabelsSoon() {
  if (labelsPending) return;
  labelsPending = true;
  requestAnimationFrame(() => {
    labelsPending = false;
    placeLabels();
  });
}

// ---- search: highlight what matches, dim the rest ----------------------------------

function searchMatches(model, query) {
  const q = query.toLowerCase();
  const siteNames = [...model.sites.keys()];
  const regionNames = [...model.regions.keys()];
  const keys = model.workloads.map((w) => `${w.namespace}/${w.name}`);
  // a whole name (or a country code) matches alone; otherwise every name holding the text
  let sites = siteNames.filter((s) => s.toLowerCase() === q || model.sites.get(s).country.toLowerCase() === q);
  let regions = regionNames.filter((r) => r.toLowerCase() === q);
  let workloads = keys.filter((k) => k.toLowerCase() === q || k.split("/")[1].toLowerCase() === q);
  if (!sites.length && !regions.length && !workloads.length) {
    sites = siteNames.filter((s) => s.toLowerCase().includes(q));
    regions = regionNames.filter((r) => r.toLowerCase().includes(q));
    workloads = keys.filter((k) => k.toLowerCase().includes(q));
  }
  return { sites, regions, workloads };
}

function applySearch() {
  const cy = state.cy;
  const model = state.model;
  if (!cy || !model) return;
  const query = $("graph-search").value.trim();
  const result = { query, sites: [], regions: [], workloads: [], match: [], near: [], dimmed: 0 };
  const match = new Set();
  const near = new Set();
  const showLinks = new Set();
  if (query) {
    const found = searchMatches(model, query);
    Object.assign(result, found);
    const workloadSet = new Set(found.workloads);
    const byKey = new Map(model.workloads.map((w) => [`${w.namespace}/${w.name}`, w]));
    const touch = (node) => node.connectedEdges().forEach((e) => {
      if (e.data("type") === "link" && !showLinks.has(e.id())) return;
      near.add(e.id());
      near.add(e.source().id());
      near.add(e.target().id());
    });
    for (const name of found.sites) {
      match.add(`site:${name}`);
      cy.getElementById(`site:${name}`).connectedEdges('[type = "link"]').forEach((e) => showLinks.add(e.id()));
    }
    for (const name of found.regions) {
      match.add(`group:${name}`);
      cy.getElementById(`group:${name}`).children().forEach((c) => near.add(c.id()));
    }
    for (const key of found.workloads) {
      const w = byKey.get(key);
      const main = mainUserRegion(w);
      if (w.phase !== "Placed") {
        if (main) match.add(`region:${main}`);
        continue;
      }
      for (const site of w.sites || []) match.add(`site:${site}`);
      if (main) near.add(`region:${main}`);
    }
    for (const flow of model.flows.values()) {
      if (flow.workloads.some((k) => workloadSet.has(k))) match.add(flow.id);
    }
    // what a matched site or region connects to stays lit (for a workload: its own flows)
    for (const id of [...match, ...near]) {
      const ele = cy.getElementById(id);
      if (ele.nonempty() && ele.isNode() && !ele.isParent() && !found.workloads.length) touch(ele);
    }
    for (const id of showLinks) {
      near.add(id);
      const e = cy.getElementById(id);
      near.add(e.target().id());
    }
  }
  const manyLinks = (model.mesh.links || []).length > FEW_LINKS;
  const lit = match.size > 0;
  cy.batch(() => {
    cy.elements().removeClass("dim match near");
    cy.edges('[type = "link"]').forEach((e) => {
      if (manyLinks && !showLinks.has(e.id())) e.addClass("hidden");
      else e.removeClass("hidden");
    });
    if (!lit) return;
    cy.elements().forEach((ele) => {
      const id = ele.id();
      if (match.has(id)) ele.addClass("match");
      else if (near.has(id)) ele.addClass("near");
      else if (!(ele.isNode() && ele.isParent() && ele.children().some((c) => match.has(c.id()) || near.has(c.id())))) {
        ele.addClass("dim");
      }
    });
  });
  result.match = cy.$(".match").map((e) => e.id());
  result.near = cy.$(".near").map((e) => e.id());
  result.dimmed = cy.$(".dim").length;
  hook.search = result;
  const count = $("graph-search-count");
  if (!query) count.textContent = "";
  else if (!lit) count.textContent = "no match";
  else {
    count.textContent = [[result.sites.length, "site"], [result.regions.length, "region"], [result.workloads.length, "workload"]]
      .filter(([n]) => n).map(([n, what]) => `${n} ${what}${n === 1 ? "" : "s"}`).join(" · ");
  }
  placeLabels();
}

// ---- the line under the graph: what the pointer is on, else the whole mesh ---------

function describe(ele) {
  const model = state.model;
  if (!ele) {
    const sites = [...model.sites.values()];
    const short = sites.filter((s) => {
      const p = sitePower(s);
      return p.share !== null && p.share >= SHORT_SHARE;
    }).length;
    const curtailed = sites.filter((s) => sitePower(s).curtailed > 1e-9).length;
    const fromUsers = [...model.flows.values()].reduce((sum, f) => sum + f.count, 0);
    const unplaced = model.workloads.filter((w) => w.phase !== "Placed").length;
    return `${sites.length} sites, ${model.regions.size} regions · ${short} short of power (≥ ${Math.round(100 * SHORT_SHARE)}%`
      + ` of usable in use), ${curtailed} curtailed · ${model.assignments} placed assignments: ${fromUsers} from users`
      + ` (${model.flows.size} edges), ${model.assignments - fromUsers} without · ${unplaced} workloads not placed`;
  }
  const type = ele.data("type");
  if (type === "factory" || type === "fleet") {
    const site = model.sites.get(ele.data("name"));
    const p = sitePower(site);
    const pct = p.share === null ? "—" : `${Math.round(100 * p.share)}%`;
    return `${site.name}: ${site.kind} in ${site.region} (${site.country}) · ${fmtMW(p.used)} of ${fmtMW(p.usable)} MW usable`
      + ` in use (${pct}) of ${fmtMW(siteCapacity(site))} MW` + (p.curtailed > 1e-9 ? ` · ${fmtMW(p.curtailed)} MW curtailed` : "")
      + (site.cordoned ? " · cordoned" : "") + (ele.data("offline") === "yes" ? " · offline" : "")
      + ` · ${model.incoming.get(site.name) || 0} placed from user regions, ${model.local.get(site.name) || 0} without`;
  }
  if (type === "users") {
    const r = model.regions.get(ele.data("region"));
    return `users in ${r.name}: ${r.out} placed assignments served from ${ele.outgoers('edge[type = "flow"]').length} sites`
      + ` · ${r.unplaced} workloads not placed`;
  }
  if (type === "group") {
    const r = model.regions.get(ele.data("region"));
    const used = r.sites.reduce((sum, s) => sum + sitePower(s).used, 0);
    const usable = r.sites.reduce((sum, s) => sum + sitePower(s).usable, 0);
    return `${r.name}${r.countries.length ? ` (${r.countries.join(", ")})` : ""}: ${r.sites.length} sites`
      + ` · ${fmtMW(used)} of ${fmtMW(usable)} MW usable in use`;
  }
  if (type === "flow") {
    const f = model.flows.get(ele.id());
    const names = f.workloads.slice(0, 4).join(", ") + (f.workloads.length > 4 ? `, … (${f.workloads.length})` : "");
    return `${f.count} placed assignment${f.count === 1 ? "" : "s"} from users in ${f.region} to ${f.site}: ${names}`;
  }
  return `${ele.source().data("name")} → ${ele.target().data("region")}: ${ele.data("label")}`;
}

function showInfo(ele) {
  const info = $("graph-info");
  info.textContent = state.model ? describe(ele) : "";
  info.title = info.textContent; // the whole line, where the panel cuts it
}

// ---- drawing -------------------------------------------------------------------------

const GRAPH_STYLE = [
  { selector: "node", style: { label: "data(label)", "font-family": FONT, "font-size": SITE_PX, "line-height": LINE,
    "text-wrap": "wrap", "text-valign": "bottom", "text-margin-y": 2, color: "#1f2937", "text-outline-color": "#fbfcfd",
    "text-outline-width": 2, "text-outline-opacity": 0.85, "border-width": 1, "border-color": "#475569" } },
  { selector: "node[size]", style: { width: "data(size)", height: "data(size)" } },
  { selector: "node[fill]", style: { "background-color": "data(fill)" } },
  { selector: "node:parent", style: { shape: "round-rectangle", "background-color": "#eef2f7", "background-opacity": 0.75,
    "border-width": 1, "border-color": "#cbd5e1", padding: PAD, "font-size": GROUP_PX, "font-weight": 600, color: "#475569",
    "text-valign": "top", "text-halign": "center", "text-margin-y": -2, "text-outline-width": 0,
    "text-background-color": "#fbfcfd", "text-background-opacity": 0.85, "text-background-padding": 1 } },
  { selector: 'node[type = "factory"]', style: { shape: "round-rectangle" } },
  { selector: 'node[type = "fleet"]', style: { shape: "hexagon" } },
  { selector: "node[type = \"factory\"], node[type = \"fleet\"]", style: { "text-halign": "right", "text-valign": "center",
    "text-margin-x": RING, "text-margin-y": 0, "text-justification": "left" } },
  { selector: 'node[type = "users"]', style: { shape: "ellipse", "background-color": "#fff", "border-width": 2,
    "border-color": "#94a3b8", color: "#b91c1c", "font-weight": 600, "text-halign": "right", "text-valign": "center",
    "text-margin-x": 4, "text-margin-y": 0 } },
  { selector: 'node[type = "users"][unplaced > 0]', style: { "border-color": "#dc2626", "background-color": "#fee2e2" } },
  { selector: 'node[curtailed = "yes"]', style: { "outline-width": 2.5, "outline-color": "#b91c1c", "outline-offset": 1.5,
    "outline-style": "solid" } },
  { selector: 'node[offline = "yes"]', style: { "border-style": "dotted", "border-color": "#6b7280", color: "#6b7280" } },
  { selector: 'node[cordoned = "yes"]', style: { "border-width": 2, "border-style": "dashed", "border-color": "#334155",
    color: "#6b7280" } },
  { selector: "edge", style: { "curve-style": "bezier", label: "data(label)", "font-family": FONT, "font-size": EDGE_PX,
    color: "#475569", "text-background-color": "#fbfcfd", "text-background-opacity": 0.9, "text-background-padding": 1,
    "text-background-shape": "round-rectangle" } },
  { selector: 'edge[type = "flow"]', style: { width: "data(width)", "line-color": "#0d9488", opacity: 0.55,
    "target-arrow-shape": "triangle", "target-arrow-color": "#0d9488", "arrow-scale": 0.6, color: "#115e59",
    "font-weight": 700 } },
  { selector: 'edge[minor = "yes"]', style: { opacity: 0.12, "target-arrow-shape": "none" } },
  { selector: 'edge[type = "link"]', style: { width: 1, "line-style": "dotted", "line-color": "#94a3b8", opacity: 0.8 } },
  { selector: ".hidden", style: { display: "none" } },
  { selector: ".nolabel", style: { "text-opacity": 0, "text-outline-opacity": 0, "text-background-opacity": 0 } },
  { selector: ".dim", style: { opacity: 0.12 } },
  { selector: "edge.dim", style: { opacity: 0.05 } },
  { selector: "node:parent.dim", style: { opacity: 1, "background-opacity": 0.3, "border-opacity": 0.4, "text-opacity": 0.45 } },
  { selector: "edge.near", style: { opacity: 0.85 } },
  { selector: "node.match", style: { "outline-width": 3, "outline-color": "#111827", "outline-offset": 2,
    "outline-style": "solid" } },
  { selector: "node:parent.match", style: { "outline-width": 0, "border-width": 2, "border-color": "#111827" } },
  { selector: "edge.match", style: { opacity: 1, "line-color": "#0f766e", "target-arrow-color": "#0f766e" } },
];

function runLayout() {
  const cy = state.cy;
  cy.resize();
  const width = Math.max(cy.width(), 200);
  const height = Math.max(cy.height(), 150);
  const layout = mapLayout(state.model, width - 2 * FIT_PAD, height - 2 * FIT_PAD);
  cy.batch(() => {
    for (const [id, p] of layout.positions) cy.getElementById(id).position(p);
  });
  cy.fit(undefined, FIT_PAD);
  state.laidOut = { width: cy.width(), height: cy.height() };
  hook.layout = { columns: layout.columns, width: cy.width(), height: cy.height(), zoom: cy.zoom() };
}

function setUpGraph(container) {
  const cy = cytoscape({ container, style: GRAPH_STYLE, minZoom: 0.2, maxZoom: 4, autoungrabify: true,
    boxSelectionEnabled: false });
  cy.on("zoom", placeLabelsSoon);
  cy.on("mouseover", "node, edge", (event) => showInfo(event.target));
  cy.on("mouseout", "node, edge", () => showInfo(null));
  // a tap on a site or region searches for it; a tap on the background clears the search
  cy.on("tap", (event) => {
    const ele = event.target;
    const input = $("graph-search");
    if (ele === cy) input.value = "";
    else if (ele.isNode()) input.value = ele.data("name") || ele.data("region") || "";
    else return;
    applySearch();
  });
  // a new panel size lays the map out again for it (the side panel's height sets it)
  new ResizeObserver(() => {
    if (!state.model || !state.laidOut) return;
    if (Math.abs(container.clientWidth - state.laidOut.width) < 1 && Math.abs(container.clientHeight - state.laidOut.height) < 1) {
      return;
    }
    runLayout();
    placeLabels();
  }).observe(container);
  return cy;
}

function renderGraph(mesh, workloads) {
  const container = $("graph");
  const model = meshModel(mesh, workloads);
  state.model = model;
  const { nodes, edges } = graphElements(model);
  // the layout depends on the sites, their regions and powers, the user regions and the
  // width of their "unplaced" labels only: a new plan of the same mesh keeps the picture
  const layoutKey = nodes.map((n) => `${n.data.id}:${n.data.parent || ""}:${n.data.capacity ?? ""}:${n.data.type === "users"
    ? (n.data.unplaced ? String(n.data.unplaced).length : 0) : ""}`).join("|");
  if (!state.cy) state.cy = setUpGraph(container);
  const cy = state.cy;
  const relayout = layoutKey !== state.nodeKey;
  cy.batch(() => {
    if (relayout) cy.elements().remove();
    else cy.edges().remove();
    const added = [];
    for (const node of nodes) {
      const existing = cy.getElementById(node.data.id);
      if (existing.nonempty()) existing.data(node.data);
      else added.push({ group: "nodes", ...node });
    }
    cy.add(added);
    cy.add(edges.map((edge) => ({ group: "edges", ...edge })));
  });
  if (relayout) {
    state.groupPx = null; // new region nodes: their font is set again
    runLayout();
    state.nodeKey = layoutKey;
  }
  applySearch();
  showInfo(null);
  container.dataset.nodes = String(cy.nodes().length);
  container.dataset.edges = String(cy.edges().length);
  hook.cy = cy;
  hook.nodes = cy.nodes().length;
  hook.edges = cy.edges().length;
  hook.graph = {
    nodes: cy.nodes().map((n) => n.id()), edges: cy.edges().map((e) => e.id()),
    flows: [...model.flows.values()].map((f) => ({ id: f.id, region: f.region, site: f.site, count: f.count })),
    local: Object.fromEntries(model.local), assignments: model.assignments,
    unplaced: Object.fromEntries([...model.regions.values()].filter((r) => r.unplaced).map((r) => [r.name, r.unplaced])),
  };
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

// ---- grid and power, next 24 h (GET /api/v1/timeline) ------------------------------
//
// The operator's own plan of the next hours: at every instant it will wake at (a grid
// event's start minus its lead time, interval edges, ends, fleet window edges), each
// factory's usable power, the curtailment in force and the one it plans with (an event
// counts from start - lead), its allocation, and the workloads that move then. Asked
// once per published version, after the mesh is drawn (the server plans it once per
// version and caches it). A step chart per factory where something happens (a grid
// event, a change of power or allocation, a move), soonest first, the cursor shared;
// the steady factories in one line under them; then the events and the moves. Times are
// the browser's local time.

const TIMELINE_HOURS = 24;
const TIMELINE_CHARTS = 4; // small multiples drawn before "show all"
const TIMELINE_HEIGHT = 130; // each of several charts; one or two are drawn taller
const TIMELINE_HEIGHT_FEW = 180;
const HEADROOM = 1.2; // the y axis goes this far above firm + flexible: room for the markers
const DONE_PHASES = new Set(["Completed", "Cancelled"]);
const TL = {
  capacity: "#9ca3af", planned: "#d97706", usable: "#2563eb", allocated: "#7c3aed", allocatedFill: "rgba(124, 58, 237, 0.10)",
  curtailed: "rgba(239, 68, 68, 0.30)", now: "#111827", out: "#c2410c", back: "#15803d", moveLine: "rgba(71, 85, 105, 0.55)",
};
const LOCAL_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
const DAY_TIME = new Intl.DateTimeFormat("en-GB", { weekday: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const TIME_ONLY = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const DAY_ONLY = new Intl.DateTimeFormat("en-GB", { weekday: "short" });
const DAY_KEY = new Intl.DateTimeFormat("en-CA", { year: "numeric", month: "2-digit", day: "2-digit" });

const NATURAL = new Intl.Collator("en", { numeric: true }); // factory-2 before factory-10
const timeline = { version: null, pending: null, seq: 0, data: null, error: null, plots: [], charted: 0, showAll: false };

// "2026-07-14T08:00:00Z" -> "Tue 17:00" in Asia/Seoul
const localTime = (iso) => DAY_TIME.format(new Date(iso));
const sameDay = (a, b) => DAY_KEY.format(new Date(a)) === DAY_KEY.format(new Date(b));
const localSpan = (start, end) => `${localTime(start)} → ${sameDay(start, end) ? TIME_ONLY.format(new Date(end)) : localTime(end)}`;

// ISO 8601 duration ("PT15M", "PT1H30M", "P1D") -> "15 min", "1 h 30 min", "24 h"
function fmtDuration(iso) {
  const m = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/.exec(iso || "");
  if (!m || iso === "P" || iso.endsWith("T")) return iso || "—";
  const [w, d, h, min, s] = m.slice(1).map((v) => Number(v || 0));
  const total = (((w * 7 + d) * 24 + h) * 60 + min) * 60 + s;
  if (!total) return "none";
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = Math.round(total % 60);
  return [hours && `${hours} h`, minutes && `${minutes} min`, seconds && `${seconds} s`].filter(Boolean).join(" ");
}

// seconds -> "in 1 h 45 min" / "2 h ago" / "now"
function fmtRelative(seconds) {
  const abs = Math.abs(seconds);
  if (abs < 60) return "now";
  const hours = Math.floor(abs / 3600);
  const minutes = Math.round((abs % 3600) / 60);
  const text = [hours && `${hours} h`, minutes && `${minutes} min`].filter(Boolean).join(" ");
  return seconds > 0 ? `in ${text}` : `${text} ago`;
}

const fmtSource = (source) => (source && source.startsWith("openadr:") ? `OpenADR · ${source.slice(8)}` : source || "—");

// Events still to come or in force that touch the horizon (start before its end).
function timelineEvents(t) {
  const end = Date.parse(t.end);
  return t.events.filter((e) => !DONE_PHASES.has(e.phase) && Date.parse(e.start) < end && Date.parse(e.end) > Date.parse(t.start));
}

const touches = (move, site) => move.beforeSites.includes(site) !== move.afterSites.includes(site);

// What each factory does over the horizon: its events, the moves in and out of it, the
// first instant something changes (for the order), whether anything happens at all.
function factoryActivity(t, events) {
  return t.factories.map((f) => {
    const own = events.filter((e) => e.factory === f.name);
    const pts = f.points;
    let first = Infinity;
    pts.forEach((p, i) => {
      const q = pts[i - 1];
      if (q && (p.allocatedMW !== q.allocatedMW || p.usableMW !== q.usableMW || p.plannedCurtailedMW !== q.plannedCurtailedMW)) {
        first = Math.min(first, Date.parse(t.instants[i]));
      }
    });
    const moves = t.moves.filter((m) => touches(m, f.name));
    for (const m of moves) first = Math.min(first, Date.parse(m.at));
    const soonest = Math.min(...own.map((e) => Math.max(Date.parse(e.start), Date.parse(t.start))));
    return { factory: f, events: own, moves, first, soonest, active: own.length > 0 || first < Infinity };
  });
}

// Moves in and out of a factory, grouped by instant: the chart's markers.
function moveMarks(moves, site) {
  const marks = new Map();
  for (const m of moves) {
    const kind = m.beforeSites.includes(site) ? "out" : "back";
    const key = `${m.at}|${kind}`;
    if (!marks.has(key)) marks.set(key, { at: m.at, x: Date.parse(m.at) / 1000, kind, count: 0, workloads: [] });
    const mark = marks.get(key);
    mark.count += 1;
    mark.workloads.push(m.workload);
  }
  return [...marks.values()].sort((a, b) => a.x - b.x || byName(b.kind, a.kind)); // "out" first
}

// The series of one factory's chart: one point per instant, the last held to the
// horizon's end (a step chart shows what is in force until the next instant).
function factorySeries(t, f) {
  const capacity = f.firmMW + f.flexibleMW;
  const xs = t.instants.map((at) => Date.parse(at) / 1000);
  const end = Date.parse(t.end) / 1000;
  const held = end > xs[xs.length - 1];
  const hold = (values) => (held ? [...values, values[values.length - 1]] : values);
  return [
    held ? [...xs, end] : xs,
    hold(f.points.map(() => capacity)),
    hold(f.points.map((p) => capacity - p.plannedCurtailedMW)),
    hold(f.points.map((p) => p.usableMW)),
    hold(f.points.map((p) => p.allocatedMW)),
  ];
}

const timelineHeight = () => (timeline.charted > 2 ? TIMELINE_HEIGHT : TIMELINE_HEIGHT_FEW);

let plannedHatch = null;
function hatch() {
  if (!plannedHatch) {
    const size = 8 * (window.devicePixelRatio || 1);
    const tile = document.createElement("canvas");
    tile.width = tile.height = size;
    const g = tile.getContext("2d");
    g.fillStyle = "rgba(245, 158, 11, 0.16)";
    g.fillRect(0, 0, size, size);
    g.strokeStyle = "rgba(217, 119, 6, 0.75)";
    g.lineWidth = size / 6;
    g.beginPath();
    for (const k of [-1, 0, 1]) {
      g.moveTo(k * size, size);
      g.lineTo(k * size + size, 0);
    }
    g.stroke();
    plannedHatch = g.createPattern(tile, "repeat");
  }
  return plannedHatch;
}

// "now" and the moves, drawn over the plot (canvas pixels).
function drawTimelineMarks(u, marks, nowX) {
  const ctx = u.ctx;
  const pr = window.devicePixelRatio || 1;
  const { left, top, width, height } = u.bbox;
  const at = (x) => Math.round(u.valToPos(x, "x", true));
  ctx.save();
  ctx.font = `${10 * pr}px ${FONT}`;
  ctx.textBaseline = "top";
  // a triangle on top of each move's line, its count beside it: down and left of the
  // line for work leaving, up and right of it for work coming (both show at one
  // instant); a count is drawn only where it touches no triangle and no other count
  const s = 4 * pr;
  const y = top + 2 * pr;
  const shown = marks.map((mark) => {
    const x = at(mark.x);
    const out = mark.kind === "out";
    const cx = out ? x - s - pr : x + s + 2 * pr;
    return { mark, x, out, cx, text: String(mark.count) };
  }).filter((m) => m.x >= left - 1 && m.x <= left + width + 1);
  const taken = shown.map((m) => [m.cx - s, m.cx + s]);
  for (const m of shown) {
    ctx.strokeStyle = TL.moveLine;
    ctx.lineWidth = pr;
    ctx.setLineDash([3 * pr, 3 * pr]);
    ctx.beginPath();
    ctx.moveTo(m.x + 0.5, top);
    ctx.lineTo(m.x + 0.5, top + height);
    ctx.stroke();
    ctx.fillStyle = m.out ? TL.out : TL.back;
    ctx.beginPath();
    const [tip, base] = m.out ? [y + 1.7 * s, y] : [y, y + 1.7 * s];
    ctx.moveTo(m.cx - s, base);
    ctx.lineTo(m.cx + s, base);
    ctx.lineTo(m.cx, tip);
    ctx.closePath();
    ctx.fill();
  }
  ctx.textAlign = "left";
  for (const m of shown) {
    const w = ctx.measureText(m.text).width;
    const x1 = m.out ? m.cx - s - pr - w : m.cx + s + pr;
    const box = [x1 - pr, x1 + w + pr];
    if (taken.some(([a, b]) => a < box[1] && box[0] < b)) continue;
    ctx.fillStyle = m.out ? TL.out : TL.back;
    ctx.fillText(m.text, x1, y);
    taken.push(box);
  }
  const x = at(nowX);
  if (x >= left - 1 && x <= left + width + 1) {
    ctx.setLineDash([]);
    ctx.strokeStyle = TL.now;
    ctx.fillStyle = TL.now;
    ctx.lineWidth = 1.5 * pr;
    ctx.beginPath();
    ctx.moveTo(x, top);
    ctx.lineTo(x, top + height);
    ctx.stroke();
    ctx.textAlign = "left";
    ctx.fillText("now", x + 3 * pr, top + height - 12 * pr);
  }
  ctx.restore();
}

// The line under a chart's title: the values at the cursor (else now), and the moves then.
function readout(item, t, index) {
  const f = item.factory;
  const last = f.points.length - 1;
  const i = index === null || index === undefined || index < 0 ? 0 : Math.min(index, last);
  const p = f.points[i];
  const at = t.instants[i];
  const parts = [`${i === 0 ? "now" : localTime(at)}: ${fmtMW(p.allocatedMW)} of ${fmtMW(p.usableMW)} MW usable`];
  if (p.curtailedMW > 0) parts.push(`${fmtMW(p.curtailedMW)} MW curtailed`);
  if (p.plannedCurtailedMW > p.curtailedMW) parts.push(`planning for ${fmtMW(p.plannedCurtailedMW)} MW curtailed`);
  if (p.driver) parts.push(p.driver);
  const moved = item.moves.filter((m) => m.at === at);
  const out = moved.filter((m) => m.beforeSites.includes(f.name)).map((m) => m.workload);
  const back = moved.filter((m) => m.afterSites.includes(f.name)).map((m) => m.workload);
  if (out.length) parts.push(`leaving: ${out.join(", ")}`);
  if (back.length) parts.push(`back: ${back.join(", ")}`);
  return parts.join(" · ");
}

function chartTitle(item) {
  const what = item.events.map((e) => `${e.name}: ${e.peakCurtailedMW > 0 ? `−${fmtMW(e.peakCurtailedMW)} MW` : "nothing to curtail"} `
    + `${localSpan(e.start, e.end)}, lead ${fmtDuration(e.leadTime)}`);
  if (!what.length) what.push(item.moves.length ? "no grid event; work moves (fleet windows)" : "no grid event; allocation changes");
  return what.join("; ");
}

function timelineChart(t, item, width, height) {
  const f = item.factory;
  const marks = moveMarks(item.moves, f.name);
  const nowX = Date.parse(t.start) / 1000;
  const capacity = f.firmMW + f.flexibleMW;
  const read = el("div", { class: "tl-read", "aria-live": "off" });
  const box = el("div", { class: "tl-plot" });
  const wrap = el("div", { class: "tl-chart", "data-factory": f.name },
    el("div", { class: "tl-head" }, el("span", { class: "tl-name", text: f.name }),
      el("span", { class: "tl-what", title: chartTitle(item), text: chartTitle(item) })),
    read, box);
  const step = uPlot.paths.stepped({ align: 1 });
  const mw = (u, v) => (v == null ? "—" : fmtMW(v));
  const points = { show: false };
  const plot = new uPlot({
    width, height,
    series: [
      { label: "time" },
      { label: "firm + flexible", stroke: TL.capacity, width: 1, dash: [4, 3], paths: step, points, value: mw },
      { label: "usable, planned", stroke: TL.planned, width: 1.5, dash: [5, 3], paths: step, points, value: mw },
      { label: "usable", stroke: TL.usable, width: 2, paths: step, points, value: mw },
      { label: "allocated", stroke: TL.allocated, width: 2, fill: TL.allocatedFill, paths: step, points, value: mw },
    ],
    // in force: from firm + flexible down to usable; planned ahead: from usable down to
    // what the plan is made with (non-empty only within an event's lead time)
    bands: [{ series: [1, 3], fill: TL.curtailed }, { series: [3, 2], fill: hatch() }],
    scales: { x: { time: true }, y: { range: () => [0, Math.max(1, capacity) * HEADROOM] } },
    axes: [
      { size: 28, values: (u, ticks) => ticks.map((v) => {
        const d = new Date(v * 1000);
        return d.getHours() === 0 && d.getMinutes() === 0 ? DAY_ONLY.format(d) : TIME_ONLY.format(d);
      }) },
      { size: 48, values: (u, ticks) => ticks.map((v) => fmtMW(v)), label: "MW", labelSize: 14 },
    ],
    legend: { show: false },
    cursor: { sync: { key: "meshplane-timeline" }, points: { size: 6 } },
    hooks: {
      draw: [(u) => drawTimelineMarks(u, marks, nowX)],
      setCursor: [(u) => { read.textContent = readout(item, t, u.cursor.idx); }],
    },
  }, factorySeries(t, f), box);
  read.textContent = readout(item, t, null);
  plot.factory = f.name;
  return { wrap, plot, marks };
}

function eventRow(t, e) {
  const moved = t.moves.filter((m) => m.because.split(", ").includes(e.name));
  const out = new Set(moved.filter((m) => m.beforeSites.includes(e.factory)).map((m) => m.workload));
  const back = new Set(moved.filter((m) => m.afterSites.includes(e.factory)).map((m) => m.workload));
  // planned: the moves of the timeline; done: what the operator counted (GridEvent status)
  const planned = [out.size && `${out.size} out`, back.size && `${back.size} back`].filter(Boolean).join(" · ");
  const done = e.movedCount ? `${e.movedCount} moved` : "";
  const movesText = [done, planned].filter(Boolean).join(" · ") || "none";
  const now = Date.parse(t.start);
  const starts = (Date.parse(e.start) - now) / 1000;
  const rel = starts > 0 ? fmtRelative(starts) : `ends ${fmtRelative((Date.parse(e.end) - now) / 1000)}`;
  return el("tr", { class: "event", "data-event": e.name, "data-factory": e.factory, "data-phase": e.phase,
    "data-start": e.start, "data-end": e.end },
  el("td", { "data-field": "phase" }, el("span", { class: `gphase gphase-${e.phase}`, text: e.phase })),
  el("td", { class: "name" }, el("span", { "data-field": "name", text: e.name }),
    el("span", { class: "sub" }, el("span", { "data-field": "factory", text: e.factory }), " · ",
      el("span", { "data-field": "source", text: fmtSource(e.source) }))),
  el("td", { "data-field": "when", class: "when", title: `${e.start} → ${e.end} (${LOCAL_ZONE})` },
    el("span", { class: "abs", text: localSpan(e.start, e.end) }),
    el("span", { class: "rel" }, `${rel} · lead `, el("span", { "data-field": "lead", title: `work leaves ${e.leadTime} before the start`,
      text: fmtDuration(e.leadTime) }))),
  el("td", { "data-field": "mw", class: "num", title: "MW: the import limit / the flexible power curtailed at the peak",
    text: `${e.limitMW == null ? "—" : fmtMW(e.limitMW)} / ${fmtMW(e.peakCurtailedMW)} MW` }),
  el("td", { "data-field": "moves", class: "num", title: [...out].map((w) => `out: ${w}`).concat([...back].map((w) => `back: ${w}`)).join("\n"),
    text: movesText }),
  );
}

function moveRow(m) {
  const grid = m.because && m.because !== "fleet window";
  return el("tr", { class: `move${grid ? " grid-move" : ""}`, "data-at": m.at, "data-workload": m.workload },
    el("td", { "data-field": "at", class: "when", title: m.at, text: localTime(m.at) }),
    el("td", { "data-field": "workload", class: "name", text: m.workload }),
    el("td", { "data-field": "sites", class: "moved" }, el("span", { text: sitesText(m.beforeSites) }), " → ",
      el("span", { text: sitesText(m.afterSites) })),
    el("td", { "data-field": "phase" }, el("span", { class: `phase phase-${m.phase}`, text: m.phase })),
    el("td", { "data-field": "because", class: "reason", text: m.because || "—" }),
  );
}

function emptyRow(colSpan, text) {
  return el("tr", { class: "none" }, el("td", { class: "empty", colSpan, text }));
}

function renderTimeline() {
  const t = timeline.data;
  const charts = $("timeline-charts");
  for (const p of timeline.plots) p.destroy();
  timeline.plots = [];
  hook.timelineCharts = {};
  if (!t) {
    const text = timeline.error ? `Cannot read the timeline: ${timeline.error}` : `planning the next ${TIMELINE_HOURS} h…`;
    charts.replaceChildren(el("p", { class: timeline.error ? "error" : "muted", text }));
    $("timeline-steady").textContent = "";
    return;
  }
  const hours = Math.round((Date.parse(t.end) - Date.parse(t.start)) / 3600e3);
  const events = timelineEvents(t);
  const later = t.events.filter((e) => !DONE_PHASES.has(e.phase) && Date.parse(e.start) >= Date.parse(t.end));
  const activity = factoryActivity(t, events);
  // the soonest grid event first, then the soonest change, the busiest, by name
  const active = activity.filter((a) => a.active).sort((a, b) => a.soonest - b.soonest || a.first - b.first
    || b.moves.length - a.moves.length || NATURAL.compare(a.factory.name, b.factory.name));
  const steady = activity.filter((a) => !a.active);
  const shown = timeline.showAll ? active : active.slice(0, TIMELINE_CHARTS);
  timeline.charted = shown.length;

  // the charts
  const width = Math.max(300, charts.clientWidth || 600);
  const blocks = [];
  const markers = {};
  for (const item of shown) {
    const { wrap, plot, marks } = timelineChart(t, item, width, timelineHeight());
    blocks.push(wrap);
    timeline.plots.push(plot);
    hook.timelineCharts[item.factory.name] = plot;
    markers[item.factory.name] = marks.map(({ at, kind, count, workloads }) => ({ at, kind, count, workloads }));
  }
  if (!active.length) {
    blocks.push(el("p", { class: "empty", "data-empty": "charts",
      text: `No grid event and no change of power or allocation at any factory in the next ${hours} h.` }));
  }
  if (active.length > TIMELINE_CHARTS) {
    const more = el("button", { type: "button", class: "quiet", id: "timeline-more",
      text: timeline.showAll ? `show the first ${TIMELINE_CHARTS}` : `show all ${active.length} factories` });
    more.addEventListener("click", () => {
      timeline.showAll = !timeline.showAll;
      renderTimeline();
    });
    blocks.push(more);
  }
  charts.replaceChildren(...blocks);
  // plots are drawn into their boxes once these are in the page (their width is known)
  for (const p of timeline.plots) p.setSize({ width: Math.max(300, charts.clientWidth || width), height: timelineHeight() });

  const steadyText = steady.slice(0, 12).map((a) => {
    const p = a.factory.points[0];
    return `${a.factory.name} ${fmtMW(p.allocatedMW)}/${fmtMW(p.usableMW)} MW${p.curtailedMW > 0 ? ` (${fmtMW(p.curtailedMW)} curtailed)` : ""}`;
  });
  if (steady.length > 12) steadyText.push(`and ${steady.length - 12} more`);
  $("timeline-steady").textContent = (steady.length ? `Steady for ${hours} h (allocated/usable): ${steadyText.join(", ")}.` : "")
    + (t.truncated ? ` The horizon holds more wake-ups than are planned: the plan stops at ${localTime(t.instants[t.instants.length - 1])}.` : "");

  // the events and the moves
  const eventRows = events.map((e) => eventRow(t, e));
  if (!eventRows.length) eventRows.push(emptyRow(5, `No grid event in the next ${hours} h.`));
  $("timeline-events").tBodies[0].replaceChildren(...eventRows);
  $("timeline-event-count").textContent = events.length ? `${events.length}` + (later.length ? ` (+${later.length} later)` : "")
    : later.length ? `${later.length} later` : "";
  const moveRows = t.moves.map(moveRow);
  if (!moveRows.length) moveRows.push(emptyRow(5, `No workload moves in the next ${hours} h.`));
  $("timeline-moves").tBodies[0].replaceChildren(...moveRows);
  $("timeline-move-count").textContent = t.moves.length ? `${t.moves.length}` : "";
  $("timeline-zone").textContent = `times in ${LOCAL_ZONE}`;

  hook.timeline = {
    ready: true, version: timeline.version, error: null, start: t.start, end: t.end, zone: LOCAL_ZONE,
    charted: shown.map((a) => a.factory.name), active: active.map((a) => a.factory.name),
    steady: steady.map((a) => a.factory.name), events: events.map((e) => e.name), later: later.map((e) => e.name),
    moves: t.moves.length, markers, renders: (hook.timeline ? hook.timeline.renders : 0) + 1,
  };
}

// Asked after the mesh is drawn, once per published version (again after a failure;
// not again while the same version's answer is on its way: a large mesh takes a while).
async function loadTimeline(version) {
  if (timeline.pending === version || (timeline.version === version && timeline.data && !timeline.error)) return;
  const seq = ++timeline.seq;
  timeline.pending = version;
  if (!timeline.data) {
    timeline.error = null;
    renderTimeline();
  } else {
    $("timeline-zone").textContent = `updating… · times in ${LOCAL_ZONE}`;
  }
  try {
    const data = await api(`timeline?hours=${TIMELINE_HOURS}`);
    if (seq !== timeline.seq) return; // a newer version asked since
    Object.assign(timeline, { data, version, error: null });
  } catch (error) {
    if (seq !== timeline.seq) return;
    Object.assign(timeline, { data: null, version, error: error.message });
    hook.timeline = { ready: true, version, error: error.message };
  } finally {
    if (seq === timeline.seq) timeline.pending = null;
  }
  renderTimeline();
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
  renderPower(mesh);
  renderClusters(mesh);
  renderSolver(solve);
  renderFleets(mesh);
  renderPhaseFilter(state.workloads);
  renderWorkloads();
  renderGraph(mesh, state.workloads); // last: the other panels set the size it is laid out for
  loadTimeline(mesh.version); // not awaited: the mesh is shown while the next hours are planned
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
  $("graph-search").addEventListener("input", applySearch);
  $("graph-search").addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.target.value = "";
      applySearch();
    } else if (event.key === "Enter" && state.cy) {
      // Enter zooms to what is lit; with nothing lit, back to the whole mesh
      const lit = state.cy.$(".match, .near");
      state.cy.fit(lit.nonempty() ? lit : undefined, 24);
    }
  });
  $("filter-phase").addEventListener("change", renderWorkloads);
  $("whatif").addEventListener("submit", runWhatIf);
  window.addEventListener("resize", () => {
    if (state.plot) state.plot.setSize({ width: Math.max(300, $("fleets").clientWidth), height: 230 });
    for (const p of timeline.plots) p.setSize({ width: Math.max(300, $("timeline-charts").clientWidth), height: timelineHeight() });
  });
  restartFollowing();
}

start();
