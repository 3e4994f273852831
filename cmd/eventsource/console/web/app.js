// The eventsource console: plain JavaScript, no build step. Everything an
// event holds is put on the page as text (textContent), never as HTML.
"use strict";

const main = document.getElementById("main");
let info = { writable: false, projections: false, list_streams: true, max_page: 1000 };
let stopPage = () => {}; // ends the current page's live parts (tail, polling)

// el builds an element: el("td", {class: "num"}, "text", child, …).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "on") {
      for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    } else if (v !== undefined && v !== null && v !== false) {
      e.setAttribute(k, v === true ? "" : String(v));
    }
  }
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// val is the value of form's field name (form.name would find a property
// of the form itself for names such as "prefix").
function val(form, name) {
  return form.elements.namedItem(name).value;
}

function showError(msg) {
  const box = document.getElementById("error");
  box.textContent = msg;
  box.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { box.hidden = true; }, 8000);
}

async function api(path, opts) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem("es-token");
  if (token) headers.Authorization = "Bearer " + token;
  if (opts && opts.body) headers["Content-Type"] = "application/json";
  const res = await fetch(path, Object.assign({ headers }, opts || {}));
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const msg = body.error ? body.error.message : res.status + " " + res.statusText;
    showError(msg);
    throw new Error(msg);
  }
  return body;
}

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v)) v.filter(Boolean).forEach((x) => u.append(k, x));
    else if (v !== undefined && v !== null && v !== "") u.set(k, v);
  }
  const s = u.toString();
  return s ? "?" + s : "";
}

function route() {
  const hash = location.hash.replace(/^#\/?/, "") || "streams";
  const [path, query] = hash.split("?");
  const parts = path.split("/").map(decodeURIComponent);
  return { page: parts[0], arg: parts.slice(1).join("/"), params: new URLSearchParams(query || "") };
}

function go(page, arg, params) {
  location.hash = "#/" + page + (arg ? "/" + encodeURIComponent(arg) : "") + qs(params || {});
}

function time(t) {
  const d = new Date(t);
  return isNaN(d) ? "" : d.toISOString().replace("T", " ").replace("Z", "");
}

// dataText is an event's data for reading: JSON pretty-printed, otherwise
// what it is (bytes, encrypted).
function dataText(r) {
  if (r.data !== undefined) {
    try { return JSON.stringify(r.data, null, 2); } catch (e) { return String(r.data); }
  }
  if (r.data_base64) {
    const n = atob(r.data_base64).length;
    return r.encrypted ? "(" + n + " bytes, encrypted with " + r.codec + ": the key may be shredded)" : "(" + n + " bytes of " + (r.codec || "binary") + ")";
  }
  return "(no data)";
}

function detail(r) {
  const md = Object.entries(r.metadata || {}).sort();
  return el("div", { class: "detail", "data-testid": "event-detail" },
    el("h2", {}, r.type, " ", el("span", { class: "tag" }, r.stream + " v" + r.version), " ",
      r.encrypted ? el("span", { class: "tag enc", "data-testid": "encrypted" }, "encrypted") : null),
    el("div", { class: "muted" }, "position " + r.position + " · " + time(r.recorded_at) + " · event " + r.event_id),
    el("h2", {}, "Data"),
    el("pre", { "data-testid": "event-data" }, dataText(r)),
    el("h2", {}, "Metadata"),
    md.length ? el("table", { "data-testid": "event-metadata" }, ...md.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, el("pre", {}, v)))))
      : el("div", { class: "muted" }, "none"));
}

// recordsTable shows records; a click on a row shows the event beside it.
function recordsTable(records, side, withStream) {
  const rows = records.map((r) => {
    const tr = el("tr", { class: "clickable", "data-testid": "event-row", "data-position": r.position },
      withStream ? el("td", {}, el("a", { href: "#/stream/" + encodeURIComponent(r.stream) }, r.stream)) : null,
      el("td", { class: "num" }, r.version),
      el("td", { class: "num" }, r.position),
      el("td", {}, r.type, r.encrypted ? " " : "", r.encrypted ? el("span", { class: "tag enc" }, "encrypted") : null),
      el("td", {}, time(r.recorded_at)));
    tr.addEventListener("click", (ev) => {
      if (ev.target.tagName === "A") return;
      tr.parentNode.querySelectorAll("tr.selected").forEach((x) => x.classList.remove("selected"));
      tr.classList.add("selected");
      side.replaceChildren(detail(r));
    });
    return tr;
  });
  return el("table", { "data-testid": "events" },
    el("thead", {}, el("tr", {}, withStream ? el("th", {}, "Stream") : null, el("th", {}, "Version"), el("th", {}, "Position"), el("th", {}, "Type"), el("th", {}, "Recorded"))),
    el("tbody", {}, ...rows));
}

async function pageStreams(params) {
  const prefix = params.get("prefix") || "";
  const form = el("form", { class: "filters" },
    el("input", { name: "prefix", placeholder: "stream ID prefix, e.g. account-", value: prefix, "data-testid": "prefix" }),
    el("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (e) => { e.preventDefault(); go("streams", "", { prefix: val(form, "prefix") }); });
  main.replaceChildren(el("h1", {}, "Streams"), form);
  if (!info.list_streams) { main.append(el("p", { class: "muted" }, "This store cannot list its streams.")); return; }
  const page = await api("/api/streams" + qs({ prefix, after: params.get("after"), limit: 50 }));
  main.append(el("table", { "data-testid": "streams" },
    el("thead", {}, el("tr", {}, el("th", {}, "Stream"), el("th", {}, "Version"))),
    el("tbody", {}, ...page.streams.map((s) => el("tr", {},
      el("td", {}, el("a", { href: "#/stream/" + encodeURIComponent(s.StreamID), "data-testid": "stream-link" }, s.StreamID)),
      el("td", { class: "num" }, s.Version))))));
  if (page.streams.length === 0) main.append(el("p", { class: "muted" }, "No streams" + (prefix ? " start with “" + prefix + "”." : ".")));
  if (page.next) main.append(el("div", { class: "pager" }, el("button", { class: "secondary", "data-testid": "next", on: { click: () => go("streams", "", { prefix, after: page.next }) } }, "Next page")));
}

async function pageStream(id, params) {
  const from = params.get("from") || 1;
  const side = el("div", {}, el("div", { class: "detail muted" }, "Click an event to read it."));
  const page = await api("/api/streams/" + encodeURIComponent(id) + qs({ from, limit: 100 }));
  main.replaceChildren(el("h1", { "data-testid": "stream-title" }, id),
    el("div", { class: "layout" }, el("div", {}, recordsTable(page.records, side, false),
      page.next ? el("div", { class: "pager" }, el("button", { class: "secondary", on: { click: () => go("stream", id, { from: page.next }) } }, "Next page")) : null), side));
}

function logFilters(params, page) {
  const form = el("form", { class: "filters" },
    el("input", { name: "from", placeholder: "from position", value: params.get("from") || "", "data-testid": "from" }),
    el("input", { name: "prefix", placeholder: "stream prefix", value: params.get("prefix") || "" }),
    el("input", { name: "type", placeholder: "event type", value: params.get("type") || "" }),
    el("input", { name: "meta", placeholder: "metadata key=value", value: params.get("meta") || "" }),
    el("button", { type: "submit" }, page === "tail" ? "Follow" : "Read"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    go(page, "", { from: val(form, "from"), prefix: val(form, "prefix"), type: val(form, "type"), meta: val(form, "meta") });
  });
  return form;
}

async function pageLog(params) {
  const side = el("div", {}, el("div", { class: "detail muted" }, "Click an event to read it."));
  main.replaceChildren(el("h1", {}, "Global log"), logFilters(params, "log"));
  const q = { from: params.get("from"), prefix: params.get("prefix"), type: params.get("type"), meta: params.get("meta"), limit: 100 };
  const page = await api("/api/log" + qs(q));
  main.append(el("div", { class: "layout" }, el("div", {}, recordsTable(page.records, side, true),
    el("div", { class: "pager" },
      page.next ? el("button", { class: "secondary", on: { click: () => go("log", "", Object.assign({}, q, { from: page.next, limit: undefined })) } }, "Next page") : null,
      page.scanned ? el("span", {}, page.scanned + " records read") : null)), side));
}

function pageTail(params) {
  const side = el("div", {}, el("div", { class: "detail muted" }, "Click an event to read it."));
  const tbody = el("tbody", {});
  const status = el("div", { class: "muted", "data-testid": "tail-status" }, "connecting…");
  const q = { prefix: params.get("prefix"), type: params.get("type"), meta: params.get("meta") };
  if (params.get("from")) q.from = params.get("from"); else q.from_end = 1;
  main.replaceChildren(el("h1", {}, "Live tail"), logFilters(params, "tail"), status,
    el("div", { class: "layout" }, el("table", { "data-testid": "events" },
      el("thead", {}, el("tr", {}, el("th", {}, "Stream"), el("th", {}, "Version"), el("th", {}, "Position"), el("th", {}, "Type"), el("th", {}, "Recorded"))), tbody), side));
  const src = new EventSource("/api/tail" + qs(q));
  let n = 0;
  src.addEventListener("open", () => { status.textContent = "following live"; });
  src.addEventListener("caught-up", () => { status.textContent = "caught up; following live"; });
  src.addEventListener("record", (ev) => {
    const r = JSON.parse(ev.data);
    const row = recordsTable([r], side, true).querySelector("tbody tr");
    tbody.prepend(row);
    n++;
    status.textContent = "following live · " + n + " events";
    while (tbody.children.length > 500) tbody.lastChild.remove();
  });
  src.addEventListener("error", () => { status.textContent = "reconnecting…"; });
  stopPage = () => src.close();
}

const history = {}; // projection name → [[time, lag], …]
const colors = ["#2458d6", "#c2410c", "#15803d", "#7e22ce", "#0e7490", "#b91c1c"];

function chart() {
  const names = Object.keys(history).sort();
  const w = 900, h = 180, pad = 30;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  svg.setAttribute("class", "chart");
  svg.setAttribute("data-testid", "lag-chart");
  const all = names.flatMap((n) => history[n]);
  if (all.length === 0) return svg;
  const t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]), t0 + 1);
  const top = Math.max(1, ...all.map((p) => p[1]));
  const axis = document.createElementNS(ns, "text");
  axis.setAttribute("x", 4); axis.setAttribute("y", 14); axis.setAttribute("font-size", 11);
  axis.textContent = "lag, positions (max " + top + ")";
  svg.append(axis);
  names.forEach((n, i) => {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("stroke", colors[i % colors.length]);
    line.setAttribute("points", history[n].map(([t, v]) =>
      (pad + (t - t0) / (t1 - t0) * (w - 2 * pad)).toFixed(1) + "," + (h - pad - v / top * (h - 2 * pad)).toFixed(1)).join(" "));
    svg.append(line);
  });
  return svg;
}

async function pageProjections() {
  const box = el("div", {});
  main.replaceChildren(el("h1", {}, "Projections"), box);
  if (!info.projections) { box.append(el("p", { class: "muted" }, "No checkpoint store: start serve with --checkpoints, or on a SQL store.")); return; }
  let alive = true;
  stopPage = () => { alive = false; };
  const act = async (name, action) => {
    await api("/api/projections/" + encodeURIComponent(name) + "/" + action, { method: "POST", body: "{}" });
    await refresh();
  };
  const refresh = async () => {
    const { projections } = await api("/api/projections");
    const now = Date.now() / 1000;
    for (const p of projections) {
      (history[p.name] = history[p.name] || []).push([now, p.lag_positions || 0]);
      if (history[p.name].length > 300) history[p.name].shift();
    }
    const names = Object.keys(history).sort();
    box.replaceChildren(...[
      el("table", { "data-testid": "projections" },
        el("thead", {}, el("tr", {}, ...["Name", "Status", "Position", "Lag", "Parked", "Skipped", "Holder", "Request", ""].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...projections.map((p) => el("tr", { "data-testid": "projection", "data-name": p.name },
          el("td", {}, p.name),
          el("td", { class: "status-" + p.status, "data-testid": "status" }, p.status, p.error ? ": " + p.error : ""),
          el("td", { class: "num", "data-testid": "position" }, p.position),
          el("td", { class: "num" }, p.lag_positions === undefined ? "" : p.lag_positions),
          el("td", { class: "num" }, p.parked),
          el("td", { class: "num" }, (p.skipped || []).length),
          el("td", {}, p.holder || ""),
          el("td", { "data-testid": "request" }, p.request || ""),
          el("td", {}, ...["stop", "start", "reset", "skip"].map((a) => el("button", {
            class: "secondary", "data-testid": a, disabled: !info.writable,
            title: info.writable ? a : "read-only: start serve with --token",
            on: { click: () => act(p.name, a).catch(() => {}) },
          }, a))))))),
      projections.length === 0 ? el("p", { class: "muted" }, "No projections yet.") : null,
      el("h2", {}, "Lag over time"),
      el("div", { class: "legend" }, ...names.map((n, i) => {
        const swatch = el("span", {}, "■ ");
        swatch.style.color = colors[i % colors.length]; // a CSSOM property: allowed by the page's CSP
        return el("span", { class: "muted" }, swatch, n);
      })),
      chart()].filter(Boolean));
  };
  const loop = async () => {
    while (alive) {
      try { await refresh(); } catch (e) { /* shown */ }
      await new Promise((r) => setTimeout(r, 2000));
    }
  };
  loop();
}

async function pageTrace(params) {
  const id = params.get("id") || "";
  const form = el("form", { class: "filters" },
    el("input", { name: "q", placeholder: "correlation, causation or event ID", value: id, "data-testid": "trace-id" }),
    el("input", { name: "corr", placeholder: "correlation key (correlation_id)", value: params.get("correlation_key") || "" }),
    el("input", { name: "caus", placeholder: "causation key (causation_id)", value: params.get("causation_key") || "" }),
    el("button", { type: "submit" }, "Follow"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    go("trace", "", { id: val(form, "q"), correlation_key: val(form, "corr"), causation_key: val(form, "caus") });
  });
  const side = el("div", {}, el("div", { class: "detail muted" }, "Click an event to read it."));
  main.replaceChildren(el("h1", {}, "Tracer"), form);
  if (!id) { main.append(el("p", { class: "muted" }, "Follows a correlation ID, and the events caused by each event found, across streams, in log order.")); return; }
  const page = await api("/api/trace" + qs({ id, correlation_key: params.get("correlation_key"), causation_key: params.get("causation_key") }));
  main.append(el("p", { class: "muted" }, page.records.length + " events, " + page.scanned + " records read"),
    el("div", { class: "layout" }, recordsTable(page.records, side, true), side));
}

async function render() {
  stopPage();
  stopPage = () => {};
  const { page, arg, params } = route();
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === (page === "stream" ? "streams" : page)));
  try {
    switch (page) {
      case "stream": return await pageStream(arg, params);
      case "log": return await pageLog(params);
      case "tail": return pageTail(params);
      case "projections": return await pageProjections();
      case "trace": return await pageTrace(params);
      default: return await pageStreams(params);
    }
  } catch (e) {
    main.append(el("p", { class: "muted" }, "Could not load this page: " + e.message));
  }
}

async function start() {
  try { info = await api("/api/info"); } catch (e) { /* defaults */ }
  document.getElementById("mode").textContent = info.writable ? "controls need the token" : "read-only";
  const form = document.getElementById("token-form");
  form.hidden = !info.writable;
  const input = document.getElementById("token");
  input.value = sessionStorage.getItem("es-token") || "";
  input.addEventListener("change", () => sessionStorage.setItem("es-token", input.value));
  form.addEventListener("submit", (e) => { e.preventDefault(); sessionStorage.setItem("es-token", input.value); });
  window.addEventListener("hashchange", render);
  render();
}

start();
