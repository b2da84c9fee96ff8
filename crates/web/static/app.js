// dialtone web UI: the narrow-screen menu, the escalation words for the chosen kind, and no
// double submits. Long checks: see check.js.
document.documentElement.classList.add("js");
document.addEventListener("submit", function (ev) {
  var form = ev.target;
  if (form.hasAttribute("data-long-check")) { return; } // check.js handles it
  if (form.classList.contains("check-form")) {
    var p = form.querySelector(".progress");
    if (p) { p.hidden = false; }
  }
  // Disable the buttons after the browser has read the clicked one's name/value.
  setTimeout(function () {
    form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
  }, 0);
});
document.addEventListener("DOMContentLoaded", function () {
  var toggle = document.querySelector(".menu-toggle");
  if (toggle) {
    toggle.addEventListener("click", function () {
      var header = toggle.closest("header");
      var open = header.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }
  // Escalate page: show what to tell the user for the chosen level and kind.
  var kind = document.querySelector("select[name=kind]");
  var level = document.querySelector("select[name=to_level]");
  function showWords() {
    var k = kind ? kind.value : "";
    var l = level ? level.value : "";
    var shown = false;
    document.querySelectorAll("[data-say-kind]").forEach(function (el) {
      var match = el.getAttribute("data-say-kind") === k && (k !== "" || el.getAttribute("data-say-level") === l);
      el.hidden = !match || shown;
      if (match) { shown = true; }
    });
  }
  if (kind || level) {
    if (kind) { kind.addEventListener("change", showWords); }
    if (level) { level.addEventListener("change", showWords); }
  }
});

// ---- Long checks ------------------------------------------------------------------------------
// Contract (for the step page): a <form method="post" data-long-check> is sent with fetch instead
// of a page load. While it runs:
//  * every <button> and submit <input> inside <main> is disabled (the answer buttons included),
//    except those marked data-keep-enabled;
//  * an element [data-check-status] inside the form (created at the form's end if absent) shows
//    "Running the check… N s" and a Cancel button;
//  * Cancel aborts the request and puts the page back as it was (the buttons enabled again),
//    saying the check was cancelled. A check still running on the server may record later;
//    reloading the page shows it.
// When the answer comes: a redirect is followed (location = final URL); any other answer (a
// conflict page, an error page) replaces the page. data-long-check="SECONDS" bounds the wait
// (default 300 s), after which it is cancelled as if the agent had pressed Cancel.
(function () {
  function controls() {
    var main = document.querySelector("main") || document.body;
    return Array.prototype.filter.call(
      main.querySelectorAll("button, input[type=submit]"),
      function (b) { return !b.hasAttribute("data-keep-enabled") && !b.hasAttribute("data-check-cancel"); });
  }
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.hasAttribute("data-long-check") || !window.fetch || !window.AbortController) { return; }
    ev.preventDefault();
    if (form.getAttribute("data-running") === "1") { return; }
    form.setAttribute("data-running", "1");
    var body = new URLSearchParams(new FormData(form));
    if (ev.submitter && ev.submitter.name) { body.append(ev.submitter.name, ev.submitter.value); }
    var disabled = controls().filter(function (b) { return !b.disabled; });
    disabled.forEach(function (b) { b.disabled = true; });
    var status = form.querySelector("[data-check-status]");
    if (!status) {
      status = document.createElement("span");
      status.setAttribute("data-check-status", "");
      form.appendChild(status);
    }
    status.className = "long-check-status";
    status.hidden = false;
    status.setAttribute("role", "status");
    status.textContent = "";
    var text = document.createElement("span");
    var cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "secondary";
    cancel.setAttribute("data-check-cancel", "");
    cancel.textContent = "Cancel";
    status.appendChild(text);
    status.appendChild(cancel);
    var started = Date.now();
    var limit = parseInt(form.getAttribute("data-long-check"), 10) || 300;
    function tick() {
      var s = Math.floor((Date.now() - started) / 1000);
      text.textContent = "Running the check\u2026 " + s + " s";
      if (s >= limit) { stop("The check took longer than " + limit + " s and was cancelled."); }
    }
    var ctl = new AbortController();
    var timer = setInterval(tick, 1000);
    tick();
    function stop(message) {
      clearInterval(timer);
      ctl.abort();
      disabled.forEach(function (b) { b.disabled = false; });
      form.removeAttribute("data-running");
      status.textContent = message;
    }
    cancel.addEventListener("click", function () {
      stop("Check cancelled. If it still finishes on the server, reloading the page shows it.");
    });
    fetch(form.action, {
      method: "POST",
      body: body,
      signal: ctl.signal,
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" }
    }).then(function (res) {
      clearInterval(timer);
      if (res.redirected) { window.location.assign(res.url); return; }
      return res.text().then(function (html) {
        document.open();
        document.write(html);
        document.close();
      });
    }).catch(function (err) {
      if (err && err.name === "AbortError") { return; }
      clearInterval(timer);
      disabled.forEach(function (b) { b.disabled = false; });
      form.removeAttribute("data-running");
      status.textContent = "The check could not be sent (" + (err && err.message ? err.message : "network error") + "). Try again.";
    });
  }, true);
})();
