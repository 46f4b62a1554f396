package convoy

import (
	"sync"
	"time"
)

// settingsTTL is how long the engine reuses an endpoint or app it read for
// an attempt. Changes made through this Dispatcher apply at once (they
// evict the entry); changes made by another process sharing the store
// apply within settingsTTL.
const settingsTTL = time.Second

// maxCached bounds each map; past it the map starts over.
const maxCached = 10000

// settingsCache keeps the endpoints and apps read for attempts for a
// moment, so a busy endpoint costs two store reads a second instead of two
// per attempt. Entries are read-only snapshots. Safe for concurrent use.
//
// An eviction bumps a generation counter; a reader notes the generation
// before it reads the store and its put is dropped if an eviction came in
// between, so a value read before a change can never be cached after it.
// An entry expires settingsTTL after its read began, not after it ended:
// a read that a slow store held up is no fresher for it.
type settingsCache struct {
	mu   sync.Mutex
	gen  uint64
	eps  map[string]cachedEndpoint
	apps map[string]cachedApp
}

type cachedEndpoint struct {
	ep      *Endpoint
	expires time.Time
}

type cachedApp struct {
	app     *App
	expires time.Time
}

// readToken is what a reader notes before it reads the store: the
// generation and the time.
type readToken struct {
	gen uint64
	at  time.Time
}

// endpoint returns the cached endpoint, or nil and the token to pass to
// putEndpoint after reading the store.
func (c *settingsCache) endpoint(id string) (*Endpoint, readToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if e, ok := c.eps[id]; ok && now.Before(e.expires) {
		return e.ep, readToken{c.gen, now}
	}
	return nil, readToken{c.gen, now}
}

// app returns the cached app, or nil and the token to pass to putApp.
func (c *settingsCache) app(id string) (*App, readToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if a, ok := c.apps[id]; ok && now.Before(a.expires) {
		return a.app, readToken{c.gen, now}
	}
	return nil, readToken{c.gen, now}
}

func (c *settingsCache) putEndpoint(ep *Endpoint, tok readToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tok.gen != c.gen {
		return // evicted since it was read
	}
	if c.eps == nil || len(c.eps) >= maxCached {
		c.eps = make(map[string]cachedEndpoint)
	}
	c.eps[ep.ID] = cachedEndpoint{ep: ep, expires: tok.at.Add(settingsTTL)}
}

func (c *settingsCache) putApp(app *App, tok readToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tok.gen != c.gen {
		return // evicted since it was read
	}
	if c.apps == nil || len(c.apps) >= maxCached {
		c.apps = make(map[string]cachedApp)
	}
	c.apps[app.ID] = cachedApp{app: app, expires: tok.at.Add(settingsTTL)}
}

func (c *settingsCache) forgetEndpoint(id string) {
	c.mu.Lock()
	c.gen++
	delete(c.eps, id)
	c.mu.Unlock()
}

func (c *settingsCache) forgetApp(id string) {
	c.mu.Lock()
	c.gen++
	delete(c.apps, id)
	c.mu.Unlock()
}
