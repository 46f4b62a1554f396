package convoy

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSettingsCacheDropsReadsOlderThanAnEviction: a value read from the
// store before an eviction (say, an endpoint still inactive just before it
// was re-activated) is never cached after it.
func TestSettingsCacheDropsReadsOlderThanAnEviction(t *testing.T) {
	var c settingsCache
	got, gen := c.endpoint("e")
	require.Nil(t, got)
	stale := &Endpoint{ID: "e", Status: EndpointInactive}
	c.forgetEndpoint("e") // re-activated while the read was in flight
	c.putEndpoint(stale, gen)
	got, gen = c.endpoint("e")
	require.Nil(t, got, "the stale read was dropped")

	fresh := &Endpoint{ID: "e", Status: EndpointActive}
	c.putEndpoint(fresh, gen)
	got, _ = c.endpoint("e")
	require.Same(t, fresh, got)

	_, gen = c.app("a")
	c.forgetApp("a")
	c.putApp(&App{ID: "a"}, gen)
	a, _ := c.app("a")
	require.Nil(t, a)
}

// TestSettingsCacheTimesEntriesFromTheRead: an entry expires settingsTTL
// after its read began, so a read a slow store held up longer than that
// (a status another process changed meanwhile) is not kept as fresh.
func TestSettingsCacheTimesEntriesFromTheRead(t *testing.T) {
	var c settingsCache
	_, tok := c.endpoint("e")
	tok.at = tok.at.Add(-2 * settingsTTL) // the read took two TTLs
	c.putEndpoint(&Endpoint{ID: "e", Status: EndpointActive}, tok)
	got, _ := c.endpoint("e")
	require.Nil(t, got, "a read older than the TTL is not cached")

	_, tok = c.endpoint("e")
	c.putEndpoint(&Endpoint{ID: "e", Status: EndpointActive}, tok)
	got, _ = c.endpoint("e")
	require.NotNil(t, got)
	require.WithinDuration(t, tok.at.Add(settingsTTL), c.eps["e"].expires, 0)
}
