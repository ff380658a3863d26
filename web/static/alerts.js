// SLA 预警: the alerts from GET /api/alerts, kept live by the websocket's sla.alert /
// sla.cleared / sla.resync messages (the same connection code as the desk: live.js).

import { api, errorText, query, toast } from "./api.js";
import { duration, fill, h } from "./dom.js";
import { openLive, showConnState } from "./live.js";
import { $, dateTime, statusChip, urgencyChip } from "./ui.js";

const PAGE_SIZE = 50;
const LEVEL = { warning: ["预警", "clock-warn"], breach: ["超时", "clock-breach"] };
let page = 1;
let rows = [];
let total = 0;
// Alerts that arrived by websocket and are highlighted once.
const fresh = new Set();

function overdue(a) {
  const ref = a.cleared_at ? Date.parse(a.cleared_at) : Date.now();
  const s = Math.round((ref - Date.parse(a.deadline)) / 1000);
  return s >= 0 ? `超 ${duration(s)}` : `剩 ${duration(-s)}`;
}

function render() {
  fill($("alerts-body"), rows.map((a) => {
    const [label, cls] = LEVEL[a.level] || [a.level, ""];
    return h("tr", {
      class: `alert-row${fresh.has(a.id) ? " fresh" : ""}`, testid: "alert-row",
      dataset: { id: a.id, level: a.level, clock: a.clock, number: a.order_number, cleared: a.cleared_at ? "true" : "false" },
    },
    h("td", {}, h("span", { class: `chip ${cls}`, testid: "alert-level" }, label)),
    h("td", { class: "mono strong" }, h("a", { href: `/orders/${a.order_id}`, testid: "alert-order" }, a.order_number)),
    h("td", { testid: "alert-clock" }, a.label || a.clock),
    h("td", {}, urgencyChip(a.urgency, "alert-urgency")),
    h("td", {}, statusChip(a.status, "alert-status")),
    h("td", { class: "nowrap" }, dateTime(a.deadline)),
    h("td", { class: "nowrap", testid: "alert-overdue" }, overdue(a)),
    h("td", { class: "nowrap" }, dateTime(a.raised_at)),
    h("td", { class: "nowrap" }, a.cleared_at ? dateTime(a.cleared_at) : "—"));
  }));
  fresh.clear();
  $("alerts-empty").hidden = rows.length > 0;
  $("alert-count").textContent = `共 ${total} 条`;
  $("page-info").textContent = `第 ${page} 页`;
  $("prev").disabled = page <= 1;
  $("next").disabled = page * PAGE_SIZE >= total;
}

async function load(toPage = page) {
  let result;
  try {
    result = await api(`/api/alerts${query({ state: $("state-filter").value, page: toPage, page_size: PAGE_SIZE })}`);
  } catch {
    result = { ok: false, status: 0, data: null };
  }
  const { ok, status, data } = result;
  if (!ok) {
    $("load-error").textContent = `预警加载失败：${errorText(status, data)}`;
    $("load-error").hidden = false;
    return;
  }
  $("load-error").hidden = true;
  page = toPage;
  rows = data.items;
  total = data.total;
  render();
}

function onMessage(msg) {
  const a = msg.alert;
  if (msg.type === "sla.alert" && a) {
    // A moved alert comes again with the same id: replace it.
    const known = rows.findIndex((r) => r.id === a.id);
    if (known >= 0) rows.splice(known, 1);
    else total += 1;
    if (page === 1) rows.unshift({ cleared_at: null, ...a });
    fresh.add(a.id);
    render();
    toast(`${a.order_number} ${a.label}${a.level === "breach" ? "已超时" : "即将超时"}`, "warn");
  } else if (msg.type === "sla.cleared" && a) {
    const i = rows.findIndex((r) => r.id === a.id);
    if ($("state-filter").value === "open") {
      if (i >= 0) {
        rows.splice(i, 1);
        total -= 1;
      }
    } else if (i >= 0) {
      rows[i] = { ...rows[i], cleared_at: a.cleared_at };
    }
    render();
  } else if (msg.type === "sla.resync") {
    load(1);
  }
}

$("refresh").addEventListener("click", () => load());
$("state-filter").addEventListener("change", () => load(1));
$("prev").addEventListener("click", () => load(Math.max(1, page - 1)));
$("next").addEventListener("click", () => load(page + 1));

openLive({
  userId: document.body.dataset.userId,
  onState: showConnState,
  // Whatever happened while disconnected is in the list.
  onHello: () => load(),
  onResync: () => load(1),
  onMessage,
});
setInterval(render, 30_000); // the 超时 column moves on
