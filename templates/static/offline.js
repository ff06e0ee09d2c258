// Offline check-out and return on an enrolled phone (SPEC §10). No inline script (CSP).
//
// IndexedDB "lending-offline" holds: keys (the phone's ECDSA P-256 key pair and an AES-GCM key,
// both non-extractable CryptoKeys), outbox (records not yet acknowledged, encrypted) and cache
// (the visits' patients, devices and explanations, encrypted; cleared after a sync that sent
// records and at sign-out). Every page shows 「未送信 N件」 while the outbox is not empty and
// sends on load, on the `online` event and on the 「送信」 button. A record leaves the phone only
// once the server has answered for it (synced, duplicate or a stored conflict).
(function () {
  "use strict";
  var DB = "lending-offline";
  var PREFIX = "lending-offline-record-v1\n";
  if (!window.indexedDB || !window.crypto || !window.crypto.subtle) { return; }

  function byId(id) { return document.getElementById(id); }

  function open() {
    return new Promise(function (ok, fail) {
      var r = indexedDB.open(DB, 1);
      r.onupgradeneeded = function () {
        var db = r.result;
        ["keys", "cache"].forEach(function (n) { if (!db.objectStoreNames.contains(n)) { db.createObjectStore(n); } });
        if (!db.objectStoreNames.contains("outbox")) { db.createObjectStore("outbox", { keyPath: "key" }); }
      };
      r.onsuccess = function () { ok(r.result); };
      r.onerror = function () { fail(r.error); };
    });
  }

  // One transaction on one store; resolves with the request's result once it has committed.
  function tx(store, mode, fn) {
    return open().then(function (db) {
      return new Promise(function (ok, fail) {
        var t = db.transaction(store, mode);
        var req = fn(t.objectStore(store));
        t.oncomplete = function () { db.close(); ok(req ? req.result : undefined); };
        t.onerror = t.onabort = function () { db.close(); fail(t.error); };
      });
    });
  }

  var aes = null;
  function aesKey() {
    if (!aes) {
      aes = tx("keys", "readonly", function (s) { return s.get("aes"); }).then(function (k) {
        if (k) { return k; }
        return crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]).then(function (k2) {
          return tx("keys", "readwrite", function (s) { return s.put(k2, "aes"); }).then(function () { return k2; });
        });
      });
    }
    return aes;
  }

  function seal(value) {
    return aesKey().then(function (k) {
      var iv = crypto.getRandomValues(new Uint8Array(12));
      var plain = new TextEncoder().encode(JSON.stringify(value));
      return crypto.subtle.encrypt({ name: "AES-GCM", iv: iv }, k, plain).then(function (data) { return { iv: iv, data: data }; });
    });
  }

  function unseal(box) {
    return aesKey().then(function (k) {
      return crypto.subtle.decrypt({ name: "AES-GCM", iv: box.iv }, k, box.data);
    }).then(function (plain) { return JSON.parse(new TextDecoder().decode(plain)); });
  }

  function b64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var s = "";
    for (var i = 0; i < bytes.length; i++) { s += String.fromCharCode(bytes[i]); }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function newKey() {
    return "offline-" + hex(crypto.getRandomValues(new Uint8Array(16)));
  }

  function csrf() {
    var field = document.querySelector("input[name=csrf]");
    return field ? field.value : "";
  }

  function post(path, fields) {
    fields.csrf = csrf();
    return fetch(path, { method: "POST", body: new URLSearchParams(fields), credentials: "same-origin" });
  }

  // ---- the badge, on every page ----

  function count() { return tx("outbox", "readonly", function (s) { return s.count(); }); }

  function badge() {
    return count().then(function (n) {
      var b = byId("outbox-badge");
      if (b) {
        b.hidden = n === 0;
        var c = byId("outbox-count");
        if (c) { c.textContent = String(n); }
      }
      return n;
    });
  }

  // ---- sync ----

  var app = byId("offline-app");
  function say(name) { return app ? app.getAttribute("data-t-" + name) || "" : ""; }
  // The answer to what the nurse just did, brought into view: after saving, the form is cleared and
  // a message off-screen would read as "nothing happened".
  function status(text) {
    var s = byId("offline-status");
    if (s) { s.textContent = text; if (text && s.scrollIntoView) { s.scrollIntoView({ block: "center" }); } }
  }
  function note(item, outcome) {
    var list = byId("sync-results");
    if (!list) { return; }
    var li = document.createElement("li");
    li.className = "sync-" + outcome;
    li.textContent = item.label + ": " + say(outcome);
    list.appendChild(li);
  }

  var syncing = null;
  function sync() {
    if (syncing) { return syncing; }
    var sent = 0;
    syncing = tx("outbox", "readonly", function (s) { return s.getAll(); }).then(function (items) {
      var chain = Promise.resolve();
      items.filter(function (i) { return !i.refused; }).forEach(function (item) {
        chain = chain.then(function () { return send(item); }).then(function (acknowledged) { if (acknowledged) { sent++; } });
      });
      return chain;
    }).then(function () { return badge(); }, function () { return badge(); }).then(function (left) {
      syncing = null;
      // The visits' patient data is needed no more once what was done offline has been sent.
      if (sent > 0 && left === 0) { return clearCache(); }
      return undefined;
    });
    return syncing;
  }

  // Sends one record; resolves true when the server acknowledged it (and it left the outbox).
  function send(item) {
    return unseal(item.box).then(function (rec) {
      return post("/offline/sync", { enrolment_id: rec.enrolment_id, payload: rec.payload, signature: rec.signature });
    }).then(function (r) {
      var type = r.headers.get("content-type") || "";
      if (type.indexOf("application/json") !== 0) { note(item, "kept"); return false; }
      return r.json().then(function (j) {
        if ((r.status === 200 || r.status === 201) && (j.status === "synced" || j.status === "duplicate")) {
          return remove(item.key).then(function () { note(item, "synced"); return true; });
        }
        if (r.status === 409 && j.status === "conflict") {
          return remove(item.key).then(function () { note(item, "conflict"); return true; });
        }
        if (r.status === 422 && j.status === "refused") {
          item.refused = true;
          return tx("outbox", "readwrite", function (s) { return s.put(item); }).then(function () { note(item, "refused"); return false; });
        }
        note(item, "kept");
        return false;
      });
    }, function () { note(item, "kept"); return false; });
  }

  function remove(key) { return tx("outbox", "readwrite", function (s) { return s.delete(key); }); }
  function clearCache() { return tx("cache", "readwrite", function (s) { return s.clear(); }).then(render); }

  // ---- the offline page ----

  function phone() { return tx("keys", "readonly", function (s) { return s.get("phone"); }); }

  function bundle() {
    return tx("cache", "readonly", function (s) { return s.get("bundle"); }).then(function (box) {
      return box ? unseal(box) : null;
    });
  }

  function saveBundle(b) {
    return seal(b).then(function (box) { return tx("cache", "readwrite", function (s) { return s.put(box, "bundle"); }); });
  }

  function showPhone() {
    return phone().then(function (p) {
      var el = byId("enrol-state");
      if (el) { el.textContent = !p ? say("not-enrolled") : p.state === "approved" ? say("approved") : say("requested"); }
      // An enrolled phone needs the button only to start again with a new key (after a revocation).
      var button = byId("enrol-button");
      if (button) { button.textContent = p ? say("reenrol") : say("enrol"); button.className = p ? "secondary" : ""; }
      return p;
    });
  }

  function enrol() {
    var label = (byId("enrol-label").value || "").trim() || "スマホ";
    return crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]).then(function (pair) {
      return crypto.subtle.exportKey("raw", pair.publicKey).then(function (raw) {
        return post("/offline/phone", { label: label, algorithm: "ES256", public_key: b64url(raw) });
      }).then(function (r) {
        return r.json().then(function (j) {
          if (r.status !== 201) { throw new Error(j.message_ja || String(r.status)); }
          var p = { privateKey: pair.privateKey, publicKey: pair.publicKey, enrolment_id: j.id, algorithm: "ES256", state: j.state };
          return tx("keys", "readwrite", function (s) { return s.put(p, "phone"); });
        });
      });
    }).then(showPhone, function (e) { status(e.message); });
  }

  function prepare() {
    return phone().then(function (p) {
      if (!p) { status(say("not-enrolled")); return null; }
      return post("/offline/prepare", {
        enrolment_id: p.enrolment_id,
        patients: byId("prepare-patients").value,
        devices: byId("prepare-devices").value
      }).then(function (r) {
        return r.json().then(function (j) {
          if (r.status !== 200) {
            var fields = (j.fields || []).map(function (f) { return f.message_ja; }).join(" ");
            status(fields || j.message_ja || String(r.status));
            return null;
          }
          p.state = "approved";
          return tx("keys", "readwrite", function (s) { return s.put(p, "phone"); })
            .then(function () { return saveBundle(j); })
            .then(function () { status(say("prepared")); return render(); })
            .then(showPhone);
        });
      });
    });
  }

  function choice(container, type, name, value, text, checked) {
    var label = document.createElement("label");
    var input = document.createElement("input");
    input.type = type; input.name = name; input.value = value; input.checked = !!checked;
    label.appendChild(input);
    label.appendChild(document.createTextNode(" " + text));
    container.appendChild(label);
    return input;
  }

  function clearChoices(container) {
    Array.prototype.slice.call(container.querySelectorAll("label")).forEach(function (l) { l.remove(); });
  }

  var current = null;
  function render() {
    if (!app) { return Promise.resolve(); }
    return bundle().then(function (b) {
      current = b;
      var patients = byId("lend-patients"), devices = byId("lend-devices"), back = byId("return-devices");
      [patients, devices, back].forEach(clearChoices);
      var at = byId("prepared-at");
      if (at) { at.textContent = b ? say("prepared") + ": " + new Date(b.prepared_at).toLocaleString() : ""; }
      if (!b) { explain(); return; }
      var names = {};
      b.patients.forEach(function (p, i) {
        names[p.id] = p.name + "（" + p.number + "）";
        var who = p.name + "（" + p.kana + "）" + p.number + (p.birth_date ? " " + p.birth_date : "");
        choice(patients, "radio", "patient_id", p.id, who, false).required = i === 0;
      });
      b.devices.forEach(function (d) { choice(devices, "checkbox", "device_id", d.id, d.asset_tag, false); });
      b.loans.forEach(function (l) {
        l.devices.forEach(function (d) { choice(back, "checkbox", "return", l.id + "|" + d.id, d.asset_tag + " — " + (names[l.patient_id] || ""), false); });
      });
      explain();
    });
  }

  function chosenDevices() {
    var ids = Array.prototype.map.call(document.querySelectorAll("#lend-devices input:checked"), function (i) { return i.value; });
    return current ? current.devices.filter(function (d) { return ids.indexOf(d.id) >= 0; }) : [];
  }

  // The exact text a consent covers: each model's current document once, in the kit's order
  // (as the server builds it), joined by line breaks.
  function kitText(devices) {
    var docs = [];
    devices.forEach(function (d) { if (docs.indexOf(d.document_id) < 0) { docs.push(d.document_id); } });
    var sections = docs.map(function (id) {
      var doc = current.documents.filter(function (x) { return x.id === id; })[0];
      return doc ? doc.section : "";
    });
    return { documents: docs, text: sections.join("\n") };
  }

  function explain() {
    var el = byId("offline-explanation");
    if (el) { el.textContent = current ? kitText(chosenDevices()).text : ""; }
  }

  function strokesSvg(strokes) {
    var paths = strokes.split("|").filter(function (s) { return s.trim() !== ""; }).map(function (s) {
      var d = s.trim().split(/\s+/).map(function (p, i) {
        var xy = p.split(",");
        return (i === 0 ? "M" : " L") + Math.round(+xy[0]) + " " + Math.round(+xy[1]);
      }).join("");
      return "<path d=\"" + d + "\"/>";
    });
    return "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 1000 400\"><g fill=\"none\" stroke=\"#000\" stroke-width=\"6\" stroke-linecap=\"round\" stroke-linejoin=\"round\">" + paths.join("") + "</g></svg>";
  }

  // Signs a record with the phone's key and keeps it, encrypted, in the outbox.
  function keepRecord(p, key, label, body) {
    body.key = key;
    body.enrolment_id = p.enrolment_id;
    body.phone_time = new Date().toISOString();
    var payload = JSON.stringify(body);
    var message = new TextEncoder().encode(PREFIX + payload);
    return crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, p.privateKey, message).then(function (sig) {
      return seal({ enrolment_id: p.enrolment_id, payload: payload, signature: b64url(sig) });
    }).then(function (box) {
      return tx("outbox", "readwrite", function (s) { return s.put({ key: key, label: label, created: Date.now(), box: box, refused: false }); });
    });
  }

  function afterKeeping(form) {
    form.reset();
    var strokes = byId("signature-strokes");
    if (strokes && form.id === "offline-lend") {
      strokes.value = "";
      var clear = byId("signature-clear");
      if (clear) { clear.click(); }
    }
    status(say("saved"));
    return saveBundle(current).then(render).then(badge).then(function () { if (navigator.onLine) { return sync(); } return undefined; });
  }

  function lend(e) {
    e.preventDefault();
    var form = e.target;
    var strokes = byId("signature-strokes").value;
    var patient = form.querySelector("input[name=patient_id]:checked");
    var devices = chosenDevices();
    if (!current || !patient || devices.length === 0) { status(say("choose")); return; }
    if (!strokes) { return; }
    if (!form.reportValidity()) { return; }
    var kit = kitText(devices);
    var relationship = form.querySelector("input[name=relationship]:checked").value;
    phone().then(function (p) {
      return crypto.subtle.digest("SHA-256", new TextEncoder().encode(kit.text)).then(function (digest) {
        var tags = devices.map(function (d) { return d.asset_tag; }).join("、");
        return keepRecord(p, newKey(), tags, {
          check_out: {
            document_sha256: hex(digest),
            request: {
              patient_id: patient.value,
              device_ids: devices.map(function (d) { return d.id; }),
              due_on: byId("lend-due-on").value,
              purpose: "",
              consent: {
                signer_name: byId("lend-signer").value.trim(),
                relationship: relationship,
                relationship_note: "",
                signature_svg: strokesSvg(strokes),
                document_ids: kit.documents
              }
            }
          }
        });
      }).then(function () {
        // Lent now: not offered again from the bag.
        var lent = devices.map(function (d) { return d.id; });
        current.devices = current.devices.filter(function (d) { return lent.indexOf(d.id) < 0; });
        return afterKeeping(form);
      });
    });
  }

  function takeBack(e) {
    e.preventDefault();
    var form = e.target;
    var chosen = Array.prototype.map.call(form.querySelectorAll("input[name=return]:checked"), function (i) { return i.value.split("|"); });
    if (!current || chosen.length === 0) { status(say("choose")); return; }
    if (!form.reportValidity()) { return; }
    var byLoan = {};
    chosen.forEach(function (c) { (byLoan[c[0]] = byLoan[c[0]] || []).push(c[1]); });
    var check = function (name) { return form.querySelector("input[name=" + name + "]").checked; };
    phone().then(function (p) {
      var chain = Promise.resolve();
      Object.keys(byLoan).forEach(function (loanId) {
        var loan = current.loans.filter(function (l) { return l.id === loanId; })[0];
        var tags = loan.devices.filter(function (d) { return byLoan[loanId].indexOf(d.id) >= 0; }).map(function (d) { return d.asset_tag; });
        chain = chain.then(function () {
          return keepRecord(p, newKey(), tags.join("、"), {
            "return": {
              loan_id: loanId,
              devices: byLoan[loanId].map(function (id) {
                return { device_id: id, damaged: check("damaged"), accessories_complete: check("accessories_complete"), cleaned: check("cleaned"), condition_notes: "" };
              }),
              returned_by_name: byId("return-by").value.trim()
            }
          });
        }).then(function () {
          loan.devices = loan.devices.filter(function (d) { return byLoan[loanId].indexOf(d.id) < 0; });
        });
      });
      return chain.then(function () { return afterKeeping(form); });
    });
  }

  // ---- start ----

  // Sign-out clears the visits' patient data (never the outbox: unsent work is kept).
  Array.prototype.forEach.call(document.querySelectorAll("form[action='/logout']"), function (f) {
    f.addEventListener("submit", function (e) {
      e.preventDefault();
      tx("cache", "readwrite", function (s) { return s.clear(); }).then(function () { f.submit(); }, function () { f.submit(); });
    });
  });
  window.addEventListener("online", function () { sync(); });
  badge().then(function () { if (navigator.onLine) { return sync(); } return undefined; });

  if (app) {
    byId("offline-nojs").hidden = true;
    app.hidden = false;
    if ("serviceWorker" in navigator) { navigator.serviceWorker.register("/sw.js").catch(function () {}); }
    byId("sync-button").addEventListener("click", function () { sync(); });
    byId("enrol-button").addEventListener("click", enrol);
    byId("prepare-button").addEventListener("click", prepare);
    byId("lend-devices").addEventListener("change", explain);
    byId("offline-lend").addEventListener("submit", lend);
    byId("offline-return").addEventListener("submit", takeBack);
    showPhone();
    render();
  }
})();
