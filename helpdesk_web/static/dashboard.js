// The dashboard keeps itself current: every 3 seconds it asks /dashboard.json for the
// figures (already formatted by the server, in the user's language) and copies each into
// the element that shows it. Without JavaScript the page is the same, as of its loading.
(function () {
  var root = document.querySelector('[data-dashboard]');
  if (!root || !window.fetch) return;
  var url = root.getAttribute('data-dashboard');
  var busy = false;

  function put(element, text) {
    if (element.textContent !== text) element.textContent = text;
  }

  function update(data) {
    root.querySelectorAll('[data-k]').forEach(function (element) {
      var value = data.figures[element.getAttribute('data-k')];
      if (value !== undefined) put(element, value);
    });
    var modems = {};
    data.modems.forEach(function (m) { modems[m.name] = m; });
    root.querySelectorAll('[data-modem]').forEach(function (row) {
      var m = modems[row.getAttribute('data-modem')];
      if (!m) return;
      row.querySelectorAll('[data-m]').forEach(function (element) {
        var field = element.getAttribute('data-m');
        if (field === 'light') element.className = 'light ' + m.health;
        else put(element, m[field]);
      });
    });
    root.setAttribute('data-refreshed', String(Date.now()));
  }

  function poll() {
    if (busy || document.hidden) return;
    busy = true;
    fetch(url, {credentials: 'same-origin', headers: {'Accept': 'application/json'}})
      .then(function (response) {
        var type = response.headers.get('Content-Type') || '';
        // A login page after the session ended is not figures: leave the page as it is.
        return response.ok && type.indexOf('json') !== -1 ? response.json() : null;
      })
      .then(function (data) { if (data) update(data); })
      .catch(function () {})
      .then(function () { busy = false; });
  }

  setInterval(poll, 3000);
})();
