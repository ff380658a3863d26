// The agent desktop: screen-pops from the websocket, today's call list, quick customer creation.
//
// Websocket protocol (GET /ws?last_seq=N): a "hello" first (current seq, user, AMI state), then
// numbered call.* messages, or "resync" when the gap was too big to replay. We keep the last seq
// in sessionStorage so a reconnect (or a page reload) replays what was missed.

import { api, logout, reasonText, toast } from "./api.js";
import { duration, fill, h, makeFormat } from "./dom.js";
import { openLive } from "./live.js";
import { FINISHED, PopCard, outcomeText } from "./popcard.js";
import { bookCallback } from "./callbackbook.js";
import { loadAgentState, setUpAgentState, takeAgent } from "./agentstate.js";

const body = document.body;
const fmt = makeFormat(body.dataset.timezone || "Asia/Shanghai");
const HEALTH_EVERY_MS = 15_000;
// Cards kept on screen; the oldest finished ones go first.
const MAX_CARDS = 8;

const $ = (id) => document.getElementById(id);

// --------------------------------------------------------------------------------------------
// Connection state in the header

function setConn(el, state, label, title) {
  el.dataset.state = state;
  el.querySelector(".conn-label").textContent = label;
  el.title = title || "";
}

function showWsState(state) {
  const labels = { connecting: "连接中…", open: "已连接", reconnecting: "重连中…" };
  setConn($("ws-state"), state, labels[state] || state,
    state === "open" ? "实时弹屏连接正常" : "实时弹屏连接已断开，正在自动重连");
}

function showAmiState(ami) {
  if (ami === "connected") setConn($("ami-state"), "ok", "电话系统 正常", "已连接 Asterisk (AMI)");
  else if (ami === "remote") setConn($("ami-state"), "remote", "电话系统 正常", "由其他服务节点连接 Asterisk");
  else setConn($("ami-state"), "down", "电话系统 中断", `Asterisk (AMI) ${ami || "状态未知"}：来电弹屏暂不可用`);
}

// --------------------------------------------------------------------------------------------
// Today's calls

const calls = {
  timer: 0,
  running: false,
  // Asked again while a load was running: load once more when it finishes.
  dirty: false,
  // {id, ended}: a call we were just told about. Its record is written a moment after the
  // event (the recorder flushes every 0.2 s), so we look again until it is there (ended: with
  // its outcome), with growing delays, at most EXPECT_TRIES times.
  expect: null,
  attempt: 0,
};
const EXPECT_TRIES = 6;

function refreshCalls(expect = null) {
  if (expect) {
    calls.expect = expect;
    calls.attempt = 0;
  }
  if (calls.running) {
    calls.dirty = true;
    return;
  }
  clearTimeout(calls.timer);
  loadCalls();
}

async function loadCalls() {
  calls.running = true;
  calls.dirty = false;
  let rows = null;
  try {
    const { ok, status, data } = await api(`/api/calls?date=${fmt.today()}`);
    if (!ok) throw new Error(`HTTP ${status}`);
    rows = data.calls || [];
    renderCalls(rows);
    $("calls-error").hidden = true;
  } catch (err) {
    const box = $("calls-error");
    box.textContent = "通话记录加载失败，稍后自动重试";
    box.hidden = false;
  } finally {
    calls.running = false;
  }
  clearTimeout(calls.timer);
  if (calls.dirty) {
    loadCalls();
    return;
  }
  const e = calls.expect;
  if (e && rows && rows.some((c) => c.id === e.id && (!e.ended || c.outcome))) calls.expect = null;
  let delay;
  if (calls.expect && calls.attempt < EXPECT_TRIES) {
    delay = 300 * 2 ** calls.attempt;
    calls.attempt += 1;
  } else {
    calls.expect = null;
    // A failed load, or a call still going on that we will get no message about (it rang
    // here, then was answered elsewhere or abandoned in the queue): look again soon.
    delay = !rows || rows.some((c) => !c.outcome) ? 10_000 : 120_000;
  }
  calls.timer = setTimeout(loadCalls, delay);
}

function renderCalls(rows) {
  const tbody = $("calls-body");
  fill(tbody, rows.map((c) => {
    const outcome = c.outcome || "live";
    return h("tr", { testid: "call-row", dataset: { callId: c.id, outcome } },
      h("td", { class: "nowrap" }, fmt.time(c.started_at)),
      h("td", { class: "mono", testid: "call-caller" }, c.anonymous ? "匿名" : (c.caller || "—")),
      h("td", { testid: "call-customer" }, c.customer?.name || "—"),
      h("td", {}, c.queue || "—"),
      h("td", {}, h("span", { class: `chip o-${outcome}`, testid: "call-outcome" }, outcomeText(c.outcome, c.state))),
      h("td", { class: "num", testid: "call-talk" }, c.talk_s ? duration(c.talk_s) : "—"));
  }));
  $("calls-empty").hidden = rows.length > 0;
  const answered = rows.filter((c) => c.outcome === "answered").length;
  $("calls-count").textContent = rows.length ? `${rows.length} 通 · 已接 ${answered}` : "";
}

// --------------------------------------------------------------------------------------------
// Pop cards

const cards = new Map(); // call id → PopCard, in arrival order
const popsEl = $("pops");

const cardEnv = {
  fmt,
  onNewCustomer: (card) => openNewCustomer(card),
  onDismiss: (card) => removeCard(card),
  onToggle: (card) => card.setCollapsed(!card.collapsed),
  onBookCallback: (card) => bookCallback(card), // 预约回拨 (callcenter.outbound)
};

function updateEmpty() {
  $("pops-empty").hidden = cards.size > 0;
  $("clear-finished").hidden = ![...cards.values()].some((c) => c.finished);
}

function removeCard(card) {
  cards.delete(card.id);
  card.el.remove();
  updateEmpty();
}

function handleCallMessage(msg) {
  let card = cards.get(msg.call.id);
  if (!card) {
    card = new PopCard(msg, cardEnv);
    // Newest first; the older ones fold so the new caller is what the agent sees.
    for (const other of cards.values()) {
      if (!other.collapsed && other.state !== "answered") other.setCollapsed(true);
    }
    cards.set(card.id, card);
    popsEl.prepend(card.el);
    trimCards();
  } else {
    card.apply(msg);
    if (msg.type === "call.ringing") popsEl.prepend(card.el);
  }
  updateEmpty();
  if (msg.type === "call.ended" || msg.type === "call.abandoned") refreshCalls({ id: msg.call.id, ended: true });
  else if (msg.type === "call.missed") refreshCalls({ id: msg.call.id, ended: false });
  else if (msg.type === "call.ringing") refreshCalls();
}

function trimCards() {
  if (cards.size <= MAX_CARDS) return;
  for (const card of cards.values()) {
    if (cards.size <= MAX_CARDS) break;
    if (card.finished) removeCard(card);
  }
}

setInterval(() => {
  const now = Date.now();
  for (const card of cards.values()) card.tick(now);
}, 1000);

$("clear-finished").addEventListener("click", () => {
  for (const card of [...cards.values()]) if (FINISHED.has(card.state)) removeCard(card);
});

// --------------------------------------------------------------------------------------------
// New customer (the caller's number is masked on screen, so the agent asks for it)

const dialog = $("new-customer");
const ncForm = $("new-customer-form");
let ncCard = null;

function clearNcErrors() {
  for (const p of ncForm.querySelectorAll(".field-error")) p.textContent = "";
  for (const i of ncForm.querySelectorAll("input")) i.removeAttribute("aria-invalid");
  $("nc-error").hidden = true;
}

function showNcError(field, text) {
  const slot = field ? ncForm.querySelector(`[data-error-for="${CSS.escape(field)}"]`) : null;
  if (slot) {
    slot.textContent = text;
    const input = ncForm.querySelector(`[data-field="${CSS.escape(field)}"]`);
    input?.setAttribute("aria-invalid", "true");
    input?.focus();
  } else {
    const box = $("nc-error");
    box.textContent = text;
    box.hidden = false;
  }
}

function openNewCustomer(card) {
  ncCard = card;
  ncForm.reset();
  clearNcErrors();
  dialog.showModal();
  $("nc-name").focus();
}

$("nc-cancel").addEventListener("click", () => dialog.close());

ncForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearNcErrors();
  const v = (name) => ncForm.elements[name].value.trim();
  if (!v("name")) return showNcError("name", "必填");
  if (!v("phone")) return showNcError("phones[0]", "必填");
  const submit = $("nc-submit");
  submit.disabled = true;
  try {
    const { ok, status, data } = await api("/api/customers", {
      method: "POST",
      body: JSON.stringify({
        name: v("name"),
        phones: [v("phone")],
        address: { province: v("province"), city: v("city"), district: v("district"), detail: v("detail") },
      }),
    });
    if (ok) {
      ncForm.reset(); // the full number must not linger in the page
      dialog.close();
      if (ncCard && data) ncCard.customerCreated(data);
      toast("客户已创建", "ok");
      return;
    }
    const field = data?.details?.field;
    if (status === 409) {
      const who = data?.details?.customer_id ? `（客户编号 ${data.details.customer_id}）` : "";
      showNcError(field || "phones[0]", `该号码已属于其他客户${who}`);
    } else if (status === 422) {
      showNcError(field, reasonText(data?.details?.reason));
    } else if (status === 403) {
      showNcError(null, "无权限新建客户");
    } else {
      showNcError(null, `保存失败（服务器错误 ${status}），请稍后再试`);
    }
  } catch (err) {
    showNcError(null, "无法连接服务器，请稍后再试");
  } finally {
    submit.disabled = false;
  }
});

// --------------------------------------------------------------------------------------------
// Websocket

/** A refused upgrade looks like any other close: ask whether we are still logged in. */
async function checkSession() {
  try {
    await api("/api/me");
  } catch {
    // api() already went to the login page for a 401; a network error just means "retry later".
  }
}

function onHello(msg) {
  showAmiState(msg.ami);
  loadAgentState(); // the pause state may have changed while the socket was down
  // Calls that ended while we were away are in the list even if no message says so.
  refreshCalls();
}

function onResync() {
  refreshCalls();
  toast("部分来电消息已过期，已重新加载今日通话", "warn");
}

function onMessage(msg) {
  if (msg.type === "agent.state") takeAgent(msg.agent);
  if (typeof msg.type === "string" && msg.type.startsWith("call.") && msg.call?.id) handleCallMessage(msg);
}

// The AMI state only comes with "hello"; /health tells when it changes in between.
async function pollHealth() {
  try {
    const resp = await fetch("/health", { credentials: "same-origin", headers: { Accept: "application/json" } });
    const data = await resp.json();
    const ami = data?.ami;
    if (ami) showAmiState(ami.leader ? ami.state : "remote");
  } catch {
    // The websocket state already says the server is unreachable.
  }
}

// --------------------------------------------------------------------------------------------
// Start

$("logout").addEventListener("click", logout);
$("calls-refresh").addEventListener("click", () => refreshCalls());

updateEmpty();
setUpAgentState();
refreshCalls();
openLive({ userId: body.dataset.userId, onState: showWsState, onHello, onResync, onMessage,
  onRefused: checkSession });
setInterval(pollHealth, HEALTH_EVERY_MS);
