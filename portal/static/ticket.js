// Agent helpers on the ticket page: fill the reply from a canned reply, insert a link to a KB article.
(function () {
  "use strict";
  var body = document.getElementById("reply-body");
  if (!body) { return; }
  var canned = document.getElementById("canned-select");
  if (canned) {
    canned.addEventListener("change", function () {
      var option = canned.options[canned.selectedIndex];
      if (option && option.dataset.body) { body.value = option.dataset.body; body.focus(); }
    });
  }
  document.querySelectorAll(".insert-link").forEach(function (button) {
    button.addEventListener("click", function () {
      var start = body.selectionStart || body.value.length;
      var text = button.dataset.link;
      body.value = body.value.slice(0, start) + text + body.value.slice(start);
      body.focus();
    });
  });
  document.querySelectorAll(".link-text").forEach(function (code) { code.hidden = true; });
})();
