// convoyui: the little script the dashboard needs. Everything works
// without it; it adds a confirmation before actions that disable an
// endpoint or re-send in bulk, and keeps a form from being sent twice.
"use strict";
document.addEventListener("submit", function (e) {
  var form = e.target;
  var button = e.submitter || form.querySelector("button");
  var question = (button && button.dataset.confirm) || form.dataset.confirm;
  if (question && !window.confirm(question)) {
    e.preventDefault();
    return;
  }
  if (form.method.toLowerCase() === "post") {
    if (form.dataset.sent) {
      e.preventDefault();
      return;
    }
    form.dataset.sent = "1";
    if (button) {
      button.setAttribute("aria-busy", "true");
    }
  }
});
window.addEventListener("pageshow", function () {
  document.querySelectorAll("form[data-sent]").forEach(function (form) {
    delete form.dataset.sent;
    form.querySelectorAll("[aria-busy]").forEach(function (b) { b.removeAttribute("aria-busy"); });
  });
});
