// Calls to the gateway's HTTP API v1 (docs/api.md in the repository).
//
// call never throws. It returns {status, body, headers}, where status 0
// means that the request did not reach the gateway or got no response in
// time (offline, connection refused, timed out).

const TIMEOUT_MS = 15000;

export async function call(method, path, { token, body, headers = {}, timeoutMs = TIMEOUT_MS } = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const init = { method, headers: { ...headers }, cache: 'no-store', signal: controller.signal };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }

  try {
    const resp = await fetch(path, init);
    const text = await resp.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    return { status: resp.status, body: data, headers: resp.headers };
  } catch (error) {
    return { status: 0, body: null, headers: new Headers(), error };
  } finally {
    clearTimeout(timer);
  }
}

// retryAfterMs returns the Retry-After header of a response in milliseconds,
// or 0 when it has none. The gateway sends it in seconds.
export function retryAfterMs(headers) {
  const seconds = Number(headers.get('Retry-After'));
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 0;
}

// describeFailure turns a failed response into a short sentence for the salesman.
export function describeFailure(resp) {
  if (resp.status === 0) return 'The server cannot be reached.';
  if (resp.status === 503) return 'The server is busy (503).';
  if (resp.body && resp.body.message) return `${resp.body.message} (${resp.status})`;
  return `The server answered ${resp.status}.`;
}
