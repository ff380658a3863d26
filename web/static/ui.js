// Pieces the work-order pages share: chips, label/value lists, the reason dialog (cancel with a
// reason, reveal with a reason) and the audited "查看" button beside a masked value.

import { api, clearFormErrors, showFormError } from "./api.js";
import { h, makeFormat } from "./dom.js";

export const fmt = makeFormat(document.body.dataset.timezone || "Asia/Shanghai");
export const $ = (id) => document.getElementById(id);

const URGENCY_CLASS = { 普通: "u-normal", 紧急: "u-urgent", 特急: "u-critical" };

export function urgencyChip(urgency, testid = "urgency") {
  return h("span", { class: `chip ${URGENCY_CLASS[urgency] || "u-normal"}`, testid }, urgency || "普通");
}

export function statusChip(status, testid = "status") {
  return h("span", { class: "chip status", testid, dataset: { status: status || "" } }, status || "—");
}

/** 保内 / 保外 / 理赔机 and, when known, the last covered day. ``w`` is a string or
 * {kind, expires} (the API's WarrantyOut). */
export function warrantyChip(w, testid = "warranty") {
  const kind = typeof w === "string" ? w : (w?.kind || "未知");
  const expires = typeof w === "object" && w ? w.expires : null;
  const cls = kind === "保内" ? "w-in" : kind === "保外" ? "w-out" : "w-unknown";
  return h("span", { class: "reveal" },
    h("span", { class: `chip ${cls}`, testid }, kind),
    expires ? h("span", { class: "muted small", testid: `${testid}-end` }, kind === "保内" ? `保修至 ${expires}` : `${expires} 已过保`) : null);
}

/** A <dl> of [label, value, testid?] rows; rows with value undefined are left out. */
export function kv(rows) {
  return h("dl", { class: "kv" }, rows.filter((r) => r && r[1] !== undefined).flatMap(([label, value, testid]) => [
    h("dt", {}, label),
    h("dd", { testid }, value === null || value === "" ? "—" : value),
  ]));
}

export function panel(title, testid, ...children) {
  return h("section", { class: "panel", testid }, h("h2", {}, title), ...children);
}

/** ISO → "2026-11-23 14:05" in the centre's zone, or "—". */
export function dateTime(iso) {
  return iso ? `${fmt.date(iso)} ${fmt.time(iso).slice(0, 5)}` : "—";
}

// --------------------------------------------------------------------------------------------
// The reason dialog (in layout.html)

/**
 * Ask for a reason, then run ``action(reason)`` (an api() call). The dialog stays open showing
 * the API's error until the action succeeds or the user cancels.
 * @returns {Promise<any|null>} the action's data, or null if cancelled
 */
export function askReason(title, note, action) {
  const dialog = $("reason-dialog");
  const form = $("reason-form");
  form.reset();
  clearFormErrors(form);
  $("reason-title").textContent = title;
  $("reason-note").textContent = note || "";
  dialog.showModal();
  $("reason-text").focus();
  return new Promise((resolve) => {
    const done = (value) => {
      form.removeEventListener("submit", submit);
      $("reason-cancel").removeEventListener("click", cancel);
      dialog.removeEventListener("cancel", cancel);
      dialog.close();
      resolve(value);
    };
    const cancel = () => done(null);
    const submit = async (event) => {
      event.preventDefault();
      clearFormErrors(form);
      const reason = $("reason-text").value.trim();
      if (!reason) {
        showFormError(form, 422, { details: { field: "reason", reason: "required" } });
        return;
      }
      $("reason-submit").disabled = true;
      try {
        const { ok, status, data } = await action(reason);
        if (ok) done(data ?? {});
        else showFormError(form, status, data);
      } catch {
        showFormError(form, 0, null);
      } finally {
        $("reason-submit").disabled = false;
      }
    };
    form.addEventListener("submit", submit);
    $("reason-cancel").addEventListener("click", cancel);
    dialog.addEventListener("cancel", cancel);
  });
}

/**
 * A masked value with a "查看" button (for roles that may reveal): asks for a reason, calls
 * POST /api/reveal (audited) and shows the full value in place.
 */
export function revealable(masked, [entity, field], id, testid) {
  const text = h("span", { testid }, masked || "—");
  const wrap = h("span", { class: "reveal" }, text);
  if (document.body.dataset.mayReveal !== "true" || !masked || id === null || id === undefined) return wrap;
  const button = h("button", {
    type: "button", class: "btn btn-small btn-ghost-dark", testid: `${testid}-reveal`, title: "查看完整信息（将记录查看原因）",
    onclick: async () => {
      const data = await askReason("查看完整信息", "查看完整个人信息会被记录（谁、何时、为何查看）。",
        (reason) => api("/api/reveal", { method: "POST", json: { entity, id, field, reason } }));
      if (!data) return;
      text.textContent = data.value ?? "—";
      text.classList.add("revealed");
      button.remove();
    },
  }, "查看");
  wrap.append(button);
  return wrap;
}

// --------------------------------------------------------------------------------------------
// Times in the centre's zone (the browser's own zone may differ)

/** Minutes the zone ``tz`` is ahead of UTC at the instant ``ms``. */
function zoneOffset(ms, tz) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", {
    timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return Math.round((asUtc - ms) / 60000);
}

/** "YYYY-MM-DD" at ``hour``:00 in the zone ``tz`` → an ISO 8601 instant (UTC, "Z"). */
export function zonedIso(day, hour, tz) {
  const [y, m, d] = day.split("-").map(Number);
  const wall = Date.UTC(y, m - 1, d, hour);
  let ms = wall - zoneOffset(wall, tz) * 60000;
  ms = wall - zoneOffset(ms, tz) * 60000; // again, in case the offset changes in between (DST)
  return new Date(ms).toISOString();
}
