// Sends the page's CSRF token with every same-origin fetch that can change
// state: the hydrated app's server function calls and billing.js. The
// server rejects such requests without it (see app/src/security.rs).
(function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta && meta.getAttribute('content');
  if (!token || !window.fetch) return;

  var originalFetch = window.fetch.bind(window);
  window.fetch = function (input, init) {
    var isRequest = input instanceof Request;
    var method = ((init && init.method) || (isRequest ? input.method : 'GET')).toUpperCase();
    var url = new URL(isRequest ? input.url : String(input), window.location.href);
    var safe = method === 'GET' || method === 'HEAD' || method === 'OPTIONS';
    if (safe || url.origin !== window.location.origin) return originalFetch(input, init);

    // Leptos passes a Request object, whose body must not be read here:
    // its headers can be changed in place.
    if (isRequest && !(init && init.headers)) {
      input.headers.set('x-csrf-token', token);
      return originalFetch(input, init);
    }
    var headers = new Headers((init && init.headers) || (isRequest ? input.headers : undefined));
    headers.set('x-csrf-token', token);
    return originalFetch(input, Object.assign({}, init, { headers: headers }));
  };
})();
