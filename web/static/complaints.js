// 投诉跟进: the complaint follow-ups (GET /api/complaints), taken and assigned (POST
// /api/complaints/{id}/assign) and resolved (…/resolve) by supervisors; a new one arrives live
// (complaint.opened on the websocket, the same connection code as the desk: live.js).

import { api, errorText, query, toast } from "./api.js";
import { duration, fill, h } from "./dom.js";
import { openLive, showConnState } from "./live.js";
import { $, askReason, dateTime } from "./ui.js";

const PAGE_SIZE = 50;
const me = Number(document.body.dataset.userId);
const ROLE_LABEL = { supervisor: "主管", admin: "管理员", survey: "回访", dispatcher: "调度", agent: "客服" };
const STATUS_CLASS = { open: "clock-breach", in_progress: "clock-warn", resolved: "clock-done" };
let page = 1;
let owners = [];
const fresh = new Set();

function clockText(seconds, doneAt) {
  if (doneAt) return `已完成 ${dateTime(doneAt)}`;
  return seconds >= 0 ? `超 ${duration(seconds)}` : `剩 ${duration(-seconds)}`;
}

async function act(c, path, body, done) {
  const { ok, status, data } = await api(`/api/complaints/${c.id}/${path}`, { method: "POST", json: { version: c.version, ...body } });
  if (!ok) {
    toast(errorText(status, data), "error");
    await load();
    return null;
  }
  toast(done);
  await load();
  return data;
}

function actions(c) {
  if (c.status === "resolved") return "—";
  const select = h("select", { testid: "complaint-owner", "aria-label": "负责人" },
    owners.map((o) => h("option", { value: o.id, selected: o.id === (c.owner_id ?? me) }, `${o.name}（${ROLE_LABEL[o.role] || o.role}）`)));
  return h("div", { class: "actions" },
    c.status === "open"
      ? h("button", { type: "button", class: "btn btn-small btn-primary", testid: "complaint-take",
        onclick: () => act(c, "assign", { owner_id: me }, `已接手 ${c.order_number}`) }, "接手")
      : null,
    select,
    h("button", { type: "button", class: "btn btn-small", testid: "complaint-assign",
      onclick: () => act(c, "assign", { owner_id: Number(select.value) }, `已指派 ${c.order_number}`) }, "指派"),
    h("button", { type: "button", class: "btn btn-small", testid: "complaint-resolve",
      onclick: async () => {
        const data = await askReason(`结案 ${c.order_number}`, "填写处理结果：已联系客户、致歉、代金券、免费复查等。",
          (resolution) => api(`/api/complaints/${c.id}/resolve`, { method: "POST", json: { version: c.version, resolution } }));
        if (data) {
          toast(`已结案 ${c.order_number}`);
          await load();
        }
      } }, "结案"));
}

function render(data) {
  fill($("complaints-body"), data.items.map((c) => h("tr", {
    testid: "complaint-row", class: fresh.has(c.id) ? "fresh" : "",
    dataset: { id: c.id, status: c.status, number: c.order_number },
  },
  h("td", { class: "mono strong nowrap" }, h("a", { href: `/orders/${c.order_id}`, testid: "complaint-order" }, c.order_number)),
  h("td", { class: "mono nowrap" }, c.survey_number || "—"),
  h("td", { testid: "complaint-customer" }, c.customer || "—"),
  h("td", { testid: "complaint-engineer" }, c.engineer || "—"),
  h("td", { testid: "complaint-class" }, c.problem_class),
  h("td", {}, c.low_scores.length ? c.low_scores.join("、") : "—"),
  h("td", {}, h("span", { class: `chip ${STATUS_CLASS[c.status] || ""}`, testid: "complaint-status" }, c.status_label)),
  h("td", { testid: "complaint-owner-name" }, c.owner || "—"),
  h("td", { class: `nowrap ${!c.taken_at && c.take_overdue_s >= 0 ? "score-low" : ""}`, testid: "complaint-take-by" },
    clockText(c.take_overdue_s, c.taken_at)),
  h("td", { class: `nowrap ${!c.resolved_at && c.contact_overdue_s >= 0 ? "score-low" : ""}` },
    clockText(c.contact_overdue_s, c.resolved_at)),
  h("td", { class: "text", testid: "complaint-text" }, [c.action, c.resolution].filter(Boolean).join(" / ") || "—"),
  h("td", {}, actions(c)))));
  fresh.clear();
  $("complaints-empty").hidden = data.items.length > 0;
  $("complaint-count").textContent = `共 ${data.total} 条`;
  $("page-info").textContent = `第 ${data.page} 页`;
  $("prev").disabled = data.page <= 1;
  $("next").disabled = data.page * data.page_size >= data.total;
}

async function load(toPage = page) {
  let result;
  try {
    result = await api(`/api/complaints${query({ status: $("status-filter").value, page: toPage, page_size: PAGE_SIZE })}`);
  } catch {
    result = { ok: false, status: 0, data: null };
  }
  const { ok, status, data } = result;
  if (!ok) {
    $("load-error").textContent = `投诉跟进加载失败：${errorText(status, data)}`;
    $("load-error").hidden = false;
    return;
  }
  $("load-error").hidden = true;
  page = toPage;
  render(data);
}

$("refresh").addEventListener("click", () => load());
$("status-filter").addEventListener("change", () => load(1));
$("prev").addEventListener("click", () => load(Math.max(1, page - 1)));
$("next").addEventListener("click", () => load(page + 1));

const ownersLoaded = api("/api/complaints/owners").then(({ ok, data }) => { owners = ok ? data.items : []; });

openLive({
  userId: document.body.dataset.userId,
  onState: showConnState,
  onHello: async () => { await ownersLoaded; await load(); },
  onResync: () => load(1),
  onMessage: (msg) => {
    if (msg.type !== "complaint.opened" || !msg.complaint) return;
    fresh.add(msg.complaint.id);
    toast(`新投诉 ${msg.complaint.order_number}（${msg.complaint.problem_class}），须 1 小时内接手`, "warn");
    load(1);
  },
});
setInterval(() => load(), 60_000); // the time-limit columns move on
