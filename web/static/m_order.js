// The engineer's order on a phone: accept, call the customer, book the visit, start the service,
// fill the on-site record (SA-OS-004: fault, cause, fix, parts from the van or the warehouse,
// visit fee and labour from the price list — totals computed by the server), get the customer's
// confirmation and signature, then 完工.

import { api, clearFormErrors, errorText, showFormError, toast } from "./api.js";
import { fill, h } from "./dom.js";
import { appointmentForm, orderActions } from "./orderactions.js";
import {
  appointmentRows, feeTable, fetchOrder, onsiteDetails, renderOrderHead, slaPanel, timelinePanel,
} from "./orderview.js";
import { signaturePad } from "./signature.js";
import { $ } from "./ui.js";

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
    steps.push(h("button", { type: "button", class: "btn btn-primary", testid: "m-accept", onclick: actions.accept }, "接单"));
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
    ? appointmentForm((form) => actions.createAppointment(form), { content: o.problem.slice(0, 200) }) : null);
  $("onsite-panel").hidden = !(record || ONSITE_STATES.has(o.status));
  renderOnsite();
  fill($("timeline"), timelinePanel(d));
  $("order-body").hidden = false;
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

load();
