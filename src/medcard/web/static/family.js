// ICD-10 type-ahead for the family history form: fills the shared <datalist> with the
// codes matching what is typed.  Without JavaScript the form still works: the server
// answers an unknown code with the matching codes to choose from.
(function () {
  "use strict";
  var form = document.querySelector("form[data-icd-url]");
  if (!form) { return; }
  var list = document.getElementById("icd10-list");
  var url = form.getAttribute("data-icd-url");
  var timer = null;
  function fill(items) {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    items.forEach(function (item) {
      var option = document.createElement("option");
      option.value = item.code + " " + item.title;
      list.appendChild(option);
    });
  }
  form.querySelectorAll("input.icd10").forEach(function (input) {
    input.addEventListener("input", function () {
      var q = input.value.trim();
      if (timer) { clearTimeout(timer); }
      if (q.length < 2 || /^[A-Z]\d\d(\.\d)? /.test(q)) { return; }
      timer = setTimeout(function () {
        fetch(url + "?q=" + encodeURIComponent(q), { credentials: "same-origin" })
          .then(function (r) { return r.ok ? r.json() : []; })
          .then(fill)
          .catch(function () { /* type-ahead is a convenience; the form still submits */ });
      }, 200);
    });
  });
}());
