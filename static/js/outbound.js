/* Packing and dock screens, on top of scan.js:
 *
 * - Interception (拦截): a refusal whose key ends in "_intercepted" sounds an
 *   alarm (a two-tone siren for over a second) and vibrates long, so a
 *   cancelled parcel is noticed even with the screen out of sight.
 * - Labels and manifests: a screen with [data-autoprint=URL] loads that PDF
 *   into a hidden frame and opens the browser's print dialog on it; a
 *   [data-print=URL] button does the same on a tap.
 *
 * Loaded by each of these screens; htmx runs it again on every swap, so it
 * sets itself up once and then only looks at the new screen.
 */
(function () {
  "use strict";

  function alarm() {
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (Ctx) {
        var audio = window.__luyueAlarmAudio || (window.__luyueAlarmAudio = new Ctx());
        if (audio.state === "suspended") audio.resume();
        for (var i = 0; i < 6; i++) {
          var osc = audio.createOscillator();
          var gain = audio.createGain();
          var at = audio.currentTime + 0.45 + i * 0.22; // after scan.js's buzz
          osc.type = "sawtooth";
          osc.frequency.value = i % 2 ? 660 : 990;
          gain.gain.setValueAtTime(0.0001, at);
          gain.gain.exponentialRampToValueAtTime(0.4, at + 0.02);
          gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.2);
          osc.connect(gain).connect(audio.destination);
          osc.start(at);
          osc.stop(at + 0.22);
        }
      }
    } catch (e) { /* the red banner still says it */ }
    if (navigator.vibrate) navigator.vibrate([400, 100, 400, 100, 400]);
    document.documentElement.dataset.alarm = "intercepted";
  }

  // One hidden frame for printing, outside #screen: htmx swaps never remove
  // it, a new label only navigates it.
  function printFrame() {
    var frame = document.getElementById("print-frame");
    if (!frame) {
      frame = document.createElement("iframe");
      frame.id = "print-frame";
      frame.title = "print";
      frame.setAttribute("aria-hidden", "true");
      frame.tabIndex = -1;
      frame.style.cssText = "position:fixed;right:0;bottom:0;width:1px;height:1px;border:0;opacity:0;pointer-events:none";
      frame.addEventListener("load", function () {
        // Under automation (tests, screenshots) the PDF only loads: headless
        // Chromium has no print dialog and its page crashes on print().
        if (!frame.dataset.wanted || navigator.webdriver) return;
        // The PDF viewer needs a moment after load before it can print.
        setTimeout(function () {
          try {
            frame.contentWindow.focus();
            frame.contentWindow.print();
          } catch (e) {
            window.open(frame.dataset.wanted, "_blank", "noopener");
          }
        }, 300);
      });
      document.body.appendChild(frame);
    }
    return frame;
  }

  function print(src) {
    var frame = printFrame();
    frame.dataset.wanted = src;
    // The same label again: load it afresh, so the load event prints it.
    frame.src = src + (src.indexOf("?") < 0 ? "?" : "&") + "print=" + Date.now();
  }

  function look(root) {
    if (!root || !root.querySelector) return;
    if (root.querySelector("[data-refusal$='_intercepted']")) alarm();
    var auto = root.querySelector("[data-autoprint]");
    if (auto && !auto.dataset.printed) {
      auto.dataset.printed = "1";
      print(auto.dataset.autoprint);
    }
  }

  if (window.__luyueOutbound) return;
  window.__luyueOutbound = true;

  document.addEventListener("htmx:afterSwap", function () {
    look(document.getElementById("screen"));
  });
  // Deferred: the page is parsed by now (or this came in with a swap).
  look(document.getElementById("screen"));

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-print]");
    if (!button) return;
    event.preventDefault();
    print(button.dataset.print);
  });
})();
