// FreshClaim reviewer workbench: countdowns, keyboard decisions, lease heartbeat and release.
// Plain JavaScript, no build step, nothing fetched from outside.
(function () {
  "use strict";
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.content : "";
  var claimEl = document.getElementById("claim");
  var claimId = claimEl ? claimEl.dataset.claimId : null;
  var leaseMine = claimEl && claimEl.dataset.leaseState === "mine";
  var leaving = false;

  // ------------------------------------------------------------ countdowns
  function formatSeconds(total) {
    var s = Math.abs(Math.round(total));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    return h ? h + "h " + pad(m) + "m" : m + "m " + pad(sec) + "s";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (el) {
      var left = (Date.parse(el.dataset.deadline) - now) / 1000;
      el.classList.toggle("late", left < 0);
      el.classList.toggle("soon", left >= 0 && left < 1800);
      el.textContent = left < 0 ? (el.dataset.overdue || "overdue") + " " + formatSeconds(left)
                                : formatSeconds(left);
    });
  }
  tick();
  setInterval(tick, 1000);

  // ------------------------------------------------------------ help overlay
  var help = document.getElementById("help");
  function toggleHelp(show) {
    if (!help) return;
    help.hidden = show === undefined ? !help.hidden : !show;
  }
  document.querySelectorAll('[data-action="help"]').forEach(function (b) {
    b.addEventListener("click", function () { toggleHelp(); });
  });
  if (help) help.addEventListener("click", function (e) { if (e.target === help) toggleHelp(false); });

  // ------------------------------------------------------------ next claim
  function nextClaim() {
    var form = document.getElementById("next-form");
    if (!form) return;
    leaving = true;
    form.submit();
  }
  document.querySelectorAll('[data-action="next"]').forEach(function (b) {
    b.addEventListener("click", nextClaim);
  });

  // ------------------------------------------------------------ heat map
  var heatToggle = document.getElementById("heatmap-toggle");
  var heatShown = false;
  function setHeatmap(on) {
    if (!heatToggle) return;
    heatToggle.checked = on;
    document.querySelectorAll("img.heat").forEach(function (img) {
      if (on && !img.getAttribute("src")) img.setAttribute("src", img.dataset.src);
      img.hidden = !on;
    });
    if (on) heatShown = true;
  }
  if (heatToggle) heatToggle.addEventListener("change", function () { setHeatmap(heatToggle.checked); });

  // ------------------------------------------------------------ decisions
  function loadedPhotoIds() {
    var ids = [];
    document.querySelectorAll("figure.photo").forEach(function (fig) {
      var img = fig.querySelector("img[data-photo-img]");
      if (img && img.complete && img.naturalWidth > 0) ids.push(fig.dataset.photoId);
    });
    return ids.join(",");
  }
  var submitting = false;
  document.querySelectorAll("form[data-decision]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      if (submitting) { e.preventDefault(); return; }
      submitting = true;
      leaving = true;
      form.querySelectorAll("[data-heatmap-shown]").forEach(function (i) { i.value = heatShown ? "1" : "0"; });
      form.querySelectorAll("[data-photos-shown]").forEach(function (i) { i.value = loadedPhotoIds(); });
    });
  });
  function submitDecision(name) {
    var form = document.querySelector('form[data-decision="' + name + '"]');
    if (!form) return;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  }
  function closePanels() {
    document.querySelectorAll("form.panel").forEach(function (p) { p.hidden = true; });
  }
  function openPanel(name) {
    var panel = document.getElementById("panel-" + name);
    if (!panel) return;
    closePanels();
    panel.hidden = false;
    var first = panel.querySelector(name === "part" ? "#part-amount" : "select");
    if (first) { first.focus(); if (first.select) first.select(); }
  }
  document.querySelectorAll("[data-open]").forEach(function (b) {
    b.addEventListener("click", function () { openPanel(b.dataset.open); });
  });
  document.querySelectorAll("[data-close]").forEach(function (b) {
    b.addEventListener("click", closePanels);
  });
  // a reason's default sentence to the customer replaces the message until it is edited
  document.querySelectorAll("select[data-message-select]").forEach(function (select) {
    var area = select.form.querySelector("textarea");
    var last = area ? area.value : "";
    select.addEventListener("change", function () {
      var option = select.options[select.selectedIndex];
      var text = option ? option.dataset.message : "";
      if (area && text && area.value === last) { area.value = text; last = text; }
    });
  });
  var qty = document.getElementById("part-quantity");
  var amount = document.getElementById("part-amount");
  if (qty && amount) {
    qty.addEventListener("input", function () {
      var n = parseInt(qty.value, 10);
      if (!(n > 0)) return;
      var cents = Math.min(n * parseInt(qty.dataset.unitCents, 10), parseInt(qty.dataset.maxCents, 10));
      amount.value = (cents / 100).toFixed(2);
    });
  }

  // ------------------------------------------------------------ keyboard
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    var typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT");
    if (e.key === "Escape") {
      toggleHelp(false); closePanels();
      if (typing) t.blur();
      return;
    }
    if (typing) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && t.form) {
        e.preventDefault();
        if (t.form.requestSubmit) t.form.requestSubmit(); else t.form.submit();
      } else if (e.key === "Enter" && t.tagName === "SELECT" && t.form && t.form.dataset.decision) {
        e.preventDefault();
        var next = t.form.querySelector("textarea, input:not([type=hidden])");
        if (next) next.focus();
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var key = e.key.toLowerCase();
    if (key === "?") { e.preventDefault(); toggleHelp(); return; }
    if (help && !help.hidden) return;
    if (key === "n") { e.preventDefault(); nextClaim(); return; }
    if (!claimEl) return;
    if (key === "h") { e.preventDefault(); setHeatmap(!(heatToggle && heatToggle.checked)); return; }
    if (key === "q") { e.preventDefault(); backToQueue(); return; }
    if (!leaseMine) return;
    if (key === "a") { e.preventDefault(); submitDecision("approve"); }
    else if (key === "p") { e.preventDefault(); openPanel("part"); }
    else if (key === "r") { e.preventDefault(); openPanel("reject"); }
    else if (key === "m") { e.preventDefault(); openPanel("request_photos"); }
    else if (key === "s") { e.preventDefault(); submitDecision("skip"); }
  });

  // ------------------------------------------------------------ labels (no page reload)
  document.querySelectorAll("form[data-label-form]").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var body = new FormData(form);
      body.append("csrf", csrf);
      fetch(form.action, { method: "POST", body: body, credentials: "same-origin",
                           headers: { "X-CSRF-Token": csrf } })
        .then(function (r) {
          var saved = form.querySelector(".saved");
          if (saved) { saved.hidden = !r.ok; }
        });
    });
  });

  // ------------------------------------------------------------ lease heartbeat and release
  // Back to the queue with the lease given back first: the pagehide beacon alone raced the
  // queue page, which could still show this claim as leased.
  function backToQueue() {
    if (leaving) return;
    leaving = true;
    var go = function () { window.location.href = "/web/queue"; };
    if (!claimId || !leaseMine) { go(); return; }
    var body = new FormData();
    body.append("csrf", csrf);
    var timer = setTimeout(go, 2000);  // a slow release must not keep the reviewer here
    fetch("/web/claims/" + claimId + "/release", {
      method: "POST", body: body, credentials: "same-origin", keepalive: true,
      headers: { "X-CSRF-Token": csrf }
    }).catch(function () { /* the lease expires on its own */ })
      .then(function () { clearTimeout(timer); go(); });
  }
  if (claimId && leaseMine) {
    document.querySelectorAll('a[href="/web/queue"]').forEach(function (link) {
      link.addEventListener("click", function (e) {
        if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;  // a new tab keeps it
        e.preventDefault();
        backToQueue();
      });
    });
    var interval = parseInt(claimEl.dataset.heartbeatMs, 10) || 30000;
    var beat = function () {
      fetch("/web/claims/" + claimId + "/heartbeat", {
        method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf }
      }).then(function (r) {
        if (!r.ok) {
          leaseMine = false;
          var lost = document.getElementById("lease-lost");
          if (lost) lost.hidden = false;
          return null;
        }
        return r.json();
      }).then(function (data) {
        var el = document.getElementById("lease-expires");
        if (data && el) el.textContent = data.lease_expires_at.replace("T", " ").slice(0, 16) + " UTC";
      }).catch(function () { /* offline: the next beat retries */ });
    };
    setInterval(beat, interval);
    window.addEventListener("pagehide", function () {
      if (leaving || !leaseMine) return;
      var body = new FormData();
      body.append("csrf", csrf);
      navigator.sendBeacon("/web/claims/" + claimId + "/release", body);
    });
  }
})();
