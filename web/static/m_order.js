// The engineer's order on a phone: accept, call the customer, book the visit, start the service,
// fill the on-site record (SA-OS-004: fault, cause, fix, parts from the van or the warehouse,
// visit fee and labour from the price list — totals computed by the server), get the customer's
// confirmation and signature, then 完工. A new order shows the 15-minute countdown with 接单 /
// 拒单; once accepted, the visit slots from the engineer's calendar are offered to the customer
// (2–3, editable) and the one the customer chooses is confirmed → 已预约.

import { api, clearFormErrors, errorText, showFormError, toast } from "./api.js";
import { fill, h } from "./dom.js";
import { openLive } from "./live.js";
import { countdown, refuseForm, tickCountdowns, useMobileStyles } from "./m_dispatch.js";
import { appointmentForm, orderActions } from "./orderactions.js";
import {
  appointmentRows, feeTable, fetchOrder, onsiteDetails, renderOrderHead, slaPanel, timelinePanel, windowText,
} from "./orderview.js";
import { signaturePad } from "./signature.js";
import { $, fmt, zonedIso } from "./ui.js";

const body = document.body;
const orderId = body.dataset.orderId;
const CLOSED = new Set(["已完成", "已回访", "已取消", "已取"]);
const ONSITE_STATES = new Set(["服务中", "待件", "已完成", "已回访", "修理中", "难修", "待取", "已取"]);
let detail = null;
let record = null;
let priceItems = null;
let stock = null;

const actions = orderActions({ detail: () => detail, reload: load, errorBox: $("action-error") });

async function load() {
  const data = await fetchOrder(orderId);
  if (!data) return;
  detail = data;
  record = null;
  const latest = data.onsite[data.onsite.length - 1];
  if (latest) {
    const r = await api(`/api/onsite/${latest.id}`);
    if (r.ok) record = r.data;
  }
  render();
}

function render() {
  const d = detail;
  const o = d.order;
  const m = o.milestones || {};
  renderOrderHead(d, slaPanel(d));
  const open = !CLOSED.has(o.status);
  const steps = [];
  if (o.status === "已派单" && !m.accepted_at) {
    steps.push(acceptBox(o));
  }
  if (m.accepted_at && open) {
    steps.push(h("button", { type: "button", class: "btn", testid: "m-contacted", onclick: actions.contacted },
      m.contacted_at ? "再次联系客户" : "已联系客户"));
  }
  fill($("actions"), steps, actions.transitionButtons(d.allowed, { skip: ["已派单"] }),
    steps.length || d.allowed.length ? null : h("span", { class: "muted" }, "当前无可执行的操作"));
  fill($("appointments"), appointmentRows(d, open ? actions.confirmAppointment : null));
  const mayBook = m.accepted_at && ["已派单", "待件", "已预约"].includes(o.status);
  fill($("appointment-form-slot"), mayBook
    ? [choicePanel(d), slotsPanel(o),
      appointmentForm((form) => actions.createAppointment(form), { content: o.problem.slice(0, 200) })] : null);
  $("onsite-panel").hidden = !(record || ONSITE_STATES.has(o.status));
  renderOnsite();
  fill($("timeline"), timelinePanel(d));
  $("order-body").hidden = false;
}

// --------------------------------------------------------------------------------------------
// A new order: the countdown, 接单, 拒单 with a reason

function acceptBox(o) {
  const slot = h("div", {});
  const toggle = () => fill(slot, slot.firstChild ? null : refuseForm(o, {
    onDone: () => window.location.assign("/m/orders"),
    onCancel: () => fill(slot, null),
  }));
  return h("div", { class: "m-accept-box" },
    countdown(o.accept_due_at),
    h("div", { class: "m-row" },
      h("button", { type: "button", class: "btn btn-danger-outline m-btn", testid: "m-refuse", onclick: toggle }, "拒单"),
      h("button", { type: "button", class: "btn btn-primary m-btn", testid: "m-accept", onclick: accept }, "接单")),
    slot);
}

async function accept() {
  if (await actions.accept()) $("m-slots")?.scrollIntoView({ block: "start" });
}

// --------------------------------------------------------------------------------------------
// Visit slots: offered from the engineer's calendar, sent to the customer, the choice confirmed

const SLOT_HOURS = Array.from({ length: 16 }, (_, i) => i + 7); // 07:00 … 22:00
const MAX_ROWS = 5;

function hourSelect(testid, selected) {
  return h("select", { testid, "aria-label": testid.endsWith("from") ? "开始" : "结束" },
    SLOT_HOURS.map((hr) => h("option", { value: hr, selected: hr === selected }, `${String(hr).padStart(2, "0")}:00`)));
}

/** One offered window: picked or not, its day and hours editable. */
function slotRow(slot, picked) {
  const hour = (iso) => Number(fmt.time(iso).slice(0, 2));
  const day = h("input", { type: "date", testid: "m-slot-day", value: slot ? fmt.date(slot.start) : fmt.today(new Date(Date.now() + 86_400_000)) });
  const from = hourSelect("m-slot-from", slot ? hour(slot.start) : 14);
  const to = hourSelect("m-slot-to", slot ? hour(slot.end) : 16);
  const pick = h("input", { type: "checkbox", testid: "m-slot-pick", checked: picked, "aria-label": "提供此时段" });
  const label = h("span", { class: "m-slot-label", testid: "m-slot-label" }, slot?.label || "自定义时段");
  const row = h("div", { class: `m-slot${picked ? "" : " off"}`, testid: "m-slot" },
    pick, label, h("div", { class: "m-slot-edit" }, day, from, "–", to));
  const edited = () => {
    pick.checked = true;
    row.classList.remove("off");
    label.textContent = `${day.value || "—"} ${from.selectedOptions[0]?.textContent}–${to.selectedOptions[0]?.textContent}`;
  };
  for (const el of [day, from, to]) el.addEventListener("change", edited);
  pick.addEventListener("change", () => row.classList.toggle("off", !pick.checked));
  row.window = () => ({ day: day.value, from: Number(from.value), to: Number(to.value) });
  row.picked = () => pick.checked;
  return row;
}

/** GET the slots of the engineer's calendar; the engineer picks or edits 2–3 and sends them
 * (POST /api/orders/{id}/appointments: the first is the window, all of them proposed_slots). */
function slotsPanel(o) {
  const rows = h("div", { testid: "m-slot-list" }, h("p", { class: "muted" }, "正在计算可选时段…"));
  const form = h("form", { class: "panel", id: "m-slots", testid: "m-slots", novalidate: true },
    h("h2", {}, o.status === "已预约" ? "改约：提供新时段" : "提供上门时段"),
    h("p", { class: "muted small" }, "按您的工作时间和已约上门推荐，勾选 2–3 个时段（可修改）发送给客户。"),
    rows,
    h("button", { type: "button", class: "btn m-btn", testid: "m-slot-add", style: "width:100%",
      onclick: () => {
        if (rows.querySelectorAll(".m-slot").length < MAX_ROWS) rows.append(slotRow(null, true));
      } }, "＋ 添加时段"),
    h("div", { class: "field" }, h("label", {}, "服务内容 ", h("span", { class: "req" }, "*")),
      h("textarea", { name: "service_content", rows: 2, maxlength: 1000, "data-field": "service_content", testid: "m-slots-content" },
        o.problem.slice(0, 200)),
      h("p", { class: "field-error", "data-error-for": "service_content" })),
    h("div", { class: "field" }, h("label", {}, "客户需准备"),
      h("textarea", { name: "prepare", rows: 2, maxlength: 1000, "data-field": "prepare", testid: "m-slots-prepare",
        placeholder: "如：保持空调通电，室外机周围清空 1 米" }),
      h("p", { class: "field-error", "data-error-for": "prepare" })),
    h("p", { class: "field-error", "data-error-for": "proposed_slots", testid: "m-slots-pick-error" }),
    h("p", { class: "form-error", "data-form-error": true, testid: "m-slots-error", role: "alert", hidden: true }),
    h("button", { type: "submit", class: "btn btn-primary m-btn", testid: "m-slots-send", style: "width:100%" }, "发送给客户"));
  loadSlots(o, rows);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sendSlots(form, rows);
  });
  return form;
}

async function loadSlots(o, rows) {
  let result;
  try {
    result = await api(`/api/orders/${o.id}/appointment/slots`);
  } catch {
    result = { ok: false, status: 0, data: null };
  }
  if (!result.ok) {
    fill(rows, h("p", { class: "form-error", testid: "m-slots-load-error" }, `无法计算可选时段：${errorText(result.status, result.data)}`));
    return;
  }
  const slots = result.data.slots;
  fill(rows, slots.length ? slots.map((s) => slotRow(s, true))
    : h("p", { class: "empty-note", testid: "m-slots-empty" }, "7 天内没有空闲时段，请添加时段"));
  if (window.location.hash === "#slots") $("m-slots")?.scrollIntoView({ block: "start" });
}

async function sendSlots(form, rows) {
  clearFormErrors(form);
  const fail = (field, reason) => showFormError(form, 422, { details: { field, reason } });
  const picked = [...rows.querySelectorAll(".m-slot")].filter((r) => r.picked()).map((r) => r.window());
  if (picked.length < 2 || picked.length > 3) return fail("proposed_slots", `请勾选 2–3 个时段（已选 ${picked.length} 个）`);
  if (picked.some((w) => !w.day)) return fail("proposed_slots", "请填写日期");
  if (picked.some((w) => w.to <= w.from)) return fail("proposed_slots", "结束时间须晚于开始时间");
  if (picked.some((w) => w.to - w.from > 4)) return fail("proposed_slots", "每个时段不超过 4 小时");
  const tz = document.body.dataset.timezone || "Asia/Shanghai";
  const slots = picked.map((w) => ({ start: zonedIso(w.day, w.from, tz), end: zonedIso(w.day, w.to, tz) }));
  const result = await post(`/api/orders/${orderId}/appointments`, {
    window_start: slots[0].start, window_end: slots[0].end, source: "工程师建议", proposed_slots: slots,
    service_content: form.elements.service_content.value.trim(), prepare: form.elements.prepare.value.trim(),
    customer_confirmed: false, version: detail.order.version,
  });
  if (!result.ok) {
    showFormError(form, result.status, result.data);
    if (result.status === 409) await load();
    return undefined;
  }
  toast(`已向客户提供 ${slots.length} 个时段，待客户选择`, "ok");
  await load();
  $("m-choice-panel")?.scrollIntoView({ block: "start" });
  return undefined;
}

async function post(path, json) {
  try {
    return await api(path, { method: "POST", json });
  } catch {
    return { ok: false, status: 0, data: null };
  }
}

/** The latest appointment still waiting for the customer: one button per offered window. */
function choicePanel(d) {
  const ap = [...d.appointments].reverse().find((a) => a.status === "proposed");
  if (!ap) return null;
  const offered = ap.proposed_slots?.length ? ap.proposed_slots : [{ start: ap.window_start, end: ap.window_end }];
  const error = h("p", { class: "form-error", testid: "m-choice-error", role: "alert", hidden: true });
  return h("section", { class: "panel", id: "m-choice-panel", testid: "m-choice-panel", dataset: { number: ap.number } },
    h("h2", {}, "客户选择时段"),
    h("p", { class: "muted small" }, `${ap.number} 已提供 ${offered.length} 个时段，客户选定后点击确认：`),
    offered.map((s) => h("button", {
      type: "button", class: "btn m-btn m-choice", testid: "m-slot-choice", dataset: { start: s.start },
      onclick: (event) => choose(ap, s, error, event.currentTarget),
    }, `客户选择 ${windowText(s.start, s.end)}`)),
    error);
}

/** The customer chose ``s``: the appointment's own window is confirmed as it is; another of
 * the offered windows is booked as confirmed (superseding the proposal). */
async function choose(ap, s, error, button) {
  error.hidden = true;
  button.disabled = true;
  const same = Date.parse(s.start) === Date.parse(ap.window_start) && Date.parse(s.end) === Date.parse(ap.window_end);
  const result = same
    ? await post(`/api/appointments/${ap.id}/confirm`, { version: detail.order.version })
    : await post(`/api/orders/${orderId}/appointments`, {
      window_start: s.start, window_end: s.end, source: ap.source, proposed_slots: ap.proposed_slots,
      service_content: ap.service_content || detail.order.problem.slice(0, 200), prepare: ap.prepare,
      customer_confirmed: true, version: detail.order.version,
    });
  button.disabled = false;
  if (!result.ok) {
    error.textContent = errorText(result.status, result.data);
    error.hidden = false;
    if (result.status === 409) await load();
    return;
  }
  toast(`预约已确认：${windowText(s.start, s.end)}`, "ok");
  await load();
}

// --------------------------------------------------------------------------------------------
// The on-site record

function renderOnsite() {
  const slot = $("onsite");
  if (!record) {
    fill(slot, detail.order.status === "服务中" || detail.order.status === "修理中"
      ? h("button", { type: "button", class: "btn btn-primary", testid: "onsite-start", onclick: startRecord }, "填写上门服务记录")
      : h("p", { class: "empty-note" }, "开始服务后填写"));
    return;
  }
  if (record.locked || record.signed_at) {
    fill(slot, onsiteDetails(record));
    return;
  }
  fill(slot, recordForm(), partsBlock(), signBlock());
  loadPriceItems();
  loadStock();
}

async function startRecord() {
  const { ok, status, data } = await api(`/api/orders/${orderId}/onsite`, { method: "POST", json: {} });
  if (!ok) {
    toast(errorText(status, data), "warn");
    return;
  }
  await load();
}

function textField(name, label, { rows = 2, required = false, hint = "" } = {}) {
  return h("div", { class: "field" },
    h("label", {}, label, required ? h("span", { class: "req" }, " *") : null),
    h("textarea", { name, rows, maxlength: 2000, "data-field": name, testid: `os-${name}` }, record[name] || ""),
    hint ? h("p", { class: "hint" }, hint) : null,
    h("p", { class: "field-error", "data-error-for": name }));
}

function recordForm() {
  const form = h("form", { id: "record-form", novalidate: true, testid: "onsite-form" },
    h("p", { class: "muted small" }, `${record.number} · ${record.in_warranty ? "保内：配件及费用免费" : "保外：按官方价目表收费，更换配件前先报价"}`),
    h("div", { class: "field-row" },
      h("div", { class: "field" }, h("label", {}, "产品型号"),
        h("input", { name: "product_model", maxlength: 64, value: record.product_model, "data-field": "product_model", testid: "os-model" }),
        h("p", { class: "field-error", "data-error-for": "product_model" })),
      h("div", { class: "field" }, h("label", {}, "序列号"),
        h("input", { name: "serial", maxlength: 64, value: record.serial, "data-field": "serial", testid: "os-serial" }),
        h("p", { class: "field-error", "data-error-for": "serial" }))),
    textField("fault_observed", "现场故障"),
    textField("root_cause", "故障原因", { required: true, hint: "实测结果，如：电容实测 0 µF" }),
    textField("solution", "解决方案", { required: true }),
    textField("test_result", "功能测试结果", { hint: "实测，如：室温 30 °C 时出风口 16 °C" }),
    textField("customer_feedback", "客户反馈"),
    h("div", { class: "field" }, h("label", {}, "上门费"),
      h("select", { name: "visit_item_id", "data-field": "visit_item_id", testid: "os-visit" }, h("option", { value: "" }, "加载中…")),
      h("p", { class: "field-error", "data-error-for": "visit_item_id" })),
    h("div", { class: "field" }, h("label", {}, "工时费"),
      h("div", { id: "labour-items", testid: "os-labour" }),
      h("p", { class: "field-error", "data-error-for": "labour_items" })),
    h("p", { class: "form-error", "data-form-error": true, testid: "os-error", role: "alert", hidden: true }),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary", testid: "os-save" }, "保存记录")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (await saveRecord()) toast("上门记录已保存", "ok");
  });
  return form;
}

function recordChanges() {
  const form = $("record-form");
  const v = (n) => form.elements[n].value.trim();
  const out = { version: record.version };
  for (const n of ["product_model", "serial", "fault_observed", "root_cause", "solution", "test_result", "customer_feedback"]) {
    out[n] = v(n);
  }
  if (priceItems) {
    out.visit_item_id = v("visit_item_id") ? Number(v("visit_item_id")) : null;
    out.labour_items = [...form.querySelectorAll("[data-labour]")]
      .filter((row) => row.querySelector("input[type=checkbox]").checked)
      .map((row) => ({ price_item_id: Number(row.dataset.labour), quantity: Number(row.querySelector("input[type=number]").value) || 1 }));
  }
  return out;
}

/** PATCH the record with what the form holds; the answer (with totals) replaces ``record``. */
async function saveRecord() {
  const form = $("record-form");
  clearFormErrors(form);
  const { ok, status, data } = await api(`/api/onsite/${record.id}`, { method: "PATCH", json: recordChanges() });
  if (!ok) {
    showFormError(form, status, data);
    if (status === 409) await load();
    return false;
  }
  record = data;
  refreshTotals();
  return true;
}

async function loadPriceItems() {
  if (!priceItems) {
    const { ok, data } = await api(`/api/price-items?category=${encodeURIComponent(record.category || "")}`);
    priceItems = ok ? data.items : [];
  }
  const chosen = new Map(record.fee_items.map((f) => [f.price_item_id, f]));
  const visits = priceItems.filter((p) => p.kind === "上门费");
  const select = $("record-form").elements.visit_item_id;
  fill(select, h("option", { value: "" }, "无"), visits.map((p) => h("option", { value: p.id, selected: chosen.has(p.id) },
    `${p.name} ¥${(p.amount_fen / 100).toFixed(2)}`)));
  fill($("labour-items"), priceItems.filter((p) => p.kind === "工时费").map((p) => h("div", {
    class: "choices", dataset: { labour: p.id }, testid: "os-labour-item",
  },
  h("label", {}, h("input", { type: "checkbox", checked: chosen.has(p.id) }), `${p.name} ¥${(p.amount_fen / 100).toFixed(2)}`),
  h("label", {}, "× ", h("input", { type: "number", min: 1, max: 999, value: chosen.get(p.id)?.quantity || 1, style: "width:64px" })))),
  priceItems.some((p) => p.kind === "工时费") ? null : h("span", { class: "muted small" }, "该品类无工时费项目"));
}

// --------------------------------------------------------------------------------------------
// Parts

function partsBlock() {
  const form = h("form", { id: "part-form", class: "panel", novalidate: true, testid: "part-form" },
    h("h2", {}, "配件"),
    h("div", { id: "fee-table" }, feeTable(record)),
    h("div", { id: "part-lines" }, partLineButtons()),
    h("div", { class: "field" }, h("label", {}, "领用配件（车载库 / 配件库）"),
      h("select", { name: "stock", "data-field": "part_id", testid: "part-select" }, h("option", { value: "" }, "加载中…")),
      h("p", { class: "field-error", "data-error-for": "part_id" }),
      h("p", { class: "field-error", "data-error-for": "location_id" })),
    h("div", { class: "field" }, h("label", {}, "数量"),
      h("input", { type: "number", name: "quantity", min: 1, max: 999, value: 1, "data-field": "quantity", testid: "part-quantity" }),
      h("p", { class: "field-error", "data-error-for": "quantity" })),
    h("p", { class: "form-error", "data-form-error": true, testid: "part-error", role: "alert", hidden: true }),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary", testid: "part-add" }, "领用")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const [partId, locationId] = (form.elements.stock.value || ":").split(":").map(Number);
    if (!partId) {
      showFormError(form, 422, { details: { field: "part_id", reason: "required" } });
      return;
    }
    const { ok, status, data } = await api(`/api/onsite/${record.id}/parts`, {
      method: "POST", json: { part_id: partId, location_id: locationId, quantity: Number(form.elements.quantity.value) },
    });
    if (!ok) {
      // 409: not enough stock there — nothing was issued.
      showFormError(form, status, data);
      return;
    }
    record = data;
    form.elements.quantity.value = 1;
    toast("配件已领用", "ok");
    refreshTotals();
    stock = null;
    loadStock();
  });
  return form;
}

function partLineButtons() {
  if (!record.parts.length) return null;
  return h("div", { class: "actions" }, record.parts.map((p) => h("button", {
    type: "button", class: "btn btn-small btn-danger", testid: "part-remove", dataset: { id: p.id },
    onclick: async () => {
      const { ok, status, data } = await api(`/api/onsite/${record.id}/parts/${p.id}`, { method: "DELETE" });
      if (!ok) {
        toast(errorText(status, data), "warn");
        return;
      }
      record = data;
      refreshTotals();
      stock = null;
      loadStock();
    },
  }, `退回 ${p.name} ×${p.quantity}`)));
}

function refreshTotals() {
  fill($("fee-table"), feeTable(record));
  fill($("part-lines"), partLineButtons());
}

async function loadStock() {
  if (!stock) {
    const { ok, data } = await api("/api/stock?page_size=200");
    stock = ok ? data.items : [];
  }
  const select = $("part-form")?.elements.stock;
  if (!select) return;
  // The record's own category first; the van before the warehouse.
  const rank = (l) => (l.part.category === record.category ? 0 : 2) + (l.location.kind === "van" ? 0 : 1);
  const levels = [...stock].filter((l) => l.part.active).sort((a, b) => rank(a) - rank(b));
  fill(select, h("option", { value: "" }, levels.length ? "选择配件" : "无可领用的配件"), levels.map((l) => h("option", {
    value: `${l.part.id}:${l.location.id}`,
  }, `${l.part.name}${l.part.model ? ` ${l.part.model}` : ""} · ${l.location.name} · 库存 ${l.quantity} · ¥${(l.part.unit_price_fen / 100).toFixed(2)}`)));
}

// --------------------------------------------------------------------------------------------
// Customer confirmation and signatures

function signBlock() {
  const pad = signaturePad("sign-pad");
  const typed = h("div", { class: "field" }, h("label", {}, "客户签名（输入姓名）"),
    h("input", { name: "customer_name", maxlength: 64, "data-field": "customer_signature", testid: "sign-typed" }),
    h("p", { class: "field-error", "data-error-for": "customer_signature" }));
  const drawn = h("div", { class: "field", hidden: true }, h("label", {}, "客户手写签名"), pad.el,
    h("button", { type: "button", class: "btn btn-small", onclick: () => pad.clear() }, "清除"));
  const form = h("form", { id: "sign-form", class: "panel", novalidate: true, testid: "sign-form" },
    h("h2", {}, "客户确认与签字"),
    h("div", { class: "choices" },
      h("label", {}, h("input", { type: "radio", name: "mode", value: "typed", checked: true, testid: "sign-mode-typed" }), "输入姓名"),
      h("label", {}, h("input", { type: "radio", name: "mode", value: "drawn", testid: "sign-mode-drawn" }), "手写签名")),
    typed, drawn,
    h("div", { class: "field" }, h("label", {}, "工程师签名"),
      h("input", { name: "engineer_name", maxlength: 64, value: body.dataset.userName || "", "data-field": "engineer_signature", testid: "sign-engineer" }),
      h("p", { class: "field-error", "data-error-for": "engineer_signature" })),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "confirmed", "data-field": "customer_confirmed", testid: "sign-confirmed" }),
      "客户已确认故障原因、解决方案、配件及费用"),
    h("p", { class: "field-error", "data-error-for": "customer_confirmed" }),
    h("p", { class: "form-error", "data-form-error": true, testid: "sign-error", role: "alert", hidden: true }),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary", testid: "sign-submit" }, "确认签字")));
  for (const r of form.querySelectorAll("input[name=mode]")) {
    r.addEventListener("change", () => {
      const isDrawn = form.elements.mode.value === "drawn";
      typed.hidden = isDrawn;
      drawn.hidden = !isDrawn;
    });
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const isDrawn = form.elements.mode.value === "drawn";
    const customer = isDrawn ? (pad.isEmpty() ? "" : pad.dataUrl()) : form.elements.customer_name.value.trim();
    const fail = (field, reason) => showFormError(form, 422, { details: { field, reason } });
    if (!form.elements.confirmed.checked) return fail("customer_confirmed", "请先请客户确认");
    if (!customer) return fail("customer_signature", isDrawn ? "请客户在框内签名" : "required");
    if (!form.elements.engineer_name.value.trim()) return fail("engineer_signature", "required");
    // What the form holds goes in first: the signature covers the record as shown.
    if (!(await saveRecord())) {
      showFormError(form, 0, { message: "上门记录未能保存，请先修正上面的错误" });
      return;
    }
    const { ok, status, data } = await api(`/api/onsite/${record.id}/sign`, {
      method: "POST",
      json: { version: record.version, customer_confirmed: true, customer_signature: customer,
        engineer_signature: form.elements.engineer_name.value.trim() },
    });
    if (!ok) {
      showFormError(form, status, data);
      return;
    }
    toast("客户已签字确认", "ok");
    await load();
  });
  return form;
}

useMobileStyles();
tickCountdowns();
load();
// This order dispatched again, withdrawn or timed out: show what it is now.
openLive({
  userId: body.dataset.userId,
  onMessage: (msg) => {
    if (String(msg.order?.id ?? msg.order_id) !== String(orderId)) return;
    if (msg.type === "order.withdrawn") window.location.assign("/m/orders");
    else load();
  },
});
