// Suggest articles while the customer describes the problem (debounced); the form works without this.
(function () {
  "use strict";
  var script = document.currentScript;
  var suggestUrl = script.dataset.suggestUrl;
  var articleUrl = script.dataset.articleUrl;
  var form = document.getElementById("help-form");
  if (!form || !window.fetch) { return; }
  var subject = form.querySelector("[name=subject]");
  var description = form.querySelector("[name=description]");
  var panel = document.getElementById("suggestions");
  var list = document.getElementById("suggestion-list");
  var none = document.getElementById("no-suggestions");
  var queryField = document.getElementById("suggestion-query");
  var submitButton = document.getElementById("submit-button");
  var checkButton = document.getElementById("check-button");
  var template = document.getElementById("suggestion-template");
  var timer = null;
  var lastQuery = "";
  var request = 0;

  function currentQuery() {
    return (subject.value + ". " + description.value).replace(/\s+/g, " ").replace(/^[\s.]+|[\s.]+$/g, "").slice(0, 500);
  }

  function show(results, query) {
    // Every article shown so far stays as a hidden "shown" input: the ticket records what the customer saw.
    var shownInputs = document.getElementById("shown-inputs");
    var seen = {};
    shownInputs.querySelectorAll("input").forEach(function (input) { seen[input.value] = true; });
    list.textContent = "";
    results.forEach(function (hit) {
      var item = template.content.firstElementChild.cloneNode(true);
      item.dataset.slug = hit.slug;
      var link = item.querySelector("a");
      link.textContent = hit.title;
      link.href = articleUrl.replace("SLUG", encodeURIComponent(hit.slug)) + "?from=suggestion&q=" + encodeURIComponent(query);
      item.querySelector(".badge").textContent = hit.lang.toUpperCase();
      item.querySelector(".hit-snippet").textContent = hit.snippet;
      item.querySelector("button").value = hit.slug;
      list.appendChild(item);
      if (!seen[hit.slug]) {
        var input = document.createElement("input");
        input.type = "hidden"; input.name = "shown"; input.value = hit.slug;
        shownInputs.appendChild(input);
        seen[hit.slug] = true;
      }
    });
    // Guess the category from the best suggestion while the customer has not chosen one.
    var category = form.querySelector("select[name=category]");
    if (results.length && category && (category.value === "general" || category.dataset.guessed === "1")) {
      var known = Array.prototype.some.call(category.options, function (o) { return o.value === results[0].category; });
      if (known) { category.value = results[0].category; category.dataset.guessed = "1"; }
    }
    queryField.value = query;
    panel.hidden = false;
    none.hidden = results.length > 0;
    submitButton.hidden = false;
    checkButton.className = "secondary";
  }

  function update() {
    var query = currentQuery();
    if (query.length < 8 || query === lastQuery) { return; }
    lastQuery = query;
    var mine = ++request;
    fetch(suggestUrl + "?q=" + encodeURIComponent(query), {credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data && mine === request) { show(data.results, query); } })
      .catch(function () { /* the "Check for answers" button still works */ });
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(update, 400);
  }
  var categorySelect = form.querySelector("select[name=category]");
  if (categorySelect) { categorySelect.addEventListener("change", function () { categorySelect.dataset.guessed = "0"; }); }
  subject.addEventListener("input", schedule);
  description.addEventListener("input", schedule);
})();
