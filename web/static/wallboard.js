// 监控看板: GET /api/wallboard for what is known now (the day so far, from the call records
// and the live state), then every snapshot from /ws/wallboard as it is published. Times come as
// epoch milliseconds of the server; time in state and the longest wait are counted here every
// second against the server's clock (offset measured on each snapshot), so a tile turns red
// when a caller passes the threshold even between two snapshots.

import { api } from "./api.js";
import { duration, fill, h } from "./dom.js";
import { $, fmt } from "./ui.js";

const STATE = {
  talking: ["通话中", "st-talking"],
  ringing: ["振铃", "st-ringing"],
  paused: ["暂停", "st-paused"],
  unavailable: ["离线", "st-off"],
  available: ["空闲", "st-free"],
};
const URGENCY_ORDER = ["特急", "紧急", "普通"];
const BACKOFF = [1, 2, 4, 8, 10];

let live = null;
let offset = 0; // server ms − browser ms
const serverNow = () => Date.now() + offset;
const pct = (v) => (v === null || v === undefined ? "—" : `${v.toFixed(1)}%`);
const secs = (v) => (v === null || v === undefined ? "—" : `${v.toFixed(1)}秒`);

function setConn(el, state, label) {
  el.dataset.state = state;
  el.querySelector(".conn-label").textContent = label;
}

// --------------------------------------------------------------------------------------------
// Queues

function waitOf(q) {
  return q.longest_wait_since_ms ? Math.max(0, Math.floor((serverNow() - q.longest_wait_since_ms) / 1000)) : 0;
}

function breachesOf(q) {
  const t = live.thresholds;
  const out = [];
  if (waitOf(q) > t.max_wait_s) out.push("longest_wait");
  const sl = q.figures.service_level;
  if (sl !== null && sl !== undefined && sl < t.min_service_level) out.push("service_level");
  return out;
}

function metric(label, value, testid, extra = {}) {
  return h("div", { class: `wb-metric ${extra.cls || ""}`, testid, dataset: extra.dataset },
    h("span", { class: "wb-label" }, label), h("span", { class: "wb-value" }, value));
}

function queueTile(q) {
  const b = breachesOf(q);
  const a = q.agents;
  const d = q.day;
  return h("article", {
    class: `wb-tile${b.length ? " breach" : ""}`, testid: "queue-tile",
    dataset: { queue: q.name, breach: b.length ? "true" : "false", breaches: b.join(" ") },
  },
  h("header", { class: "wb-tile-head" }, h("strong", {}, q.name),
    h("span", { class: "muted small" }, `服务水平阈值 ${q.service_level_s} 秒`)),
  h("div", { class: "wb-row big" },
    metric("排队", q.waiting, "q-waiting"),
    metric("最长等待", duration(waitOf(q)), "q-longest-wait", { cls: b.includes("longest_wait") ? "bad" : "" }),
    metric("服务水平", pct(q.figures.service_level), "q-sl", { cls: b.includes("service_level") ? "bad" : "" })),
  h("div", { class: "wb-row" },
    metric("登录", a.logged_in, "q-logged-in"), metric("空闲", a.available, "q-available"),
    metric("振铃", a.ringing, "q-ringing"), metric("通话", a.talking, "q-talking"),
    metric("暂停", a.paused, "q-paused")),
  h("div", { class: "wb-row" },
    metric("呼入", d.offered, "q-offered"), metric("接通", d.answered, "q-answered"),
    metric("放弃", d.abandoned, "q-abandoned"), metric("放弃率", pct(q.figures.abandon_rate), "q-abandon-rate")),
  h("div", { class: "wb-row" },
    metric("ASA", secs(q.figures.asa), "q-asa"), metric("AHT", secs(q.figures.aht), "q-aht")),
  q.paused.length ? h("ul", { class: "wb-paused", testid: "q-paused-list" }, q.paused.map((p) =>
    h("li", { testid: "q-paused-agent" }, `${p.name} · ${p.reason || "暂停"} · `,
      h("span", { class: "tick", dataset: { since: p.since_ms } }, duration((serverNow() - p.since_ms) / 1000))))) : null);
}

// --------------------------------------------------------------------------------------------
// Agents

function agentRow(a) {
  const [label, cls] = STATE[a.state] || [a.state, ""];
  return h("tr", { testid: "agent-row", dataset: { member: a.member, state: a.state } },
    h("td", {}, a.name),
    h("td", { class: "mono" }, a.member),
    h("td", {}, h("span", { class: `chip ${cls}`, testid: "agent-state" }, label)),
    h("td", { testid: "agent-reason" }, a.reason || ""),
    h("td", { class: "num tick", dataset: { since: a.since_ms } }, duration((serverNow() - a.since_ms) / 1000)),
    h("td", { class: "num", testid: "agent-calls" }, a.calls_today),
    h("td", { class: "num", testid: "agent-talk" }, duration(a.talk_s)),
    h("td", { class: "small" }, a.queues.map((m) => m.queue + (m.paused ? "(暂停)" : "")).join("、")));
}

// --------------------------------------------------------------------------------------------

function renderAlerts() {
  const box = $("wb-alerts");
  const items = [];
  for (const q of live.queues) {
    for (const m of breachesOf(q)) {
      items.push(m === "longest_wait"
        ? `${q.name}：最长等待 ${duration(waitOf(q))}，超过 ${live.thresholds.max_wait_s} 秒`
        : `${q.name}：服务水平 ${pct(q.figures.service_level)}，低于 ${live.thresholds.min_service_level}%`);
    }
  }
  const r = live.restart;
  if (r) {
    // The service put back the agents a restarted Asterisk had forgotten.
    let text = `电话系统 ${fmt.time(new Date(r.at_ms).toISOString())} 重启：已恢复 ${r.restored.length} 名坐席`;
    if (r.restored.length) text += `（${r.restored.join("、")}）`;
    text += `，失败 ${r.failed.length} 名`;
    if (r.failed.length) text += `（${r.failed.join("、")}）`;
    items.push(text);
  }
  box.hidden = items.length === 0;
  fill(box, items.map((t) => h("div", { testid: "wb-alert" }, t)));
}

function renderLive() {
  if (!live) return;
  fill($("wb-queues"), live.queues.map(queueTile));
  $("wb-queues-empty").hidden = live.queues.length > 0;
  fill($("wb-agents-body"), live.agents.map(agentRow));
  $("wb-agent-count").textContent = `${live.agents.length} 人`;
  $("wb-thresholds").textContent =
    `红色：最长等待 > ${live.thresholds.max_wait_s} 秒 或 服务水平 < ${live.thresholds.min_service_level}%`;
  $("wb-updated").textContent = `更新于 ${fmt.time(new Date(live.at_ms).toISOString())}`;
  const ami = live.ami === "connected";
  setConn($("ami-state"), ami ? "ok" : "down", ami ? "电话系统 正常" : "电话系统 中断");
  renderAlerts();
}

function renderWork(w) {
  const rows = [...w.by_urgency].sort((a, b) => URGENCY_ORDER.indexOf(a.urgency) - URGENCY_ORDER.indexOf(b.urgency));
  fill($("wb-urgency-body"), rows.map((r) => h("tr", { testid: "urgency-row", dataset: { urgency: r.urgency } },
    h("td", {}, r.urgency),
    h("td", { class: `num${r.overdue ? " bad" : ""}`, testid: "urgency-overdue" }, r.overdue),
    h("td", { class: "num", testid: "urgency-at-risk" }, r.at_risk))));
  $("wb-backlog").textContent = w.backlog;
  $("wb-completed").textContent = w.completed_today;
  $("wb-complaints").textContent = w.complaints;
}

// The leader republishes at least every 5 s: a longer silence means nobody follows Asterisk.
const STALE_MS = 15_000;
let received = 0;

function takeLive(snap) {
  received = Date.now();
  offset = snap.at_ms - Date.now();
  live = snap;
  renderLive();
}

// Every second: the counters that run with the clock, and the tiles' red state.
function tick() {
  if (!live) return;
  if (Date.now() - received > STALE_MS) setConn($("ami-state"), "down", "数据已停止更新");
  for (const el of document.querySelectorAll(".tick[data-since]")) {
    el.textContent = duration((serverNow() - Number(el.dataset.since)) / 1000);
  }
  for (const tile of document.querySelectorAll('[data-testid="queue-tile"]')) {
    const q = live.queues.find((x) => x.name === tile.dataset.queue);
    if (!q) continue;
    const b = breachesOf(q);
    const was = tile.dataset.breaches;
    tile.querySelector('[data-testid="q-longest-wait"] .wb-value').textContent = duration(waitOf(q));
    if (was !== b.join(" ")) renderLive();
  }
}

// --------------------------------------------------------------------------------------------

function openSocket() {
  let attempt = 0;
  let socket = null;
  setInterval(() => socket?.readyState === WebSocket.OPEN && socket.send('{"type":"ping"}'), 20_000);
  const connect = () => {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(`${proto}//${location.host}/ws/wallboard`);
    socket.addEventListener("open", () => {
      attempt = 0;
      setConn($("ws-state"), "open", "已连接");
    });
    socket.addEventListener("message", (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg.type === "wallboard.live") takeLive(msg);
      else if (msg.type === "wallboard.work") renderWork(msg);
    });
    socket.addEventListener("close", () => {
      setConn($("ws-state"), "reconnecting", "重连中…");
      const delay = BACKOFF[Math.min(attempt, BACKOFF.length - 1)] * 1000;
      attempt += 1;
      setTimeout(async () => {
        try {
          await api("/api/me"); // a lost session goes to the login page
        } catch {
          // offline: try again
        }
        connect();
      }, delay);
    });
  };
  connect();
}

// --------------------------------------------------------------------------------------------
// 话务历史: one day per queue and hour (GET /api/wallboard/history), a bar chart and tables.

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

function chart(hours) {
  // Sum the queues shown per hour; SL over the summed counts.
  const per = Array.from({ length: 24 }, () => ({ offered: 0, answered: 0, abandoned: 0, completed: 0, in_sl: 0 }));
  for (const r of hours) {
    const p = per[r.hour];
    p.offered += r.offered; p.answered += r.answered; p.abandoned += r.abandoned;
    p.completed += r.completed; p.in_sl += r.completed_in_sl;
  }
  const W = 960, H = 180, top = 10, bottom = 20, slot = W / 24;
  const max = Math.max(1, ...per.map((p) => p.offered));
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const ySl = (v) => top + (H - top - bottom) * (1 - v / 100);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "每小时呼入、接通、放弃与服务水平", "data-testid": "hist-svg" });
  const points = [];
  per.forEach((p, i) => {
    const x = i * slot;
    const bar = (v, dx, cls) => svg("rect", { x: x + dx, y: y(v), width: slot / 4, height: Math.max(0, H - bottom - y(v)), class: cls });
    if (p.offered) {
      root.append(bar(p.offered, slot * 0.12, "bar-offered"), bar(p.answered, slot * 0.38, "bar-answered"),
        bar(p.abandoned, slot * 0.64, "bar-abandoned"));
    }
    if (p.completed) points.push(`${x + slot / 2},${ySl((100 * p.in_sl) / p.completed)}`);
    if (i % 3 === 0) root.append(svg("text", { x: x + 2, y: H - 6, class: "axis" }, `${i}时`));
  });
  if (points.length) root.append(svg("polyline", { points: points.join(" "), class: "sl-line" }));
  fill($("hist-chart"), root);
}

async function loadHistory() {
  const date = $("hist-date").value;
  const queue = $("hist-queue").value;
  const q = new URLSearchParams({ ...(date ? { date } : {}), ...(queue ? { queue } : {}) });
  const { ok, data } = await api(`/api/wallboard/history?${q}`);
  if (!ok) return;
  chart(data.hours);
  fill($("hist-body"), data.hours.map((r) => h("tr", { testid: "hist-row", dataset: { queue: r.queue, hour: r.hour } },
    h("td", {}, r.queue), h("td", {}, `${String(r.hour).padStart(2, "0")}:00–${String(r.hour + 1).padStart(2, "0")}:00`),
    h("td", { class: "num" }, r.offered), h("td", { class: "num" }, r.answered), h("td", { class: "num" }, r.abandoned),
    h("td", { class: "num" }, pct(r.service_level)), h("td", { class: "num" }, secs(r.asa)),
    h("td", { class: "num" }, secs(r.aht)), h("td", { class: "num" }, pct(r.abandon_rate)))));
  fill($("hist-agents-body"), data.agents.map((a) => h("tr", { testid: "hist-agent" },
    h("td", {}, a.name), h("td", { class: "mono" }, a.member), h("td", { class: "num" }, a.answered),
    h("td", { class: "num" }, duration(a.talk_s)), h("td", { class: "num" }, secs(a.aht)))));
  $("hist-empty").hidden = data.hours.length > 0;
}

function setUpHistory() {
  $("hist-date").value = fmt.today();
  $("hist-date").addEventListener("change", loadHistory);
  $("hist-queue").addEventListener("change", loadHistory);
  loadHistory();
  // Today's hours fill as calls end: read again every minute while today is shown.
  setInterval(() => $("hist-date").value === fmt.today() && loadHistory(), 60_000);
}

function fillQueueChoices() {
  const sel = $("hist-queue");
  const have = new Set([...sel.options].map((o) => o.value));
  for (const q of live?.queues || []) if (!have.has(q.name)) sel.append(h("option", { value: q.name }, q.name));
}

async function load() {
  const { ok, data } = await api("/api/wallboard");
  if (!ok) return;
  if (data.live) takeLive(data.live);
  renderWork(data.work);
  fillQueueChoices();
}

load();
setUpHistory();
openSocket();
setInterval(tick, 1000);
