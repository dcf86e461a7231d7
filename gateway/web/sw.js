// Service worker of the salesman's page, version {{.Version}}. It keeps the
// app shell in a cache, so the page starts without a connection once it has
// been opened online. The API is never cached here: the page keeps the
// outbox, the lookups and the visit list in IndexedDB itself.
//
// The gateway renders this file with the version of the embedded assets, so
// any change to an asset changes this file, and the browser installs the new
// worker with a fresh cache.

const VERSION = {{.VersionJSON}};
const SHELL = {{.ShellJSON}};
const CACHE = `visitrelay-shell-${VERSION}`;

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // no-cache makes the browser revalidate instead of copying an old
    // version from its HTTP cache into the new shell.
    await cache.addAll(SHELL.map((url) => new Request(url, { cache: 'no-cache' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('visitrelay-shell-') && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

// Cache first for the shell: a phone on a weak signal starts at once instead
// of waiting for a network that may never respond.
self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  const isPage = req.mode === 'navigate' && url.pathname === '/';
  if (!isPage && !SHELL.includes(url.pathname)) return;

  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const hit = await cache.match(isPage ? '/' : url.pathname);
    return hit || fetch(req);
  })());
});
