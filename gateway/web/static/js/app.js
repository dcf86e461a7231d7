// The salesman's page: login, the visit form, the outbox and the delivery
// state of each visit. The outbox in IndexedDB is the source of truth for
// unsent visits. The session, the lookups and the server's list only decide
// what is shown and when sending is possible.

import { call, describeFailure, retryAfterMs } from './api.js';
import { formatTime, newVisitID } from './format.js';
import { VisitForm } from './form.js';
import { mergeVisits, renderBadge, renderList } from './list.js';
import { Sender } from './sender.js';
import { clearSession, expireSession, lastUsername, loadSession, saveSession } from './session.js';
import { openStore } from './store.js';

const LIST_DAYS = 7;
const SENT_KEEP_DAYS = 30;
// Save waits this long for the first send, so that field errors from the
// gateway can be shown at once. After that the visit waits in the outbox.
const FIRST_SEND_WAIT_MS = 6000;
// The list is polled often while a visit is in the cloud but not yet at head
// office, and rarely otherwise.
const POLL_PENDING_MS = 5000;
const POLL_IDLE_MS = 60000;
const LOOKUPS_MAX_AGE_MS = 10 * 60 * 1000;
const TICK_MS = 30000;
const HINT_CLOSED_KEY = 'visitrelay.storageHintClosed';

const DAY_MS = 86400000;
const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const app = {
  store: null,
  session: null,
  sender: null,
  form: null,
  lookups: { etag: '', clients: [], devices: [], fetchedAt: 0 },
  clientsByID: new Map(),
  outbox: [],
  sent: [],
  server: { userId: '', visits: [], fetchedAt: 0 },
  rows: [],
  pollTimer: 0,
  pollAt: 0,
  installPrompt: null,
};

async function main() {
  registerServiceWorker();
  try {
    app.store = await openStore();
  } catch (err) {
    showFatal(`This browser cannot keep visits on the phone (${err.message || err}). Check that private browsing is off and storage is allowed, then reload.`);
    return;
  }
  app.lookups = (await app.store.get('meta', 'lookups')) || app.lookups;
  app.server = (await app.store.get('meta', 'serverVisits')) || app.server;
  app.clientsByID = new Map(app.lookups.clients.map((c) => [c.id, c]));

  app.sender = new Sender(app.store, {
    session: () => app.session,
    changed: () => refreshLocal(),
    expired: () => sessionExpired(),
  });
  app.form = new VisitForm({
    save: saveVisit,
    lastVisit,
    recentClinicIDs,
    userID: () => app.session.user.id,
  });
  app.form.setLookups(app.lookups);
  bindEvents();

  app.session = loadSession();
  if (app.session) await showApp();
  else await showLogin();
  app.sender.start();
  setInterval(tick, TICK_MS);
}

function showFatal(message) {
  const banner = document.createElement('p');
  banner.className = 'banner banner-error';
  banner.setAttribute('role', 'alert');
  banner.textContent = message;
  document.body.prepend(banner);
}

function bindEvents() {
  $('login-form').addEventListener('submit', login);
  $('relogin-form').addEventListener('submit', relogin);
  $('logout').addEventListener('click', logout);
  $('send-now').addEventListener('click', () => app.sender.kick({ force: true }));
  $('refresh-list').addEventListener('click', () => {
    app.sender.kick({ force: true });
    refreshServer();
  });
  $('export').addEventListener('click', exportWaiting);
  $('storage-hint-close').addEventListener('click', () => {
    localStorage.setItem(HINT_CLOSED_KEY, '1');
    $('storage-hint').hidden = true;
  });
  $('install').addEventListener('click', install);
  window.addEventListener('beforeinstallprompt', (e) => {
    e.preventDefault();
    app.installPrompt = e;
    $('install').hidden = false;
  });

  for (const tab of [$('tab-form'), $('tab-list')]) {
    tab.addEventListener('click', () => selectTab(tab.id));
    tab.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
      const other = tab.id === 'tab-form' ? 'tab-list' : 'tab-form';
      selectTab(other);
      $(other).focus();
    });
  }

  window.addEventListener('online', () => {
    updateOnline();
    app.sender.kick({ force: true });
    refreshLookups();
    refreshServer();
  });
  window.addEventListener('offline', updateOnline);
  window.addEventListener('focus', () => app.sender.kick());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible') return;
    app.sender.kick();
    app.form.refreshTime();
    refreshServer();
  });
}

function tick() {
  app.form.refreshTime();
  render();
  if (Date.now() - app.lookups.fetchedAt > LOOKUPS_MAX_AGE_MS) refreshLookups();
}

// Views.

async function showApp() {
  $('login-view').hidden = true;
  $('app-view').hidden = false;
  $('user-name').textContent = app.session.user.name || app.session.user.username;
  showRelogin(!app.session.token);
  updateOnline();
  await refreshLocal();
  app.store.pruneSent(new Date(Date.now() - SENT_KEEP_DAYS * DAY_MS).toISOString())
    .catch((err) => console.error('prune sent visits:', err));

  app.sender.kick({ force: true });
  refreshLookups();
  refreshServer();
  requestPersistence();
}

async function showLogin() {
  $('app-view').hidden = true;
  $('login-view').hidden = false;
  $('login-username').value = lastUsername();
  (lastUsername() ? $('login-password') : $('login-username')).focus();

  const waiting = (await app.store.all('outbox')).length;
  $('login-waiting').hidden = waiting === 0;
  $('login-waiting').textContent = `${waiting} ${waiting === 1 ? 'visit is' : 'visits are'} saved on this phone and still waiting. They are sent after their salesman logs in.`;
}

function selectTab(id) {
  for (const tab of [$('tab-form'), $('tab-list')]) {
    const selected = tab.id === id;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(tab.getAttribute('aria-controls')).hidden = !selected;
  }
  if (id === 'tab-list') refreshServer();
}

function updateOnline() {
  $('offline-banner').hidden = navigator.onLine;
  renderProblem();
}

function showRelogin(show) {
  $('relogin-form').hidden = !show;
  $('relogin-error').hidden = true;
  if (!app.session) return;
  $('relogin-user').textContent = app.session.user.username;
  $('relogin-username').value = app.session.user.username;
}

// Rendering.

async function refreshLocal() {
  app.outbox = await app.store.all('outbox');
  app.sent = await app.store.all('sent');
  render();
}

function render() {
  if (!app.session) return;
  const userID = app.session.user.id;
  const server = app.server.userId === userID ? app.server.visits : [];
  app.rows = mergeVisits({
    outbox: app.outbox,
    sent: app.sent,
    server,
    userID,
    since: new Date(Date.now() - LIST_DAYS * DAY_MS),
  });
  renderList($('visit-list'), $('list-empty'), app.rows, {
    clientsByID: app.clientsByID,
    actions: { fix, retry, resendAsNew },
  });
  renderBadge($('badge'), $('send-now'), app.outbox, userID);
  // Without a token nothing can be sent, and the password banner explains why.
  if (!app.session.token) $('send-now').hidden = true;
  $('export').hidden = app.outbox.length === 0;

  const waiting = app.outbox.filter((item) => item.userId === userID).length;
  $('tab-list').textContent = waiting ? `My visits (${waiting})` : 'My visits';
  $('list-updated').textContent = app.server.fetchedAt && app.server.userId === userID
    ? `Delivery states checked at ${formatTime(new Date(app.server.fetchedAt))}.`
    : 'Delivery states not checked with the server yet.';
  renderProblem();
  schedulePoll();
}

// renderProblem explains why waiting visits are not going out while the
// phone believes it is online. Offline has its own banner.
function renderProblem() {
  const banner = $('problem-banner');
  const sender = app.sender;
  const mine = app.session ? app.outbox.filter((i) => i.userId === app.session.user.id && i.state === 'waiting') : [];
  const show = navigator.onLine && sender && sender.failures > 0 && mine.length > 0;
  banner.hidden = !show;
  if (!show) return;
  banner.textContent = `Not sent yet. ${sender.lastError} The phone keeps trying.`;
}

// Saving and the outbox.

// saveVisit stores the visit in the outbox first and only then sends it, so
// a visit the phone reports as saved survives a failed send, a closed tab or
// a dead battery.
async function saveVisit(payload, fixing) {
  const item = {
    visitId: payload.visitId,
    userId: payload.userId,
    body: JSON.stringify(payload),
    savedAt: fixing ? fixing.savedAt : new Date().toISOString(),
    state: 'waiting',
  };
  try {
    await app.store.put('outbox', item);
  } catch (err) {
    return { state: 'failed', message: err.message || String(err) };
  }
  await refreshLocal();
  if (!app.session.token || !navigator.onLine) return { state: 'waiting' };

  await Promise.race([app.sender.kick({ force: true }), sleep(FIRST_SEND_WAIT_MS)]);
  const current = await app.store.get('outbox', item.visitId);
  if (!current) return { state: 'sent' };
  if (current.state === 'rejected') return { state: 'rejected', item: current };
  return { state: 'waiting' };
}

function fix(item) {
  selectTab('tab-form');
  app.form.fix(item);
  window.scrollTo(0, 0);
}

async function retry(item) {
  await app.store.put('outbox', { ...item, state: 'waiting', rejection: null });
  await refreshLocal();
  app.sender.kick({ force: true });
}

// resendAsNew gives a visit that got a 409 a fresh visitId. The gateway
// already stores different content under the old id, so only a new id can
// deliver this content. The salesman chooses this after reading the message.
async function resendAsNew(item) {
  const visit = { ...JSON.parse(item.body), visitId: newVisitID() };
  await app.store.replace(item.visitId, {
    ...item,
    visitId: visit.visitId,
    body: JSON.stringify(visit),
    state: 'waiting',
    rejection: null,
  });
  await refreshLocal();
  app.sender.kick({ force: true });
}

function myVisits() {
  if (!app.session) return [];
  const userID = app.session.user.id;
  const visits = app.sent.filter((s) => s.userId === userID).map((s) => s.visit);
  for (const item of app.outbox) {
    if (item.userId === userID) visits.push(JSON.parse(item.body));
  }
  return visits.sort((a, b) => new Date(b.dateTime) - new Date(a.dateTime));
}

function lastVisit(clientId) {
  return myVisits().find((v) => v.clientId === clientId) || null;
}

function recentClinicIDs() {
  return [...new Set(myVisits().map((v) => v.clientId))];
}

async function exportWaiting() {
  const items = await app.store.all('outbox');
  if (items.length === 0) {
    $('list-updated').textContent = 'No visits are waiting, so there is nothing to export.';
    return;
  }
  const data = {
    exportedAt: new Date().toISOString(),
    visits: items.map((item) => ({
      ...JSON.parse(item.body),
      savedAt: item.savedAt,
      state: item.state,
      rejection: item.rejection || null,
    })),
  };
  const blob = new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' });
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = `visitrelay-waiting-${data.exportedAt.slice(0, 16).replace(/[:T]/g, '-')}.json`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  $('list-updated').textContent = `Exported ${items.length} waiting ${items.length === 1 ? 'visit' : 'visits'}.`;
}

// Login and session.

function loginError(resp) {
  if (resp.status === 0) return 'The server cannot be reached. Logging in needs a connection.';
  if (resp.status === 401) return 'Unknown user or wrong password.';
  if (resp.status === 429) {
    const minutes = Math.max(1, Math.ceil(retryAfterMs(resp.headers) / 60000));
    return `Too many failed logins. Wait ${minutes} ${minutes === 1 ? 'minute' : 'minutes'} and try again.`;
  }
  return describeFailure(resp);
}

async function postLogin(username, password) {
  const resp = await call('POST', '/api/v1/login', { body: { username, password } });
  if (resp.status !== 200 || !resp.body || !resp.body.token) return { error: loginError(resp) };
  return { session: { token: resp.body.token, expiresAt: resp.body.expiresAt, user: resp.body.user } };
}

async function login(e) {
  e.preventDefault();
  const button = $('login-submit');
  if (button.disabled) return;
  const username = $('login-username').value.trim();
  const password = $('login-password').value;
  const error = $('login-error');
  if (!username || !password) {
    error.textContent = 'Enter your username and password.';
    error.hidden = false;
    return;
  }

  button.disabled = true;
  button.textContent = 'Logging in…';
  try {
    const result = await postLogin(username, password);
    if (result.error) {
      error.textContent = result.error;
      error.hidden = false;
      return;
    }
    error.hidden = true;
    $('login-password').value = '';
    app.session = result.session;
    saveSession(app.session);
    await showApp();
  } finally {
    button.disabled = false;
    button.textContent = 'Log in';
  }
}

async function relogin(e) {
  e.preventDefault();
  const password = $('relogin-password').value;
  const error = $('relogin-error');
  if (!password) {
    error.textContent = 'Enter your password.';
    error.hidden = false;
    return;
  }
  const result = await postLogin(app.session.user.username, password);
  if (result.error) {
    error.textContent = result.error;
    error.hidden = false;
    return;
  }
  $('relogin-password').value = '';
  app.session = result.session;
  saveSession(app.session);
  showRelogin(false);
  app.sender.kick({ force: true });
  refreshLookups();
  refreshServer();
}

// sessionExpired keeps the user and every outbox entry, and shows a banner
// that requests the password, so visits can still be recorded meanwhile.
function sessionExpired() {
  if (!app.session || !app.session.token) return;
  app.session = expireSession(app.session);
  showRelogin(true);
  render();
}

async function logout() {
  const userID = app.session.user.id;
  const waiting = (await app.store.all('outbox')).filter((item) => item.userId === userID).length;
  if (waiting > 0) {
    const dialog = $('logout-dialog');
    $('logout-text').textContent = `${waiting} ${waiting === 1 ? 'visit has' : 'visits have'} not reached the server yet. ` +
      `They stay on this phone and are sent after ${app.session.user.username} logs in here again. Log out anyway?`;
    dialog.returnValue = '';
    dialog.showModal();
    await new Promise((resolve) => dialog.addEventListener('close', resolve, { once: true }));
    if (dialog.returnValue !== 'logout') return;
  }
  clearSession();
  app.session = null;
  clearTimeout(app.pollTimer);
  app.pollTimer = 0;
  await showLogin();
}

// Lookups and the server's visit list.

async function refreshLookups() {
  const session = app.session;
  if (!session || !session.token || !navigator.onLine) return;
  const headers = app.lookups.etag ? { 'If-None-Match': app.lookups.etag } : {};
  const resp = await call('GET', '/api/v1/lookups', { token: session.token, headers });
  if (resp.status === 401) {
    sessionExpired();
    return;
  }
  if (resp.status === 304) {
    app.lookups.fetchedAt = Date.now();
    return;
  }
  if (resp.status !== 200 || !resp.body) return;

  app.lookups = {
    etag: resp.headers.get('ETag') || '',
    clients: resp.body.clients || [],
    devices: resp.body.devices || [],
    fetchedAt: Date.now(),
  };
  app.clientsByID = new Map(app.lookups.clients.map((c) => [c.id, c]));
  app.form.setLookups(app.lookups);
  render();
  await app.store.put('meta', app.lookups, 'lookups');
}

async function refreshServer() {
  const session = app.session;
  if (!session || !session.token || !navigator.onLine) return;
  const since = new Date(Date.now() - LIST_DAYS * DAY_MS).toISOString();
  const resp = await call('GET', `/api/v1/visits?since=${encodeURIComponent(since)}`, { token: session.token });
  if (resp.status === 401) {
    sessionExpired();
    return;
  }
  if (resp.status !== 200 || !resp.body) return;

  app.server = { userId: session.user.id, visits: resp.body.visits || [], fetchedAt: Date.now() };
  render();
  await app.store.put('meta', app.server, 'serverVisits');
}

// schedulePoll keeps one timer for the next check of the server's list.
// render calls it often, so it only ever moves the check earlier.
function schedulePoll() {
  if (!app.session) return;
  const pending = app.rows.some((row) => row.state === 'accepted');
  const at = Date.now() + (pending ? POLL_PENDING_MS : POLL_IDLE_MS);
  if (app.pollTimer && app.pollAt <= at) return;
  clearTimeout(app.pollTimer);
  app.pollAt = at;
  app.pollTimer = setTimeout(async () => {
    app.pollTimer = 0;
    if (document.visibilityState === 'visible') await refreshServer();
    schedulePoll();
  }, at - Date.now());
}

// Offline start and storage.

function registerServiceWorker() {
  const status = $('offline-ready');
  if (!('serviceWorker' in navigator)) {
    status.textContent = 'Starting without a connection needs HTTPS';
    return;
  }
  navigator.serviceWorker.register('/sw.js')
    .then(() => navigator.serviceWorker.ready)
    .then(() => {
      status.textContent = 'Ready to start offline';
      document.documentElement.dataset.offlineReady = 'true';
    })
    .catch((err) => {
      status.textContent = `Cannot start offline: ${err.message}`;
    });
}

// requestPersistence requests persistent storage, so the browser does not
// evict the outbox under storage pressure. Where the browser does not grant
// it, installing the page to the home screen is what makes most browsers
// keep the data, so the hint suggests that.
async function requestPersistence() {
  let persisted = false;
  if (navigator.storage && navigator.storage.persist) {
    try {
      persisted = (await navigator.storage.persisted()) || (await navigator.storage.persist());
    } catch {
      persisted = false;
    }
  }
  // The storage mode is on the root element for support and for tests.
  document.documentElement.dataset.storage = persisted ? 'persistent' : 'best-effort';
  const installed = window.matchMedia('(display-mode: standalone)').matches;
  $('storage-hint').hidden = persisted || installed || Boolean(localStorage.getItem(HINT_CLOSED_KEY));
}

async function install() {
  if (!app.installPrompt) return;
  app.installPrompt.prompt();
  await app.installPrompt.userChoice;
  app.installPrompt = null;
  $('install').hidden = true;
}

main();
