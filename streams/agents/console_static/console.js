// SPMA risk console: polls /console/snapshot every two seconds and draws it; no library, no build.
// The token (when the workers ask for one) is kept in sessionStorage, this tab only, and sent as
// "Authorization: Bearer" on every data request; it never goes into a URL.
"use strict";

const POLL_MS = 2000;
const STATES = ["HEALTHY", "MARGIN_CALL", "LIQUIDATION", "BANKRUPT"];
const COLOURS = { HEALTHY: "#2e7d32", MARGIN_CALL: "#f9a825", LIQUIDATION: "#e65100", BANKRUPT: "#b71c1c" };
const TOKEN_KEY = "spma-console-token";
const SVG = "http://www.w3.org/2000/svg";

// ----- small helpers -------------------------------------------------------------------------

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function num(value, digits = 2) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function count(value) { return value === undefined ? "0" : num(value, 0); }

function clock(iso) {
  if (!iso) return "–";
  const d = typeof iso === "number" ? new Date(iso * 1000) : new Date(iso);
  return d.toISOString().slice(11, 19);
}

function badge(state) { return el("span", { class: `badge ${state}` }, state); }

function fillBody(table, rows) {
  const body = table.tBodies[0];
  body.replaceChildren(...rows);
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

function headers(extra) {
  const h = Object.assign({ Accept: "application/json" }, extra || {});
  if (token()) h.Authorization = `Bearer ${token()}`;
  return h;
}

// Every data request: JSON in, { status, body } out (body null when not JSON).
async function request(method, path, payload) {
  const init = { method, headers: headers(payload ? { "Content-Type": "application/json" } : {}) };
  if (payload !== undefined) init.body = JSON.stringify(payload);
  const resp = await fetch(path, init);
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  return { status: resp.status, body };
}

function showAlert(id, message) {
  const box = $(id);
  box.textContent = message || "";
  box.hidden = !message;
}

// ----- the snapshot ---------------------------------------------------------------------------

async function poll() {
  try {
    const { status, body } = await request("GET", "/console/snapshot");
    if (status === 401) {
      showAlert("alert", "The workers ask for a token: enter SPMA_WEB_TOKEN above.");
      $("status").textContent = "waiting for a token";
    } else if (status !== 200 || !body) {
      showAlert("alert", `The snapshot answered ${status}: ${body && body.error ? body.error : "no data"}`);
    } else {
      const partial = body.unreachable.length ? `Partial figures: ${body.unreachable.join(", ")} did not answer.` : "";
      showAlert("alert", partial);
      draw(body);
    }
  } catch (e) {
    showAlert("alert", `No answer from the worker: ${e}`);
  }
  setTimeout(poll, POLL_MS);
}

function draw(s) {
  for (const state of STATES) $(`count-${state}`).textContent = count(s.states[state]);
  $("count-adl").textContent = count(s.outputs.adl);
  $("count-dlq").textContent = count(Object.values(s.dlq).reduce((a, b) => a + b, 0));
  $("fund-balance").textContent = s.fund ? `${num(s.fund.balance)} ${s.fund.currency}` : "–";
  const event = s.event_time ? `event time ${new Date(s.event_time * 1000).toISOString().replace(".000", "")}` : "no event yet";
  $("status").textContent = `${s.workers.length} worker(s) · ${event} · updated ${new Date().toLocaleTimeString()}`;
  drawHistory(s.history);
  drawClosest(s.closest);
  drawDeficits(s.deficits);
  drawFund(s.fund);
  drawMarks(s.marks);
  drawCounts(s.outputs, s.dlq);
  $("workers").textContent = "workers: " + s.workers.map(w => `${w.url} (partitions ${w.partitions.join(", ") || "none"})`).join("; ");
}

function accountRow(row, cells) {
  return el("tr", { class: "click", "data-account": row.account, onclick: () => openAccount(row.account) },
    el("td", {}, row.account), el("td", {}, badge(row.state)), ...cells);
}

function drawClosest(rows) {
  fillBody($("closest"), rows.map(r => accountRow(r, [
    el("td", { class: "num" }, num(r.ratio_mm, 3)),
    el("td", { class: "num" }, num(r.equity)),
    el("td", { class: "num" }, num(r.mm)),
  ])));
}

function drawDeficits(rows) {
  fillBody($("deficits"), rows.map(r => accountRow(r, [
    el("td", { class: "num" }, num(r.deficit)),
    el("td", { class: "num" }, num(r.mm)),
  ])));
  $("deficits-empty").hidden = rows.length > 0;
}

function drawFund(fund) {
  const totals = $("fund-totals");
  totals.replaceChildren();
  if (!fund) {
    totals.append(el("dt", {}, "owner"), el("dd", {}, "no worker reports the fund yet"));
    fillBody($("fund-events"), []);
    fillBody($("adl"), []);
    $("adl-empty").hidden = false;
    return;
  }
  totals.append(el("dt", {}, "balance"), el("dd", {}, `${num(fund.balance)} ${fund.currency}`));
  for (const [k, v] of Object.entries(fund.totals || {})) {
    totals.append(el("dt", {}, k), el("dd", {}, k === "pending" ? count(v) : num(v)));
  }
  const events = fund.events.slice(-30).reverse();
  fillBody($("fund-events"), events.map(e => el("tr", {},
    el("td", {}, clock(e.ts)), el("td", {}, e.kind), el("td", { class: "num" }, num(e.amount)),
    el("td", { class: "num" }, num(e.balance_after)), el("td", {}, e.account || ""))));
  const adl = fund.adl.slice(-30).reverse();
  fillBody($("adl"), adl.map(a => el("tr", { class: "click", onclick: () => openAccount(a.account) },
    el("td", {}, clock(a.ts)), el("td", {}, a.account), el("td", {}, a.counterparty || ""),
    el("td", {}, a.instrument), el("td", { class: "num" }, `${a.side} ${num(a.qty, 4)}`),
    el("td", { class: "num" }, num(a.price)))));
  $("adl-empty").hidden = adl.length > 0;
}

function drawMarks(marks) {
  fillBody($("marks"), Object.entries(marks).map(([name, m]) => el("tr", { "data-underlying": name },
    el("td", {}, name), el("td", { class: "num" }, num(m.mark, 4)),
    el("td", {}, badge(m.stale ? "STALE" : "LIVE")))));
}

function drawCounts(outputs, dlq) {
  fillBody($("outputs"), Object.entries(outputs).map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", { class: "num" }, count(v)))));
  const reasons = Object.entries(dlq);
  fillBody($("dlq"), (reasons.length ? reasons : [["(none)", 0]]).map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", { class: "num" }, count(v)))));
}

// ----- charts: two panels, so that a handful of LIQUIDATION or BANKRUPT accounts is not lost
// beside thousands of HEALTHY ones ------------------------------------------------------------

function drawHistory(history) {
  plot($("chart-main"), history, ["HEALTHY", "MARGIN_CALL"], 900, 180);
  plot($("chart-distress"), history, ["LIQUIDATION", "BANKRUPT"], 900, 110);
  const legend = $("chart-legend");
  const now = history.length ? history[history.length - 1][1] : {};
  legend.replaceChildren(...STATES.map(st => el("span", {}, el("i", { style: `background:${COLOURS[st]}` }), `${st} ${count(now[st])}`)));
  legend.append(el("span", { class: "muted" }, "(top: HEALTHY and MARGIN_CALL; below, on its own scale: LIQUIDATION and BANKRUPT)"));
  if (history.length) legend.append(el("span", { class: "muted" }, `${clock(history[0][0])} – ${clock(history[history.length - 1][0])} (wall clock, UTC)`));
}

function plot(node, history, states, width, height) {
  node.replaceChildren();
  const pad = 28;
  const top = Math.max(1, ...history.flatMap(([, c]) => states.map(st => c[st] || 0)));
  const t0 = history.length ? history[0][0] : 0;
  const span = history.length > 1 ? history[history.length - 1][0] - t0 : 1;
  const x = t => pad + ((t - t0) / span) * (width - pad - 4);
  const y = v => height - 14 - (v / top) * (height - 24);
  node.append(svg("line", { x1: pad, y1: y(0), x2: width, y2: y(0), stroke: "#d0d7de" }));
  const label = svg("text", { x: 2, y: 12, "font-size": 10, fill: "#6e7781" });
  label.textContent = String(top);
  node.append(label);
  for (const st of states) {
    if (!history.length) continue;
    const points = history.map(([t, c]) => `${x(t).toFixed(1)},${y(c[st] || 0).toFixed(1)}`);
    node.append(svg("polyline", { points: points.join(" "), fill: "none", stroke: COLOURS[st], "stroke-width": 2, "data-state": st }));
  }
}

// ----- the account view, rendered from whatever fields it has ---------------------------------

async function openAccount(account) {
  $("account-id").value = account;
  showAlert("account-error", "");
  const view = $("account-view");
  view.replaceChildren(el("p", { class: "muted" }, "loading…"));
  const { status, body } = await request("GET", `/accounts/${encodeURIComponent(account)}`);
  if (status !== 200) {
    view.replaceChildren();
    showAlert("account-error", `${account}: ${status} ${body && body.error ? body.error : ""}`);
    return;
  }
  view.replaceChildren(render(body));
  $("account-panel").scrollIntoView({ behavior: "smooth", block: "start" });
}

// Any JSON value as HTML: objects as key/value tables, lists of objects as tables.
function render(value) {
  if (value === null || value === undefined) return document.createTextNode("–");
  if (Array.isArray(value)) {
    if (!value.length) return document.createTextNode("none");
    if (value.every(v => v && typeof v === "object" && !Array.isArray(v))) return rowsTable(value);
    return document.createTextNode(value.map(v => (typeof v === "object" ? JSON.stringify(v) : num(v, 4))).join(", "));
  }
  if (typeof value === "object") {
    const entries = Object.entries(value);
    if (!entries.length) return document.createTextNode("none");
    return el("table", { class: "kv" }, el("tbody", {}, ...entries.map(([k, v]) =>
      el("tr", { "data-field": k }, el("th", {}, k), el("td", {}, k === "state" ? badge(v) : render(v))))));
  }
  if (typeof value === "number") return document.createTextNode(Number.isInteger(value) ? String(value) : num(value, 4));
  return document.createTextNode(String(value));
}

function rowsTable(rows) {
  const keys = [...new Set(rows.flatMap(r => Object.keys(r)))];
  return el("table", {}, el("thead", {}, el("tr", {}, ...keys.map(k => el("th", {}, k)))),
    el("tbody", {}, ...rows.map(r => el("tr", {}, ...keys.map(k => el("td", {}, render(r[k])))))));
}

// ----- what-if ---------------------------------------------------------------------------------

function addFill() {
  $("fills").append(el("div", { class: "fill" },
    el("input", { name: "instrument", placeholder: "instrument (BTC-PERPETUAL)", size: 24 }),
    el("input", { name: "qty", placeholder: "qty (signed)", size: 10 }),
    el("input", { name: "price", placeholder: "price", size: 10 })));
}

function whatIfBody(form) {
  const fills = [...$("fills").querySelectorAll(".fill")]
    .map(row => ({ instrument: row.querySelector("[name=instrument]").value.trim(), qty: Number(row.querySelector("[name=qty]").value), price: Number(row.querySelector("[name=price]").value) }))
    .filter(f => f.instrument);
  const transfers = [];
  if (form.asset.value.trim()) transfers.push({ asset: form.asset.value.trim(), amount: Number(form.amount.value) });
  const moves = {};
  if (form["move-und"].value.trim()) moves[form["move-und"].value.trim()] = Number(form["move-pct"].value) / 100;
  return { fills, transfers, moves };
}

async function whatIf(event) {
  event.preventDefault();
  const account = $("account-id").value.trim();
  showAlert("whatif-error", "");
  const out = $("whatif-result");
  out.replaceChildren();
  if (!account) { showAlert("whatif-error", "Choose an account first."); return; }
  let answer;
  try {
    answer = await request("POST", `/accounts/${encodeURIComponent(account)}/what-if`, whatIfBody(event.target));
  } catch (e) {
    showAlert("whatif-error", `No answer: ${e}`);
    return;
  }
  const { status, body } = answer;
  if (status !== 200 || !body) {
    const why = body && body.error ? body.error : "no what-if on this worker";
    showAlert("whatif-error", `What-if answered ${status}: ${why}`);
    return;
  }
  out.append(el("h3", {}, "change"), render(body.change), el("h3", {}, "after"), render(body.after), el("h3", {}, "before"), render(body.before));
}

// ----- start -----------------------------------------------------------------------------------

function start() {
  $("token").value = token();
  $("token-form").addEventListener("submit", e => { e.preventDefault(); sessionStorage.setItem(TOKEN_KEY, $("token").value); showAlert("alert", ""); });
  $("token-clear").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); $("token").value = ""; });
  $("account-form").addEventListener("submit", e => { e.preventDefault(); const id = $("account-id").value.trim(); if (id) openAccount(id); });
  $("add-fill").addEventListener("click", addFill);
  $("whatif-form").addEventListener("submit", whatIf);
  addFill();
  poll();
}

start();
