// One screen-pop card: the caller's context (from call.ringing) and the call's live state
// (ringing → answered → ended, or missed / abandoned). Built from DOM nodes only.

import { clock, duration, h, fill } from "./dom.js";

export const OUTCOME_LABEL = { answered: "已接", abandoned: "放弃", unanswered: "未接" };
const STATE_LABEL = { queued: "排队中", ringing: "振铃中", answered: "通话中", ended: "已结束" };
const MISSED_REASON = {
  no_answer: "未接听",
  answered_elsewhere: "已由其他坐席接听",
};
const KIND_LABEL = { mobile: "手机", landline: "固话", service: "服务号码", other: "其他号码" };
const WARRANTY = {
  in: { label: "保内", cls: "w-in" },
  out: { label: "保外", cls: "w-out" },
  unknown: { label: "保修未知", cls: "w-unknown" },
};
const URGENCY_CLASS = { 普通: "u-normal", 紧急: "u-urgent", 特急: "u-critical" };

/** A finished card can be dismissed; a live one cannot. */
export const FINISHED = new Set(["missed", "abandoned", "ended"]);

export function outcomeText(outcome, state) {
  if (outcome) return OUTCOME_LABEL[outcome] || outcome;
  return STATE_LABEL[state] || "进行中";
}

function urgencyChip(urgency) {
  return h("span", { class: `chip ${URGENCY_CLASS[urgency] || "u-normal"}`, testid: "order-urgency" }, urgency || "普通");
}

function section(title, testid, ...content) {
  return h("section", { class: "pop-section", testid }, h("h4", {}, title), ...content);
}

function table(headers, rows, emptyText) {
  if (!rows.length) return h("p", { class: "muted" }, emptyText);
  return h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))),
    h("tbody", {}, rows));
}

function warrantyCell(w) {
  const info = WARRANTY[w?.status] || WARRANTY.unknown;
  let detail = "无购买日期";
  if (w?.status === "in") {
    detail = `至 ${w.expires ?? "—"}` + (w.days_left !== null && w.days_left !== undefined ? ` · 剩 ${w.days_left} 天` : "");
  } else if (w?.status === "out") {
    detail = w.expires ? `${w.expires} 已过保` : "已过保";
  }
  const soon = w?.status === "in" && typeof w.days_left === "number" && w.days_left <= 30;
  return h("td", { class: "warranty" },
    h("span", { class: `chip ${info.cls}`, testid: "warranty-status", dataset: { status: w?.status || "unknown" } }, info.label),
    " ",
    h("span", { class: soon ? "warn-text" : "muted" }, detail));
}

function applianceRows(history) {
  const repeat = new Set(history.repeat_repair_appliance_ids || []);
  return (history.appliances || []).map((a) => h("tr", { testid: "appliance-row", dataset: { id: a.id } },
    h("td", {}, a.category || "—"),
    h("td", {}, h("span", { class: "strong" }, [a.brand, a.model].filter(Boolean).join(" ") || "—"),
      repeat.has(a.id) ? h("span", { class: "chip badge-repair small" }, "重复维修") : null),
    h("td", { class: "mono" }, a.serial || "—"),
    h("td", {}, a.purchase_date || "—"),
    warrantyCell(a.warranty)));
}

function orderRows(orders, testid, appliances, fmt) {
  const byId = new Map((appliances || []).map((a) => [a.id, a]));
  return orders.map((o) => {
    const a = byId.get(o.appliance_id);
    return h("tr", { testid, dataset: { number: o.number, urgency: o.urgency } },
      h("td", { class: "mono strong", testid: "order-number" }, o.number),
      h("td", {}, h("span", { class: "chip status" }, o.status)),
      h("td", {}, urgencyChip(o.urgency)),
      h("td", {}, o.service_type || "—"),
      h("td", {}, a ? [a.category, a.model].filter(Boolean).join(" ") : "—"),
      h("td", { class: "problem", title: o.problem || "" }, o.problem || "—"),
      h("td", { class: "nowrap" }, fmt.date(o.created_at)));
  });
}

export class PopCard {
  /**
   * @param {object} msg the first message seen for this call (normally call.ringing)
   * @param {object} env {fmt, onNewCustomer(card), onDismiss(card), onToggle(card)}
   */
  constructor(msg, env) {
    this.id = msg.call.id;
    this.env = env;
    this.call = msg.call;
    this.customer = msg.customer ?? null;
    this.history = msg.history ?? null;
    this.lookupFailed = msg.lookup === "unavailable";
    // An outbound callback or survey call: {kind, order_number, reason, …} (callcenter.outbound).
    this.callback = msg.callback ?? null;
    this.state = "ringing";
    this.reason = null;
    this.collapsed = false;
    this.createdCustomer = false;
    this.el = h("article", { class: "pop", testid: "pop-card", dataset: { callId: this.id } });
    this.head = h("header", { class: "pop-head" });
    this.body = h("div", { class: "pop-body" });
    this.el.append(this.head, this.body);
    this.apply(msg);
  }

  get finished() {
    return FINISHED.has(this.state);
  }

  /** Fold a call.* message into the card and redraw. */
  apply(msg) {
    this.call = msg.call;
    if (msg.customer !== undefined && (msg.customer !== null || this.customer === null)) this.customer = msg.customer;
    if (msg.history) this.history = msg.history;
    if (msg.callback) this.callback = msg.callback;
    if (msg.type === "call.ringing") this.lookupFailed = msg.lookup === "unavailable" && !this.history;
    this.state = {
      "call.ringing": "ringing",
      "call.answered": "answered",
      "call.missed": "missed",
      "call.abandoned": "abandoned",
      "call.ended": "ended",
    }[msg.type] || this.state;
    this.reason = msg.reason ?? null;
    // An answered call's card is what the agent works on: keep it open.
    if (this.state === "answered" || this.state === "ringing") this.collapsed = false;
    this.render();
  }

  /** The agent registered the caller from this card: show the new (masked) record. */
  customerCreated(created) {
    const { appliances, ...customer } = created;
    this.customer = customer;
    this.createdCustomer = true;
    this.history = {
      ...(this.history || {}), new_caller: false, appliances: appliances || [],
      open_orders: this.history?.open_orders || [], recent_orders: this.history?.recent_orders || [],
    };
    this.render();
  }

  setCollapsed(collapsed) {
    this.collapsed = collapsed;
    this.render();
  }

  anonymous() {
    return Boolean(this.call.anonymous || this.history?.anonymous);
  }

  /** Seconds talking so far (answered_at from the server; the same clock in the centre). */
  talkSeconds(now = Date.now()) {
    const t = Date.parse(this.call.answered_at || "");
    return Number.isNaN(t) ? 0 : Math.max(0, (now - t) / 1000);
  }

  statusChip() {
    const c = this.call;
    switch (this.state) {
      case "ringing":
        return h("span", { class: "state state-ringing", testid: "pop-state", dataset: { state: "ringing" } }, "来电");
      case "answered":
        return h("span", { class: "state state-answered", testid: "pop-state", dataset: { state: "answered" } },
          "通话中 ", h("span", { class: "timer", testid: "pop-timer" }, clock(this.talkSeconds())));
      case "missed":
        return h("span", { class: "state state-missed", testid: "pop-state", dataset: { state: "missed" } },
          "未接 · ", MISSED_REASON[this.reason] || "未接听");
      case "abandoned":
        return h("span", { class: "state state-abandoned", testid: "pop-state", dataset: { state: "abandoned" } }, "客户已挂断");
      default:
        return h("span", { class: "state state-ended", testid: "pop-state", dataset: { state: "ended" } },
          "已结束 · 通话 ", h("span", { testid: "pop-talk" }, duration(c.talk_s)));
    }
  }

  /** Ticks the running timer without redrawing the card. */
  tick(now) {
    if (this.state !== "answered") return;
    const t = this.head.querySelector("[data-testid=pop-timer]");
    if (t) t.textContent = clock(this.talkSeconds(now));
  }

  render() {
    const { fmt } = this.env;
    const c = this.call;
    const anon = this.anonymous();
    this.el.dataset.state = this.state;
    this.el.classList.toggle("collapsed", this.collapsed);
    const kind = this.history?.caller_kind;
    const name = this.customer?.name;
    fill(this.head,
      h("div", { class: "pop-title" },
        this.statusChip(),
        anon
          ? h("span", { class: "caller anonymous", testid: "pop-caller", dataset: { anonymous: "true" } }, "匿名来电")
          : h("span", { class: "caller", testid: "pop-caller" }, c.caller || this.history?.caller || "号码未知"),
        kind && !anon ? h("span", { class: "muted small" }, KIND_LABEL[kind] || kind) : null,
        name ? h("span", { class: "head-customer" }, name) : null),
      h("div", { class: "pop-meta" },
        h("span", { testid: "pop-queue" }, "队列 ", h("b", {}, c.queue || "—")),
        h("span", { testid: "pop-did" }, "热线 ", h("b", {}, c.did || "—")),
        h("span", { title: "来电时间" }, fmt.time(c.started_at)),
        h("button", {
          type: "button", class: "btn btn-small btn-ghost-dark", testid: "pop-toggle",
          "aria-expanded": String(!this.collapsed),
          onclick: () => this.env.onToggle(this),
        }, this.collapsed ? "展开" : "收起"),
        this.finished
          ? h("button", {
            type: "button", class: "btn btn-small btn-ghost-dark", testid: "pop-dismiss", title: "关闭此卡片",
            onclick: () => this.env.onDismiss(this),
          }, "×")
          : null));
    if (this.collapsed) {
      this.body.replaceChildren();
      return;
    }
    fill(this.body, this.badges(), this.customerBlock(), this.historyBlocks());
  }

  badges() {
    const hi = this.history;
    const list = [];
    if (hi?.new_caller && !this.customer) list.push(h("span", { class: "badge badge-new", testid: "badge-new-caller" }, "新客户"));
    if (hi?.repeat_caller) {
      list.push(h("span", { class: "badge badge-warn", testid: "badge-repeat-caller" },
        "重复来电", hi.calls_30d ? ` · 30天内来电 ${hi.calls_30d} 次` : ""));
    }
    if (this.callback) {
      const cb = this.callback;
      list.push(h("span", { class: "badge badge-warn", testid: "badge-callback" },
        cb.kind === "survey" ? "回访来电" : "回拨", cb.order_number ? ` · 工单 ${cb.order_number}` : "", ` · ${cb.reason}`));
    }
    if (hi?.repeat_repair) list.push(h("span", { class: "badge badge-danger", testid: "badge-repeat-repair" }, "重复维修"));
    if (this.createdCustomer) list.push(h("span", { class: "badge badge-new", testid: "badge-created" }, "本次来电新建"));
    if (this.lookupFailed) list.push(h("span", { class: "badge badge-muted", testid: "badge-lookup-failed" }, "客户资料暂不可用"));
    if (!list.length) return null;
    return h("div", { class: "badges" }, list);
  }

  customerBlock() {
    const cu = this.customer;
    const hi = this.history;
    if (cu) {
      return h("div", { class: "customer", testid: "pop-customer" },
        h("div", { class: "customer-main" },
          h("span", { class: "customer-name", testid: "pop-customer-name" }, cu.name || "—"),
          cu.level ? h("span", { class: "chip level", testid: "pop-customer-level" }, cu.level) : null,
          h("span", { class: "address", testid: "pop-address" }, cu.address || "地址未登记"),
          // A new tab: the desk keeps its pops while the agent fills the form.
          h("a", {
            class: "btn btn-primary btn-small intake-btn", testid: "new-intake-btn", target: "_blank", rel: "noopener",
            href: `/intake?${new URLSearchParams({ linkedid: this.id, customer_id: cu.id })}`,
          }, "新建受理"),
          this.env.onBookCallback
            ? h("button", {
              type: "button", class: "btn btn-small", testid: "book-callback-btn",
              onclick: () => this.env.onBookCallback(this),
            }, "预约回拨")
            : null),
        cu.phones?.length
          ? h("div", { class: "muted small" }, "登记电话 ", cu.phones.join("、"))
          : null,
        cu.remarks ? h("div", { class: "remarks", testid: "pop-remarks" }, "备注：", cu.remarks) : null);
    }
    const anon = this.anonymous();
    // call.ringing always brings the history (or says the lookup failed); a card without it
    // was opened by a later message (page reloaded mid-call), so there is nothing to wait for.
    const text = anon ? "号码未显示，无法自动识别客户" : hi?.new_caller ? "未登记的号码" : "无客户资料";
    return h("div", { class: "customer customer-unknown", testid: "pop-customer-unknown" },
      h("span", { class: "strong" }, text),
      h("button", {
        type: "button", class: "btn btn-primary btn-small", testid: "new-customer-btn",
        onclick: () => this.env.onNewCustomer(this),
      }, "新建客户"));
  }

  historyBlocks() {
    const hi = this.history;
    if (!hi || (!this.customer && !hi.recent_calls?.length)) return null;
    const out = [];
    if (this.customer) {
      out.push(section(`家电 (${hi.appliances.length})`, "pop-appliances",
        table(["品类", "品牌型号", "序列号", "购买日期", "保修"], applianceRows(hi), "未登记家电")));
      out.push(section(`未完成工单 (${hi.open_orders.length})`, "pop-open-orders",
        table(["工单号", "状态", "紧急程度", "服务类型", "产品", "问题", "创建"],
          orderRows(hi.open_orders, "open-order-row", hi.appliances, this.env.fmt), "没有未完成工单")));
      // Recent orders include the open ones: list only those not shown just above.
      const open = new Set(hi.open_orders.map((o) => o.number));
      const recent = (hi.recent_orders || []).filter((o) => !open.has(o.number));
      if (recent.length) {
        out.push(section(`近期工单 (${recent.length})`, "pop-recent-orders",
          table(["工单号", "状态", "紧急程度", "服务类型", "产品", "问题", "创建"],
            orderRows(recent, "recent-order-row", hi.appliances, this.env.fmt), "")));
      }
    }
    if (hi.recent_calls?.length) {
      const { fmt } = this.env;
      out.push(section(`近期来电 (${hi.recent_calls.length})`, "pop-recent-calls",
        table(["时间", "结果", "队列", "坐席", "通话"], hi.recent_calls.map((rc) => h("tr", { testid: "recent-call-row" },
          h("td", { class: "nowrap" }, fmt.dayTime(rc.started_at)),
          h("td", {}, h("span", { class: `chip o-${rc.outcome || "live"}` }, outcomeText(rc.outcome, null))),
          h("td", {}, rc.queue || "—"),
          h("td", {}, rc.agent_member || "—"),
          h("td", { class: "num" }, duration(rc.talk_s)))), "")));
    }
    return out;
  }
}
