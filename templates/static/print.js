// The 「印刷する」 button of printable pages (the patient's copy, the return receipt): CSP allows
// no inline script, so the button is wired here.
document.addEventListener("DOMContentLoaded", function () {
  var button = document.getElementById("print-page");
  if (button) {
    button.addEventListener("click", function () { window.print(); });
  }
});
