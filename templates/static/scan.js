// Check-out page: pick devices by scanning their QR labels with the camera, where the browser
// supports BarcodeDetector and getUserMedia. Elsewhere the button stays hidden and staff type
// asset tags. No inline script (CSP); texts come from the page's data attributes.
(function () {
  var box = document.getElementById("scan");
  if (!box) { return; }
  var start = document.getElementById("scan-start");
  var stop = document.getElementById("scan-stop");
  var video = document.getElementById("scan-video");
  var out = document.getElementById("scan-result");
  var tags = document.getElementById("asset-tags");
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { return; }
  box.hidden = false;
  var stream = null;
  var timer = null;
  var last = "";
  var lastAt = 0;
  var detector;
  try { detector = new window.BarcodeDetector({ formats: ["qr_code"] }); } catch (e) { box.hidden = true; return; }
  function say(text) { out.textContent = text; }
  function end() {
    if (timer) { clearTimeout(timer); timer = null; }
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    video.hidden = true; stop.hidden = true; start.hidden = false;
  }
  function choose(d) {
    var boxes = document.querySelectorAll("input[name=device_id]");
    for (var i = 0; i < boxes.length; i++) {
      if (boxes[i].value === d.id) { boxes[i].checked = true; say(d.asset_tag + " " + box.getAttribute("data-added")); return; }
    }
    if (d.available && tags) {
      // Available but not listed (another page of results): hand the tag to the server.
      var have = tags.value.split(/[\s,、]+/);
      if (have.indexOf(d.asset_tag) < 0) { tags.value = (tags.value + " " + d.asset_tag).trim(); }
      say(d.asset_tag + " " + box.getAttribute("data-added"));
      return;
    }
    say(d.asset_tag + ": " + box.getAttribute("data-not-available") + "（" + d.status_label_ja + "）");
  }
  function found(raw) {
    var now = Date.now();
    if (raw === last && now - lastAt < 3000) { return; }
    last = raw; lastAt = now;
    fetch("/devices/lookup?code=" + encodeURIComponent(raw), { credentials: "same-origin", headers: { accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) { if (d && d.id) { choose(d); } else { say(box.getAttribute("data-unknown")); } })
      .catch(function () { say(box.getAttribute("data-unknown")); });
  }
  function tick() {
    detector.detect(video).then(function (codes) {
      codes.forEach(function (c) { if (c.rawValue) { found(c.rawValue); } });
    }).catch(function () {}).then(function () { if (stream) { timer = setTimeout(tick, 300); } });
  }
  start.addEventListener("click", function () {
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false }).then(function (s) {
      stream = s; video.srcObject = s; video.hidden = false; stop.hidden = false; start.hidden = true;
      return video.play();
    }).then(tick).catch(function () { end(); say(box.getAttribute("data-no-camera")); });
  });
  stop.addEventListener("click", end);
  window.addEventListener("pagehide", end);
})();
