// New SMS appear in the ticket list without a click: reload every 10 seconds, unless
// the operator is busy with the filter form. Without JavaScript the page still works.
setInterval(function () {
  var active = document.activeElement;
  if (active && /^(INPUT|SELECT|TEXTAREA|BUTTON)$/.test(active.tagName)) return;
  window.location.reload();
}, 10000);
