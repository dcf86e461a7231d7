// The phone's IndexedDB database.
//
//   outbox  visits not yet acknowledged by the gateway, keyed by visitId:
//           {visitId, userId, body, savedAt, state, rejection}. body is the
//           exact JSON text posted on every retry, so a retry is byte for
//           byte the same visit. state is "waiting", or "rejected" after a
//           4xx response that a retry cannot fix (rejection is that response).
//   sent    visits the gateway acknowledged, kept for the list and for the
//           "same devices as last visit" shortcut: {visitId, userId, visit,
//           savedAt, acceptedAt}.
//   meta    cached lookups (with their ETag) and the last visit list
//           fetched from the gateway.

const DB_NAME = 'visitrelay';
const DB_VERSION = 1;

// Writes to the outbox ask for strict durability, so that a visit is on
// disk, not only in the browser's write cache, when Save reports it saved.
const STRICT = { durability: 'strict' };

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function completion(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error('transaction aborted'));
  });
}

export async function openStore() {
  const open = indexedDB.open(DB_NAME, DB_VERSION);
  open.onupgradeneeded = () => {
    const db = open.result;
    db.createObjectStore('outbox', { keyPath: 'visitId' });
    db.createObjectStore('sent', { keyPath: 'visitId' });
    db.createObjectStore('meta');
  };
  const db = await request(open);
  // A newer page in another tab may need to upgrade the schema.
  db.onversionchange = () => db.close();
  return new Store(db);
}

export class Store {
  constructor(db) {
    this.db = db;
  }

  async all(name) {
    const tx = this.db.transaction(name, 'readonly');
    return request(tx.objectStore(name).getAll());
  }

  async get(name, key) {
    const tx = this.db.transaction(name, 'readonly');
    return request(tx.objectStore(name).get(key));
  }

  async put(name, value, key) {
    const tx = this.db.transaction(name, 'readwrite', STRICT);
    tx.objectStore(name).put(value, key);
    return completion(tx);
  }

  // acknowledge moves a visit from the outbox to the sent store in one
  // transaction, so a crash leaves it in exactly one of the two.
  async acknowledge(item, acceptedAt) {
    const tx = this.db.transaction(['outbox', 'sent'], 'readwrite', STRICT);
    tx.objectStore('outbox').delete(item.visitId);
    tx.objectStore('sent').put({
      visitId: item.visitId,
      userId: item.userId,
      visit: JSON.parse(item.body),
      savedAt: item.savedAt,
      acceptedAt: acceptedAt || new Date().toISOString(),
    });
    return completion(tx);
  }

  // replace swaps an outbox entry for one with a new visitId in one
  // transaction, so the visit is in the outbox under one of the two ids.
  async replace(oldID, item) {
    const tx = this.db.transaction('outbox', 'readwrite', STRICT);
    tx.objectStore('outbox').delete(oldID);
    tx.objectStore('outbox').put(item);
    return completion(tx);
  }

  // pruneSent deletes sent visits saved before the given ISO time. The
  // outbox is never pruned.
  async pruneSent(before) {
    const tx = this.db.transaction('sent', 'readwrite');
    const cursor = tx.objectStore('sent').openCursor();
    cursor.onsuccess = () => {
      const c = cursor.result;
      if (!c) return;
      if (c.value.savedAt < before) c.delete();
      c.continue();
    };
    return completion(tx);
  }
}
