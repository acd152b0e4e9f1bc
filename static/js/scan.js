/* The Scan field on every handheld screen.
 *
 * - A wedge scanner types into the focused field and sends Enter (or Tab):
 *   both submit; the field keeps focus, and inputmode="none" keeps the soft
 *   keyboard away (the keyboard button brings it back for typing by hand).
 * - Every scan carries an id made here. If the network drops, or the server
 *   answers 503 (it is reconnecting to its database; nothing was recorded),
 *   the same scan is sent again with the same id, so the server counts it
 *   once; scans made meanwhile wait in order behind it.
 * - A right scan beeps short and high; a refused one buzzes low twice and
 *   vibrates. Sounds are made with WebAudio, so there is nothing to download.
 * - The camera button reads a barcode with the browser's BarcodeDetector, or
 *   the pinned ZXing WebAssembly ponyfill from /static/vendor.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var texts = script ? script.dataset : {};
  var RETRIES = 5;

  // --- scan ids -----------------------------------------------------------------

  function newScanId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    // Older WebViews: random bits from getRandomValues, else Math.random.
    var bytes = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) {
      window.crypto.getRandomValues(bytes);
    } else {
      for (var i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  // The scan in flight, kept until the server answered: a retry reuses its id.
  var pending = null;

  function idFor(form, value) {
    if (pending && pending.failed && pending.form === form && pending.value === value) {
      return pending.id;
    }
    pending = { form: form, value: value, id: newScanId(), failed: false, tries: 0 };
    return pending.id;
  }

  // --- sounds and vibration -------------------------------------------------------

  var audio = null;

  function tone(freq, start, length, type) {
    var osc = audio.createOscillator();
    var gain = audio.createGain();
    osc.type = type;
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, audio.currentTime + start);
    gain.gain.exponentialRampToValueAtTime(0.35, audio.currentTime + start + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + start + length);
    osc.connect(gain).connect(audio.destination);
    osc.start(audio.currentTime + start);
    osc.stop(audio.currentTime + start + length + 0.02);
  }

  function unlockAudio() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    if (!audio) {
      try { audio = new Ctx(); } catch (e) { audio = null; return; }
    }
    if (audio.state === "suspended") audio.resume();
  }

  function feedback(ok) {
    try {
      unlockAudio();
      if (audio) {
        if (ok) {
          tone(1760, 0, 0.08, "sine");
        } else {
          tone(220, 0, 0.16, "square");
          tone(180, 0.22, 0.22, "square");
        }
      }
    } catch (e) { /* no sound is better than no screen */ }
    if (navigator.vibrate) navigator.vibrate(ok ? 30 : [180, 80, 180]);
    document.documentElement.dataset.lastScan = ok ? "accepted" : "refused";
  }

  // Browsers allow sound after a user gesture; a scanner's keystrokes count.
  ["keydown", "pointerdown", "touchstart"].forEach(function (type) {
    document.addEventListener(type, unlockAudio, { passive: true, capture: true });
  });

  // --- focus ---------------------------------------------------------------------

  function scanInput() {
    return document.querySelector("[data-scan-input]");
  }

  function focusScan() {
    var input = scanInput();
    if (!input || document.querySelector(".camera")) return;
    var active = document.activeElement;
    var busyElsewhere = active && active !== input && active !== document.body &&
      /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName);
    if (!busyElsewhere) input.focus({ preventScroll: true });
  }

  document.addEventListener("focusout", function (event) {
    if (event.target.matches && event.target.matches("[data-scan-input]")) {
      // After a tap on nothing in particular, the scanner must still type here.
      setTimeout(function () {
        if (!document.activeElement || document.activeElement === document.body) focusScan();
      }, 0);
    }
  });
  document.addEventListener("click", function (event) {
    if (!event.target.closest("a, button, input, select, textarea, label, summary")) focusScan();
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) focusScan();
  });

  // --- submitting -----------------------------------------------------------------

  function status(form, message, ok) {
    var screen = document.getElementById("screen") || document.body;
    var banner = screen.querySelector(".banner-network");
    if (!banner) {
      banner = document.createElement("div");
      banner.setAttribute("role", "alert");
      var anchor = form || screen.firstElementChild;
      screen.insertBefore(banner, anchor);
    }
    banner.className = "banner banner-network " + (ok ? "banner-ok" : "banner-error");
    banner.textContent = message;
  }

  // A scanner can be faster than the answer to the previous scan: what comes
  // meanwhile waits here and goes out, in order, once the new screen is in.
  var inflight = false;
  var queue = [];
  var carry = "";
  // A scan sent from the queue or again after a network error: it goes out
  // as the request's `scan`, and what is being typed stays in the field.
  var forced = null;

  function submitScan(input) {
    var form = input.form;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  }

  // A key that lands on no field (the screen was being swapped, or a tap
  // moved focus) belongs to the scanner: it goes into the scan field.
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.altKey || event.metaKey) return;
    if (target.closest && target.closest("input, textarea, select, button, a, [contenteditable]")) return;
    if (document.querySelector(".camera")) return;
    var input = scanInput();
    if (!input) return;
    if (event.key.length === 1) {
      event.preventDefault();
      input.value += event.key;
      input.focus({ preventScroll: true });
    } else if (event.key === "Enter" || event.key === "Tab") {
      input.focus({ preventScroll: true });
      input.dispatchEvent(new KeyboardEvent("keydown", { key: event.key, bubbles: true, cancelable: true }));
      event.preventDefault();
    }
  }, true);

  document.addEventListener("keydown", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("[data-scan-input]")) return;
    if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      if (!input.value.trim()) return; // a stray Enter is not a scan
      if (inflight && input.form.hasAttribute("data-scan")) {
        queue.push(input.value);
        input.value = "";
        return;
      }
      submitScan(input);
    }
  });

  // Without htmx (it failed to load), a plain submit still sends an id.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-scan") || window.htmx) return;
    var field = form.querySelector("input[name=scan_id]");
    if (field) field.value = idFor(form, valueOf(form));
  }, true);

  function valueOf(form) {
    var input = form.querySelector("[data-scan-input], [data-keypad-input]");
    return input ? input.value : "";
  }

  // The form that sent a request; after a swap removed it, htmx re-fires the
  // event on an ancestor, so detail.elt is not it, requestConfig.elt is.
  function sender(event) {
    return (event.detail.requestConfig && event.detail.requestConfig.elt) || event.detail.elt;
  }

  function isScan(form) {
    return form && form.hasAttribute && form.hasAttribute("data-scan");
  }

  document.addEventListener("htmx:configRequest", function (event) {
    var form = event.detail.elt;
    if (!isScan(form)) return;
    var input = form.querySelector("[data-scan-input]");
    var value;
    if (forced !== null) {
      value = forced;
      forced = null;
      if (input) event.detail.parameters.scan = value;
    } else {
      value = valueOf(form);
      if (input) input.value = ""; // the next scan types into a clean field
    }
    event.detail.parameters.scan_id = idFor(form, value);
    inflight = true;
    form.classList.add("sending");
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var form = sender(event);
    if (!isScan(form)) return;
    var input = form.querySelector("[data-scan-input]");
    carry = input ? input.value : ""; // typing under way when the answer came
  });

  // The new screen is in: what was being typed goes on in its scan field at
  // once (htmx would only focus it after settling, and keys would be lost).
  document.addEventListener("htmx:afterSwap", function () {
    if (!inflight) return;
    var input = scanInput();
    if (input) {
      if (carry) input.value = carry;
      input.focus({ preventScroll: true });
    }
    carry = "";
  });

  // Scans go out again only once htmx has wired the new form (after settling).
  function next() {
    inflight = false;
    var input = scanInput();
    if (!queue.length) return;
    if (!input || !isScan(input.form)) {
      queue = []; // this screen takes no scans: the picker sees why
      feedback(false);
      return;
    }
    forced = queue.shift();
    submitScan(input);
  }

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = sender(event);
    var xhr = event.detail.xhr;
    if (!isScan(form) && xhr && xhr.status === 503) {
      // A button or a link, not a scan: nothing was done; the worker taps again.
      feedback(false);
      status(null, texts.unavailable || "Unavailable");
      return;
    }
    if (!isScan(form)) return;
    form.classList.remove("sending");
    if (!xhr || xhr.status === 0) return; // sendError/timeout below decide
    if (xhr.status === 503) {
      retry(event, retryAfter(xhr), true);
      return;
    }
    pending = null;
    if (xhr.status >= 200 && xhr.status < 300) {
      feedback(true);
    } else if (xhr.status >= 400 && xhr.status < 500) {
      feedback(false);
    } else {
      feedback(false);
      status(form, texts.serverError || "Server error");
      next();
    }
  });

  // The seconds a 503 asks to wait (Retry-After), within reason.
  function retryAfter(xhr) {
    var seconds = parseInt(xhr.getResponseHeader("Retry-After"), 10);
    return Math.min(Math.max(isNaN(seconds) ? 3 : seconds, 1), 30);
  }

  // The scan did not arrive (no network) or was not recorded (`unavailable`:
  // the server answered 503): it goes out again with the same id, after
  // `seconds` or a growing pause, up to RETRIES times; then it is put back in
  // the field, and scanning it again still reuses its id.
  function retry(event, seconds, unavailable) {
    var form = sender(event);
    if (!isScan(form) || !pending || pending.form !== form) return;
    form.classList.remove("sending");
    pending.failed = true;
    pending.tries += 1;
    if (pending.tries > RETRIES) {
      feedback(false);
      status(form, unavailable ? (texts.stillUnavailable || "Still unavailable") : (texts.offline || "No network"));
      var input = form.querySelector("[data-scan-input]");
      if (input) input.value = pending.value; // scanning it again reuses its id
      inflight = false;
      return;
    }
    status(form, unavailable ? (texts.reconnecting || "Reconnecting…") : (texts.retrying || "Retrying…"));
    setTimeout(function () {
      if (!document.body.contains(form)) return;
      forced = pending.value;
      if (form.requestSubmit) form.requestSubmit(); else htmx.trigger(form, "submit");
    }, seconds ? seconds * 1000 : 600 * pending.tries);
  }
  document.addEventListener("htmx:sendError", function (event) { retry(event); });
  document.addEventListener("htmx:timeout", function (event) { retry(event); });

  document.addEventListener("htmx:afterSettle", function () {
    focusScan();
    if (inflight) next();
  });
  document.addEventListener("DOMContentLoaded", function () {
    focusScan();
    // A refusal shown on a full page load (no JavaScript round trip) still buzzes.
    if (document.querySelector("#screen [data-outcome=refused]")) feedback(false);
  });

  // --- the soft keyboard, when there is no scanner --------------------------------------

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-keyboard]");
    if (!button) return;
    var input = button.form && button.form.querySelector("[data-scan-input]");
    if (!input) return;
    var typing = input.getAttribute("inputmode") === "none";
    input.setAttribute("inputmode", typing ? "text" : "none");
    button.setAttribute("aria-pressed", typing ? "true" : "false");
    input.blur();
    input.focus();
  });

  // --- the keypad ------------------------------------------------------------------

  document.addEventListener("click", function (event) {
    var key = event.target.closest("[data-key]");
    if (!key) return;
    var form = key.closest("[data-keypad]");
    var input = form && form.querySelector("[data-keypad-input]");
    if (!input) return;
    var k = key.dataset.key;
    if (k === "clear") input.value = "";
    else if (k === "back") input.value = input.value.slice(0, -1);
    else if (input.value.length < 6) input.value = (input.value === "0" ? "" : input.value) + k;
  });

  // --- the camera -------------------------------------------------------------------

  var FORMATS = ["ean_13", "ean_8", "upc_a", "upc_e", "code_128", "code_39", "qr_code", "data_matrix", "itf"];
  var detectorPromise = null;

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = reject;
      document.head.appendChild(s);
    });
  }

  function detector() {
    if (detectorPromise) return detectorPromise;
    if ("BarcodeDetector" in window) {
      detectorPromise = window.BarcodeDetector.getSupportedFormats().then(function (supported) {
        return new window.BarcodeDetector({ formats: FORMATS.filter(function (f) { return supported.indexOf(f) >= 0; }) });
      });
    } else {
      // The ZXing ponyfill, told to fetch its .wasm from this server, not a CDN.
      detectorPromise = loadScript(texts.polyfill).then(function () {
        var api = window.BarcodeDetectionAPI;
        api.prepareZXingModule({
          overrides: {
            locateFile: function (path, prefix) {
              return path.endsWith(".wasm") ? texts.wasm : prefix + path;
            }
          }
        });
        return new api.BarcodeDetector({ formats: FORMATS });
      });
    }
    return detectorPromise;
  }

  function openCamera(input) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      status(input.form, texts.noCamera || "No camera");
      return;
    }
    var overlay = document.createElement("div");
    overlay.className = "camera";
    overlay.innerHTML = '<video playsinline muted></video><div class="camera-aim"></div>' +
      '<button type="button" class="button button-secondary">✕</button>';
    document.body.appendChild(overlay);
    var video = overlay.querySelector("video");
    var stream = null;
    var done = false;

    function close() {
      done = true;
      if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
      overlay.remove();
      focusScan();
    }
    overlay.querySelector("button").addEventListener("click", close);

    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        return video.play();
      })
      .then(detector)
      .then(function (d) {
        function look() {
          if (done) return;
          d.detect(video).then(function (codes) {
            if (done) return;
            if (codes.length) {
              close();
              input.value = codes[0].rawValue;
              if (input.form.requestSubmit) input.form.requestSubmit(); else input.form.submit();
            } else {
              setTimeout(look, 200);
            }
          }, function () { setTimeout(look, 400); });
        }
        look();
      })
      .catch(function () {
        close();
        status(input.form, texts.noCamera || "No camera");
      });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-camera]");
    if (!button) return;
    var input = button.form && button.form.querySelector("[data-scan-input]");
    if (input) openCamera(input);
  });
})();
