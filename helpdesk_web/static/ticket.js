// The queue and the ticket page, enhanced: keyboard shortcuts, a live SMS counter that
// counts as the outbox encodes (gateway/sms/encoding.py, Gammu), and canned responses
// picked straight into the reply box. Every page works without this file.
(function () {
  "use strict";

  // Gammu's GSM 7-bit alphabet: these cost one septet, the extension table two
  // (an escape and the character); anything else makes the whole text UCS-2.
  var GSM = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
            "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà¹\u0000";
  var GSM_EXT = "^{}\\[~]|€\f";

  // Greedy filling as Gammu does: a unit (an escaped character, a surrogate pair) is
  // never split between two parts.
  function fill(costs, single, multi) {
    var total = 0, i;
    for (i = 0; i < costs.length; i++) total += costs[i];
    if (total <= single) return { units: total, parts: 1 };
    var parts = 1, used = 0;
    for (i = 0; i < costs.length; i++) {
      if (used + costs[i] > multi) { parts++; used = 0; }
      used += costs[i];
    }
    return { units: total, parts: parts };
  }

  function smsParts(text) {
    var chars = Array.from(text), gsm = true, costs = [], i, c;
    for (i = 0; i < chars.length && gsm; i++) {
      c = chars[i];
      if (GSM.indexOf(c) >= 0) costs.push(1);
      else if (GSM_EXT.indexOf(c) >= 0) costs.push(2);
      else gsm = false;
    }
    var result;
    if (gsm) {
      result = fill(costs, 160, 153);
      result.coding = "GSM-7";
    } else {
      costs = chars.map(function (ch) { return ch.length; }); // UTF-16 code units
      result = fill(costs, 70, 67);
      result.coding = "UCS-2";
    }
    result.chars = chars.length;
    return result;
  }
  window.smsParts = smsParts; // the browser test compares it with encoding.part_count

  function typing(el) {
    return el && (/^(INPUT|TEXTAREA|SELECT|BUTTON)$/.test(el.tagName) || el.isContentEditable);
  }

  function counter() {
    var box = document.getElementById("reply-text"), out = document.getElementById("sms-counter");
    if (!box || !out) return;
    var template = out.getAttribute("data-one");
    function update() {
      var r = smsParts(box.value.trim());
      out.textContent = template.replace("{chars}", r.chars).replace("{parts}", r.parts)
                                .replace("{coding}", r.coding);
      out.className = "counter" + (r.parts > 1 ? " multi" : "");
    }
    box.addEventListener("input", update);
    update();
    var canned = document.getElementById("canned");
    if (canned) {
      canned.addEventListener("change", function () {
        var option = canned.options[canned.selectedIndex];
        var text = option && option.getAttribute("data-text");
        if (text === null || text === undefined) return;
        box.value = text;
        update();
        box.focus();
      });
    }
  }

  function queue() {
    var rows = Array.prototype.filter.call(
      document.querySelectorAll("table.queue tbody tr"),
      function (tr) { return tr.querySelector("a[href]"); });
    var key = "queue-selected:" + location.pathname + location.search;
    var selected = -1;
    function select(i) {
      if (!rows.length) return;
      if (selected >= 0) rows[selected].classList.remove("selected");
      selected = Math.max(0, Math.min(rows.length - 1, i));
      rows[selected].classList.add("selected");
      rows[selected].scrollIntoView({ block: "nearest" });
      try { sessionStorage.setItem(key, String(selected)); } catch (e) { /* private mode */ }
    }
    var kept = null;
    try { kept = sessionStorage.getItem(key); } catch (e) { /* private mode */ }
    if (kept !== null && rows.length) select(parseInt(kept, 10) || 0);
    return {
      j: function () { select(selected + 1); },
      k: function () { select(selected < 0 ? 0 : selected - 1); },
      Enter: function () {
        if (selected >= 0) location.href = rows[selected].querySelector("a[href]").href;
      },
      active: function () { return rows.length > 0; }
    };
  }

  function focus(name) {
    var el = document.querySelector("[data-key=" + name + "]");
    if (!el) return false;
    el.focus();
    if (el.setSelectionRange && el.value) el.setSelectionRange(el.value.length, el.value.length);
    return true;
  }

  function shortcuts() {
    var q = queue();
    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.altKey || event.metaKey) return;
      if (event.key === "Escape" && typing(document.activeElement)) {
        document.activeElement.blur();
        return;
      }
      if (typing(document.activeElement) || event.defaultPrevented) return;
      var done = false;
      if (event.key === "/") done = focus("search");
      else if (event.key === "r") done = focus("reply");
      else if (q.active() && (event.key === "j" || event.key === "k" ||
                              event.key === "Enter")) {
        q[event.key]();
        done = true;
      }
      if (done) event.preventDefault();
    });
  }

  counter();
  shortcuts();
})();
