// The KB search box on the ticket page (agents): results from /api/search as the agent types; "Insert link"
// puts "[title](url)" into the reply where the cursor is (ticket.js's insertion, window.MesaReply).
(function () {
  "use strict";
  var form = document.getElementById("kb-search-form");
  var input = document.getElementById("kb-search-q");
  var list = document.getElementById("kb-search-results");
  if (!form || !input || !list) { return; }
  var timer = null;
  var asked = 0;  // the number of the latest request: older answers arriving late are dropped

  // One line of the list: a message, or an article with its "Insert link" button.
  function row(text, hit) {
    var item = document.createElement("li");
    if (!hit) { item.textContent = text; return item; }
    var link = document.createElement("a");
    link.href = hit.url;
    link.target = "_blank";
    link.textContent = hit.title;
    var lang = document.createElement("span");
    lang.className = "badge badge-lang";
    lang.textContent = (hit.lang || "").toUpperCase();
    var button = document.createElement("button");
    button.type = "button";
    button.className = "secondary small kb-insert";
    button.textContent = form.dataset.insert;
    button.dataset.link = "[" + hit.title + "](" + form.dataset.portal + hit.url + ")";
    button.addEventListener("click", function () {
      if (window.MesaReply) { window.MesaReply.insert(button.dataset.link, false); }
    });
    item.append(link, " ", lang, " ", button);
    return item;
  }

  // Ask the API for the query and list the results (or say there are none, or that it failed).
  function search() {
    var query = input.value.trim();
    var number = ++asked;
    if (!query) { list.replaceChildren(); return; }
    fetch(form.dataset.api + "?k=5&q=" + encodeURIComponent(query), {headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (data) {
        if (number !== asked) { return; }
        var rows = (data.results || []).map(function (hit) { return row("", hit); });
        list.replaceChildren.apply(list, rows.length ? rows : [row(form.dataset.none)]);
      })
      .catch(function () {
        if (number === asked) { list.replaceChildren(row(form.dataset.failed)); }
      });
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(search, 300);
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearTimeout(timer);
    search();
  });
})();
