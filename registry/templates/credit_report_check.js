// Upload the chosen PDF to the registry, which answers its SM3; then show this page for
// that SM3 (in the page's language), where the server says whether the file is this
// report, unchanged. The words shown come from the page (data-checking, data-failed).
(function () {
  "use strict";
  var input = document.getElementById("pdf");
  var progress = document.getElementById("progress");
  if (!input) { return; }
  input.addEventListener("change", function () {
    var file = input.files && input.files[0];
    if (!file) { return; }
    var report = input.getAttribute("data-report");
    var lang = input.getAttribute("data-lang");
    progress.textContent = input.getAttribute("data-checking");
    fetch("../../v1/credit/reports/check?report_id=" + encodeURIComponent(report), {
      method: "POST",
      headers: { "Content-Type": "application/pdf" },
      body: file
    }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.json();
    }).then(function (answer) {
      var query = "?sm3=" + encodeURIComponent(answer.pdf_sm3);
      window.location.search = lang === "en" ? query + "&lang=en" : query;
    }).catch(function (error) {
      progress.textContent = input.getAttribute("data-failed").replace("{error}", error.message);
    });
  });
})();
