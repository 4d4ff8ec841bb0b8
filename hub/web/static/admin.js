/* The admin's own behaviour. It lives in this file, not in the pages, so that the
   Content-Security-Policy can refuse every inline script and event handler. */
(function () {
  "use strict";

  // <select data-autosubmit>: choosing an option submits its form (list filters).
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches && el.matches("select[data-autosubmit]") && el.form) el.form.submit();
  });

  // <form data-confirm="question">: ask before a destructive POST.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  function ready() {
    // A conversation opens at its latest message.
    var thread = document.getElementById("thread");
    if (thread) thread.scrollTop = thread.scrollHeight;

    // The number form shows only the credentials of the chosen provider (all are
    // still posted and checked on the server).
    var provider = document.getElementById("in-provider");
    if (provider) {
      var only = {cloud: ["access_token", "app_secret", "verify_token"], "360dialog": ["d360_api_key", "webhook_token"]};
      var apply = function () {
        Object.keys(only).forEach(function (p) {
          only[p].forEach(function (name) {
            var el = document.getElementById("field-" + name);
            if (el) el.classList.toggle("is-hidden", p !== provider.value);
          });
        });
      };
      provider.addEventListener("change", apply);
      apply();
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
