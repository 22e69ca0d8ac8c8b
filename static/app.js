// watchpost dashboard behaviour on top of htmx. Everything works without this file; it
// only adds: inline errors for failed htmx requests, paused polling in hidden tabs, and
// the copy button for new API tokens. No eval, no inline scripts (strict CSP).
(function () {
  "use strict";

  function showError(message) {
    var box = document.getElementById("htmx-error");
    if (!box) { return; }
    box.textContent = message;
    box.hidden = false;
    clearTimeout(showError.timer);
    showError.timer = setTimeout(function () { box.hidden = true; }, 8000);
  }

  // htmx does not swap 4xx/5xx responses; say what happened instead of leaving stale data.
  document.addEventListener("htmx:responseError", function (evt) {
    var xhr = evt.detail.xhr;
    var text = "Request failed (" + xhr.status + ").";
    if (xhr.status === 429 || xhr.status === 503) { text = "The server is busy; retrying shortly."; }
    if (xhr.status === 403) { text = "Not allowed. Your session may have expired; reload the page."; }
    showError(text);
  });
  document.addEventListener("htmx:sendError", function () {
    showError("Cannot reach the server. Retrying…");
  });
  document.addEventListener("htmx:afterRequest", function (evt) {
    if (evt.detail.successful) {
      var box = document.getElementById("htmx-error");
      if (box && !box.hidden && evt.detail.elt && evt.detail.elt.hasAttribute("data-poll")) { box.hidden = true; }
    }
  });

  // Polling elements skip their request while the tab is hidden.
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var elt = evt.detail.elt;
    if (document.hidden && elt && elt.hasAttribute("data-poll")) { evt.preventDefault(); }
  });

  document.addEventListener("click", function (evt) {
    var btn = evt.target.closest ? evt.target.closest("button[data-copy]") : null;
    if (!btn) { return; }
    var input = document.getElementById(btn.getAttribute("data-copy"));
    if (!input) { return; }
    input.select();
    var done = function () { btn.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
    } else {
      document.execCommand("copy");
      done();
    }
  });
})();
