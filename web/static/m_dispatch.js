// A newly dispatched order on the engineer's phone (both /m/orders and /m/orders/{id}): the
// 15-minute countdown to accept (from the order's accept_due_at), 接单, and 拒单 with its reason
// (技能不符 / 时间冲突 / 其他, a note required for 其他) — POST /api/orders/{id}/accept and
// POST /api/orders/{id}/refuse.

import { api, clearFormErrors, showFormError, toast } from "./api.js";
import { clock, h } from "./dom.js";

export const REFUSE_REASONS = ["技能不符", "时间冲突", "其他"];

/** The phone stylesheet (the order page's template is shared with the desk). */
export function useMobileStyles() {
  if (document.querySelector('link[href="/static/mobile.css"]')) return;
  document.head.append(h("link", { rel: "stylesheet", href: "/static/mobile.css" }));
}

/** "剩余 12:34 内接单" until ``due``, then "已超时，等待重新派单". Kept current by tickCountdowns(). */
export function countdown(due) {
  const el = h("span", { class: "m-countdown", testid: "m-countdown", dataset: { due: due || "" } });
  paint(el, Date.now());
  return el;
}

function paint(el, now) {
  const due = Date.parse(el.dataset.due);
  if (Number.isNaN(due)) {
    el.textContent = "请尽快接单";
    return;
  }
  const left = Math.ceil((due - now) / 1000);
  el.dataset.state = left > 0 ? (left <= 180 ? "soon" : "ok") : "late";
  el.textContent = left > 0 ? `剩余 ${clock(left)} 内接单` : "已超时，等待重新派单";
}

let ticker = 0;
/** Repaint every countdown on the page once a second. */
export function tickCountdowns() {
  if (ticker) return;
  ticker = setInterval(() => {
    const now = Date.now();
    for (const el of document.querySelectorAll(".m-countdown")) paint(el, now);
  }, 1000);
}

/** POST accept; the api() result. */
export function acceptOrder(order) {
  return api(`/api/orders/${order.id}/accept`, { method: "POST", json: { version: order.version } });
}

/**
 * The 拒单 form: a reason chosen from three big buttons, a note (required for 其他).
 * @param {object} order        {id, version}
 * @param {() => void} onDone   after the refusal was recorded
 * @param {() => void} onCancel
 */
export function refuseForm(order, { onDone, onCancel }) {
  const noteField = h("textarea", {
    name: "note", rows: 2, maxlength: 500, "data-field": "note", testid: "m-refuse-note",
    placeholder: "选择“其他”时必填",
  });
  const form = h("form", { class: "m-refuse", novalidate: true, testid: "m-refuse-form" },
    h("div", { class: "field" },
      h("label", {}, "拒单原因 ", h("span", { class: "req" }, "*")),
      h("div", { class: "m-choices", role: "radiogroup", testid: "m-refuse-reasons" },
        REFUSE_REASONS.map((r) => h("label", {},
          h("input", { type: "radio", name: "reason", value: r, "data-field": "reason", testid: `m-refuse-reason-${r}` }), r))),
      h("p", { class: "field-error", "data-error-for": "reason", testid: "m-refuse-reason-error" })),
    h("div", { class: "field" }, h("label", {}, "说明"), noteField,
      h("p", { class: "field-error", "data-error-for": "note", testid: "m-refuse-note-error" })),
    h("p", { class: "form-error", "data-form-error": true, testid: "m-refuse-error", role: "alert", hidden: true }),
    h("div", { class: "m-row" },
      h("button", { type: "button", class: "btn m-btn", testid: "m-refuse-cancel", onclick: onCancel }, "取消"),
      h("button", { type: "submit", class: "btn btn-danger m-btn", testid: "m-refuse-submit" }, "确认拒单")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const reason = form.elements.reason.value;
    const note = noteField.value.trim();
    const fail = (field, text) => showFormError(form, 422, { details: { field, reason: text } });
    if (!reason) return fail("reason", "请选择拒单原因");
    if (reason === "其他" && !note) return fail("note", "选择“其他”时须填写说明");
    const button = form.querySelector('[type="submit"]');
    button.disabled = true;
    let result;
    try {
      result = await api(`/api/orders/${order.id}/refuse`, { method: "POST", json: { reason, note, version: order.version } });
    } catch {
      result = { ok: false, status: 0, data: null };
    }
    button.disabled = false;
    if (!result.ok) {
      showFormError(form, result.status, result.data);
      return undefined;
    }
    toast("已拒单，工单将重新派给其他工程师", "ok");
    onDone();
    return undefined;
  });
  return form;
}
