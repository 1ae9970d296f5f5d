// The status page: polls /api/status and redraws in place (no reload). Every value is put into the page
// with textContent or as an SVG attribute set through the DOM — never as HTML — so nothing from the maps,
// the engine or an error message can become markup.
"use strict";

const POLL_MS = 2000;
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function stateClass(state, health) {
  if (!state || state === "unknown") return "missing";
  if (health === "unhealthy") return "bad";
  if (state === "running" || state === "present") return "ok";
  if (state === "missing") return "missing";
  if (["created", "restarting", "paused"].includes(state)) return "busy";
  return "bad";
}

function when(iso) {
  return iso ? iso.replace("T", " ").replace("Z", "") : "";
}

function shortId(id) {
  return id ? id.replace(/^sha256:/, "").slice(0, 12) : "—";
}

function pill(id, ok, text) {
  const node = document.getElementById(id);
  node.textContent = text;
  node.className = "pill " + (ok ? "ok" : "bad");
}

function reasons(items) {
  if (!items.length) return "in sync";
  return el("ul", { class: "reasons" }, ...items.map((r) => el("li", {}, r)));
}

function lastAction(last) {
  if (!last) return "—";
  return `${last.action} ${last.outcome} ${when(last.at)}` + (last.error ? `: ${last.error}` : "");
}

let severalEngines = false;  // then each container's row names its client

function containerRow(c) {
  const state = c.state + (c.health ? ` (${c.health})` : "");
  const notes = [];
  if (c.update_pending) notes.push(`update pending: ${shortId(c.tag_id)}`);
  for (const h of c.held) notes.push(h);
  if (c.crash_loop) notes.push(`crash loop: ${c.crash_loop} crashes in a row`);
  if (c.rolled_back) notes.push(`rolled back ${when(c.rolled_back.at)}: ${c.rolled_back.error || ""}`);
  const drift = [...c.drift, ...c.notes.filter((n) => !c.held.includes(n)), ...notes];
  return el(
    "tr",
    { "data-name": c.name, class: "container" },
    el("td", { class: "mono name" }, c.name, severalEngines ? el("span", { class: "muted" }, ` on ${c.client}`) : null),
    el("td", { class: "state " + stateClass(c.state, c.health) }, state),
    el("td", { class: "mono image" }, c.image, el("br"), el("span", { class: "muted" }, shortId(c.image_id))),
    el("td", { class: "drift" }, reasons(drift)),
    el("td", { class: "restarts" }, c.restarts === null ? "—" : c.restarts),
    el("td", { class: "last" }, lastAction(c.last_action)),
  );
}

function resourceRow(r) {
  return el(
    "tr",
    { "data-name": r.name, class: "resource" },
    el("td", {}, r.kind),
    el("td", { class: "mono name" }, r.name),
    el("td", { class: "state " + stateClass(r.state === "exited (0)" ? "present" : r.state) }, r.state),
    el("td", { class: "drift" }, reasons([...r.drift, ...r.notes])),
    el("td", { class: "last" }, lastAction(r.last_action)),
  );
}

function mapSection(m) {
  const head = ["container", "state", "image", "drift, updates, holds", "restarts", "last action"];
  const section = el("div", { class: "map", "data-map": m.name }, el("h2", {}, `map ${m.name}`));
  section.append(
    el(
      "table",
      { class: "containers" },
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
      el("tbody", {}, ...m.containers.map(containerRow)),
    ),
  );
  if (m.resources.length) {
    section.append(el("h3", {}, "volumes, volume inits, networks"));
    section.append(
      el(
        "table",
        { class: "resources" },
        el("thead", {}, el("tr", {}, ...["kind", "name", "state", "drift", "last action"].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...m.resources.map(resourceRow)),
      ),
    );
  }
  for (const p of m.problems) section.append(el("p", { class: "bad" }, `${p.name} cannot be created: ${p.problem}`));
  return section;
}

// A layered drawing of the dependency graph: one column per wave (wave 1 on the left), nodes stacked in
// each column, arrows from a resource to what it needs.
function drawGraph(graph) {
  const W = 210, H = 38, GAP_X = 90, GAP_Y = 16, TOP = 64;
  const columns = new Map();
  for (const n of graph.nodes) {
    if (!columns.has(n.wave)) columns.set(n.wave, []);
    columns.get(n.wave).push(n);
  }
  const pos = new Map();
  let rows = 0;
  for (const [wave, nodes] of columns) {
    nodes.forEach((n, i) => pos.set(n.name + "\u0000" + n.kind, { x: 10 + (wave - 1) * (W + GAP_X), y: TOP + i * (H + GAP_Y), n }));
    rows = Math.max(rows, nodes.length);
  }
  const width = 20 + columns.size * (W + GAP_X);
  const height = TOP + rows * (H + GAP_Y) + 10;
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "dependency graph" });
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#78909c" }));
  defs.append(marker);
  root.append(defs);
  for (const wave of columns.keys()) root.append(svg("text", { class: "wave", x: 10 + (wave - 1) * (W + GAP_X), y: 16 }, `wave ${wave}`));
  const byName = new Map();
  for (const p of pos.values()) if (!byName.has(p.n.name)) byName.set(p.n.name, p);
  for (const e of graph.edges) {
    const a = byName.get(e.from), b = byName.get(e.to);
    if (!a || !b) continue;
    const g = svg("g", { class: "edge" });
    const span = Math.abs(a.n.wave - b.n.wave);
    if (span > 1) {
      // Past the columns in between: over their top edge, so the arrow is not hidden behind their nodes.
      const x1 = a.x + W / 2, y1 = a.y, x2 = b.x + W / 2, y2 = b.y, lift = Math.min(y1, y2) - 12 - 8 * span;
      g.append(svg("path", { d: `M${x1},${y1} C${x1},${lift} ${x2},${lift} ${x2},${y2}` }));
      g.append(svg("text", { x: (x1 + x2) / 2 - 20, y: lift + 14 }, e.label));
    } else {
      const x1 = a.x, y1 = a.y + H / 2, x2 = b.x + W, y2 = b.y + H / 2;
      g.append(svg("path", { d: `M${x1},${y1} C${x1 - GAP_X / 2},${y1} ${x2 + GAP_X / 2},${y2} ${x2},${y2}` }));
      g.append(svg("text", { x: (x1 + x2) / 2 - 20, y: (y1 + y2) / 2 - 3 }, e.label));
    }
    root.append(g);
  }
  for (const { x, y, n } of pos.values()) {
    const g = svg("g", { class: `node ${n.kind} ${n.class || ""}`, "data-name": n.name });
    if (n.kind === "network") {
      g.append(svg("polygon", { points: `${x + 12},${y} ${x + W - 12},${y} ${x + W},${y + H / 2} ${x + W - 12},${y + H} ${x + 12},${y + H} ${x},${y + H / 2}` }));
    } else if (n.kind === "volume-init") {
      g.append(svg("polygon", { points: `${x + 12},${y} ${x + W},${y} ${x + W - 12},${y + H} ${x},${y + H}` }));
    } else {
      g.append(svg("rect", { x, y, width: W, height: H, rx: n.kind === "volume" ? 14 : 3 }));
    }
    g.append(svg("text", { x: x + 14, y: y + 15 }, n.name));
    const state = n.state ? n.state + (n.health ? `, ${n.health}` : "") : "";
    g.append(svg("text", { x: x + 14, y: y + 30, fill: "#555" }, state));
    const title = svg("title", {}, `${n.kind} ${n.name} ${state}`);
    g.append(title);
    root.append(g);
  }
  return root;
}

function render(data) {
  pill("health", data.health.ok, data.health.ok ? "healthy" : `unhealthy: ${data.health.reason}`);
  pill("ready", data.ready.ok, data.ready.ok ? "ready" : data.ready.reason);
  pill("sync", data.in_sync === true, data.in_sync === null ? "engine unknown" : data.in_sync ? "in sync" : "drift");
  severalEngines = data.engines.length > 1;
  const engines = document.getElementById("engines");
  engines.replaceChildren(
    ...data.engines.map((e) => el("span", { class: "pill " + (e.up ? "ok" : "bad"), "data-engine": e.name }, `engine ${e.name}: ${e.up ? "up" : "down"}`)),
  );
  document.getElementById("updated").textContent = `updated ${when(data.generated)}`;
  document.getElementById("version").textContent = `reconciler ${data.version}`;
  const problems = [...data.map_errors.map((p) => `map error (last good version in force): ${p}`)];
  if (data.engine_error) problems.unshift(`engine: ${data.engine_error}`);
  document.getElementById("problems").hidden = problems.length === 0;
  document.getElementById("problem-list").replaceChildren(...problems.map((p) => el("li", {}, p)));
  document.getElementById("maps").replaceChildren(...data.maps.map(mapSection));
  document.getElementById("graph").replaceChildren(drawGraph(data.graph));
  document.querySelector("#events tbody").replaceChildren(
    ...data.events.map((e) =>
      el(
        "tr",
        { class: "event " + (e.outcome === "done" ? "" : "bad") },
        el("td", { class: "mono" }, when(e.at)),
        el("td", { class: "mono" }, `${e.kind} ${e.name}`),
        el("td", {}, e.action),
        el("td", { class: "outcome" }, e.outcome),
        el("td", {}, e.error || ""),
      ),
    ),
  );
  document.body.dataset.generated = data.generated;
}

async function poll() {
  try {
    const response = await fetch("/api/status", { cache: "no-store", credentials: "same-origin" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    render(await response.json());
  } catch (err) {
    pill("health", false, `status unavailable: ${err.message}`);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
