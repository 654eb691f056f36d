// Follows the log of a running yaci run: each log on the page that has a
// data-stream address gets the lines that come after those already shown,
// from a server-sent event stream, and the page scrolls with them while
// "Follow the log" is ticked. Line text is set with textContent, so nothing
// in a log can become markup.
(function () {
  "use strict";

  var box = document.getElementById("follow-box");
  var toggle = document.getElementById("follow");
  var status = document.getElementById("follow-status");
  var logs = Array.prototype.slice.call(document.querySelectorAll("pre[data-stream]"));
  if (!box || !toggle || logs.length === 0) {
    return;
  }
  box.hidden = false;

  var sources = [];

  function shown(pre) {
    if (pre.yaciLines === undefined) {
      pre.yaciLines = pre.querySelectorAll("span.l").length;
    }
    return pre.yaciLines;
  }

  function addLine(pre, msg) {
    if (msg.n <= shown(pre)) {
      return;
    }
    var id = (pre.dataset.prefix || "") + "L" + msg.n;
    var line = document.createElement("span");
    line.className = "l";
    line.id = id;
    var num = document.createElement("a");
    num.className = "n";
    num.href = "#" + id;
    num.textContent = String(msg.n);
    line.appendChild(num);
    (msg.s || []).forEach(function (seg) {
      if (seg[0]) {
        var span = document.createElement("span");
        span.className = seg[0];
        span.textContent = seg[1];
        line.appendChild(span);
      } else {
        line.appendChild(document.createTextNode(seg[1]));
      }
    });
    pre.appendChild(line);
    pre.appendChild(document.createTextNode("\n"));
    pre.yaciLines = msg.n;
  }

  function allEnded() {
    return logs.every(function (pre) { return pre.dataset.ended === "1"; });
  }

  function follow(pre) {
    if (pre.dataset.ended === "1") {
      return;
    }
    var es = new EventSource(pre.dataset.stream + "&from=" + shown(pre));
    es.onmessage = function (ev) {
      addLine(pre, JSON.parse(ev.data));
      if (toggle.checked) {
        window.scrollTo(0, document.body.scrollHeight);
      }
    };
    es.addEventListener("end", function (ev) {
      es.close();
      pre.dataset.ended = "1";
      if (allEnded()) {
        var state = JSON.parse(ev.data).state;
        status.textContent = "The run has ended" + (state ? " (" + state + ")" : "") +
          "; reload the page for its final state.";
        toggle.checked = false;
        toggle.disabled = true;
      }
    });
    es.onerror = function () {
      status.textContent = es.readyState === EventSource.CLOSED ?
        "The live log is unavailable; reload the page." : "Reconnecting…";
    };
    es.onopen = function () {
      status.textContent = "";
    };
    sources.push(es);
  }

  function start() {
    logs.forEach(follow);
  }

  function stop() {
    sources.forEach(function (es) { es.close(); });
    sources = [];
  }

  toggle.addEventListener("change", function () {
    if (toggle.checked) {
      start();
    } else {
      stop();
    }
  });
  if (toggle.checked) {
    start();
  }
})();
