// Sends the outbox to the gateway.
//
// A visit leaves the outbox only when the gateway responds 201 (accepted) or
// 200 (already accepted). Every retry posts the stored body with the same
// visitId, so a retry never creates a second visit. A 4xx response that a
// retry cannot fix (400, 403, 409, 413, 415) flags the visit as rejected and
// keeps it for the salesman to fix or export. 401 stops sending until the
// salesman logs in again. No response, 408, 429 and 5xx back off and retry.

import { call, describeFailure, retryAfterMs } from './api.js';

const MIN_DELAY_MS = 2000;
const MAX_DELAY_MS = 5 * 60 * 1000;
// The safety tick retries even if every event that should have started a
// retry was missed, such as an online event that never fired.
const SAFETY_TICK_MS = 60 * 1000;

export class Sender {
  // hooks: {session() -> current session or null, changed(), expired()}
  constructor(store, hooks) {
    this.store = store;
    this.hooks = hooks;
    this.failures = 0;
    this.retryAt = 0;
    this.lastError = '';
    this.sending = false;
    this.queued = null;
    this.tail = Promise.resolve();
    this.timer = 0;
  }

  start() {
    setInterval(() => this.kick(), SAFETY_TICK_MS);
  }

  // kick starts a pass over the outbox. With force it ignores the backoff,
  // which the page does on open, on the online event and on "Send now".
  // The returned promise settles after a pass that started after this call.
  kick({ force = false } = {}) {
    if (force) this.retryAt = 0;
    if (!this.queued) {
      this.queued = this.tail.then(() => {
        this.queued = null;
        return this.withLock(() => this.pass());
      }).catch((err) => console.error('send outbox:', err));
      this.tail = this.queued;
    }
    return this.queued;
  }

  // withLock keeps two tabs of the page from sending at the same time.
  // Two concurrent posts would still make one visit, but one sender at a
  // time keeps a single backoff for the whole outbox.
  withLock(fn) {
    if (navigator.locks) return navigator.locks.request('visitrelay-outbox', fn);
    return fn();
  }

  async pass() {
    const session = this.hooks.session();
    if (!session || !session.token) return;
    if (Date.now() < this.retryAt) {
      this.schedule();
      return;
    }

    const due = (await this.store.all('outbox'))
      .filter((item) => item.state === 'waiting' && item.userId === session.user.id)
      .sort((a, b) => a.savedAt.localeCompare(b.savedAt));
    if (due.length === 0) return;

    this.sending = true;
    this.hooks.changed();
    try {
      for (const item of due) {
        if (!(await this.post(item, session.token))) break;
      }
    } finally {
      this.sending = false;
      this.hooks.changed();
    }
  }

  // post sends one visit and returns whether the pass may go on to the next.
  async post(item, token) {
    const resp = await call('POST', '/api/v1/visits', { token, body: item.body });

    if (resp.status === 201 || resp.status === 200) {
      await this.store.acknowledge(item, resp.body && resp.body.acceptedAt);
      this.failures = 0;
      this.lastError = '';
      this.hooks.changed();
      return true;
    }
    if (resp.status === 401) {
      this.hooks.expired();
      return false;
    }
    if (resp.status === 0 || resp.status === 408 || resp.status === 429 || resp.status >= 500) {
      this.backOff(resp);
      return false;
    }

    const rejected = {
      ...item,
      state: 'rejected',
      rejection: {
        status: resp.status,
        code: (resp.body && resp.body.code) || '',
        message: describeFailure(resp),
        errors: (resp.body && resp.body.errors) || [],
      },
    };
    await this.store.put('outbox', rejected);
    this.hooks.changed();
    return true;
  }

  backOff(resp) {
    this.failures++;
    let delay = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** (this.failures - 1));
    delay *= 0.8 + Math.random() * 0.4;
    delay = Math.max(delay, Math.min(retryAfterMs(resp.headers), MAX_DELAY_MS));
    this.retryAt = Date.now() + delay;
    this.lastError = describeFailure(resp);
    this.schedule();
  }

  schedule() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.kick(), Math.max(0, this.retryAt - Date.now()));
  }
}
