// Upload the chosen PDF to the registry, which answers its SM3; then show this page for
// that SM3, where the server says whether the file is this report, unchanged.
(function () {
  "use strict";
  var input = document.getElementById("pdf");
  var progress = document.getElementById("progress");
  if (!input) { return; }
  input.addEventListener("change", function () {
    var file = input.files && input.files[0];
    if (!file) { return; }
    var report = input.getAttribute("data-report");
    progress.textContent = "正在核验……";
    fetch("../../v1/credit/reports/check?report_id=" + encodeURIComponent(report), {
      method: "POST",
      headers: { "Content-Type": "application/pdf" },
      body: file
    }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.json();
    }).then(function (answer) {
      window.location.search = "?sm3=" + encodeURIComponent(answer.pdf_sm3);
    }).catch(function (error) {
      progress.textContent = "核验失败（" + error.message + "），请稍后重试。";
    });
  });
})();
