// File fields: say at once when files are too many or too large (the server checks again, and keeps the
// text when it refuses), so nobody waits for an upload that will be refused.
(function () {
  "use strict";
  function problem(input) {
    var maxFiles = parseInt(input.dataset.maxFiles, 10);
    var maxBytes = parseInt(input.dataset.maxBytes, 10);
    if (input.files.length > maxFiles) { return input.dataset.tooMany; }
    for (var i = 0; i < input.files.length; i++) {
      if (input.files[i].size > maxBytes) { return input.dataset.tooLarge.replace("NAME", input.files[i].name); }
    }
    return "";
  }
  document.querySelectorAll("input[type=file][data-max-files]").forEach(function (input) {
    var error = input.closest(".attach-field").querySelector(".attach-error");
    function check() {
      var message = problem(input);
      error.textContent = message;
      error.hidden = !message;
      return !message;
    }
    input.addEventListener("change", check);
    if (input.form) {
      input.form.addEventListener("submit", function (event) {
        if (!check()) { event.preventDefault(); input.focus(); }
      });
    }
  });
})();
