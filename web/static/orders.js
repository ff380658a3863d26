// 工单查询: the search form over GET /api/orders, paged; the search lives in the address bar
// (except the phone number, which must not end up in the browser's history).

import { api, clearFormErrors, query, showFormError } from "./api.js";
import { fill, h } from "./dom.js";
import { $, fmt, statusChip, urgencyChip } from "./ui.js";

const form = $("search-form");
const FIELDS = ["phone", "name", "number", "model", "serial", "engineer", "status", "urgency", "from", "to"];
const PAGE_SIZE = 20;
let page = 1;

function criteria() {
  const out = {};
  for (const name of FIELDS) out[name] = form.elements[name].value.trim();
  return out;
}

async function search(toPage) {
  clearFormErrors(form);
  const c = criteria();
  const { ok, status, data } = await api(`/api/orders${query({ ...c, page: toPage, page_size: PAGE_SIZE })}`);
  if (!ok) {
    showFormError(form, status, data);
    return;
  }
  page = toPage;
  const { phone, ...shareable } = c;
  history.replaceState(null, "", location.pathname + query({ ...shareable, page: page > 1 ? page : "" }));
  render(data);
}

function render(data) {
  fill($("orders-body"), data.items.map((o) => h("tr", { testid: "order-row", dataset: { number: o.number, id: o.id } },
    h("td", { class: "mono strong nowrap" }, h("a", { href: `/orders/${o.id}`, testid: "order-link" }, o.number)),
    h("td", { class: "nowrap" }, `${fmt.date(o.created_at)} ${fmt.time(o.created_at).slice(0, 5)}`),
    h("td", {}, statusChip(o.status, "order-status")),
    h("td", {}, urgencyChip(o.urgency, "order-urgency")),
    h("td", { testid: "order-customer" }, o.customer?.name || "—"),
    h("td", { class: "mono", testid: "order-phone" }, o.customer?.phone || "—"),
    h("td", {}, o.address || "—"),
    h("td", {}, o.service_type),
    h("td", {}, o.product_model || "—"),
    h("td", { class: "mono" }, o.serial || "—"),
    h("td", {}, o.engineer ? `${o.engineer.name}${o.engineer.staff_no ? ` · ${o.engineer.staff_no}` : ""}` : "—"),
    h("td", { class: "problem", title: o.problem || "" }, o.problem || "—"))));
  $("orders-empty").hidden = data.items.length > 0;
  const total = `${data.total}${data.total_capped ? "+" : ""}`;
  $("result-count").textContent = `共 ${total} 条`;
  $("page-info").textContent = `第 ${data.page} 页`;
  $("prev").disabled = data.page <= 1;
  $("next").disabled = !data.has_more;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  search(1);
});
$("search-reset").addEventListener("click", () => {
  form.reset();
  search(1);
});
$("prev").addEventListener("click", () => search(Math.max(1, page - 1)));
$("next").addEventListener("click", () => search(page + 1));

const initial = new URLSearchParams(location.search);
for (const name of FIELDS) {
  if (name !== "phone" && initial.get(name)) form.elements[name].value = initial.get(name);
}
search(Math.max(1, Number(initial.get("page")) || 1));
