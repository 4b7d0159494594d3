// The article editor: a live preview (the server renders and sanitises the Markdown as the article page does),
// and the duplicate check again as the agent types (the published articles that look like the same topic).
(function () {
  "use strict";
  var body = document.getElementById("editor-body");
  var preview = document.getElementById("editor-preview");
  if (!body || !preview || !window.fetch) { return; }
  var form = document.getElementById("editor-form");
  var token = form.querySelector("input[name=csrf_token]").value;
  var title = form.querySelector("input[name=title]");
  var ticket = form.querySelector("input[name=ticket_id]");

  // POST these fields, as the page's user, to a URL answering JSON; "handle" gets the answer of the last call.
  function poster(url, fields, handle) {
    var request = 0;
    return function () {
      var mine = ++request;
      var data = new FormData();
      var values = fields();
      Object.keys(values).forEach(function (name) { data.append(name, values[name]); });
      fetch(url, {method: "POST", body: data, credentials: "same-origin",
                  headers: {"X-CSRFToken": token, "Accept": "application/json"}})
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (result) { if (result && mine === request) { handle(result); } })
        .catch(function () { /* the Preview button and the check on saving still work */ });
    };
  }
  function debounced(run, ms) {
    var timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(run, ms); };
  }

  var refreshPreview = poster(body.dataset.previewUrl, function () { return {body: body.value}; },
                              function (result) { preview.innerHTML = result.html; });
  body.addEventListener("input", debounced(refreshPreview, 300));

  var duplicates = document.getElementById("duplicates");
  if (duplicates && duplicates.dataset.url) {
    var recheck = poster(duplicates.dataset.url, function () {
      return {title: title.value, body: body.value, slug: duplicates.dataset.slug || "",
              ticket_id: ticket ? ticket.value : ""};
    }, function (result) {
      duplicates.innerHTML = result.html;
      duplicates.hidden = result.duplicates.length === 0;
    });
    var scheduleCheck = debounced(recheck, 800);
    body.addEventListener("input", scheduleCheck);
    title.addEventListener("input", scheduleCheck);
  }
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
