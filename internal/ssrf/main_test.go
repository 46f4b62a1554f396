package ssrf

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// errRefusedByTest is returned by recorder.control for every address off
// loopback, so a test dial never sends a packet anywhere else.
var errRefusedByTest = errors.New("refused by the test before connecting")

// recorder is a net.Dialer Control hook that records every address a socket
// is about to connect to and lets only loopback addresses connect.
type recorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *recorder) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.seen = append(r.seen, ap.Addr().String())
	r.mu.Unlock()
	if ap.Addr().Unmap().IsLoopback() {
		return nil
	}
	return errRefusedByTest
}

func (r *recorder) addrs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// fakeResolver answers lookups from a table: the n-th lookup of a host gets
// its n-th answer, the last answer repeating, which lets a test play a DNS
// server that rebinds a name between lookups.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][][]netip.Addr
	calls   map[string]int
}

func newFakeResolver(answers map[string][]string) *fakeResolver {
	r := &fakeResolver{answers: map[string][][]netip.Addr{}, calls: map[string]int{}}
	for host, addrs := range answers {
		r.answers[host] = [][]netip.Addr{parseAddrs(addrs...)}
	}
	return r
}

// set makes host answer the lookups in turn with answers.
func (r *fakeResolver) set(host string, answers ...[]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers[host] = nil
	for _, a := range answers {
		r.answers[host] = append(r.answers[host], parseAddrs(a...))
	}
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.calls[host]
	r.calls[host]++
	answers, ok := r.answers[host]
	if !ok || len(answers) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return slices.Clone(answers[min(n, len(answers)-1)]), nil
}

func (r *fakeResolver) lookups(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[host]
}

func parseAddrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func prefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		p, err := netip.ParsePrefix(s)
		require.NoError(t, err)
		out[i] = p
	}
	return out
}

// testServer is an httptest server on 127.0.0.1 that counts the
// connections it accepts and reports each request on a channel.
type testServer struct {
	*httptest.Server
	conns    atomic.Int64
	requests chan *http.Request
}

func newTestServer(t *testing.T, h http.HandlerFunc) *testServer {
	t.Helper()
	s := &testServer{requests: make(chan *http.Request, 100)}
	if h == nil {
		h = func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }
	}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.requests <- r:
		default:
		}
		h(w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			s.conns.Add(1)
		}
	}
	t.Cleanup(s.Close)
	return s
}

func (s *testServer) port(t *testing.T) string {
	t.Helper()
	_, port, err := net.SplitHostPort(s.Listener.Addr().String())
	require.NoError(t, err)
	return port
}

// httpGet sends a minimal HTTP/1.0 request over conn and returns the
// response status code, proving a server answered on the connection.
func httpGet(t *testing.T, conn net.Conn) int {
	t.Helper()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err := fmt.Fprint(conn, "GET / HTTP/1.0\r\nHost: test\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode
}
