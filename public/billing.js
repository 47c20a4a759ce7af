// Add Card on the billing page. Requests a SetupIntent from the server, loads
// Stripe.js from the URL the server names, mounts Stripe's card element and
// confirms the SetupIntent with Stripe from the browser, then requests the
// server to finish that SetupIntent. The card number goes only to Stripe.
(function () {
  // Leptos may insert this script again when the page re-renders.
  if (window.casolaBillingLoaded) return;
  window.casolaBillingLoaded = true;

  let stripe = null;
  let cardElement = null;
  let setup = null;
  let loadedUrl = null;
  // The element that had focus when the dialog opened, focused again when
  // it closes (by Cancel, Escape or a saved card).
  let opener = null;

  const byId = (id) => document.getElementById(id);

  function loadScript(url) {
    return new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = url;
      script.onload = resolve;
      script.onerror = () => reject(new Error('Stripe.js could not be loaded from ' + url + '. Try again.'));
      document.head.appendChild(script);
    });
  }

  // Server functions return errors as {"Variant": "message"}; see AppError.
  function errorMessage(body, status) {
    if (body === 'Unauthenticated') return 'You are signed out. Sign in again to continue.';
    if (body && typeof body === 'object') {
      const value = Object.values(body)[0];
      if (typeof value === 'string') return value;
      if (value && value.request_id) return 'Something went wrong on our side (request ' + value.request_id + '). Try again.';
    }
    return 'The request failed with status ' + status + '. Try again.';
  }

  // The static single-page app names the server's origin in a <meta>
  // element when it is served from another origin; the server-rendered
  // page has none and calls its own origin.
  function serverUrl() {
    const meta = document.querySelector('meta[name="casola-server-url"]');
    return meta ? meta.content.trim().replace(/\/+$/, '') : '';
  }

  // The server-rendered page carries the CSRF token in a <meta> element,
  // and csrf.js sends it. The static app has no such element, so it reads
  // the token for its cookies from the server before each call.
  async function csrfHeaders() {
    if (document.querySelector('meta[name="csrf-token"]')) return {};
    const response = await fetch(serverUrl() + '/api/csrf-token', { credentials: 'include' });
    if (!response.ok) throw new Error('Could not fetch the CSRF token: status ' + response.status + '. Try again.');
    return { 'x-csrf-token': await response.json() };
  }

  async function callServer(endpoint, params) {
    const csrf = await csrfHeaders();
    const response = await fetch(serverUrl() + '/api/billing/' + endpoint, {
      method: 'POST',
      // Sends the session cookie to the server's origin from the static app.
      credentials: 'include',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...csrf },
      body: new URLSearchParams(params),
    });
    const body = await response.json().catch(() => null);
    if (!response.ok) throw new Error(errorMessage(body, response.status));
    return body;
  }

  async function openDialog() {
    const dialog = byId('add-card-dialog');
    opener = document.activeElement;
    byId('card-errors').textContent = '';
    byId('card-element').textContent = 'Loading the card form…';
    dialog.showModal();
    try {
      setup = await callServer('card-setup', {});
      if (loadedUrl !== setup.js_url) {
        await loadScript(setup.js_url);
        loadedUrl = setup.js_url;
      }
      stripe = window.Stripe(setup.publishable_key);
      byId('card-element').textContent = '';
      cardElement = stripe.elements().create('card');
      cardElement.mount('#card-element');
      // Stripe.js from Stripe draws its fields in an iframe, which takes no
      // focus() call, so this moves focus only where the fields are inputs,
      // as in the stand-in. Elsewhere focus stays on the dialog's first
      // button, where showModal() put it.
      const firstField = byId('card-element').querySelector('input');
      if (firstField) firstField.focus();
    } catch (error) {
      byId('card-element').textContent = '';
      byId('card-errors').textContent = error.message;
    }
  }

  async function saveCard(event) {
    event.preventDefault();
    if (!stripe || !cardElement || !setup) return;
    const button = byId('add-card-save');
    button.disabled = true;
    byId('card-errors').textContent = '';
    try {
      const result = await stripe.confirmCardSetup(setup.client_secret, {
        payment_method: { card: cardElement },
      });
      if (result.error) throw new Error(result.error.message || 'Stripe could not confirm the card. Check it and try again.');
      await callServer('complete-card-setup', { setup_intent_id: setup.setup_intent_id });
      byId('add-card-dialog').close();
      window.location.reload();
    } catch (error) {
      byId('card-errors').textContent = error.message;
    } finally {
      button.disabled = false;
    }
  }

  // Elements that take focus with the Tab key.
  const TABBABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), ' +
    'textarea:not([disabled]), iframe, [tabindex]:not([tabindex="-1"])';

  // showModal() makes the page behind the dialog inert, but Tab can still
  // leave for the browser's own toolbar. This keeps it inside the dialog.
  function trapTab(event) {
    const dialog = byId('add-card-dialog');
    if (event.key !== 'Tab' || !dialog || !dialog.open) return;
    const tabbable = Array.from(dialog.querySelectorAll(TABBABLE));
    if (tabbable.length === 0) return;
    const first = tabbable[0];
    const last = tabbable[tabbable.length - 1];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  }

  function returnFocus() {
    if (opener && opener.isConnected) opener.focus();
    opener = null;
  }

  document.addEventListener('keydown', trapTab);
  // 'close' fires however the dialog closed, Escape included.
  document.addEventListener('close', (event) => {
    if (event.target.id === 'add-card-dialog') returnFocus();
  }, true);
  document.addEventListener('click', (event) => {
    if (event.target.closest('#add-card')) openDialog();
    if (event.target.closest('#add-card-cancel')) byId('add-card-dialog').close();
  });
  document.addEventListener('submit', (event) => {
    if (event.target.id === 'add-card-form') saveCard(event);
  });
})();
