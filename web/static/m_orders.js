// 我的工单 (the engineer's phone): the orders assigned to them. New ones (已派单, not accepted yet)
// come first with the 15-minute countdown, 接单 and 拒单; an order dispatched to them arrives
// live (websocket "order.assigned"), one taken away ("order.withdrawn") leaves. Accepting opens
// the order to offer the customer visit slots. The API only returns an engineer's own orders.

import { api, errorText, toast } from "./api.js";
import { fill, h } from "./dom.js";
import { openLive, showConnState } from "./live.js";
import { acceptOrder, countdown, refuseForm, tickCountdowns } from "./m_dispatch.js";
import { $, dateTime, fmt, statusChip, urgencyChip } from "./ui.js";

const CLOSED = new Set(["已完成", "已回访", "已取消", "已取"]);
// Orders that arrived by websocket, highlighted once.
const fresh = new Set();
// Cards whose refuse form is open (kept open across a reload).
const refusing = new Set();
let generation = 0;

function card(o) {
  return h("a", { class: "order-card", href: `/m/orders/${o.id}`, testid: "m-order-card", dataset: { number: o.number, id: o.id } },
    h("div", { class: "top" },
      h("span", { class: "mono strong" }, o.number),
      h("span", {}, statusChip(o.status, "m-order-status"), " ", urgencyChip(o.urgency, "m-order-urgency"))),
    h("div", {}, o.service_type, " · ", o.product_model || "—", " · ", o.customer?.name || "—"),
    h("div", { class: "muted small" }, o.address || "—"),
    h("div", { class: "muted small" }, o.appointment_start ? `预约 ${dateTime(o.appointment_start)} 起` : `创建 ${fmt.dayTime(o.created_at)}`),
    o.problem ? h("div", { class: "small" }, o.problem) : null);
}

/** A new order: its card, the countdown, 接单 / 拒单. ``o`` is a list item, ``order`` its detail. */
function newCard(o, order) {
  const slot = h("div", {});
  const box = h("div", {
    class: `m-new-order${fresh.has(o.id) ? " fresh" : ""}`, testid: "m-new-order", dataset: { id: o.id, number: o.number },
  },
  card(o),
  countdown(order.accept_due_at),
  h("div", { class: "m-row" },
    h("button", { type: "button", class: "btn btn-danger-outline m-btn", testid: "m-refuse", onclick: () => toggleRefuse() }, "拒单"),
    h("button", { type: "button", class: "btn btn-primary m-btn", testid: "m-accept", onclick: accept }, "接单")),
  slot);

  function toggleRefuse(open = !refusing.has(o.id)) {
    if (open) refusing.add(o.id);
    else refusing.delete(o.id);
    fill(slot, open ? refuseForm(order, {
      onDone: () => {
        refusing.delete(o.id);
        load();
      },
      onCancel: () => toggleRefuse(false),
    }) : null);
  }

  async function accept(event) {
    event.currentTarget.disabled = true;
    let result;
    try {
      result = await acceptOrder(order);
    } catch {
      result = { ok: false, status: 0, data: null };
    }
    if (!result.ok) {
      toast(`接单失败：${errorText(result.status, result.data)}`, "warn");
      await load();
      return;
    }
    toast("已接单，请联系客户预约上门时段", "ok");
    window.location.assign(`/m/orders/${o.id}#slots`);
  }

  if (refusing.has(o.id)) toggleRefuse(true);
  return box;
}

async function load() {
  const mine = ++generation;
  let result;
  try {
    result = await api("/api/orders?page_size=100");
  } catch {
    result = { ok: false, status: 0, data: null };
  }
  if (mine !== generation) return;
  const { ok, status, data } = result;
  if (!ok) {
    const box = $("load-error");
    box.textContent = `无法加载工单：${errorText(status, data)}`;
    box.hidden = false;
    return;
  }
  // The list has no acceptance deadline: ask each dispatched order (a handful: the load cap).
  const dispatched = data.items.filter((o) => o.status === "已派单");
  const details = await Promise.all(dispatched.map((o) => api(`/api/orders/${o.id}`).catch(() => ({ ok: false }))));
  if (mine !== generation) return;
  const waiting = new Map();
  dispatched.forEach((o, i) => {
    const d = details[i];
    if (d.ok && !d.data.order.milestones?.accepted_at) waiting.set(o.id, d.data.order);
  });
  $("load-error").hidden = true;
  const news = data.items.filter((o) => waiting.has(o.id));
  const open = data.items.filter((o) => !CLOSED.has(o.status) && !waiting.has(o.id));
  const closed = data.items.filter((o) => CLOSED.has(o.status));
  for (const id of [...refusing]) if (!waiting.has(id)) refusing.delete(id);
  $("new-section").hidden = news.length === 0;
  $("new-count").textContent = String(news.length);
  fill($("new-orders"), news.map((o) => newCard(o, waiting.get(o.id))));
  fresh.clear();
  $("open-count").textContent = `(${open.length})`;
  fill($("open-orders"), open.length ? open.map(card) : h("p", { class: "empty-note" }, "没有未完成的工单"));
  fill($("closed-orders"), closed.length ? closed.map(card) : h("p", { class: "empty-note" }, "—"));
}

function onMessage(msg) {
  if (msg.type === "order.assigned" && msg.order) {
    fresh.add(msg.order.id);
    toast(`新工单 ${msg.order.number || ""}，请在 15 分钟内接单`, "warn");
    navigator.vibrate?.(300);
    load();
  } else if (msg.type === "order.withdrawn" || msg.type === "order.changed") {
    load();
  }
}

$("refresh").addEventListener("click", load);
tickCountdowns();
load();
openLive({
  userId: document.body.dataset.userId,
  onState: showConnState,
  // Whatever was dispatched while disconnected is in the list.
  onHello: () => load(),
  onResync: () => load(),
  onMessage,
});
