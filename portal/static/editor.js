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

// Images for the article: uploaded as soon as they are chosen and placed at the cursor as Markdown; without
// this script the "Upload" button sends the whole form and the editor comes back with the image placed.
(function () {
  "use strict";
  var input = document.getElementById("image-input");
  var body = document.getElementById("editor-body");
  var error = document.getElementById("image-error");
  if (!input || !body || !window.fetch) { return; }
  var token = document.querySelector("#editor-form input[name=csrf_token]").value;
  input.addEventListener("change", function () {
    if (!input.files.length) { return; }
    var data = new FormData();
    for (var i = 0; i < input.files.length; i++) { data.append("attachments", input.files[i]); }
    error.hidden = true;
    fetch(input.dataset.uploadUrl, {method: "POST", body: data, credentials: "same-origin",
                                    headers: {"X-CSRFToken": token, "Accept": "application/json"}})
      .then(function (response) { return response.json(); })
      .then(function (result) {
        if (result.error) { error.textContent = result.error; error.hidden = false; return; }
        var text = result.files.map(function (file) { return file.markdown; }).join("\n\n");
        var at = body.selectionStart || body.value.length;
        body.value = body.value.slice(0, at) + (at ? "\n\n" : "") + text + "\n\n" + body.value.slice(at);
        input.value = "";
        body.dispatchEvent(new Event("input"));
      })
      .catch(function () { error.textContent = input.dataset.failed; error.hidden = false; });
  });
})();
