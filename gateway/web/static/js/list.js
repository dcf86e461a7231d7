// The delivery state of each visit, and the badge with the waiting count.
//
// A row's state comes from three sources, and a later one wins:
//   outbox   waiting on this phone, or rejected by the gateway.
//   sent     acknowledged by the gateway (201 or 200): received by the cloud.
//   server   GET /api/v1/visits: "accepted" (received by the cloud) or
//            "stored" (committed to the head office database).
// The server's word wins over a waiting outbox entry because an outbox entry whose
// answer was lost may already be in the cloud; it is still re-sent, and the
// gateway answers 200.

import { formatAge, formatDay, formatTime } from './format.js';

const STATE_LABELS = {
  waiting: 'Waiting on this phone',
  rejected: 'Not accepted',
  accepted: 'Received by the cloud',
  stored: 'Stored at head office',
};

// mergeVisits returns the rows of the list, newest visit first, and of two
// visits in the same minute the one saved last first. A visit is
// listed while it is in the outbox, and otherwise when it was visited,
// saved or accepted after since, so a visit typed in late still shows.
export function mergeVisits({ outbox, sent, server, userID, since }) {
  const rows = new Map();
  const devices = (visit) => ({ proposed: visit.proposedDevices.length, sold: visit.soldDevices.length });

  for (const item of outbox) {
    const visit = JSON.parse(item.body);
    rows.set(item.visitId, {
      visitId: item.visitId,
      clientId: visit.clientId,
      dateTime: visit.dateTime,
      ...devices(visit),
      state: item.state,
      savedAt: item.savedAt,
      recent: true,
      item,
      otherUser: item.userId !== userID ? item.userId : '',
    });
  }
  for (const record of sent) {
    if (record.userId !== userID) continue;
    rows.set(record.visitId, {
      visitId: record.visitId,
      clientId: record.visit.clientId,
      dateTime: record.visit.dateTime,
      ...devices(record.visit),
      state: 'accepted',
      savedAt: record.savedAt,
      recent: new Date(record.savedAt) >= since,
    });
  }
  for (const visit of server) {
    const known = rows.get(visit.visitId) ||
      { visitId: visit.visitId, clientId: visit.clientId, dateTime: visit.dateTime, savedAt: visit.acceptedAt };
    // A rejected visit keeps its state, because a 409 means the cloud stores
    // other content under the same visitId, which the salesman must see.
    if (known.state === 'rejected') continue;
    known.state = visit.status === 'stored' ? 'stored' : 'accepted';
    // The gateway lists the visits it accepted since the same time.
    known.recent = true;
    known.storedAt = visit.storedAt;
    rows.set(visit.visitId, known);
  }

  return [...rows.values()]
    .filter((row) => row.recent || new Date(row.dateTime) >= since)
    .sort((a, b) => new Date(b.dateTime) - new Date(a.dateTime) || new Date(b.savedAt) - new Date(a.savedAt));
}

// renderList draws the rows. actions has fix(item), retry(item) and
// resendAsNew(item) for visits the gateway rejected.
export function renderList(list, empty, rows, { clientsByID, actions }) {
  const items = [];
  let day = '';
  for (const row of rows) {
    const date = new Date(row.dateTime);
    if (formatDay(date) !== day) {
      day = formatDay(date);
      const heading = document.createElement('li');
      heading.className = 'day';
      heading.textContent = day;
      items.push(heading);
    }
    items.push(renderRow(row, date, clientsByID, actions));
  }
  list.replaceChildren(...items);
  empty.hidden = rows.length > 0;
}

function renderRow(row, date, clientsByID, actions) {
  const li = document.createElement('li');
  li.className = `visit ${row.state}`;
  li.dataset.visitId = row.visitId;
  li.dataset.state = row.state;

  const clinic = clientsByID.get(row.clientId);
  const name = document.createElement('span');
  name.className = 'clinic';
  name.textContent = clinic ? `${clinic.name}, ${clinic.city}` : `Clinic ${row.clientId}`;

  const meta = document.createElement('span');
  meta.className = 'meta';
  meta.textContent = row.proposed === undefined
    ? formatTime(date)
    : `${formatTime(date)} · ${row.proposed} proposed, ${row.sold} sold`;

  const state = document.createElement('span');
  state.className = 'state';
  state.textContent = STATE_LABELS[row.state];
  li.append(name, meta, state);

  if (row.otherUser) {
    li.append(text('meta', `Saved by user ${row.otherUser}; sent after that user logs in on this phone.`));
  }
  if (row.state === 'rejected') li.append(...renderRejection(row.item, actions));
  return li;
}

function renderRejection(item, actions) {
  const rejection = item.rejection || {};
  const lines = [text('problem', rejection.message || 'The server did not accept this visit.')];
  for (const { field, message } of rejection.errors || []) {
    lines.push(text('problem', `${field}: ${message}`));
  }
  const buttons = document.createElement('div');
  buttons.className = 'inline';
  if (rejection.status === 400) buttons.append(button('Fix', () => actions.fix(item)));
  if (rejection.status === 409) buttons.append(button('Send as a new visit', () => actions.resendAsNew(item)));
  buttons.append(button('Try again', () => actions.retry(item)));
  lines.push(buttons);
  return lines;
}

function text(className, content) {
  const p = document.createElement('p');
  p.className = className;
  p.textContent = content;
  return p;
}

function button(label, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.addEventListener('click', onClick);
  return b;
}

// renderBadge shows how many of the user's visits wait and how old the
// oldest is, and offers "Send now" while any waits.
export function renderBadge(badge, sendNow, outbox, userID, now = Date.now()) {
  const mine = outbox.filter((item) => item.userId === userID);
  const waiting = mine.filter((item) => item.state === 'waiting').length;
  const rejected = mine.length - waiting;
  sendNow.hidden = waiting === 0;

  if (mine.length === 0) {
    badge.textContent = 'All visits sent';
    badge.className = 'badge all-sent';
    return;
  }
  const oldest = Math.min(...mine.map((item) => Date.parse(item.savedAt)));
  const parts = [];
  if (waiting) parts.push(`${waiting} waiting`);
  if (rejected) parts.push(`${rejected} not accepted`);
  parts.push(`oldest\u00a0${formatAge(now - oldest)}`);
  badge.textContent = parts.join(' · ');
  badge.className = `badge ${rejected ? 'attention' : 'waiting'}`;
}
