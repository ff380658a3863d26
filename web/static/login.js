// The login form: JSON to POST /api/session (same origin), then on to `next`.

const form = document.getElementById("login-form");
const errorBox = document.getElementById("login-error");
const submit = form.querySelector("button[type=submit]");

/** Only a path on this site: "//evil.example", "https://…", "/\t/evil.example" (browsers drop
 * tabs and newlines from URLs) or "/.//evil.example/" (the dot segment is resolved away, leaving
 * "//evil.example/") would make the login page an open redirect. The browser's own URL parser
 * decides; the result must stay on this origin *and* be a path the browser will not read as
 * another host when it is navigated to. The server checks `next` too (callcenter/web/pages.py). */
function safeNext(raw) {
  if (typeof raw !== "string" || !raw.startsWith("/")) {
    return "/";
  }
  let url;
  try {
    url = new URL(raw, window.location.origin);
  } catch {
    return "/";
  }
  const path = url.pathname;
  if (url.origin !== window.location.origin || !path.startsWith("/") || path.startsWith("//")
      || path.startsWith("/\\")) {
    return "/";
  }
  return path + url.search + url.hash;
}

function showError(text) {
  errorBox.textContent = text;
  errorBox.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = form.username.value.trim();
  const password = form.password.value;
  if (!username || !password) {
    showError(!username ? "请输入用户名" : "请输入密码");
    (!username ? form.username : form.password).focus();
    return;
  }
  errorBox.hidden = true;
  submit.disabled = true;
  submit.textContent = "登录中…";
  try {
    const resp = await fetch("/api/session", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      credentials: "same-origin",
      body: JSON.stringify({ username, password }),
    });
    if (resp.ok) {
      window.location.assign(safeNext(form.dataset.next));
      return;
    }
    if (resp.status === 401) {
      showError("用户名或密码错误");
      form.password.value = "";
      form.password.focus();
    } else if (resp.status === 422) {
      showError("请填写用户名和密码");
    } else if (resp.status === 429) {
      showError("尝试次数过多，请稍后再试");
    } else {
      showError(`登录失败（服务器错误 ${resp.status}），请稍后再试`);
    }
  } catch (err) {
    showError("无法连接服务器，请检查网络");
  } finally {
    submit.disabled = false;
    submit.textContent = "登录";
  }
});
