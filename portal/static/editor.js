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
