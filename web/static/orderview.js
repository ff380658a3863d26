// The parts of a work order both the desk's order page and the engineer's phone view show:
// facts, SLA clocks, appointments, on-site records, the timeline. Input: GET /api/orders/{id}.

import { api, errorText, yuan } from "./api.js";
import { fill, h } from "./dom.js";
import { $, dateTime, fmt, kv, panel, revealable, statusChip, urgencyChip, warrantyChip } from "./ui.js";

// The masked values of an order revealed through POST /api/reveal (entity "order": the
// customer's name, the number given on the intake, the service address).
export const REVEAL = { name: ["order", "name"], phone: ["order", "phone"], address: ["order", "address"] };

const ACTION_LABEL = {
  created: "创建工单", transition: "状态变更", assigned: "派单", accepted: "工程师接单",
  contacted: "已联系客户", appointment: "预约", appointment_confirmed: "预约确认", onsite: "上门记录",
  signed: "客户签字", note: "备注",
};

/** GET /api/orders/{id}; on failure the page's #load-error says why and null is returned. */
export async function fetchOrder(orderId) {
  const { ok, status, data } = await api(`/api/orders/${orderId}`);
  const box = $("load-error");
  box.hidden = ok;
  if (ok) return data;
  box.textContent = `无法加载工单：${errorText(status, data)}`;
  return null;
}

/** The title line, the browser tab's title and the SA-WO-002 panels in #col-left. */
export function renderOrderHead(d, ...more) {
  document.title = `${d.order.number} · 工单`;
  fill($("order-title"), orderTitle(d));
  fill($("col-left"), orderPanel(d), customerPanel(d), intakePanel(d), ...more);
}

/** "2026-11-23 14:00–16:00" for an appointment window. */
export function windowText(start, end) {
  if (!start) return "—";
  const same = fmt.date(start) === fmt.date(end);
  return `${dateTime(start)}–${same ? fmt.time(end).slice(0, 5) : dateTime(end)}`;
}

export function staffText(s) {
  if (!s) return "—";
  return [s.name, s.staff_no].filter(Boolean).join(" · ");
}

/** The order's header line: number, status, urgency, warranty. */
export function orderTitle(d) {
  const o = d.order;
  return [
    h("span", { class: "mono", testid: "order-number" }, o.number),
    statusChip(o.status, "order-status"),
    urgencyChip(o.urgency, "order-urgency"),
    warrantyChip(d.appliance?.warranty?.kind === o.warranty ? d.appliance.warranty : o.warranty, "order-warranty"),
  ];
}

/** Customer and service address, masked, each with its audited 查看. */
export function customerPanel(d) {
  const id = d.order.id;
  return panel("客户", "order-customer", kv([
    ["姓名", revealable(d.customer.name, REVEAL.name, id, "customer-name")],
    ["联系电话", revealable(d.intake?.contact_phone, REVEAL.phone, id, "customer-phone")],
    ["服务地址", revealable(d.address?.masked, REVEAL.address, id, "customer-address")],
    ["客户等级", d.customer.level || undefined],
    ["客户备注", d.customer.remarks || undefined],
  ]));
}

/** SA-WO-002: every field of the work order. */
export function orderPanel(d) {
  const o = d.order;
  const a = d.appliance;
  return panel("工单信息", "order-facts", kv([
    ["工单号", h("span", { class: "mono" }, o.number)],
    ["创建时间", dateTime(o.created_at), "order-created"],
    ["关联受理", d.intake ? h("span", { class: "mono", testid: "order-intake-number" }, d.intake.number) : "—"],
    ["服务类型", o.service_type, "order-service-type"],
    ["产品", a ? [a.category, a.brand, o.product_model || a.model].filter(Boolean).join(" ") : (o.product_model || "—"), "order-product"],
    ["序列号", o.serial || "—", "order-serial"],
    ["购买日期", a?.purchase_date || "—"],
    ["保修", warrantyChip(a?.warranty?.kind === o.warranty ? a.warranty : o.warranty, "order-warranty-detail")],
    ["问题描述", h("span", { class: "pre" }, o.problem || "—"), "order-problem"],
    ["工程师", staffText(d.engineer), "order-engineer"],
    ["预约时段", windowText(o.appointment_start, o.appointment_end), "order-window"],
    ["完成时间", o.completed_at ? dateTime(o.completed_at) : undefined, "order-completed"],
    ["取消原因", o.cancel_reason || undefined, "order-cancel-reason"],
  ]));
}

/** SA-CR-001 as recorded. */
export function intakePanel(d) {
  const i = d.intake;
  if (!i) return null;
  return panel("受理记录", "order-intake", kv([
    ["受理单号", h("span", { class: "mono" }, i.number)],
    ["受理时间", dateTime(i.created_at)],
    ["渠道", i.channel],
    ["诉求", `${i.request_type} · ${i.urgency}`],
    ["客户情绪", i.mood, "intake-mood"],
    ["受理坐席", staffText(i.agent)],
    ["已复述确认", i.read_back ? "是" : "否"],
    ["来电", i.call_linkedid || undefined],
    ["备注", i.remarks || undefined, "intake-remarks"],
  ]));
}

const CLOCK_STATE = {
  running: ["进行中", "clock-ok"], breached: ["已超时", "clock-breach"], met: ["已达成", "clock-done"],
  "late-met": ["超时达成", "clock-warn"], missed: ["未达成", "clock-warn"],
};

/** The SLA clocks: what is due when, and whether it was met. */
export function slaPanel(d) {
  const list = Array.isArray(d.sla) ? d.sla : (d.sla?.clocks || []);
  const rows = list.map((c) => {
    let [label, cls] = CLOCK_STATE[c.state] || [c.state, "clock-ok"];
    if (c.state === "running" && c.level === "warning") [label, cls] = ["即将超时", "clock-warn"];
    return h("tr", { testid: "sla-row", dataset: { clock: c.clock, state: c.state } },
      h("td", {}, c.label || c.clock),
      h("td", { class: "nowrap" }, dateTime(c.deadline)),
      h("td", {}, h("span", { class: `chip ${cls}`, testid: "sla-state" }, label)),
      h("td", { class: "nowrap" }, c.met_at ? dateTime(c.met_at) : "—"));
  });
  return panel("时效 (SLA)", "order-sla", rows.length
    ? h("table", { class: "grid" }, h("thead", {}, h("tr", {}, ["时钟", "截止", "状态", "达成于"].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows))
    : h("p", { class: "empty-note" }, "暂无计时"));
}

/** SA-AP-003 appointments; ``onConfirm(appointment)`` adds a 确认 button to unconfirmed ones. */
export function appointmentRows(d, onConfirm) {
  if (!d.appointments.length) return h("p", { class: "empty-note", testid: "appointments-empty" }, "暂无预约");
  return h("div", { class: "stack" }, d.appointments.map((ap) => h("div", {
    class: "panel", testid: "appointment", dataset: { number: ap.number, status: ap.status },
  },
  kv([
    ["预约单号", h("span", { class: "mono" }, ap.number)],
    ["时段", windowText(ap.window_start, ap.window_end), "appointment-window"],
    ["来源", ap.source],
    ["其他可选时段", ap.proposed_slots?.length ? ap.proposed_slots.map((s) => windowText(s.start, s.end)).join("；") : undefined],
    ["服务内容", ap.service_content],
    ["客户需准备", ap.prepare || undefined],
    ["费用说明", ap.fee_notes || undefined, "appointment-fee-notes"],
    ["工程师", staffText(ap.engineer)],
    ["工程师电话", ap.engineer?.mobile || undefined],
    ["状态", h("span", { class: "chip status", testid: "appointment-status" },
      ap.customer_confirmed ? "客户已确认" : ({ proposed: "待客户确认", cancelled: "已取消", superseded: "已改约" })[ap.status] || ap.status)],
    ["确认时间", ap.confirmed_at ? dateTime(ap.confirmed_at) : undefined],
  ]),
  onConfirm && !ap.customer_confirmed && ap.status === "proposed"
    ? h("div", { class: "form-actions" }, h("button", {
      type: "button", class: "btn btn-primary", testid: "appointment-confirm", onclick: () => onConfirm(ap),
    }, "客户已确认"))
    : null)));
}

/** SA-OS-004 in full (GET /api/onsite/{id}): fees, parts, totals as the server computed them. */
export function onsiteDetails(r) {
  return h("div", { testid: "onsite-record", dataset: { number: r.number } },
    kv([
      ["记录单号", h("span", { class: "mono" }, r.number)],
      ["工程师", staffText(r.engineer)],
      ["服务时间", `${dateTime(r.started_at)} – ${r.ended_at ? dateTime(r.ended_at) : "进行中"}`],
      ["产品", [r.category, r.product_model].filter(Boolean).join(" ")],
      ["序列号", r.serial || "—"],
      ["现场故障", r.fault_observed || "—", "onsite-fault"],
      ["故障原因", r.root_cause || "—", "onsite-cause"],
      ["解决方案", r.solution || "—", "onsite-solution"],
      ["功能测试", r.test_result || "—", "onsite-test"],
      ["客户反馈", r.customer_feedback || "—"],
      ["保修", r.in_warranty ? "保内（免费）" : "保外"],
    ]),
    feeTable(r),
    kv([
      ["客户确认", r.customer_confirmed ? "已确认" : "未确认", "onsite-confirmed"],
      ["客户签名", signatureText(r.customer_signature), "onsite-customer-signature"],
      ["工程师签名", signatureText(r.engineer_signature)],
      ["签字时间", r.signed_at ? dateTime(r.signed_at) : "—", "onsite-signed-at"],
    ]));
}

function signatureText(s) {
  if (!s || s.kind === "none") return "—";
  return s.kind === "drawn" ? "手写签名" : s.text;
}

/** Parts and fee lines and the computed totals. */
export function feeTable(r) {
  const lines = [
    ...r.parts.map((p) => h("tr", { testid: "part-line", dataset: { id: p.id } },
      h("td", {}, "配件"), h("td", {}, p.name, p.model ? ` (${p.model})` : ""), h("td", { class: "muted" }, p.location_name),
      h("td", { class: "num" }, String(p.quantity)), h("td", { class: "num" }, yuan(p.unit_price_fen)),
      h("td", { class: "num", testid: "part-line-total" }, p.free ? "免费" : yuan(p.total_fen)))),
    ...r.fee_items.map((f) => h("tr", { testid: "fee-line" },
      h("td", {}, f.kind), h("td", {}, f.name), h("td", {}), h("td", { class: "num" }, String(f.quantity)),
      h("td", { class: "num" }, yuan(f.amount_fen)), h("td", { class: "num" }, f.free ? "免费" : yuan(f.total_fen)))),
  ];
  const t = r.totals;
  return h("div", {},
    lines.length
      ? h("div", { class: "table-scroll" }, h("table", { class: "grid" },
        h("thead", {}, h("tr", {}, ["类别", "项目", "出库", "数量", "单价", "金额"].map((x) => h("th", {}, x)))),
        h("tbody", {}, lines)))
      : h("p", { class: "empty-note" }, "无配件及收费项目"),
    h("div", { class: "totals", testid: "onsite-totals" },
      h("span", {}, "配件"), h("span", { testid: "total-parts" }, yuan(t.parts_fen)),
      h("span", {}, "上门费"), h("span", { testid: "total-visit" }, yuan(t.visit_fee_fen)),
      h("span", {}, "工时费"), h("span", { testid: "total-labour" }, yuan(t.labour_fee_fen)),
      h("span", { class: "grand" }, "合计"), h("span", { class: "grand", testid: "total-fen" }, yuan(t.total_fen)),
      t.list_total_fen !== t.total_fen ? h("span", { class: "muted small" }, "按价目表") : null,
      t.list_total_fen !== t.total_fen ? h("span", { class: "muted small", testid: "total-list" }, yuan(t.list_total_fen)) : null));
}

/** The on-site record summaries in the order detail. */
export function onsiteSummary(d) {
  if (!d.onsite.length) return h("p", { class: "empty-note" }, "暂无上门记录");
  return h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, ["记录单号", "开始", "结束", "故障原因", "解决方案", "合计", "签字"].map((t) => h("th", {}, t)))),
    h("tbody", {}, d.onsite.map((r) => h("tr", { testid: "onsite-row", dataset: { id: r.id } },
      h("td", { class: "mono" }, r.number),
      h("td", { class: "nowrap" }, dateTime(r.started_at)),
      h("td", { class: "nowrap" }, dateTime(r.ended_at)),
      h("td", {}, r.root_cause || "—"),
      h("td", {}, r.solution || "—"),
      h("td", { class: "num", testid: "onsite-row-total" }, yuan(r.total_fen)),
      h("td", { class: "nowrap" }, r.signed_at ? `已签 ${dateTime(r.signed_at)}` : "未签")))));
}

/** Who did what when: status changes from → to with their notes. */
export function timelinePanel(d) {
  const events = [...d.events].sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
  return panel("时间线", "order-timeline", events.length
    ? h("ol", { class: "timeline" }, events.map((e) => h("li", {
      testid: "timeline-event", dataset: { action: e.action, to: e.to_status || "" },
    },
    h("div", {},
      h("span", { class: "when" }, dateTime(e.at)),
      h("span", { class: "strong" }, ACTION_LABEL[e.action] || e.action),
      e.from_status !== e.to_status
        ? h("span", { testid: "timeline-change" }, " ", e.from_status || "—", " → ", e.to_status || "—") : null,
      h("span", { class: "muted" }, " · ", e.user ? staffText(e.user) : "系统")),
    e.note ? h("div", { class: "note", testid: "timeline-note" }, e.note) : null)))
    : h("p", { class: "empty-note" }, "暂无记录"));
}
