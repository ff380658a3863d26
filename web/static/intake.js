// 新建受理 (SA-CR-001): pre-filled from the call (GET /api/intakes/prefill), a read-back step
// before saving (the process requires the key facts read back to the customer), then
// POST /api/intakes — with the work order in the same request when 同时创建工单 is ticked —
// and on to the order's page.

import { api, clearFormErrors, errorText, query, showFormError } from "./api.js";
import { fill, h } from "./dom.js";
import { $, dateTime, fmt, kv, urgencyChip, warrantyChip } from "./ui.js";

/** Product category → warranty months, from the prefill. */
let categoryMonths = new Map();
const params = new URLSearchParams(location.search);
const form = $("intake-form");
const NEW = "new";
let prefill = null;

// --------------------------------------------------------------------------------------------
// Loading

function showLoadError(text) {
  const box = $("load-error");
  box.textContent = text;
  box.hidden = false;
}

async function load(customerId, linkedid) {
  const { ok, status, data } = await api(`/api/intakes/prefill${query({ customer_id: customerId, linkedid })}`);
  if (!ok) {
    showLoadError(`无法加载客户资料：${errorText(status, data)}`);
    return;
  }
  prefill = data;
  $("find-customer").hidden = true;
  $("load-error").hidden = true;
  render();
  form.hidden = false;
}

const appliancesOf = (pf) => pf.appliances || [];

function render() {
  const pf = prefill;
  const cu = pf.customer || {};
  const call = pf.call;
  $("call-info").textContent = call
    ? `来电 ${call.caller || call.caller_masked || ""} · 队列 ${call.queue || "—"} · ${dateTime(call.started_at)}`
    : "";
  if (call) form.elements.channel.value = "电话";
  fill($("customer-box"), kv([
    ["客户", h("span", { class: "strong" }, cu.name || "—"), "intake-customer-name"],
    ["等级", cu.level || undefined],
    ["备注", cu.remarks || undefined],
  ]));
  const phones = pf.phones || [];
  fill($("f-phone"), phones.length
    ? phones.map((p) => h("option", { value: p.phone_id },
      p.masked, p.kind === "landline" ? "（固话）" : "", p.phone_id === pf.caller_phone_id ? "（本次来电）" : ""))
    : h("option", { value: "" }, "未登记电话"));
  if (pf.caller_phone_id) form.elements.phone_id.value = String(pf.caller_phone_id);

  const appliances = appliancesOf(pf);
  fill($("f-appliance"),
    appliances.map((a) => h("option", { value: a.id },
      [a.category, a.brand, a.model].filter(Boolean).join(" "), a.serial ? ` · ${a.serial}` : "")),
    h("option", { value: NEW }, "＋ 新家电（未登记）"));
  categoryMonths = new Map((pf.categories || []).map((c) => [c.name, c.warranty_months]));
  const categories = [...new Set([...categoryMonths.keys(), ...appliances.map((a) => a.category).filter(Boolean)])];
  fill($("category-list"), categories.map((c) => h("option", { value: c })));
  const addresses = pf.addresses || [];
  fill($("f-address"), addresses.length
    ? addresses.map((a) => h("option", { value: a.id }, a.masked))
    : h("option", { value: "" }, "未登记地址"));
  applianceChanged();
}

// --------------------------------------------------------------------------------------------
// The appliance and its warranty

function selectedAppliance() {
  const v = form.elements.appliance.value;
  return v === NEW ? null : appliancesOf(prefill).find((a) => String(a.id) === v) || null;
}

function applianceChanged() {
  const a = selectedAppliance();
  for (const el of form.querySelectorAll("[data-new-only]")) el.hidden = Boolean(a);
  // A registered appliance is taken as registered (its record is the proof-of-purchase data).
  for (const name of ["model", "serial", "purchase_date"]) {
    form.elements[name].value = a?.[name] || "";
    form.elements[name].readOnly = Boolean(a);
  }
  if (!a) {
    for (const name of ["category", "brand", "warranty_months"]) form.elements[name].value = "";
  }
  showWarranty();
}

/** The day ``months`` calendar months after ISO ``day`` (clamped to a shorter month's end). */
function addMonths(day, months) {
  const [y, m, d] = day.split("-").map(Number);
  const index = m - 1 + months;
  const year = y + Math.floor(index / 12);
  const month = (index % 12) + 1;
  const last = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return `${year}-${String(month).padStart(2, "0")}-${String(Math.min(d, last)).padStart(2, "0")}`;
}

/** The server's answer for a registered appliance; for a new one, computed from the purchase
 * date when the months are typed (else the server applies the category's months on saving). */
function currentWarranty() {
  const a = selectedAppliance();
  if (a) return a.warranty;
  const purchase = form.elements.purchase_date.value;
  const typed = form.elements.warranty_months.value;
  // Typed months win; else the category's own warranty (as the server will apply it).
  const months = /^\d+$/.test(typed) ? typed : categoryMonths.get(form.elements.category.value);
  if (!purchase) return { kind: "保外", note: "无购买日期，按保外处理" };
  if (months === undefined) return { kind: "待定", note: "保存时按品类保修期计算" };
  const expires = addMonths(purchase, Number(months));
  return { kind: fmt.today() <= expires ? "保内" : "保外", expires };
}

function showWarranty() {
  const w = currentWarranty();
  fill($("warranty-box"), warrantyChip(w, "intake-warranty"), w.note ? h("span", { class: "muted small" }, " ", w.note) : null);
}

form.elements.appliance.addEventListener("change", applianceChanged);
form.elements.purchase_date.addEventListener("change", showWarranty);
form.elements.warranty_months.addEventListener("input", showWarranty);
form.elements.category.addEventListener("input", showWarranty);

// --------------------------------------------------------------------------------------------
// The request body, the read-back, saving

function radio(name) {
  return form.querySelector(`input[name="${name}"]:checked`)?.value || "";
}

function body() {
  const v = (name) => form.elements[name].value.trim();
  const a = selectedAppliance();
  const out = {
    customer_id: prefill.customer?.id ?? Number(params.get("customer_id")),
    channel: v("channel"),
    phone_id: v("phone_id") ? Number(v("phone_id")) : null,
    request_type: v("request_type"),
    problem: v("problem"),
    urgency: radio("urgency"),
    mood: radio("mood"),
    remarks: v("remarks"),
    read_back: $("readback-ok").checked,
  };
  if (a) out.appliance_id = a.id;
  else {
    out.new_appliance = {
      category: v("category"), brand: v("brand"), model: v("model"), serial: v("serial"),
      purchase_date: v("purchase_date") || null,
      warranty_months: v("warranty_months") ? Number(v("warranty_months")) : null,
    };
  }
  const linkedid = prefill.call?.linkedid || params.get("linkedid");
  if (linkedid) out.linkedid = linkedid;
  if ($("f-create-order").checked) {
    out.create_order = {
      service_type: v("service_type"),
      address_id: v("address_id") ? Number(v("address_id")) : null,
    };
  }
  return out;
}

/** Checks the browser can make before the read-back (the server checks everything again). */
function missingField(b) {
  if (b.new_appliance && !b.new_appliance.category) return "category";
  if (b.new_appliance && !b.new_appliance.model) return "model";
  if (!b.problem) return "problem";
  if (b.create_order && !b.create_order.address_id && b.create_order.service_type !== "远程支持"
      && b.create_order.service_type !== "送修") return "address_id";
  return null;
}

function readBackFacts(b) {
  const a = selectedAppliance() || b.new_appliance;
  const phone = form.elements.phone_id.selectedOptions[0]?.textContent;
  const w = currentWarranty();
  return kv([
    ["客户", prefill.customer?.name || "—", "readback-customer"],
    ["联系电话", phone || "—", "readback-phone"],
    ["产品", [a.category, a.brand, a.model].filter(Boolean).join(" "), "readback-product"],
    ["序列号", a.serial || "—", "readback-serial"],
    ["购买日期", a.purchase_date || "—"],
    ["保修", warrantyChip(w, "readback-warranty")],
    ["诉求", `${b.request_type} · ${b.urgency}`, "readback-request"],
    ["问题描述", b.problem, "readback-problem"],
    ["服务", b.create_order
      ? `${b.create_order.service_type} · ${form.elements.address_id.selectedOptions[0]?.textContent || "—"}`
      : "暂不创建工单"],
    ["备注", b.remarks || undefined],
  ]);
}

function setStep(readBack) {
  $("readback").hidden = !readBack;
  $("back").hidden = !readBack;
  $("save").hidden = !readBack;
  $("next").hidden = readBack;
  for (const el of form.querySelectorAll("input, select, textarea")) {
    if (el.id !== "readback-ok") el.disabled = readBack;
  }
  if (!readBack) $("readback-ok").checked = false;
  $("save").disabled = true;
}

$("next").addEventListener("click", () => {
  clearFormErrors(form);
  const b = body();
  const missing = missingField(b);
  if (missing) {
    showFormError(form, 422, { details: { field: missing, reason: "required" } });
    return;
  }
  fill($("readback-facts"), readBackFacts(b));
  setStep(true);
  $("readback").scrollIntoView({ block: "nearest" });
});
$("back").addEventListener("click", () => setStep(false));
$("readback-ok").addEventListener("change", () => { $("save").disabled = !$("readback-ok").checked; });
$("f-create-order").addEventListener("change", () => { $("order-fields").hidden = !$("f-create-order").checked; });

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!$("readback-ok").checked) return;
  clearFormErrors(form);
  const b = body();
  $("save").disabled = true;
  let result;
  try {
    result = await api("/api/intakes", { method: "POST", json: b });
  } catch {
    result = { ok: false, status: 0, data: null };
  }
  const { ok, status, data } = result;
  if (ok) {
    if (data.order?.id) {
      window.location.assign(`/orders/${data.order.id}`);
      return;
    }
    showSaved(data.intake);
    return;
  }
  // Back to the form so the field in error can be corrected.
  setStep(false);
  showFormError(form, status, data);
});

function showSaved(intake) {
  form.hidden = true;
  const box = $("saved");
  fill(box, h("h2", {}, "受理已保存"),
    kv([["受理单号", h("span", { class: "mono strong", testid: "intake-number" }, intake?.number || "—")],
      ["紧急程度", urgencyChip(intake?.urgency)]]),
    h("div", { class: "form-actions" },
      h("a", { class: "btn", href: "/" }, "返回坐席台"),
      h("a", { class: "btn btn-primary", href: "/intake" }, "再建一条受理")));
  box.hidden = false;
}

// --------------------------------------------------------------------------------------------
// No customer given: find one by phone

const findForm = $("find-form");
findForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearFormErrors(findForm);
  const phone = findForm.elements.phone.value.trim();
  if (!phone) {
    showFormError(findForm, 422, { details: { field: "phone", reason: "required" } });
    return;
  }
  const { ok, status, data } = await api(`/api/customers${query({ phone })}`);
  findForm.elements.phone.value = ""; // a full number must not linger in the page
  if (!ok) {
    showFormError(findForm, status, data);
    return;
  }
  const list = data.customer ? [data.customer] : [];
  fill($("find-results"), list.length
    ? h("table", { class: "grid" }, h("tbody", {}, list.map((c) => h("tr", { testid: "intake-find-row" },
      h("td", {}, c.name), h("td", {}, (c.phones || []).join("、")), h("td", {}, c.address || "—"),
      h("td", {}, h("button", { type: "button", class: "btn btn-small", onclick: () => load(c.id, null) }, "选择"))))))
    : h("p", { class: "empty-note" }, "没有找到该号码的客户，请先在坐席台新建客户。"));
});

if (params.get("customer_id")) load(params.get("customer_id"), params.get("linkedid"));
else $("find-customer").hidden = false;
