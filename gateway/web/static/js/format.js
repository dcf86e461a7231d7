// Date, time and id helpers shared by the form, the outbox and the list.

const pad = (n) => String(n).padStart(2, '0');

// toLocalInput returns the value of a datetime-local input for a date, to the minute.
export function toLocalInput(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

// fromLocalInput parses the value of a datetime-local input as the phone's
// local time. It returns null for an empty or invalid value.
export function fromLocalInput(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(value || '');
  if (!m) return null;
  const date = new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0));
  return Number.isNaN(date.getTime()) ? null : date;
}

// toRFC3339 formats a date in the phone's local time with its UTC offset,
// such as 2025-03-12T10:30:00+01:00, which is what the API's dateTime takes.
export function toRFC3339(date) {
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const abs = Math.abs(offset);
  return `${toLocalInput(date)}:${pad(date.getSeconds())}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short' });
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

// formatDay names the day of a date: Today, Yesterday or a short date.
export function formatDay(date, now = new Date()) {
  const start = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const days = Math.round((start(now) - start(date)) / 86400000);
  if (days === 0) return 'Today';
  if (days === 1) return 'Yesterday';
  return dayFormat.format(date);
}

export function formatTime(date) {
  return timeFormat.format(date);
}

// formatAge writes a duration in milliseconds the short way a badge needs,
// with a no-break space so the number never wraps apart from its unit.
export function formatAge(ms) {
  const minutes = Math.floor(ms / 60000);
  if (minutes < 1) return '<1\u00a0min';
  if (minutes < 60) return `${minutes}\u00a0min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}\u00a0h`;
  return `${Math.floor(hours / 24)}\u00a0days`;
}

// newVisitID returns a random (version 4) UUID. crypto.randomUUID exists only
// in secure contexts (HTTPS or loopback), so a page opened over plain HTTP on
// a LAN address builds one from crypto.getRandomValues.
export function newVisitID() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
