// Type-ahead for code fields (ICD-10, medicines, services): fills the field's <datalist>.
// Optional: without JavaScript the field is plain text and the server checks the code.
(function () {
  "use strict";
  var timers = new WeakMap();
  function fill(input) {
    var q = input.value.trim();
    var list = document.getElementById(input.getAttribute("list"));
    if (!list || q.length < 2) { return; }
    fetch("/workspace/lookup/" + encodeURIComponent(input.dataset.lookup) + "?q=" + encodeURIComponent(q),
      { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (items) {
        list.replaceChildren();
        items.forEach(function (item) {
          var option = document.createElement("option");
          option.value = item.code + " " + item.display;
          list.appendChild(option);
        });
      })
      .catch(function () { /* offline: the field still works as plain text */ });
  }
  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!(input instanceof HTMLInputElement) || !input.dataset.lookup) { return; }
    clearTimeout(timers.get(input));
    timers.set(input, setTimeout(function () { fill(input); }, 200));
  });
})();
