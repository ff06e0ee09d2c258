// Device import page: read a chosen CSV file into the form's text box (UTF-8, or Shift_JIS as
// Excel writes it). Without JavaScript the box still takes pasted CSV. No inline script (CSP).
(function () {
  var input = document.getElementById("csv-file");
  var label = document.getElementById("csv-file-label");
  var text = document.getElementById("csv-text");
  if (!input || !text || !window.FileReader || !window.TextDecoder) { return; }
  label.hidden = false;
  input.addEventListener("change", function () {
    var file = input.files && input.files[0];
    if (!file) { return; }
    var max = parseInt(input.getAttribute("data-max-bytes"), 10);
    if (max && file.size > max) {
      input.setCustomValidity(input.getAttribute("data-too-large"));
      input.reportValidity();
      return;
    }
    input.setCustomValidity("");
    var reader = new FileReader();
    reader.onload = function () {
      var bytes = new Uint8Array(reader.result);
      var decoded;
      try {
        decoded = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      } catch (e) {
        decoded = new TextDecoder("shift_jis").decode(bytes);
      }
      text.value = decoded.replace(/^\uFEFF/, "");
    };
    reader.readAsArrayBuffer(file);
  });
})();
