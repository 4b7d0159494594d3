// Agent helpers on the ticket page: insert a canned reply or a link to a KB article where the cursor is.
(function () {
  "use strict";
  var body = document.getElementById("reply-body");
  if (!body) { return; }
  // Until the agent puts the cursor in the message, insertions go at its end (a textarea that was never
  // focused reports its cursor at the start).
  var touched = false;
  ["focus", "mouseup", "keyup", "select"].forEach(function (name) {
    body.addEventListener(name, function () { touched = true; });
  });

  // What to put between the text before the cursor and the inserted text, and after it: a paragraph break
  // around a block (a canned reply), a space around a link unless punctuation or a line break is there.
  function separators(before, after, block) {
    if (block) {
      return [before === "" || /\n\n$/.test(before) ? "" : (/\n$/.test(before) ? "\n" : "\n\n"),
              after === "" || /^\n\n/.test(after) ? "" : (/^\n/.test(after) ? "\n" : "\n\n")];
    }
    return [before === "" || /[\s(\[]$/.test(before) ? "" : " ",
            after === "" || /^[\s.,;:!?)\]]/.test(after) ? "" : " "];
  }

  // Insert text at the cursor (replacing a selection), with separators, and leave the cursor right after it.
  function insert(text, block) {
    var start = touched ? body.selectionStart : body.value.length;
    var end = touched ? body.selectionEnd : body.value.length;
    var around = separators(body.value.slice(0, start), body.value.slice(end), block);
    body.setRangeText(around[0] + text + around[1], start, end, "end");
    var after = start + around[0].length + text.length;
    body.focus();
    body.setSelectionRange(after, after);
    touched = true;
    body.dispatchEvent(new Event("input", {bubbles: true}));
  }

  // For the other scripts of the page (kb-search.js): the same insertion at the cursor.
  window.MesaReply = {insert: insert};

  var canned = document.getElementById("canned-select");
  if (canned) {
    var hint = document.getElementById("canned-hint");
    if (hint && hint.dataset.inserted) { hint.textContent = hint.dataset.inserted; }
    canned.addEventListener("change", function () {
      var option = canned.options[canned.selectedIndex];
      if (option && option.dataset.body) {
        insert(option.dataset.body, true);
        canned.value = "";  // inserted: the form sends the message as it now reads; the same reply can be chosen again
      }
    });
  }
  document.querySelectorAll(".insert-link").forEach(function (button) {
    button.addEventListener("click", function () { insert(button.dataset.link, false); });
  });
  document.querySelectorAll(".link-text").forEach(function (code) { code.hidden = true; });
})();
