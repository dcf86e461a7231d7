// The login session: token, expiry and user, kept in localStorage so that it
// survives closing the browser. Nothing here touches the outbox: logging out
// or an expired token leaves waiting visits where they are.

const SESSION_KEY = 'visitrelay.session';
const LAST_USER_KEY = 'visitrelay.lastUsername';

// loadSession returns {token, expiresAt, user: {id, username, name}} or null.
// An expired session has user but an empty token.
export function loadSession() {
  try {
    const session = JSON.parse(localStorage.getItem(SESSION_KEY));
    if (session && session.user && session.user.id) return session;
  } catch {
    // A damaged entry counts as logged out.
  }
  return null;
}

export function saveSession(session) {
  localStorage.setItem(SESSION_KEY, JSON.stringify(session));
  localStorage.setItem(LAST_USER_KEY, session.user.username);
}

// expireSession drops the token but keeps the user, so the page can ask for
// the same user's password again.
export function expireSession(session) {
  const expired = { ...session, token: '' };
  localStorage.setItem(SESSION_KEY, JSON.stringify(expired));
  return expired;
}

export function clearSession() {
  localStorage.removeItem(SESSION_KEY);
}

export function lastUsername() {
  return localStorage.getItem(LAST_USER_KEY) || '';
}
