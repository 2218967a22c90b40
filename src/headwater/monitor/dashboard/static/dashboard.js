// headwater dashboard: refresh the page's content in place, show times in the reader's zone,
// and run the actions (which need the API key the server was started with).
(function () {
  "use strict";
  const body = document.body;
  const every = Math.max(1, parseInt(body.dataset.refresh || "5", 10)) * 1000;
  const main = document.getElementById("content");
  const pulse = document.getElementById("pulse");
  const liveText = document.getElementById("live-text");
  const toast = document.getElementById("toast");
  let timer = null;

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      const at = new Date(el.getAttribute("datetime"));
      if (!isNaN(at)) {
        el.title = el.textContent;
        el.textContent = at.toLocaleString(undefined, {
          month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit"
        });
      }
    });
  }

  function say(text) {
    toast.textContent = text;
    toast.classList.add("show");
    setTimeout(function () { toast.classList.remove("show"); }, 5000);
  }

  async function refresh() {
    try {
      const response = await fetch("/content", { cache: "no-store" });
      if (!response.ok) throw new Error(response.status + " " + response.statusText);
      const html = await response.text();
      const x = window.scrollX, y = window.scrollY;
      main.innerHTML = html;
      localTimes(main);
      window.scrollTo(x, y);
      pulse.classList.remove("down");
      pulse.classList.remove("beat");
      void pulse.offsetWidth;
      pulse.classList.add("beat");
      liveText.textContent = "refreshes every " + every / 1000 + " s";
      body.dataset.refreshed = String(Date.now());
    } catch (error) {
      pulse.classList.add("down");
      liveText.textContent = "cannot reach the dashboard server, retrying";
    }
  }

  function schedule() {
    clearInterval(timer);
    timer = setInterval(function () { if (!document.hidden) refresh(); }, every);
  }

  async function act(button) {
    let key = sessionStorage.getItem("headwater-api-key");
    if (!key) {
      key = window.prompt("API key (HEADWATER_MONITOR_API_KEY of the server)");
      if (!key) return;
    }
    button.disabled = true;
    try {
      const response = await fetch(button.dataset.url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-API-Key": key },
        body: button.dataset.body
      });
      const answer = await response.json();
      if (response.status === 401) sessionStorage.removeItem("headwater-api-key");
      if (!response.ok) { say("not done: " + (answer.detail || response.status)); return; }
      sessionStorage.setItem("headwater-api-key", key);
      say(answer.message);
      refresh();
    } catch (error) {
      say("not done: " + error);
    } finally {
      button.disabled = false;
    }
  }

  main.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-action='post']");
    if (button && !button.disabled) act(button);
  });
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
  localTimes(main);
  schedule();
})();
