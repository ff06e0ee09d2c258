// Signature pad for the consent: pointer (finger, pen or mouse) strokes on a canvas, kept as
// vector points in a hidden field ("x,y x,y|x,y …", 0–1000 × 0–400). No inline script (CSP).
(function () {
  var canvas = document.getElementById("signature-pad");
  var field = document.getElementById("signature-strokes");
  var clear = document.getElementById("signature-clear");
  if (!canvas || !field) { return; }
  var ctx = canvas.getContext("2d");
  // Strokes already drawn (the page came back with a message): shown again, never lost.
  var strokes = (field.value || "").split("|").filter(function (s) { return s.trim() !== ""; }).map(function (s) {
    return s.trim().split(/\s+/).map(function (p) { var xy = p.split(","); return [+xy[0], +xy[1]]; });
  });
  var current = null;
  function size() {
    var ratio = window.devicePixelRatio || 1;
    var rect = canvas.getBoundingClientRect();
    canvas.width = rect.width * ratio;
    canvas.height = rect.height * ratio;
    redraw();
  }
  function point(e) {
    var rect = canvas.getBoundingClientRect();
    return [Math.round((e.clientX - rect.left) / rect.width * 1000), Math.round((e.clientY - rect.top) / rect.height * 400)];
  }
  function redraw() {
    ctx.setTransform(canvas.width / 1000, 0, 0, canvas.height / 400, 0, 0);
    ctx.clearRect(0, 0, 1000, 400);
    ctx.lineWidth = 6; ctx.lineCap = "round"; ctx.lineJoin = "round"; ctx.strokeStyle = "#000";
    strokes.forEach(function (s) {
      ctx.beginPath();
      s.forEach(function (p, i) { if (i === 0) { ctx.moveTo(p[0], p[1]); } else { ctx.lineTo(p[0], p[1]); } });
      if (s.length === 1) { ctx.lineTo(s[0][0] + 1, s[0][1]); }
      ctx.stroke();
    });
  }
  function save() {
    field.value = strokes.map(function (s) { return s.map(function (p) { return p[0] + "," + p[1]; }).join(" "); }).join("|");
  }
  canvas.addEventListener("pointerdown", function (e) {
    e.preventDefault(); canvas.setPointerCapture(e.pointerId);
    current = [point(e)]; strokes.push(current); redraw();
  });
  canvas.addEventListener("pointermove", function (e) {
    if (!current) { return; }
    e.preventDefault(); current.push(point(e)); redraw();
  });
  function end() { if (current) { current = null; save(); } }
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  if (clear) { clear.addEventListener("click", function () { strokes = []; save(); redraw(); }); }
  // A required signature is checked before the form is sent (the server checks it again).
  var missing = document.getElementById("signature-missing");
  if (field.dataset.required === "yes" && field.form) {
    field.form.addEventListener("submit", function (e) {
      if (strokes.length === 0) {
        e.preventDefault();
        if (missing) { missing.hidden = false; }
        canvas.scrollIntoView({ block: "center" });
      }
    });
  }
  canvas.addEventListener("pointerdown", function () { if (missing) { missing.hidden = true; } });
  // A minute before the idle lock, say what will happen (nothing is lost: the server keeps a
  // consent sent after the lock as a draft for the nurse).
  var warning = document.getElementById("idle-warning");
  var idle = field.form ? Number(field.form.dataset.idleSeconds || 0) : 0;
  if (warning && idle > 60) {
    setTimeout(function () { warning.hidden = false; }, (idle - 60) * 1000);
  }
  window.addEventListener("resize", size);
  size();
})();
