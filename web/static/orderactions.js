// What a user can do to a work order, shared by the desk's order page and the engineer's phone
// view: status transitions (the ones GET /api/orders/{id} says are allowed), accept / contacted,
// appointments (SA-AP-003). Every change carries the version read; a 409 (stale, illegal) or
// 422 is shown next to the action and the order is reloaded.

import { api, clearFormErrors, errorText, showFormError, toast } from "./api.js";
import { h } from "./dom.js";
import { askReason, zonedIso } from "./ui.js";

// The button for a target status (from the current one).
const TRANSITION_LABEL = {
  已派单: "派单", 已预约: "预约已确认", 服务中: "开始服务", 待件: "待件", 已完成: "完工", 已回访: "回访完成",
  已取消: "取消工单", 待处理: "退回待派", 修理中: "开始维修", 难修: "难修", 待取: "修复待取", 已取: "客户已取机",
};
// Targets whose request must carry a reason (the others may need a note: asked when the server
// says so, 422 on "note").
const NEEDS_REASON = new Set(["已取消"]);

export function transitionLabel(order, to) {
  if (to === "待处理" && order.service_type === "远程支持") return "转上门维修";
  if (to === order.status) return "转上门维修";
  if (to === "已完成" && order.service_type === "远程支持") return "远程已解决";
  return TRANSITION_LABEL[to] || to;
}

/**
 * @param {object} o
 * @param {() => object} o.detail       the order detail last loaded
 * @param {() => Promise<void>} o.reload
 * @param {HTMLElement} o.errorBox      where a failed action's message goes
 */
export function orderActions({ detail, reload, errorBox }) {
  const base = () => `/api/orders/${detail().order.id}`;

  function fail(status, data) {
    errorBox.textContent = errorText(status, data);
    errorBox.hidden = false;
    errorBox.scrollIntoView({ block: "nearest" });
  }

  /** Send; on success say so and reload; a 409 (stale, illegal) also reloads, to show what the
   * order is now. Returns the api() result. */
  async function send(request, okText) {
    let result;
    try {
      result = await request();
    } catch {
      result = { ok: false, status: 0, data: null };
    }
    if (result.ok) {
      if (okText) toast(okText, "ok");
      await reload();
    } else if (result.status === 409) {
      await reload().catch(() => {});
    }
    return result;
  }

  /** An action whose failure is shown in the error box. */
  async function run(request, okText) {
    errorBox.hidden = true;
    const result = await send(request, okText);
    if (!result.ok) fail(result.status, result.data);
    return result.ok;
  }

  const post = (path, json) => api(path, { method: "POST", json });

  /** Move the order to ``to``; asks for a reason (cancel, refuse) or a note when one is needed
   * (the reason dialog then shows the API's answer). */
  async function transition(to) {
    const order = detail().order;
    const label = transitionLabel(order, to);
    const done = `${label}：已完成`;
    const request = (extra) => () => post(`${base()}/transitions`, { to, version: order.version, ...extra });
    const ask = (field, note) => askReason(label, note, (text) => send(request({ [field]: text }), done));
    if (NEEDS_REASON.has(to)) return ask("reason", "取消工单须填写原因，将记录在时间线中。");
    if (to === "待处理" && order.status === "已派单") {
      // Returned for the engineer: kept as their refusal (其他 + the text) and matched again.
      const refuse = (text) => () => post(`${base()}/refuse`, { reason: "其他", note: text, version: order.version });
      return askReason(label, "请填写退回原因（如技能不符、时间冲突），将记录为工程师拒单并重新派单。",
        (text) => send(refuse(text), done));
    }
    errorBox.hidden = true;
    const first = await send(request({}), done);
    const field = first.status === 422 ? first.data?.details?.field : null;
    if (field === "note" || field === "reason") return ask(field, "此操作须填写说明。");
    if (!first.ok) fail(first.status, first.data);
    return null;
  }

  return {
    transition,
    transitionButtons(allowed, { skip = [] } = {}) {
      const order = detail().order;
      return allowed.filter((to) => !skip.includes(to)).map((to) => h("button", {
        type: "button",
        class: `btn ${to === "已取消" ? "btn-danger" : "btn-primary"}`,
        testid: `transition-${to}`,
        onclick: () => transition(to),
      }, transitionLabel(order, to)));
    },
    accept: () => run(() => post(`${base()}/accept`, { version: detail().order.version }), "已接单"),
    contacted: () => run(() => post(`${base()}/contacted`, { version: detail().order.version }), "已记录联系客户"),
    assign: (engineerId, note) => run(() => post(`${base()}/dispatch`,
      { engineer_id: engineerId, reason: note || "人工派单", version: detail().order.version }), "已派单"),
    confirmAppointment: (ap) => run(() => post(`/api/appointments/${ap.id}/confirm`,
      { version: detail().order.version }), "预约已确认"),
    /** The appointment form (appointmentForm()) submitted. */
    async createAppointment(form) {
      clearFormErrors(form);
      const v = (n) => form.elements[n].value.trim();
      const tz = document.body.dataset.timezone || "Asia/Shanghai";
      if (!v("day")) {
        showFormError(form, 422, { details: { field: "window_start", reason: "required" } });
        return false;
      }
      const body = {
        window_start: zonedIso(v("day"), Number(v("from")), tz),
        window_end: zonedIso(v("day"), Number(v("to")), tz),
        source: v("source"),
        service_content: v("service_content"),
        prepare: v("prepare"),
        customer_confirmed: form.elements.customer_confirmed.checked,
        version: detail().order.version,
      };
      let result;
      try {
        result = await post(`${base()}/appointments`, body);
      } catch {
        result = { ok: false, status: 0, data: null };
      }
      if (!result.ok) {
        showFormError(form, result.status, result.data);
        if (result.status === 409) await reload().catch(() => {});
        return false;
      }
      toast(body.customer_confirmed ? "预约已确认" : "预约已发送，待客户确认", "ok");
      form.reset();
      await reload();
      return true;
    },
  };
}

const HOURS = Array.from({ length: 15 }, (_, i) => i + 8); // 08:00 … 22:00

/** The SA-AP-003 form: a day, a window to the hour, who proposed it, content, preparation. */
export function appointmentForm(onSubmit, defaults = {}) {
  const hourSelect = (name, selected) => h("select", { name, "data-field": name === "from" ? "window_start" : "window_end", testid: `ap-${name}` },
    HOURS.map((hr) => h("option", { value: hr, selected: hr === selected }, `${String(hr).padStart(2, "0")}:00`)));
  const form = h("form", { class: "panel", testid: "appointment-form", novalidate: true },
    h("h2", {}, "新建预约"),
    h("div", { class: "form-grid" },
      h("div", { class: "field" }, h("label", {}, "日期 ", h("span", { class: "req" }, "*")),
        h("input", { type: "date", name: "day", "data-field": "day", testid: "ap-day", value: defaults.day || "" }),
        h("p", { class: "field-error", "data-error-for": "window_start" })),
      h("div", { class: "field" }, h("label", {}, "时段"),
        h("div", { class: "field-row" }, hourSelect("from", 14), hourSelect("to", 16)),
        h("p", { class: "field-error", "data-error-for": "window_end" })),
      h("div", { class: "field" }, h("label", {}, "来源"),
        h("select", { name: "source", "data-field": "source", testid: "ap-source" },
          h("option", { value: "客户意愿" }, "客户意愿"), h("option", { value: "工程师建议" }, "工程师建议")),
        h("p", { class: "field-error", "data-error-for": "source" })),
      h("div", { class: "field wide" }, h("label", {}, "服务内容 ", h("span", { class: "req" }, "*")),
        h("textarea", { name: "service_content", rows: 2, maxlength: 1000, "data-field": "service_content", testid: "ap-content" }, defaults.content || ""),
        h("p", { class: "field-error", "data-error-for": "service_content" })),
      h("div", { class: "field wide" }, h("label", {}, "客户需准备"),
        h("textarea", { name: "prepare", rows: 2, maxlength: 1000, "data-field": "prepare", testid: "ap-prepare",
          placeholder: "如：保持空调通电，室外机周围清空 1 米" }),
        h("p", { class: "field-error", "data-error-for": "prepare" })),
      h("label", { class: "check wide" }, h("input", { type: "checkbox", name: "customer_confirmed", testid: "ap-confirmed" }),
        "客户已在电话中确认此时段")),
    h("p", { class: "form-error", "data-form-error": true, testid: "ap-error", role: "alert", hidden: true }),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn btn-primary", testid: "ap-submit" }, "保存预约")));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onSubmit(form);
  });
  return form;
}
