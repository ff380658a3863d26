// 满意度回访: the survey agent's list of completed orders due for the survey (GET
// /api/survey/due), the SA-CS-005 form for the chosen one (POST /api/orders/{id}/survey), and for
// supervisors the per-engineer averages (GET /api/survey/engineers). Everything arrives masked.

import { api, clearFormErrors, errorText, query, showFormError, toast } from "./api.js";
import { duration, fill, h } from "./dom.js";
import { $, dateTime, kv, statusChip } from "./ui.js";

const PAGE_SIZE = 20;
const form = $("survey-form");
let page = 1;
let questions = [];
let current = null; // the order being surveyed: {id, number}

function dueText(o) {
  if (o.overdue_s === null || o.overdue_s === undefined) return "—";
  return o.overdue_s >= 0 ? `超 ${duration(o.overdue_s)}` : `剩 ${duration(-o.overdue_s)}`;
}

function renderDue(data) {
  fill($("due-body"), data.items.map((o) => h("tr", {
    testid: "due-row", class: current && current.id === o.id ? "selected" : "",
    dataset: { id: o.id, number: o.number }, tabindex: "0",
    onclick: () => openOrder(o.id), onkeydown: (e) => { if (e.key === "Enter") openOrder(o.id); },
  },
  h("td", { class: "mono strong nowrap" }, h("a", { href: `/orders/${o.id}`, onclick: (e) => e.stopPropagation() }, o.number)),
  h("td", { testid: "due-customer" }, o.customer || "—"),
  h("td", {}, `${o.service_type} ${o.product_model || ""}`.trim()),
  h("td", { testid: "due-engineer" }, o.engineer || "—"),
  h("td", { class: "nowrap" }, dateTime(o.completed_at)),
  h("td", { class: `nowrap ${o.overdue_s >= 0 ? "score-low" : ""}`, testid: "due-deadline" }, dueText(o)))));
  $("due-empty").hidden = data.items.length > 0;
  $("due-count").textContent = `待回访 ${data.total} 单`;
  $("page-info").textContent = `第 ${data.page} 页`;
  $("prev").disabled = data.page <= 1;
  $("next").disabled = data.page * data.page_size >= data.total;
}

async function loadDue(toPage = page) {
  const { ok, status, data } = await api(`/api/survey/due${query({ page: toPage, page_size: PAGE_SIZE })}`);
  if (!ok) {
    $("load-error").textContent = `待回访工单加载失败：${errorText(status, data)}`;
    $("load-error").hidden = false;
    return;
  }
  $("load-error").hidden = true;
  page = toPage;
  renderDue(data);
}

function scoreField(q) {
  return h("fieldset", { class: "score-row", testid: `score-${q.key}`, dataset: { key: q.key } },
    h("legend", {}, q.label),
    h("div", { class: "score-choices", role: "radiogroup" }, [1, 2, 3, 4, 5].map((n) => h("label", { title: `${n} 分` },
      h("input", { type: "radio", name: q.key, value: String(n), testid: `score-${q.key}-${n}` }),
      h("span", {}, String(n))))),
    h("p", { class: "field-error", dataset: { errorFor: `answers.${q.key}` } }));
}

function showSaved(survey, complaint) {
  const box = $("survey-saved");
  if (!survey) {
    box.hidden = true;
    return;
  }
  fill(box, h("h3", {}, "回访结果"), kv([
    ["回访单号", survey.number, "survey-result-number"],
    ["方式", survey.channel_label],
    ["时间", dateTime(survey.answered_at)],
    ["评分", questions.map((q) => `${q.label} ${survey.scores[q.key]}`).join(" · "), "survey-result-scores"],
    ["平均分", survey.average.toFixed(2), "survey-result-average"],
    ["低分项", survey.low_scores.length ? survey.low_scores.join("、") : "无", "survey-result-low"],
    ["客户原话", survey.comment || "—"],
    ["投诉跟进", complaint ? `${complaint.problem_class} · ${complaint.status_label} · 须 ${dateTime(complaint.take_by)} 前接手` : "无",
      "survey-result-complaint"],
  ]));
  box.hidden = false;
}

function showOrder(order) {
  $("survey-order-number").textContent = order.number;
  fill($("survey-order"), kv([
    ["状态", statusChip(order.status, "survey-order-status")],
    ["客户", order.customer || "—", "survey-order-customer"],
    ["产品", `${order.service_type} ${order.product_model || ""}`.trim()],
    ["工程师", order.engineer || "—", "survey-order-engineer"],
    ["完工", dateTime(order.completed_at)],
  ]));
}

async function openOrder(orderId) {
  const { ok, status, data } = await api(`/api/orders/${orderId}/survey`);
  if (!ok) {
    toast(errorText(status, data), "error");
    return;
  }
  current = { id: data.order.id, number: data.order.number };
  questions = data.questions;
  $("survey-panel").hidden = false;
  showOrder(data.order);
  fill($("score-fields"), questions.map(scoreField));
  form.reset();
  clearFormErrors(form);
  form.hidden = Boolean(data.survey);
  showSaved(data.survey, data.complaint);
  for (const row of document.querySelectorAll('[data-testid="due-row"]')) {
    row.classList.toggle("selected", Number(row.dataset.id) === current.id);
  }
}

function answers() {
  const out = {};
  let missing = null;
  for (const q of questions) {
    const checked = form.querySelector(`input[name="${q.key}"]:checked`);
    form.querySelector(`[data-testid="score-${q.key}"]`).classList.toggle("invalid", !checked);
    if (checked) out[q.key] = Number(checked.value);
    else missing = missing || q.key;
  }
  return { out, missing };
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!current) return;
  clearFormErrors(form);
  const { out, missing } = answers();
  if (missing) {
    showFormError(form, 422, { details: { field: `answers.${missing}`, reason: "请评分（1–5）" } });
    return;
  }
  const body = {
    answers: out, comment: form.elements.comment.value.trim(), complaint: form.elements.complaint.checked,
    problem_class: form.elements.problem_class.value || null, action: form.elements.action.value.trim(),
  };
  $("survey-submit").disabled = true;
  try {
    const { ok, status, data } = await api(`/api/orders/${current.id}/survey`, { method: "POST", json: body });
    if (!ok) {
      showFormError(form, status, data);
      return;
    }
    form.hidden = true;
    showOrder(data.order);
    showSaved(data.survey, data.complaint);
    toast(data.complaint ? `已保存 ${data.survey.number}，已转主管跟进` : `已保存 ${data.survey.number}`);
    await loadDue(page);
    await loadStats();
  } finally {
    $("survey-submit").disabled = false;
  }
});

$("survey-cancel").addEventListener("click", () => {
  $("survey-panel").hidden = true;
  current = null;
  loadDue(page);
});
$("due-refresh").addEventListener("click", () => loadDue());
$("prev").addEventListener("click", () => loadDue(Math.max(1, page - 1)));
$("next").addEventListener("click", () => loadDue(page + 1));

async function loadStats() {
  if (document.body.dataset.mayReport !== "true") return;
  const { ok, data } = await api("/api/survey/engineers");
  if (!ok) return;
  fill($("stats-head"), h("tr", {}, h("th", {}, "工程师"), h("th", {}, "回访数"),
    data.questions.map((q) => h("th", {}, q.label)), h("th", {}, "平均"), h("th", {}, "低分单"), h("th", {}, "投诉")));
  fill($("stats-body"), data.items.map((e) => h("tr", { testid: "stats-row", dataset: { engineerId: e.engineer_id ?? "" } },
    h("td", { testid: "stats-engineer" }, e.engineer),
    h("td", { class: "num" }, String(e.surveys)),
    data.questions.map((q) => h("td", { class: `num ${e.averages[q.key] <= 3 ? "score-low" : ""}` }, e.averages[q.key].toFixed(2))),
    h("td", { class: "num strong", testid: "stats-average" }, e.average.toFixed(2)),
    h("td", { class: "num" }, String(e.dissatisfied)),
    h("td", { class: "num", testid: "stats-complaints" }, String(e.complaints)))));
  $("stats-empty").hidden = data.items.length > 0;
}

loadDue(1);
loadStats();
