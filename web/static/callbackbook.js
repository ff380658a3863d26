// 预约回拨 from a pop card: the customer's chosen time and why, then
// POST /api/outbound/callbacks (the number is the one the call came from, else the customer's
// first mobile; the dialler moves a time outside calling hours to the next opening).

import { api, errorText, toast } from "./api.js";
import { h } from "./dom.js";

let dialog = null;

function twoHoursFromNow() {
  const d = new Date(Date.now() + 2 * 3600 * 1000);
  d.setMinutes(0, 0, 0);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function build() {
  const when = h("input", { type: "datetime-local", name: "at", required: true, testid: "callback-at" });
  const reason = h("input", { type: "text", name: "reason", maxlength: "200", required: true, testid: "callback-reason",
    placeholder: "例如：客户开会，下午回电确认上门时间" });
  const toMe = h("input", { type: "checkbox", name: "to_me", testid: "callback-to-me" });
  const error = h("p", { class: "form-error", role: "alert", testid: "callback-error", hidden: true });
  const form = h("form", { method: "dialog", class: "dialog-form", testid: "callback-form" },
    h("h2", {}, "预约回拨"),
    h("label", {}, "回拨时间 ", when),
    h("label", {}, "原因 ", reason),
    h("label", { class: "check" }, toMe, " 回拨时接给我"),
    error,
    h("div", { class: "dialog-actions" },
      h("button", { type: "button", class: "btn btn-small", testid: "callback-cancel", value: "cancel" }, "取消"),
      h("button", { type: "submit", class: "btn btn-small btn-primary", testid: "callback-submit" }, "预约")));
  const el = h("dialog", { class: "dialog", testid: "callback-dialog" }, form);
  document.body.append(el);
  return { el, form, when, reason, toMe, error };
}

/** Ask for the time and reason, then book; resolves to the new job or null (cancelled). */
export function bookCallback(card) {
  const customer = card.customer;
  if (!customer) return Promise.resolve(null);
  dialog = dialog || build();
  const d = dialog;
  d.form.reset();
  d.when.value = twoHoursFromNow();
  d.error.hidden = true;
  d.el.showModal();
  return new Promise((resolve) => {
    const cancelBtn = d.form.querySelector('[data-testid="callback-cancel"]');
    const done = (value) => {
      d.form.removeEventListener("submit", submit);
      cancelBtn.removeEventListener("click", cancel);
      d.el.close();
      resolve(value);
    };
    const cancel = () => done(null);
    const submit = async (event) => {
      event.preventDefault();
      const at = new Date(d.when.value);
      const r = await api("/api/outbound/callbacks", {
        method: "POST",
        json: { customer_id: customer.id, call_id: card.id, at: at.toISOString(), reason: d.reason.value.trim(), to_me: d.toMe.checked },
      });
      if (!r.ok) {
        d.error.textContent = errorText(r.status, r.data);
        d.error.hidden = false;
        return;
      }
      toast(r.data.moved ? "已预约回拨（已顺延到可外呼时段）" : "已预约回拨");
      done(r.data);
    };
    d.form.addEventListener("submit", submit);
    cancelBtn.addEventListener("click", cancel);
  });
}
