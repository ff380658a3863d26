// 派单台: GET /api/dispatch/board (undispatched, awaiting acceptance, at risk by SLA), kept live by
// the websocket's dispatch.changed / sla.alert / sla.cleared messages; the selected order's
// evaluation by the rules (GET /api/orders/{id}/dispatch/preview) with the widened search when
// nobody matches; manual dispatch and re-dispatch with a reason (POST /api/orders/{id}/dispatch);
// refusals per engineer (GET /api/dispatch/refusals).

import { api, errorText, query, toast } from "./api.js";
import { duration, fill, h } from "./dom.js";
import { candidatesTable, km, personText, tiersView } from "./dispatchview.js";
import { openLive, showConnState } from "./live.js";
import { $, askReason, dateTime, kv, statusChip, urgencyChip } from "./ui.js";

const PAGE_SIZE = 50;
const SECTIONS = ["undispatched", "awaiting", "at_risk"];
const LIVE_TYPES = new Set(["dispatch.changed", "sla.alert", "sla.cleared", "sla.resync"]);
const LEVEL = { warning: ["预警", "clock-warn"], breach: ["超时", "clock-breach"] };
// Statuses an order can be (re-)dispatched from.
const DISPATCHABLE = new Set(["待处理", "已派单", "已预约"]);
const mayDispatch = document.body.dataset.mayDispatch === "true";
const radius = document.body.dataset.radiusKm || "5";

const state = {
  board: null,
  pages: { undispatched: 1, awaiting: 1, at_risk: 1 },
  // The order whose evaluation is shown: {id, number, status}.
  selected: null,
  preview: null,
};
const tbody = (name) => document.querySelector(`[data-testid="${name.replace("_", "-")}-body"]`);
const empty = (name) => document.querySelector(`[data-testid="${name.replace("_", "-")}-empty"]`);

function since(iso) {
  return iso ? (Date.now() - Date.parse(iso)) / 1000 : null;
}

function numberLink(row) {
  return h("a", { href: `/orders/${row.order_id}`, class: "mono strong", testid: "board-order-number" }, row.number);
}

function selectButton(row, label) {
  if (!DISPATCHABLE.has(row.status)) return null;
  return h("button", {
    type: "button", class: "btn btn-small", testid: "select-order",
    onclick: () => select({ id: row.order_id, number: row.number, status: row.status }),
  }, label);
}

function rowAttrs(row, testid, extra = {}) {
  const selected = state.selected && state.selected.id === row.order_id;
  return { testid, class: selected ? "selected" : null, dataset: { orderId: row.order_id, number: row.number, ...extra } };
}

function undispatchedRow(r) {
  const d = r.last_decision;
  return h("tr", rowAttrs(r, "undispatched-row", { auto: r.auto ? "true" : "false" }),
    h("td", {}, numberLink(r)),
    h("td", {}, urgencyChip(r.urgency)),
    h("td", {}, r.category || "—"),
    h("td", { testid: "board-address" }, r.address || "—"),
    h("td", { class: "nowrap", testid: "board-waiting" }, duration(since(r.created_at))),
    h("td", { class: "nowrap" },
      h("span", { class: `chip ${r.auto ? "status" : "clock-warn"}`, testid: "board-queue" }, r.auto ? "自动派单中" : "待人工派单"),
      r.refusals ? h("div", { class: "muted small", testid: "board-refusals" },
        `被拒 ${r.refusals} 次`, r.last_refusal ? `（${r.last_refusal.timed_out ? "超时未接" : r.last_refusal.reason}）` : "") : null),
    h("td", { class: "summary", testid: "board-summary" }, d ? d.summary : "尚未派单"),
    h("td", {}, selectButton(r, "评估派单")));
}

function awaitingRow(r) {
  const left = r.seconds_left;
  return h("tr", rowAttrs(r, "awaiting-row"),
    h("td", {}, numberLink(r)),
    h("td", {}, urgencyChip(r.urgency)),
    h("td", { testid: "awaiting-engineer" }, r.engineer ? personText(r.engineer) : (r.shop_name ? `合作网点 ${r.shop_name}` : "—")),
    h("td", { class: "nowrap" }, dateTime(r.dispatched_at)),
    h("td", { class: "nowrap" }, dateTime(r.accept_due_at)),
    h("td", { class: `nowrap${left !== null && left < 0 ? " overdue" : ""}`, testid: "awaiting-left" },
      left === null ? "—" : remaining(r.accept_due_at)),
    h("td", {}, selectButton(r, "改派")));
}

function remaining(iso) {
  const s = (Date.parse(iso) - Date.now()) / 1000;
  return s >= 0 ? `剩 ${duration(s)}` : `超时 ${duration(-s)}`;
}

function atRiskRow(r) {
  const [label, cls] = LEVEL[r.level] || [r.level, ""];
  return h("tr", rowAttrs(r, "at-risk-row", { level: r.level, clock: r.clock }),
    h("td", {}, h("span", { class: `chip ${cls}` }, label)),
    h("td", {}, numberLink(r)),
    h("td", {}, urgencyChip(r.urgency)),
    h("td", {}, statusChip(r.status)),
    h("td", {}, r.label),
    h("td", { class: "nowrap" }, dateTime(r.deadline)),
    h("td", { class: "nowrap" }, remaining(r.deadline).replace("剩", "还剩")),
    h("td", {}, r.engineer ? personText(r.engineer) : "—", " ", selectButton(r, "评估")));
}

const ROW = { undispatched: undispatchedRow, awaiting: awaitingRow, at_risk: atRiskRow };

function pager(name, section) {
  const el = document.querySelector(`[data-pager="${name}"]`);
  const pages = Math.max(1, Math.ceil(section.total / section.page_size));
  if (pages <= 1) return fill(el);
  const go = (p) => {
    state.pages[name] = p;
    load();
  };
  return fill(el,
    h("button", { type: "button", class: "btn btn-small", disabled: section.page <= 1, onclick: () => go(section.page - 1) }, "上一页"),
    h("span", {}, `第 ${section.page} / ${pages} 页`),
    h("button", { type: "button", class: "btn btn-small", disabled: section.page >= pages, onclick: () => go(section.page + 1) }, "下一页"));
}

function render() {
  const b = state.board;
  if (!b) return;
  const c = b.counts;
  $("board-counts").textContent = `待派 ${c.undispatched} · 待接单 ${c.awaiting} · SLA 风险 ${c.at_risk}`;
  document.querySelector('[data-testid="count-undispatched"]').textContent =
    `${c.undispatched} 单（自动派单中 ${c.auto_pending}，待人工 ${c.queued}）`;
  document.querySelector('[data-testid="count-awaiting"]').textContent =
    `${c.awaiting} 单${c.awaiting_overdue ? `（超时 ${c.awaiting_overdue}）` : ""}`;
  document.querySelector('[data-testid="count-at-risk"]').textContent = `${c.at_risk} 项（已超时 ${c.breached}）`;
  for (const name of SECTIONS) {
    const section = b[name];
    if (!section) continue;
    fill(tbody(name), section.items.map(ROW[name]));
    empty(name).hidden = section.items.length > 0;
    pager(name, section);
  }
}

async function get(path) {
  try {
    return await api(path);
  } catch {
    return { ok: false, status: 0, data: null };
  }
}

function showError(text) {
  $("load-error").textContent = text;
  $("load-error").hidden = !text;
}

async function load() {
  const urgency = $("urgency-filter").value;
  const { ok, status, data } = await get(`/api/dispatch/board${query({ urgency, page_size: PAGE_SIZE })}`);
  if (!ok) {
    showError(`派单台加载失败：${errorText(status, data)}`);
    return;
  }
  // Sections paged beyond the first: their own page.
  for (const name of SECTIONS.filter((n) => state.pages[n] > 1)) {
    const more = await get(`/api/dispatch/board${query({ urgency, section: name, page: state.pages[name], page_size: PAGE_SIZE })}`);
    if (more.ok && more.data[name].items.length) data[name] = more.data[name];
    else state.pages[name] = 1;
  }
  showError("");
  state.board = data;
  const sel = state.selected;
  if (sel && !sel.number) {
    const row = SECTIONS.flatMap((n) => data[n]?.items || []).find((r) => r.order_id === sel.id);
    if (row) {
      sel.number = row.number;
      fill($("detail-title"), "派单评估 ", h("span", { class: "mono", testid: "detail-number" }, row.number));
    }
  }
  render();
}

// ---- the selected order -----------------------------------------------------------------------

async function select(order) {
  state.selected = order;
  const u = new URL(location.href);
  u.searchParams.set("order", order.id);
  history.replaceState(null, "", u);
  render();
  await loadPreview();
}

async function loadPreview() {
  const order = state.selected;
  if (!order) return;
  fill($("detail-title"), "派单评估 ", h("span", { class: "mono", testid: "detail-number" }, order.number || `#${order.id}`));
  const { ok, status, data } = await get(`/api/orders/${order.id}/dispatch/preview`);
  if (state.selected !== order) return; // another order was chosen meanwhile
  if (!ok) {
    fill($("detail-body"), h("p", { class: "form-error", testid: "detail-error" }, errorText(status, data)));
    return;
  }
  state.preview = data;
  order.status = data.status;
  renderPreview();
}

function renderPreview() {
  const p = state.preview;
  const order = state.selected;
  const ev = p.evaluation;
  const redispatch = p.status !== "待处理";
  const onPick = mayDispatch && DISPATCHABLE.has(p.status) ? (target) => dispatchTo(order, target, redispatch) : null;
  const winner = ev.winner;
  fill($("detail-body"),
    kv([
      ["状态", statusChip(p.status, "detail-status")],
      ["品类", p.category || "—", "detail-category"],
      ["所需证书", p.required_certificate || "无"],
      ["预约时段", p.window ? `${dateTime(p.window[0])} – ${dateTime(p.window[1])}` : "未指定（按当前是否在岗）"],
      ["派单半径", `${ev.radius_km ?? radius} 公里`],
    ]),
    ev.blocked?.length ? h("p", { class: "form-error", testid: "detail-blocked" },
      "无法自动匹配：", ev.blocked.map((b) => b.reason).join("，")) : null,
    h("p", { class: "strong", testid: "detail-verdict" }, winner
      ? `规则推荐：${personText(p.people[winner.engineer_id], winner.engineer_id)}（${km(winner.distance_km)}，总分 ${Number(winner.score.total).toFixed(3)}）`
      : `${ev.radius_km ?? radius} 公里内没有符合条件的工程师`),
    mayDispatch && p.status === "待处理" && !p.widened?.length ? h("div", { class: "form-actions" },
      h("button", { type: "button", class: "btn", testid: "auto-dispatch", onclick: () => autoDispatch(order) }, "按规则自动派单")) : null,
    h("h3", {}, `${ev.radius_km ?? radius} 公里范围内的工程师`),
    candidatesTable(ev.candidates, p.people, { onPick }),
    p.widened ? h("div", {}, h("h3", {}, "扩大范围的建议"), tiersView(p.widened, p.people, { onPick })) : null);
}

async function dispatchTo(order, target, redispatch) {
  const verb = redispatch ? "改派" : "派单";
  const { label, ...ids } = target;
  const data = await askReason(`${verb}给 ${label}`, `${order.number || ""} ${verb}须填写原因，将记录在派单记录中。`,
    (reason) => api(`/api/orders/${order.id}/dispatch`, { method: "POST", json: { ...ids, reason } }));
  if (!data) return;
  toast(`${order.number || "工单"} 已${verb}给 ${label}`, "ok");
  await Promise.all([load(), loadPreview()]);
}

async function autoDispatch(order) {
  let result;
  try {
    result = await api(`/api/orders/${order.id}/dispatch/auto`, { method: "POST" });
  } catch {
    result = { ok: false, status: 0, data: null };
  }
  const { ok, status, data } = result;
  if (!ok) toast(errorText(status, data), "warn");
  else if (data.engineer_id) toast(`${order.number} 已按规则派单`, "ok");
  else toast(`${order.number} 无人符合条件，仍在待派队列`, "warn");
  await Promise.all([load(), loadPreview()]);
}

// ---- refusals ---------------------------------------------------------------------------------

async function loadRefusals() {
  const { ok, status, data } = await get(`/api/dispatch/refusals${query({ days: $("refusal-days").value })}`);
  if (!ok) {
    fill($("refusals"), h("p", { class: "form-error" }, errorText(status, data)));
    return;
  }
  fill($("refusals"), data.engineers.length
    ? h("table", { class: "grid", testid: "refusal-table" },
      h("thead", {}, h("tr", {}, ["工程师", "拒单", "超时", "技能不符", "时间冲突", "其他", "最近"].map((t) => h("th", {}, t)))),
      h("tbody", {}, data.engineers.map((e) => h("tr", { testid: "refusal-row", dataset: { engineerId: e.engineer_id } },
        h("td", {}, personText(e)),
        h("td", { class: "num" }, e.refused),
        h("td", { class: "num" }, e.timed_out),
        h("td", { class: "num" }, e.reasons["技能不符"] ?? 0),
        h("td", { class: "num" }, e.reasons["时间冲突"] ?? 0),
        h("td", { class: "num" }, e.reasons["其他"] ?? 0),
        h("td", { class: "nowrap" }, dateTime(e.last_at))))))
    : h("p", { class: "empty-note" }, "此期间没有拒单"));
}

// ---- live -------------------------------------------------------------------------------------

let reloadTimer = 0;
function scheduleReload(withPreview) {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => {
    load();
    if (withPreview) loadPreview();
  }, 250);
}

function onMessage(msg) {
  if (!LIVE_TYPES.has(msg.type)) return;
  const mine = msg.type === "dispatch.changed" && state.selected && msg.order_id === state.selected.id;
  scheduleReload(mine);
  if (msg.type === "dispatch.changed") loadRefusals();
}

$("refresh").addEventListener("click", () => {
  load();
  loadRefusals();
  loadPreview();
});
$("urgency-filter").addEventListener("change", () => {
  for (const n of SECTIONS) state.pages[n] = 1;
  load();
});
$("refusal-days").addEventListener("change", loadRefusals);

const wanted = Number(new URL(location.href).searchParams.get("order"));
if (Number.isInteger(wanted) && wanted > 0) select({ id: wanted, number: "", status: "" });
loadRefusals();
openLive({
  userId: document.body.dataset.userId,
  onState: showConnState,
  onHello: () => load(),
  onResync: () => load(),
  onMessage,
});
setInterval(render, 30_000); // waiting times and minutes left move on
