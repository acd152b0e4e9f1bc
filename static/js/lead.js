/* The lead dashboard's live connection (htmx ws extension).
 *
 * - Every (re)connection asks for what came after the last seq this page
 *   saw: the server puts it in #lead-seq with each message, and the socket
 *   URL's `after` is rewritten from it through htmx.createWebSocket, the
 *   extension's factory hook. The server then replays exactly the missed
 *   exceptions and sends the counts whole.
 * - The extension reconnects by itself (with jitter) after an abnormal close
 *   or a server restart; the state is shown in #lead-conn. A close with 1008
 *   means the login no longer allows this page: no retry, say so.
 * - The exceptions list keeps the newest MAX_EXCEPTIONS items.
 */
(function () {
  "use strict";
  if (window.luyueLead) return; // loaded again by an htmx swap
  window.luyueLead = true;
  var MAX_EXCEPTIONS = 50;

  function lastSeq() {
    var marker = document.getElementById("lead-seq");
    return marker ? marker.getAttribute("data-seq") : null;
  }

  // Jitter as the extension's own, but never more than 5 s between tries:
  // a lead should not stare at an old count for a minute after a blip.
  htmx.config.wsReconnectDelay = function (retries) {
    return 250 + Math.random() * Math.min(1000 * Math.pow(2, retries), 5000);
  };

  var create = htmx.createWebSocket || function (url) {
    var socket = new WebSocket(url, []);
    socket.binaryType = htmx.config.wsBinaryType;
    return socket;
  };
  htmx.createWebSocket = function (url) {
    var target = new URL(url, window.location.href);
    var seq = lastSeq();
    if (/\/lead\/live$/.test(target.pathname) && seq !== null) {
      target.searchParams.set("after", seq);
    }
    return create(target.toString());
  };

  function show(state) {
    var badge = document.getElementById("lead-conn");
    if (!badge) return;
    badge.setAttribute("data-state", state);
    badge.textContent = badge.getAttribute("data-" + state) || state;
  }

  var opened = false;
  document.addEventListener("htmx:wsConnecting", function () { show(opened ? "reconnecting" : "connecting"); });
  document.addEventListener("htmx:wsOpen", function () { opened = true; show("connected"); });
  document.addEventListener("htmx:wsClose", function (event) {
    var code = event.detail && event.detail.event ? event.detail.event.code : 0;
    if (code === 1008) { show("closed"); return; }
    show("reconnecting");
    // The extension retries 1006, 1011, 1012 and 1013 itself; a proxy's
    // 1000, 1001 or a close without a code would otherwise end the page's updates.
    if ([1006, 1011, 1012, 1013].indexOf(code) < 0 && document.body.contains(event.target)) {
      var wrapper = event.detail.socketWrapper;
      setTimeout(function () {
        if (document.body.contains(event.target)) wrapper.reconnect();
      }, 500 + Math.random() * 2000);
    }
  });
  document.addEventListener("htmx:wsAfterMessage", function () {
    var list = document.getElementById("lead-exceptions");
    while (list && list.children.length > MAX_EXCEPTIONS) list.removeChild(list.lastElementChild);
  });
})();
