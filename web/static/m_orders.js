// 我的工单 (the engineer's phone): the orders assigned to them, open ones first. The API only
// returns an engineer's own orders.

import { api, errorText } from "./api.js";
import { fill, h } from "./dom.js";
import { $, dateTime, fmt, statusChip, urgencyChip } from "./ui.js";

const CLOSED = new Set(["已完成", "已回访", "已取消", "已取"]);

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

async function load() {
  const { ok, status, data } = await api("/api/orders?page_size=100");
  if (!ok) {
    const box = $("load-error");
    box.textContent = `无法加载工单：${errorText(status, data)}`;
    box.hidden = false;
    return;
  }
  $("load-error").hidden = true;
  const open = data.items.filter((o) => !CLOSED.has(o.status));
  const closed = data.items.filter((o) => CLOSED.has(o.status));
  $("open-count").textContent = `(${open.length})`;
  fill($("open-orders"), open.length ? open.map(card) : h("p", { class: "empty-note" }, "没有未完成的工单"));
  fill($("closed-orders"), closed.length ? closed.map(card) : h("p", { class: "empty-note" }, "—"));
}

$("refresh").addEventListener("click", load);
load();
