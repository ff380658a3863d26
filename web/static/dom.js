// DOM building and formatting shared by the pages. Data only ever goes in as text nodes or
// attribute values (never innerHTML): customer names, problems and remarks are typed by people.

/**
 * h("td", {class: "num", testid: "x"}, "text", childNode, [more]) → element.
 * Attributes: class, testid (→ data-testid), dataset {…}, title, on<event> handlers, and any
 * other attribute set with setAttribute. null/undefined/false values and children are skipped.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "testid") el.dataset.testid = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replace every child of ``el`` with ``children`` (built with h or plain text). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Formatters bound to the centre's time zone (the server's "today" is a day there). */
export function makeFormat(timeZone) {
  const parts = (options) => new Intl.DateTimeFormat("zh-CN", { timeZone, hour12: false, ...options });
  const time = parts({ hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const dayTime = parts({ month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  const ymd = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" });
  const valid = (iso) => {
    if (!iso) return null;
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? null : d;
  };
  return {
    /** "14:03:09", or "—". */
    time(iso) {
      const d = valid(iso);
      return d ? time.format(d) : "—";
    },
    /** "05/20 14:03" (month/day), or "—". */
    dayTime(iso) {
      const d = valid(iso);
      return d ? dayTime.format(d).replace(/\s+/, " ") : "—";
    },
    /** "2024-05-20" in the centre's zone, or "—". */
    date(iso) {
      const d = valid(iso);
      return d ? ymd.format(d) : "—";
    },
    /** Today in the centre's zone as YYYY-MM-DD (what GET /api/calls?date= expects). */
    today(now = new Date()) {
      return ymd.format(now);
    },
  };
}

/** Seconds → "45秒", "3分12秒", "1小时02分". null → "—". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}秒`;
  if (s < 3600) return `${Math.floor(s / 60)}分${String(s % 60).padStart(2, "0")}秒`;
  return `${Math.floor(s / 3600)}小时${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}分`;
}

/** Seconds → "02:13" or "1:02:13" (the running talk timer). */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return s >= 3600 ? `${Math.floor(s / 3600)}:${mm}:${ss}` : `${mm}:${ss}`;
}
