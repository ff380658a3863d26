// The user's websocket (GET /ws?last_seq=N), shared by the desk and the alerts page.
//
// Protocol: a "hello" first (current seq, user, AMI state), then numbered messages (call.*,
// sla.alert …), or "resync" when the gap was too big to replay. The last seq is kept in
// sessionStorage so a reconnect (or a page reload) replays what was missed; messages at or
// below it are dropped as already seen.

// Reconnect delays, seconds: 1 s, 2 s, 4 s, 8 s, then every 10 s.
const BACKOFF = [1, 2, 4, 8, 10];
const PING_EVERY_MS = 20_000;
// No frame at all (not even a pong) for this long: the socket is dead though not closed.
const SILENCE_LIMIT_MS = 50_000;

// The sessionStorage key holding the last seq seen by this user in this tab (api.js forgets
// every "callcenter.lastSeq.*" on logout).
const seqKey = (userId) => `callcenter.lastSeq.${userId || "0"}`;

const STATE_LABELS = { connecting: "连接中…", open: "实时更新", reconnecting: "重连中…" };

/** Show the connection state in a page's indicator (``#ws-state`` with a ``.conn-label``);
 * pass it as ``onState``. */
export function showConnState(state, el = document.getElementById("ws-state")) {
  if (!el) return;
  el.dataset.state = state;
  el.querySelector(".conn-label").textContent = STATE_LABELS[state] || state;
}

/**
 * Connect and keep connected.
 * @param {object} o
 * @param {string|number} o.userId  whose sequence numbers these are
 * @param {(state: "connecting"|"open"|"reconnecting") => void} [o.onState]
 * @param {(hello: object) => void} [o.onHello]   after every (re)connection
 * @param {(msg: object) => void} [o.onResync]     messages were lost: reload what is shown
 * @param {(msg: object) => void} o.onMessage      every new numbered (or unnumbered) message
 * @param {() => void} [o.onRefused]               a connection closed before opening (ask
 *                                                 whether the session is still valid)
 */
export function openLive(o) {
  const key = seqKey(o.userId);
  const ws = { socket: null, attempt: 0, pingTimer: 0, retryTimer: 0, lastFrame: 0, everOpened: false };
  const state = (s) => o.onState?.(s);

  const readSeq = () => {
    const raw = sessionStorage.getItem(key);
    return raw !== null && /^\d+$/.test(raw) ? Number(raw) : null;
  };
  const writeSeq = (seq) => sessionStorage.setItem(key, String(seq));

  function connect() {
    clearTimeout(ws.retryTimer);
    const seq = readSeq();
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${proto}//${location.host}/ws${seq !== null ? `?last_seq=${seq}` : ""}`;
    state(ws.everOpened ? "reconnecting" : "connecting");
    let opened = false;
    const socket = new WebSocket(url);
    ws.socket = socket;

    socket.addEventListener("open", () => {
      opened = true;
      ws.lastFrame = Date.now();
      clearInterval(ws.pingTimer);
      ws.pingTimer = setInterval(() => {
        if (Date.now() - ws.lastFrame > SILENCE_LIMIT_MS) {
          socket.close(4000, "silent");
          return;
        }
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
      }, PING_EVERY_MS);
    });

    socket.addEventListener("message", (event) => {
      ws.lastFrame = Date.now();
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (msg && typeof msg === "object") receive(socket, msg);
    });

    socket.addEventListener("close", () => {
      clearInterval(ws.pingTimer);
      if (ws.socket !== socket) return;
      ws.socket = null;
      state("reconnecting");
      if (!opened) o.onRefused?.();
      const delay = BACKOFF[Math.min(ws.attempt, BACKOFF.length - 1)];
      ws.attempt += 1;
      ws.retryTimer = setTimeout(connect, delay * 1000);
    });
  }

  function receive(socket, msg) {
    const stored = readSeq();
    if (msg.type === "hello") {
      ws.attempt = 0;
      ws.everOpened = true;
      state("open");
      const seq = Number(msg.seq) || 0;
      if (stored !== null && seq < stored) {
        // The server lost its numbering (restart without Redis): what we hold is ahead of it and
        // the server would skip its next messages as already seen. Start over from its number.
        writeSeq(seq);
        o.onHello?.(msg);
        socket.close(4001, "seq reset");
        ws.attempt = 0;
        return;
      }
      if (stored === null) writeSeq(seq);
      o.onHello?.(msg);
      return;
    }
    if (msg.type === "pong") return;
    if (msg.type === "resync") {
      if (typeof msg.seq === "number") writeSeq(msg.seq);
      o.onResync?.(msg);
      return;
    }
    if (typeof msg.seq === "number") {
      if (stored !== null && msg.seq <= stored) return; // already seen (a replay overlap)
      writeSeq(msg.seq);
    }
    o.onMessage(msg);
  }

  connect();
}
