// 工单详情 for the desk roles: every SA-WO-002 field, SLA clocks, allowed transitions, the
// dispatcher's engineer picker, appointments, on-site records, the dispatch record (派单记录)
// and the timeline.

import { api, errorText } from "./api.js";
import { fill, h } from "./dom.js";
import { decisionsView } from "./dispatchview.js";
import { appointmentForm, orderActions } from "./orderactions.js";
import {
  appointmentRows, fetchOrder, onsiteDetails, onsiteSummary, renderOrderHead, slaPanel, timelinePanel,
} from "./orderview.js";
import { $ } from "./ui.js";

const body = document.body;
const orderId = body.dataset.orderId;
const mayAssign = body.dataset.mayAssign === "true";
// Roles that book visits from the desk (the engineer does it from the phone view).
const BOOKS = new Set(["agent", "dispatcher", "supervisor", "admin"]);
let detail = null;

const actions = orderActions({ detail: () => detail, reload: load, errorBox: $("action-error") });

async function load() {
  const data = await fetchOrder(orderId);
  if (!data) return;
  detail = data;
  render();
  if (mayAssign) loadDispatchRecord();
}

/** 派单记录: every dispatch decision (auto or manual, why, the winner's score, the candidates)
 * and the refusals (GET /api/orders/{id}/dispatch/decisions). */
async function loadDispatchRecord() {
  const { ok, status, data } = await api(`/api/orders/${orderId}/dispatch/decisions`);
  fill($("dispatch-record"), ok ? decisionsView(data) : h("p", { class: "form-error" }, errorText(status, data)));
}

function render() {
  const d = detail;
  const o = d.order;
  renderOrderHead(d);
  fill($("actions"), actions.transitionButtons(d.allowed, { skip: ["已派单"] }),
    d.allowed.length ? null : h("span", { class: "muted", testid: "no-actions" }, "当前状态无可执行的操作"));
  if (mayAssign) $("assign-form").hidden = !["待处理", "已派单", "待修"].includes(o.status);
  fill($("col-right"), slaPanel(d));
  fill($("appointments"), appointmentRows(d, BOOKS.has(body.dataset.role) ? actions.confirmAppointment : null));
  const open = !["已完成", "已回访", "已取消", "已取"].includes(o.status);
  fill($("appointment-form-slot"), open && BOOKS.has(body.dataset.role) && o.engineer_id
    ? appointmentForm((form) => actions.createAppointment(form), { content: o.problem.slice(0, 200) })
    : null);
  fill($("onsite"), onsiteSummary(d), d.onsite.map((r) => h("details", { testid: "onsite-details", dataset: { id: r.id } },
    h("summary", {}, `查看 ${r.number} 详情`),
    h("div", { class: "onsite-full" }))));
  for (const el of $("onsite").querySelectorAll("details")) {
    el.addEventListener("toggle", () => el.open && loadOnsite(el), { once: true });
  }
  fill($("timeline"), timelinePanel(d));
  $("order-body").hidden = false;
}

async function loadOnsite(el) {
  const slot = el.querySelector(".onsite-full");
  const { ok, status, data } = await api(`/api/onsite/${el.dataset.id}`);
  fill(slot, ok ? onsiteDetails(data) : h("p", { class: "form-error" }, errorText(status, data)));
}

async function loadEngineers() {
  const { ok, data } = await api("/api/engineers");
  const list = ok ? data.engineers : [];
  fill($("assign-engineer"), list.length
    ? list.map((e) => h("option", { value: e.id }, `${e.name}${e.staff_no ? ` · ${e.staff_no}` : ""} · 未完成 ${e.open_orders} 单`))
    : h("option", { value: "" }, "没有可派的工程师"));
}

if (mayAssign) {
  $("assign-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const v = $("assign-engineer").value;
    if (!v) return;
    if (await actions.assign(Number(v), $("assign-note").value.trim())) $("assign-note").value = "";
  });
  loadEngineers();
}
load();
