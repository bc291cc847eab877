// The reportd dashboard's only script: every few seconds it swaps in the
// parts of the page the server renders (and escapes) at /ui/api/overview,
// and it sends Retry and Delete with the page's CSRF token. No framework,
// nothing fetched from elsewhere: the page's Content-Security-Policy allows
// this file and nothing else.
(function () {
  'use strict';
  var REFRESH_MS = 3000;
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute('content') : '';
  var flash = document.getElementById('flash');
  var timer = null;

  function say(text, bad) {
    flash.textContent = text;
    flash.className = bad ? 'bad' : 'ok';
  }

  // Resolves in every case, so the next refresh is always scheduled.
  function refresh() {
    return fetch('/ui/api/overview', { credentials: 'same-origin', headers: { Accept: 'application/json' } })
      .then(function (r) {
        // The session ended or the key was revoked: the page shows the login form.
        if (r.status === 401 || r.status === 403) {
          window.location.reload();
          return null;
        }
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      })
      .then(function (body) {
        if (!body) return;
        Object.keys(body.html).forEach(function (name) {
          var el = document.getElementById('part-' + name);
          if (el) el.innerHTML = body.html[name];
        });
        document.body.classList.remove('stale');
      })
      .catch(function () {
        document.body.classList.add('stale');
      });
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      // A hidden tab asks nothing of the server.
      if (document.hidden) schedule();
      else refresh().then(schedule);
    }, REFRESH_MS);
  }

  document.addEventListener('visibilitychange', function () {
    if (!document.hidden) refresh();
  });

  document.addEventListener('click', function (ev) {
    var button = ev.target.closest('button[data-action]');
    if (!button) return;
    var id = button.getAttribute('data-id');
    var action = button.getAttribute('data-action');
    if (action === 'delete' && !window.confirm('Delete job ' + id + '? Its payload, report and rows are erased.')) return;
    button.disabled = true;
    var url = action === 'retry' ? '/ui/api/jobs/' + id + '/retry' : '/ui/api/jobs/' + id;
    fetch(url, {
      method: action === 'retry' ? 'POST' : 'DELETE',
      credentials: 'same-origin',
      headers: { 'X-CSRF-Token': csrf, Accept: 'application/json' }
    })
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (body) { return { ok: r.ok, body: body }; });
      })
      .then(function (res) {
        if (res.ok) {
          say((action === 'retry' ? 'Job ' + id + ' is queued again.' : 'Job ' + id + ' is deleted.'), false);
        } else {
          var why = res.body && res.body.error && res.body.error.message;
          say('Could not ' + action + ' job ' + id + ': ' + (why || 'the server refused') + '.', true);
          button.disabled = false;
        }
        return refresh();
      })
      .catch(function () {
        say('Could not reach the server.', true);
        button.disabled = false;
      });
  });

  schedule();
})();
