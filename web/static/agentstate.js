// The agent's own state on the desk: 暂停 with a reason from the configured list, 恢复, and
// the queues they are logged in to. GET /api/agent-state for the start; each change arrives as
// an "agent.state" message on the desk's websocket (and as the answer of the action itself).

import { api, errorText, toast } from "./api.js";
import { duration, fill, h } from "./dom.js";

// The desk shows the pause state (ringing and talking are on the pops): paused when paused in
// every queue the agent is in.
const pausedIn = (a) => a && a.queues.length > 0 && a.queues.every((q) => q.paused);
const $ = (id) => document.getElementById(id);
let agent = null;
let queues = [];
let offset = 0;

function render() {
  const state = !agent || agent.queues.length === 0 ? "none" : pausedIn(agent) ? "paused" : "ready";
  const reason = agent?.queues.find((q) => q.paused)?.reason;
  $("agent-state").dataset.state = state;
  $("as-state").textContent = { none: "未登录队列", paused: reason ? `暂停 · ${reason}` : "暂停", ready: "就绪" }[state];
  $("as-pause").hidden = state !== "ready";
  $("as-reason").hidden = state !== "ready";
  $("as-resume").hidden = state !== "paused";
  tick();
}

function tick() {
  const show = pausedIn(agent) && agent.state === "paused" && agent.since_ms;
  $("as-since").textContent = show ? duration((Date.now() + offset - agent.since_ms) / 1000) : "";
}

/** A new state for this agent (from the websocket or an action's answer). */
export function takeAgent(row, atMs = null) {
  agent = row;
  if (atMs) offset = atMs - Date.now();
  render();
}

export async function loadAgentState() {
  const { ok, data } = await api("/api/agent-state");
  if (!ok) return;
  queues = data.queues;
  fill($("as-reason"), data.reasons.map((r) => h("option", { value: r }, r)));
  takeAgent(data.agent, data.at_ms);
}

async function act(path, json) {
  const { ok, status, data } = await api(path, { method: "POST", json });
  if (!ok) {
    toast(errorText(status, data), "error");
    return false;
  }
  takeAgent(data.agent);
  return true;
}

function openQueues() {
  const mine = new Map((agent?.queues || []).map((m) => [m.queue, m]));
  fill($("queues-choices"), queues.map((q) => {
    const m = mine.get(q);
    return h("label", {}, h("input", {
      type: "checkbox", value: q, checked: Boolean(m), disabled: Boolean(m && !m.dynamic), testid: "queue-choice",
    }), q);
  }));
  $("queues-error").hidden = true;
  $("queues-dialog").showModal();
}

async function saveQueues(ev) {
  ev.preventDefault();
  const mine = new Set((agent?.queues || []).map((m) => m.queue));
  const boxes = [...$("queues-choices").querySelectorAll("input:not(:disabled)")];
  const add = boxes.filter((b) => b.checked && !mine.has(b.value)).map((b) => b.value);
  const remove = boxes.filter((b) => !b.checked && mine.has(b.value)).map((b) => b.value);
  for (const [action, list] of [["login", add], ["logout", remove]]) {
    if (!list.length) continue;
    const { ok, status, data } = await api("/api/agent-state/queues", { method: "POST", json: { action, queues: list } });
    if (!ok) {
      $("queues-error").textContent = errorText(status, data);
      $("queues-error").hidden = false;
      return;
    }
    takeAgent(data.agent);
  }
  $("queues-dialog").close();
}

export function setUpAgentState() {
  $("as-pause").addEventListener("click", () => act("/api/agent-state/pause", { reason: $("as-reason").value }));
  $("as-resume").addEventListener("click", () => act("/api/agent-state/resume"));
  $("as-queues").addEventListener("click", openQueues);
  $("queues-cancel").addEventListener("click", () => $("queues-dialog").close());
  $("queues-form").addEventListener("submit", saveQueues);
  setInterval(tick, 1000);
  render();
  loadAgentState();
}
