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
