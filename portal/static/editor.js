// Live preview in the article editor: the server renders (and sanitises) the Markdown as the article page does.
(function () {
  "use strict";
  var body = document.getElementById("editor-body");
  var preview = document.getElementById("editor-preview");
  if (!body || !preview || !window.fetch) { return; }
  var token = document.querySelector("#editor-form input[name=csrf_token]").value;
  var timer = null;
  var request = 0;
  function refresh() {
    var mine = ++request;
    var data = new FormData();
    data.append("body", body.value);
    fetch(body.dataset.previewUrl, {method: "POST", body: data, credentials: "same-origin",
                                    headers: {"X-CSRFToken": token, "Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (result) { if (result && mine === request) { preview.innerHTML = result.html; } })
      .catch(function () { /* the Preview button still works */ });
  }
  body.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(refresh, 300); });
})();
