package ssrf

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// newClient returns an http.Client on NewTransport(o) whose idle
// connections are closed when the test ends.
func newClient(t *testing.T, o TransportOptions) *http.Client {
	t.Helper()
	tr := NewTransport(o)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	if resp != nil {
		t.Cleanup(func() { _ = resp.Body.Close() })
	}
	return resp, err
}

func TestTransportRefusesLoopbackByDefault(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, nil)
	srv.Start()

	_, err := get(t, newClient(t, TransportOptions{}), srv.URL)
	require.ErrorIs(t, err, ErrBlocked)
	var be *BlockedError
	require.ErrorAs(t, err, &be)
	require.Equal(t, netip.MustParseAddr("127.0.0.1"), be.Addr)
	require.Zero(t, srv.conns.Load(), "the server saw a connection")
	require.Empty(t, srv.requests)

	allowed := newClient(t, TransportOptions{Guard: New(prefixes(t, "127.0.0.1/32"))})
	resp, err := get(t, allowed, srv.URL+"/hook")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, "ok", string(body))
	r := <-srv.requests
	require.Equal(t, "/hook", r.URL.Path)
}

func TestTransportResolvesThroughGuard(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, nil)
	srv.Start()
	port := srv.port(t)
	res := newFakeResolver(map[string][]string{"receiver.example": {"10.0.0.7", "127.0.0.1"}})

	_, err := get(t, newClient(t, TransportOptions{Resolver: res}), "http://receiver.example:"+port+"/")
	require.ErrorIs(t, err, ErrBlocked)
	require.Zero(t, srv.conns.Load())

	c := newClient(t, TransportOptions{Resolver: res, Guard: New(prefixes(t, "127.0.0.1/32"))})
	resp, err := get(t, c, "http://receiver.example:"+port+"/")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "receiver.example:"+port, (<-srv.requests).Host)
}

func TestTransportReusesConnections(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, nil)
	srv.Start()
	c := newClient(t, TransportOptions{Guard: New(prefixes(t, "127.0.0.1/32"))})
	for range 5 {
		resp, err := get(t, c, srv.URL)
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	}
	require.Equal(t, int64(1), srv.conns.Load())
}

func TestTransportTLSAndHTTP2(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, nil)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	tlsConfig := srv.Client().Transport.(*http.Transport).TLSClientConfig

	_, err := get(t, newClient(t, TransportOptions{TLSClientConfig: tlsConfig}), srv.URL)
	require.ErrorIs(t, err, ErrBlocked)

	c := newClient(t, TransportOptions{TLSClientConfig: tlsConfig, Guard: New(prefixes(t, "127.0.0.1/32"))})
	resp, err := get(t, c, srv.URL)
	require.NoError(t, err)
	require.Equal(t, 2, resp.ProtoMajor)
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestTransportMaxResponseHeaderBytes(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		size := 1 << 20
		if r.URL.Path == "/small" {
			size = 16 << 10
		}
		w.Header().Set("X-Big", strings.Repeat("a", size))
		w.WriteHeader(http.StatusOK)
	})
	srv.Start()
	g := New(prefixes(t, "127.0.0.1/32"))

	c := newClient(t, TransportOptions{Guard: g})
	_, err := get(t, c, srv.URL+"/big")
	require.Error(t, err)
	require.NotErrorIs(t, err, context.DeadlineExceeded, "the client must give up on the header, not time out")
	var ne net.Error
	if errors.As(err, &ne) {
		require.False(t, ne.Timeout())
	}

	resp, err := get(t, c, srv.URL+"/small")
	require.NoError(t, err, "a 16 KiB header is within the 64 KiB default")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	tight := newClient(t, TransportOptions{Guard: g, MaxResponseHeaderBytes: 4 << 10})
	_, err = get(t, tight, srv.URL+"/small")
	require.Error(t, err)
}

// TestRedirectToMetadataRefused follows a redirect from an allowed receiver
// to the cloud metadata address: the hop is refused before connecting.
// (convoy itself does not follow redirects; this checks the transport holds
// even for a client that does.)
func TestRedirectToMetadataRefused(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/literal":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/name":
			http.Redirect(w, r, "http://metadata.internal/computeMetadata/v1/", http.StatusTemporaryRedirect)
		}
	})
	srv.Start()
	res := newFakeResolver(map[string][]string{"metadata.internal": {"169.254.169.254"}})

	c := newClient(t, TransportOptions{Guard: New(prefixes(t, "127.0.0.1/32")), Resolver: res})
	for _, path := range []string{"/literal", "/name"} {
		_, err := get(t, c, srv.URL+path)
		require.ErrorIs(t, err, ErrBlocked, path)
		var be *BlockedError
		require.ErrorAs(t, err, &be)
		require.Equal(t, netip.MustParseAddr("169.254.169.254"), be.Addr)
	}

	// With link-local on the allow-list the hop is dialed; the recording
	// hook refuses it before connect(2), so no packet leaves loopback.
	rec := &recorder{}
	d := &Dialer{
		Guard:    New(prefixes(t, "127.0.0.1/32", "169.254.0.0/16")),
		Resolver: res,
		Dialer:   &net.Dialer{Timeout: 5 * time.Second, Control: rec.control},
	}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	for _, path := range []string{"/literal", "/name"} {
		_, err := get(t, &http.Client{Transport: tr}, srv.URL+path)
		require.ErrorIs(t, err, errRefusedByTest, path)
		require.NotErrorIs(t, err, ErrBlocked, path)
	}
	require.Equal(t, []string{"127.0.0.1", "169.254.169.254", "169.254.169.254"}, rec.addrs())
}

func TestNewTransportDefaults(t *testing.T) {
	t.Parallel()
	tr := NewTransport(TransportOptions{})
	t.Cleanup(tr.CloseIdleConnections)
	require.Nil(t, tr.Proxy)
	require.NotNil(t, tr.DialContext)
	require.Nil(t, tr.DialTLSContext)
	require.True(t, tr.ForceAttemptHTTP2)
	require.Equal(t, 5*time.Second, tr.TLSHandshakeTimeout)
	require.Zero(t, tr.ResponseHeaderTimeout)
	require.Equal(t, int64(64<<10), tr.MaxResponseHeaderBytes)
	require.Equal(t, 64, tr.MaxIdleConnsPerHost)
	require.Equal(t, 1024, tr.MaxIdleConns)
	require.Equal(t, 90*time.Second, tr.IdleConnTimeout)
	require.False(t, tr.DisableKeepAlives)

	conf := &tls.Config{MinVersion: tls.VersionTLS13}
	tr = NewTransport(TransportOptions{
		TLSHandshakeTimeout:    time.Second,
		ResponseHeaderTimeout:  2 * time.Second,
		MaxResponseHeaderBytes: 1000,
		MaxIdleConnsPerHost:    3,
		MaxIdleConns:           7,
		IdleConnTimeout:        time.Minute,
		TLSClientConfig:        conf,
	})
	t.Cleanup(tr.CloseIdleConnections)
	require.Equal(t, time.Second, tr.TLSHandshakeTimeout)
	require.Equal(t, 2*time.Second, tr.ResponseHeaderTimeout)
	require.Equal(t, int64(1000), tr.MaxResponseHeaderBytes)
	require.Equal(t, 3, tr.MaxIdleConnsPerHost)
	require.Equal(t, 7, tr.MaxIdleConns)
	require.Equal(t, time.Minute, tr.IdleConnTimeout)
	require.NotSame(t, conf, tr.TLSClientConfig, "the config is cloned")
	require.Equal(t, uint16(tls.VersionTLS13), tr.TLSClientConfig.MinVersion)
}
