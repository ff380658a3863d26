// 外呼看板: GET /api/outbound/jobs (due, dialling, outcomes with every attempt), refreshed every
// 5 s; cancel a scheduled job (POST /api/outbound/jobs/{id}/cancel) and the do-not-call list
// (GET/POST/DELETE /api/outbound/dnc) for supervisors and admins. Everything arrives masked.

import { api, errorText, query, toast } from "./api.js";
import { fill, h } from "./dom.js";
import { $, dateTime } from "./ui.js";

const PAGE_SIZE = 50;
const mayManage = document.body.dataset.mayManage === "true";
const KIND = { callback: "回拨", survey: "满意度回访" };
const STATUS = {
  review: "待人工确认", scheduled: "待拨", dialling: "正在拨打", answered: "已接通", exhausted: "已用尽", cancelled: "已取消",
};
const OUTCOME = {
  answered: "接通", busy: "忙线", no_answer: "无人接听", congestion: "线路拥塞", failure: "呼叫失败",
  hangup: "挂断", unknown: "结果未知", dnc: "免打扰", invalid_number: "号码无效",
  header: "参数无效", expired: "已过期", cancelled: "已取消", order_moved: "工单已回访", called_back: "客户已来电",
};
let page = 1;
let total = 0;

function attemptText(a) {
  let text = `#${a.seq} ${OUTCOME[a.outcome] || (a.state === "done" ? "已结束" : "拨打中")}`;
  if (a.answered_at) text += ` ${dateTime(a.answered_at)}接通`;
  if (a.agent) text += `，坐席 ${a.agent}`;
  return text;
}

function outcomeText(job) {
  const log = job.attempt_log.map(attemptText);
  const text = log.length ? log.join(" · ") : (OUTCOME[job.last_outcome] || "—");
  // The last attempt left no trace: the customer may have been reached already.
  return job.status === "review" ? `${text}（无法确认客户是否已接通，请核实后决定是否重拨）` : text;
}

function actionButton(job, path, label, reason, testid) {
  return h("button", {
    type: "button", class: "btn btn-small", testid,
    onclick: async () => {
      const r = await api(`/api/outbound/jobs/${job.id}/${path}`, { method: "POST", json: { reason } });
      if (!r.ok) toast(errorText(r.status, r.data), "error");
      await load();
    },
  }, label);
}

function jobButtons(job) {
  if (!mayManage) return null;
  if (job.status === "scheduled") return actionButton(job, "cancel", "取消", "主管取消", "job-cancel");
  if (job.status === "review") {
    return h("span", { class: "nowrap" },
      actionButton(job, "redial", "重新拨打", "主管核实后重拨", "job-redial"), " ",
      actionButton(job, "cancel", "不再拨打", "主管核实后关闭", "job-close"));
  }
  return null;
}

async function load() {
  const params = { status: $("status-filter").value, kind: $("kind-filter").value, page, page_size: PAGE_SIZE };
  const r = await api("/api/outbound/jobs" + query(params));
  const err = $("load-error");
  if (!r.ok) {
    err.textContent = errorText(r.status, r.data);
    err.hidden = false;
    return;
  }
  err.hidden = true;
  total = r.data.total;
  const c = r.data.counts;
  $("job-counts").textContent = Object.entries(STATUS).map(([k, v]) => `${v} ${c[k] || 0}`).join(" · ");
  fill($("jobs-body"), r.data.items.map((job) => h("tr", {
    testid: "job-row", dataset: { id: job.id, status: job.status, kind: job.kind },
  },
  h("td", {}, KIND[job.kind] || job.kind),
  h("td", { testid: "job-status" }, STATUS[job.status] || job.status),
  h("td", {}, job.customer || "—"),
  h("td", { class: "mono", testid: "job-number" }, job.number),
  h("td", { class: "mono" }, job.order_id ? h("a", { href: `/orders/${job.order_id}` }, job.order_number) : "—"),
  h("td", {}, job.reason),
  h("td", { class: "nowrap" }, dateTime(job.due_at)),
  h("td", {}, String(job.attempts)),
  h("td", { testid: "job-outcome" }, outcomeText(job)),
  h("td", {}, jobButtons(job)))));
  $("jobs-empty").hidden = r.data.items.length > 0;
  $("page-info").textContent = `第 ${page} 页 / 共 ${Math.max(1, Math.ceil(total / PAGE_SIZE))} 页`;
  $("prev").disabled = page <= 1;
  $("next").disabled = page * PAGE_SIZE >= total;
}

async function loadDnc() {
  if (!mayManage) return;
  const r = await api("/api/outbound/dnc");
  if (!r.ok) return;
  $("dnc-count").textContent = `共 ${r.data.total} 个`;
  fill($("dnc-body"), r.data.items.map((d) => h("tr", { testid: "dnc-row", dataset: { id: d.id } },
    h("td", { class: "mono" }, d.number), h("td", {}, d.reason || "—"),
    h("td", {}, d.source === "call" ? "通话中拒绝" : "主管添加"), h("td", { class: "nowrap" }, dateTime(d.created_at)),
    h("td", {}, h("button", {
      type: "button", class: "btn btn-small", testid: "dnc-remove",
      onclick: async () => {
        const x = await api(`/api/outbound/dnc/${d.id}`, { method: "DELETE" });
        if (!x.ok) toast(errorText(x.status, x.data), "error");
        await loadDnc();
      },
    }, "移出")))));
}

$("refresh").addEventListener("click", () => load());
$("status-filter").addEventListener("change", () => { page = 1; load(); });
$("kind-filter").addEventListener("change", () => { page = 1; load(); });
$("prev").addEventListener("click", () => { page -= 1; load(); });
$("next").addEventListener("click", () => { page += 1; load(); });
if (mayManage) {
  $("dnc-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await api("/api/outbound/dnc", { method: "POST", json: { number: $("dnc-number").value, reason: $("dnc-reason").value } });
    if (!r.ok) toast(errorText(r.status, r.data), "error");
    else $("dnc-number").value = "";
    await Promise.all([loadDnc(), load()]);
  });
}
load();
loadDnc();
setInterval(load, 5000);
