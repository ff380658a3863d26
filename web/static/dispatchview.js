// How dispatch explains itself, shared by the board (dispatch.js) and the order page (order.js):
// candidates with distance, load, exclusion reasons and score; a score breakdown with the
// weights; the widened search's tiers; the record of decisions and refusals
// (GET /api/orders/{id}/dispatch/decisions). Names arrive masked from the API.

import { h } from "./dom.js";
import { dateTime, kv } from "./ui.js";

export const MODE_LABEL = { auto: "自动派单", manual: "人工派单" };
const COMPONENT_ORDER = ["distance", "load", "ftf", "satisfaction", "idle"];
const COMPONENT_LABEL = { distance: "距离", load: "负载", ftf: "一次修复率", satisfaction: "满意度", idle: "距上次派单" };

/** "李* · GY0005" from {name, staff_no} (or "#id" when unknown). */
export function personText(p, id) {
  if (!p) return id !== undefined && id !== null ? `#${id}` : "—";
  return [p.name, p.staff_no].filter(Boolean).join(" · ") || (id !== undefined ? `#${id}` : "—");
}

export function km(d) {
  return d === null || d === undefined ? "—" : `${Number(d).toFixed(1)} 公里`;
}

function pct(x) {
  return `${Math.round(x * 100)}%`;
}

/** The measured value of a score component, in words. */
function componentValue(name, v) {
  if (v === null || v === undefined) {
    return { ftf: "无完工记录", satisfaction: "无回访记录", idle: "从未派单" }[name] || "—";
  }
  if (name === "distance") return km(v);
  if (name === "load") return `${v} 单未完成`;
  if (name === "idle") return `${Number(v).toFixed(1)} 小时`;
  return pct(v);
}

/** The score breakdown: each component's value, 0–1 score, weight and weighted part; the total. */
export function scoreTable(score, weights, testid = "score-breakdown") {
  if (!score || !score.components) return h("p", { class: "empty-note" }, "无评分");
  const rows = COMPONENT_ORDER.filter((n) => score.components[n]).map((n) => {
    const c = score.components[n];
    const weight = weights?.[n] ?? c.weight;
    return h("tr", { testid: "score-row", dataset: { component: n } },
      h("td", {}, c.label || COMPONENT_LABEL[n] || n),
      h("td", {}, componentValue(n, c.value)),
      h("td", { class: "num" }, Number(c.score).toFixed(2)),
      h("td", { class: "num", testid: "score-weight" }, Number(weight).toFixed(2)),
      h("td", { class: "num" }, Number(c.weighted).toFixed(3)));
  });
  return h("table", { class: "grid score", testid },
    h("thead", {}, h("tr", {}, ["项目", "实际", "得分", "权重", "加权"].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows),
    h("tfoot", {}, h("tr", {}, h("td", { colspan: 4, class: "strong" }, "总分"),
      h("td", { class: "num strong", testid: "score-total" }, Number(score.total).toFixed(3)))));
}

function exclusionList(exclusions) {
  if (!exclusions?.length) return h("span", { class: "chip clock-ok", testid: "candidate-eligible" }, "符合");
  return h("ul", { class: "reasons", testid: "candidate-reasons" },
    exclusions.map((e) => h("li", { dataset: { code: e.code } }, e.reason)));
}

/**
 * Candidates (Assessment JSON) as a table: who, distance, load, why excluded or the score.
 * @param {object[]} candidates
 * @param {object} people   id → {name, staff_no}
 * @param {object} [o]
 * @param {(c: object) => void} [o.onPick]  adds a 派单 button to each eligible candidate
 * @param {boolean} [o.all]  also a button for the excluded (a dispatcher may overrule the rules)
 */
export function candidatesTable(candidates, people, { onPick, all = false, testid = "candidates" } = {}) {
  if (!candidates?.length) return h("p", { class: "empty-note", testid: `${testid}-empty` }, "范围内没有工程师");
  return h("div", { class: "table-scroll" }, h("table", { class: "grid candidates", testid },
    h("thead", {}, h("tr", {}, ["名次", "工程师", "距离", "未完成/上限", "结果", "总分", onPick ? "" : null]
      .filter((t) => t !== null).map((t) => h("th", {}, t)))),
    h("tbody", {}, candidates.map((c) => h("tr", {
      class: c.eligible ? "eligible" : "excluded", testid: "candidate",
      dataset: { engineerId: c.engineer_id, eligible: c.eligible ? "true" : "false" },
    },
    h("td", { class: "num" }, c.rank ?? "—"),
    h("td", { testid: "candidate-name" }, personText(people?.[c.engineer_id], c.engineer_id),
      c.cross_region ? h("span", { class: "chip small clock-warn" }, "跨区域") : null),
    h("td", { class: "nowrap", testid: "candidate-distance" }, km(c.distance_km),
      c.position_source === "last" ? h("span", { class: "muted small" }, " (实时)") : null),
    h("td", { class: "num" }, `${c.open_orders}/${c.load_cap}`),
    h("td", {}, exclusionList(c.exclusions)),
    h("td", { class: "num", testid: "candidate-score" }, c.score ? Number(c.score.total).toFixed(3) : "—"),
    onPick ? h("td", {}, c.eligible || all ? h("button", {
      type: "button", class: `btn btn-small${c.eligible ? " btn-primary" : ""}`, testid: "pick-engineer",
      onclick: () => onPick({ engineer_id: c.engineer_id, label: personText(people?.[c.engineer_id], c.engineer_id) }),
    }, "派单") : null) : null)))));
}

/** The widened search: each tier's suggestions (engineers or partner shops) and how many it left out, why. */
export function tiersView(tiers, people, { onPick } = {}) {
  return h("div", { class: "tiers", testid: "widened" }, tiers.map((t) => {
    const shops = t.name === "shops";
    const excluded = Object.entries(t.excluded || {});
    return h("div", { class: "tier", testid: "tier", dataset: { tier: t.name } },
      h("h3", {}, t.label, h("span", { class: "muted small" }, ` · ${t.suggestions.length} 个建议`)),
      t.suggestions.length
        ? (shops ? shopTable(t.suggestions, onPick) : candidatesTable(t.suggestions, people, { onPick, testid: "tier-candidates" }))
        : h("p", { class: "empty-note" }, "没有建议"),
      excluded.length ? h("p", { class: "muted small", testid: "tier-excluded" },
        "未入选：", excluded.map(([code, n]) => `${REASON_LABEL[code] || code} ${n}`).join("，")) : null);
  }));
}

function shopTable(shops, onPick) {
  return h("table", { class: "grid", testid: "tier-shops" },
    h("thead", {}, h("tr", {}, ["名次", "合作网点", "距离", "在修/容量", onPick ? "" : null].filter((t) => t !== null).map((t) => h("th", {}, t)))),
    h("tbody", {}, shops.map((s) => h("tr", { testid: "shop", dataset: { shopId: s.shop_id } },
      h("td", { class: "num" }, s.rank ?? "—"),
      h("td", { testid: "shop-name" }, s.name),
      h("td", { class: "nowrap" }, km(s.distance_km)),
      h("td", { class: "num" }, `${s.open_orders}/${s.capacity}`),
      onPick ? h("td", {}, h("button", {
        type: "button", class: "btn btn-small btn-primary", testid: "pick-shop",
        onclick: () => onPick({ shop_id: s.shop_id, label: `合作网点 ${s.name}` }),
      }, "派给网点")) : null))));
}

// Exclusion codes → short labels (as callcenter/dispatch/board.py REASON_LABELS counts them).
export const REASON_LABEL = {
  inactive: "停止派单", refused: "已拒单", no_skill: "无此品类技能", no_certificate: "缺少证书",
  certificate_expired: "证书过期", no_position: "位置未知", too_far: "距离过远", at_capacity: "工单已满",
  on_leave: "休假", off_duty: "不在工作时间", category_unknown: "未注明产品品类", order_unlocated: "客户地址未定位",
  category_not_served: "不承接此品类", shop_full: "网点已满",
};

/** What a decision chose, in words. */
export function decisionOutcome(d) {
  if (d.engineer_id) return `派给 ${personText(d.engineer, d.engineer_id)}`;
  if (d.shop_id) return `派给合作网点 ${d.shop_name || `#${d.shop_id}`}`;
  return "无人符合条件，转人工派单";
}

/** The order page's 派单记录: every decision (newest first) and the refusals. */
export function decisionsView(data) {
  const people = data.people || {};
  const decisions = data.decisions || [];
  const refusals = data.refusals || [];
  return h("div", { testid: "dispatch-record" },
    decisions.length ? h("ol", { class: "decisions" }, decisions.map((d, i) => {
      const winner = (d.candidates || []).find((c) => c.engineer_id === d.engineer_id && c.score);
      const score = d.score && d.score.components ? d.score : winner?.score;
      return h("li", { class: "decision", testid: "decision", dataset: { id: d.id, mode: d.mode } },
        h("div", { class: "decision-head" },
          h("span", { class: "when" }, dateTime(d.at)),
          h("span", { class: `chip ${d.mode === "auto" ? "status" : "clock-warn"}`, testid: "decision-mode" }, MODE_LABEL[d.mode] || d.mode),
          h("span", { class: "strong", testid: "decision-outcome" }, decisionOutcome(d))),
        kv([
          ["操作人", d.mode === "manual" ? personText(d.decided_by) : "系统（派单规则）", "decision-by"],
          ["原因", d.reason || undefined, "decision-reason"],
          ["规则版本", d.rule_version || undefined],
          ["权重", d.weights && Object.keys(d.weights).length
            ? COMPONENT_ORDER.filter((n) => n in d.weights).map((n) => `${COMPONENT_LABEL[n]} ${d.weights[n]}`).join("，")
            : undefined, "decision-weights"],
        ]),
        score ? h("div", {}, h("h3", {}, "中选工程师评分"), scoreTable(score, d.weights)) : null,
        h("details", { testid: "decision-candidates", open: i === 0 },
          h("summary", {}, `参与评估的工程师 ${d.candidates?.length || 0} 人`),
          candidatesTable(d.candidates || [], people)));
    })) : h("p", { class: "empty-note", testid: "decisions-empty" }, "暂无派单记录"),
    h("h3", {}, "拒单记录"),
    refusals.length ? h("table", { class: "grid", testid: "refusals" },
      h("thead", {}, h("tr", {}, ["时间", "工程师", "原因", "说明"].map((t) => h("th", {}, t)))),
      h("tbody", {}, refusals.map((r) => h("tr", { testid: "refusal", dataset: { timedOut: r.timed_out ? "true" : "false" } },
        h("td", { class: "nowrap" }, dateTime(r.at)),
        h("td", {}, personText(r.engineer, r.engineer_id)),
        h("td", { testid: "refusal-reason" }, r.timed_out ? "超时未接单" : r.reason),
        h("td", {}, r.note || "—")))))
      : h("p", { class: "empty-note", testid: "refusals-empty" }, "暂无拒单"));
}
