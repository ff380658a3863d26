// Talking to the JSON API from the pages: same-origin fetch, a 401 sends the user to the login
// page (and back here afterwards), and the API's error answers turned into Chinese text.

function forgetSequences() {
  for (const key of Object.keys(sessionStorage)) {
    if (key.startsWith("callcenter.lastSeq.")) sessionStorage.removeItem(key);
  }
}

/** Forget this tab's websocket sequence numbers and go to the login page, back here after. */
export function goToLogin() {
  forgetSequences();
  const here = location.pathname + location.search;
  window.location.assign("/login?next=" + encodeURIComponent(here));
}

/** End the session and go to the login page. */
export async function logout() {
  try {
    await fetch("/api/session", { method: "DELETE", credentials: "same-origin" });
  } finally {
    forgetSequences();
    window.location.assign("/login");
  }
}

/**
 * fetch() a JSON endpoint. ``options.json`` is sent as the JSON body.
 * @returns {Promise<{ok: boolean, status: number, data: any}>} never rejects on an HTTP error;
 *   rejects on a network error, and on 401 (after starting the redirect to the login page).
 */
export async function api(path, options = {}) {
  const { json, ...rest } = options;
  const body = json !== undefined ? JSON.stringify(json) : rest.body;
  const resp = await fetch(path, {
    credentials: "same-origin",
    ...rest,
    body,
    headers: { Accept: "application/json", ...(body ? { "Content-Type": "application/json" } : {}) },
  });
  if (resp.status === 401) {
    goToLogin();
    throw new Error("not authenticated");
  }
  let data = null;
  try {
    data = await resp.json();
  } catch {
    data = null;
  }
  return { ok: resp.ok, status: resp.status, data };
}

/** A query string from an object, leaving out empty values: {a: 1, b: ""} → "?a=1". */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

// Validation reasons (pydantic's and our services') → what the user reads.
const REASONS = [
  [/^required$|^empty$|^field required$/i, "必填"],
  [/^at most (\d+) characters$/, (m) => `最多 ${m[1]} 个字符`],
  [/^longer than (\d+) characters$/, (m) => `最多 ${m[1]} 个字符`],
  [/^string should have at most (\d+) characters?$/i, (m) => `最多 ${m[1]} 个字符`],
  [/^string should have at least 1 character$/i, "必填"],
  [/^string should have at least (\d+) characters$/i, (m) => `至少 ${m[1]} 个字符`],
  [/^input should be greater than or equal to (\S+)$/i, (m) => `不能小于 ${m[1]}`],
  [/^input should be greater than (\S+)$/i, (m) => `须大于 ${m[1]}`],
  [/^input should be less than or equal to (\S+)$/i, (m) => `不能大于 ${m[1]}`],
  [/^input should be less than (\S+)$/i, (m) => `须小于 ${m[1]}`],
  [/^input should be a valid integer/i, "须为整数"],
  [/^input should be a valid date/i, "日期格式不正确"],
  [/^input should be a valid datetime/i, "时间格式不正确"],
  [/^input should be (.+)$/i, (m) => `取值不正确（应为 ${m[1]}）`],
  [/^control characters/, "不能包含控制字符"],
  [/^not a phone number$/, "不是电话号码"],
  [/^a service number/, "400/800/95 服务号码不能作为客户电话"],
  [/^local landline without area code$/, "固话请加区号"],
  [/^not a valid mobile or landline number/, "号码位数或号段不正确"],
  [/^foreign number/, "国际号码长度不正确"],
  [/^same number as/, "号码重复"],
];

/** A validation reason in Chinese; a reason already in Chinese is shown as it is. */
export function reasonText(reason) {
  reason = (reason || "").replace(/^value error, /i, "");
  if (/[\u4e00-\u9fff]/.test(reason)) return reason;
  for (const [re, text] of REASONS) {
    const m = re.exec(reason || "");
    if (m) return typeof text === "function" ? text(m) : text;
  }
  return `格式不正确（${reason || "未知原因"}）`;
}

/** One line for any failed answer: the server's message, else a text per status. */
export function errorText(status, data) {
  if (status === 422) {
    const d = data?.details || {};
    return d.field ? `${d.field}：${reasonText(d.reason)}` : (data?.message || "输入有误");
  }
  if (data?.error === "insufficient_stock" && Number.isInteger(data.details?.available)) {
    return `库存不足：现有 ${data.details.available} 件，需要 ${data.details.requested} 件`;
  }
  if (data?.message) return data.message;
  if (status === 403) return "无权限执行此操作";
  if (status === 404) return "记录不存在或无权查看";
  if (status === 409) return "操作冲突：记录已被他人修改或当前状态不允许，请刷新后重试";
  if (status === 0) return "无法连接服务器，请稍后再试";
  return `操作失败（服务器错误 ${status}），请稍后再试`;
}

/**
 * Show an API error in a form: the 422's field next to its input (``data-field`` /
 * ``data-error-for``), anything else in the form's ``[data-form-error]`` box.
 * @returns {string} the text shown
 */
export function showFormError(form, status, data) {
  const field = status === 422 ? data?.details?.field : null;
  const slot = field ? findSlot(form, field) : null;
  if (slot) {
    const text = reasonText(data?.details?.reason);
    slot.textContent = text;
    const input = form.querySelector(`[data-field="${CSS.escape(slot.dataset.errorFor)}"]`);
    input?.setAttribute("aria-invalid", "true");
    input?.focus();
    return text;
  }
  const text = errorText(status, data);
  const box = form.querySelector("[data-form-error]");
  if (box) {
    box.textContent = text;
    box.hidden = false;
  }
  return text;
}

// "create_order.address_id" also matches a slot for "address_id"; "parts[0].quantity" matches
// "quantity": the form names its fields as the API does, the prefix depends on the endpoint.
function findSlot(form, field) {
  const names = [field];
  const parts = field.split(".");
  while (parts.length > 1) {
    parts.shift();
    names.push(parts.join("."));
  }
  names.push(field.replace(/\[\d+\]/g, ""));
  for (const name of names) {
    const slot = form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
    if (slot) return slot;
  }
  return null;
}

/** Clear what showFormError put in ``form``. */
export function clearFormErrors(form) {
  for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
  for (const i of form.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
  const box = form.querySelector("[data-form-error]");
  if (box) box.hidden = true;
}

let toastTimer = 0;
/** A short message in the page's #toast box. */
export function toast(text, kind = "info") {
  const el = document.getElementById("toast");
  if (!el) return;
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

/** Fen (分, integer) → "¥123.40". */
export function yuan(fen) {
  if (fen === null || fen === undefined || Number.isNaN(Number(fen))) return "—";
  const n = Number(fen);
  const sign = n < 0 ? "-" : "";
  const abs = Math.abs(n);
  return `${sign}¥${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}
