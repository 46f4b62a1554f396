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

// endpoint returns the cached endpoint, or nil and the generation to pass
// to putEndpoint after reading the store.
func (c *settingsCache) endpoint(id string) (*Endpoint, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.eps[id]; ok && time.Now().Before(e.expires) {
		return e.ep, c.gen
	}
	return nil, c.gen
}

// app returns the cached app, or nil and the generation to pass to putApp.
func (c *settingsCache) app(id string) (*App, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.apps[id]; ok && time.Now().Before(a.expires) {
		return a.app, c.gen
	}
	return nil, c.gen
}

func (c *settingsCache) putEndpoint(ep *Endpoint, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return // evicted since it was read
	}
	if c.eps == nil || len(c.eps) >= maxCached {
		c.eps = make(map[string]cachedEndpoint)
	}
	c.eps[ep.ID] = cachedEndpoint{ep: ep, expires: time.Now().Add(settingsTTL)}
}

func (c *settingsCache) putApp(app *App, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return // evicted since it was read
	}
	if c.apps == nil || len(c.apps) >= maxCached {
		c.apps = make(map[string]cachedApp)
	}
	c.apps[app.ID] = cachedApp{app: app, expires: time.Now().Add(settingsTTL)}
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
