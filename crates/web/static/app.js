// dialtone web UI: shows progress while an automated check runs, and stops double submits.
document.addEventListener("submit", function (ev) {
  var form = ev.target;
  if (form.classList.contains("check-form")) {
    var p = form.querySelector(".progress");
    if (p) { p.hidden = false; }
  }
  // Disable the buttons after the browser has read the clicked one's name/value.
  setTimeout(function () {
    form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
  }, 0);
});
