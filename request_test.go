package convoy_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/convoykit/convoy"
	"github.com/convoykit/convoy/internal/testutil"
	"github.com/convoykit/convoy/store/memory"
)

// Receivers that try to keep a worker past Config.Timeout: each attempt
// must end, recorded as a failure, within the timeout whatever the
// receiver (or the transport) does.

// rawServer is a TCP listener on 127.0.0.1 that reads each request's head
// and hands the connection to answer, which writes whatever bytes it likes.
// Connections stay open until answer returns or the test ends.
type rawServer struct {
	URL      string
	accepted atomic.Int64 // requests whose head was read

	ln    net.Listener
	stop  chan struct{} // closed when the test ends
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns []net.Conn
}

// newRawServer starts a rawServer; it is shut down, its connections closed
// and its goroutines waited for, when the test ends.
func newRawServer(t *testing.T, answer func(conn net.Conn, stop <-chan struct{})) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &rawServer{URL: "http://" + ln.Addr().String() + "/hook", ln: ln, stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, conn)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer conn.Close()
				if readRequestHead(conn) != nil {
					return
				}
				s.accepted.Add(1)
				answer(conn, s.stop)
			}()
		}
	}()
	t.Cleanup(func() {
		close(s.stop)
		_ = ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			_ = c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// readRequestHead reads a request line and header, leaving the body unread.
func readRequestHead(conn net.Conn) error {
	tp := textproto.NewReader(bufio.NewReader(conn))
	if _, err := tp.ReadLine(); err != nil {
		return err
	}
	_, err := tp.ReadMIMEHeader()
	return err
}

// answerThenHold writes head and then keeps the connection open, silent,
// until the test ends.
func answerThenHold(head string) func(net.Conn, <-chan struct{}) {
	return func(conn net.Conn, stop <-chan struct{}) {
		if _, err := io.WriteString(conn, head); err != nil {
			return
		}
		<-stop
	}
}

// trickle writes head, then one byte of b every interval, cycling, until a
// write fails or the test ends.
func trickle(head, b string, interval time.Duration) func(net.Conn, <-chan struct{}) {
	return func(conn net.Conn, stop <-chan struct{}) {
		if _, err := io.WriteString(conn, head); err != nil {
			return
		}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := io.WriteString(conn, b[i%len(b):i%len(b)+1]); err != nil {
				return
			}
		}
	}
}

const switchProtocols = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n"

// failedWithin waits, at most within, for the delivery's first attempt to
// be recorded, and checks that it failed and the delivery awaits a retry.
func (b *bundle) failedWithin(t *testing.T, deliveryID string, within time.Duration) *convoy.Attempt {
	t.Helper()
	var dl *convoy.Delivery
	require.Eventually(t, func() bool {
		var err error
		dl, err = b.d.GetDelivery(context.Background(), deliveryID)
		require.NoError(t, err)
		return dl.Attempts == 1 && dl.Status != convoy.DeliveryProcessing
	}, within, time.Millisecond, "no attempt recorded within %s", within)
	require.Equal(t, convoy.DeliveryRetry, dl.Status)
	as := b.attempts(t, deliveryID)
	require.Len(t, as, 1)
	require.False(t, as[0].Success())
	require.NotEmpty(t, as[0].Error)
	require.Equal(t, as[0].Error, dl.LastError)
	return as[0]
}

// TestProtocolSwitchIsAFailure: a receiver that answers 101 Switching
// Protocols and then stays silent costs one failed attempt, recorded at
// once, and does not hold Close.
func TestProtocolSwitchIsAFailure(t *testing.T) {
	t.Parallel()
	const timeout = 500 * time.Millisecond
	b := setup(t, memory.New(), func(c *convoy.Config) { c.Timeout = timeout })
	srv := newRawServer(t, answerThenHold(switchProtocols))
	b.endpoint(t, srv.URL, nil)
	dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]

	a := b.failedWithin(t, dl.ID, timeout+2*time.Second)
	require.Equal(t, http.StatusSwitchingProtocols, a.StatusCode)
	require.Less(t, a.Duration, timeout, "refused as soon as the 101 arrived, not at the timeout")
	require.Equal(t, "x", a.ResponseHeaders.Get("Upgrade"))
	require.Equal(t, int64(1), srv.accepted.Load())

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, b.d.Close(ctx))
	require.Less(t, time.Since(start), time.Second, "Close waited for the receiver")
}

// TestProtocolSwitchDoesNotStarveThePool: with every worker sent to an
// endpoint that answers 101 and holds the connection, a healthy endpoint
// still gets its event.
func TestProtocolSwitchDoesNotStarveThePool(t *testing.T) {
	t.Parallel()
	const timeout = 500 * time.Millisecond
	b := setup(t, memory.New(), func(c *convoy.Config) {
		c.Timeout, c.Workers, c.PerEndpoint = timeout, 4, 1
	})
	var hostile []*rawServer
	for range 4 {
		srv := newRawServer(t, answerThenHold(switchProtocols))
		b.endpoint(t, srv.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"hostile"} })
		hostile = append(hostile, srv)
	}
	healthy := testutil.NewReceiver(t, nil)
	b.endpoint(t, healthy.URL, func(e *convoy.Endpoint) { e.EventTypes = []string{"healthy"} })

	bad := b.deliveries(t, b.send(t, "hostile", `{}`).ID)
	require.Eventually(t, func() bool {
		for _, s := range hostile {
			if s.accepted.Load() == 0 {
				return false
			}
		}
		return true
	}, 5*time.Second, time.Millisecond, "every worker reached a hostile endpoint")

	good := b.deliveries(t, b.send(t, "healthy", `{}`).ID)[0]
	start := time.Now()
	b.waitStatus(t, good.ID, convoy.DeliverySuccess)
	require.Less(t, time.Since(start), timeout+2*time.Second)
	for _, dl := range bad {
		a := b.failedWithin(t, dl.ID, 5*time.Second)
		require.Equal(t, http.StatusSwitchingProtocols, a.StatusCode)
	}
}

// contextDropper is a RoundTripper that ignores the request's context, as
// a careless user-supplied transport may: once it has the response
// header, nothing it does bounds the body read.
type contextDropper struct{ rt http.RoundTripper }

func (c contextDropper) RoundTrip(r *http.Request) (*http.Response, error) {
	return c.rt.RoundTrip(r.WithContext(context.Background()))
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// blockingBody is a response body whose Read blocks until Close.
type blockingBody struct {
	once   sync.Once
	closed chan struct{}
	reads  atomic.Int64
}

func newBlockingBody() *blockingBody { return &blockingBody{closed: make(chan struct{})} }

func (b *blockingBody) Read([]byte) (int, error) {
	b.reads.Add(1)
	<-b.closed
	return 0, errors.New("read on closed body")
}

func (b *blockingBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// blockingConn is a blockingBody that also writes, as the body net/http
// returns when it hands the connection over.
type blockingConn struct{ *blockingBody }

func (blockingConn) Write(p []byte) (int, error) { return len(p), nil }

// TestAttemptEndsAtTheTimeout: receivers that trickle the body, trickle
// the header or send interim responses without end each cost one failed
// attempt, recorded within Timeout, on the guarded transport and on a
// user-supplied client whose transport ignores the request's context.
func TestAttemptEndsAtTheTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 500 * time.Millisecond
	cases := []struct {
		name   string
		answer func(net.Conn, <-chan struct{})
		status int // of the attempt recorded
	}{
		{"body trickles one byte per 100 ms",
			trickle("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", "x", 100*time.Millisecond), http.StatusOK},
		{"chunked body trickles one byte per 100 ms",
			trickle("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "1\r\nx\r\n", 100*time.Millisecond), http.StatusOK},
		{"header trickles one byte per 100 ms",
			trickle("HTTP/1.1 200 OK\r\nX-Slow: ", "x", 100*time.Millisecond), 0},
		{"102 Processing about every 50 ms, forever",
			trickle("", "HTTP/1.1 102 Processing\r\n\r\n", 2*time.Millisecond), 0},
	}
	clients := []struct {
		name   string
		client func() *http.Client
	}{
		{"guarded transport", func() *http.Client { return nil }},
		{"transport ignoring the context", func() *http.Client {
			return &http.Client{Transport: contextDropper{&http.Transport{ResponseHeaderTimeout: timeout}}}
		}},
	}
	for _, cl := range clients {
		for _, c := range cases {
			t.Run(cl.name+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, memory.New(), func(cfg *convoy.Config) {
					cfg.Timeout, cfg.HTTPClient = timeout, cl.client()
				})
				srv := newRawServer(t, c.answer)
				b.endpoint(t, srv.URL, nil)
				dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]

				a := b.failedWithin(t, dl.ID, timeout+2*time.Second)
				require.Equal(t, c.status, a.StatusCode)
				require.Contains(t, a.Error, "timed out")
				require.GreaterOrEqual(t, a.Duration, timeout/2, "it ran to the timeout")
				require.Less(t, a.Duration, timeout+time.Second)
			})
		}
	}
}

// TestAttemptRefusesWhatHandsTheConnectionOver: whatever a user-supplied
// transport returns, a 1xx response or a body that is the connection ends
// the attempt at once, the body closed without being read.
func TestAttemptRefusesWhatHandsTheConnectionOver(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		status int
		conn   bool // the body is the connection: it also writes
	}{
		{"103 Early Hints", http.StatusEarlyHints, false},
		{"100 Continue", http.StatusContinue, false},
		{"101 with the connection as body", http.StatusSwitchingProtocols, true},
		{"200 with the connection as body", http.StatusOK, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			const timeout = 30 * time.Second
			bodies := make(chan *blockingBody, 1)
			b := setup(t, memory.New(), func(cfg *convoy.Config) {
				cfg.Timeout = timeout
				cfg.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
					bb := newBlockingBody()
					bodies <- bb
					var body io.ReadCloser = bb
					if c.conn {
						body = blockingConn{bb}
					}
					return &http.Response{StatusCode: c.status, Header: http.Header{}, Request: r, Body: body}, nil
				})}
			})
			b.endpoint(t, "https://receiver.example/hook", nil)
			dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]

			a := b.failedWithin(t, dl.ID, 5*time.Second)
			require.Equal(t, c.status, a.StatusCode)
			require.NotContains(t, a.Error, "timed out")
			require.Less(t, a.Duration, timeout/2)
			bb := <-bodies
			select {
			case <-bb.closed:
			default:
				t.Fatal("body not closed")
			}
			require.Zero(t, bb.reads.Load(), "body read")
		})
	}
}

// TestResponseHeaderIsBounded: a receiver sending a 1 MiB header fails the
// attempt and is not stored, whatever client sends the request.
func TestResponseHeaderIsBounded(t *testing.T) {
	t.Parallel()
	huge := "HTTP/1.1 200 OK\r\nX-Huge: " + strings.Repeat("h", 1<<20) + "\r\nContent-Length: 0\r\n\r\n"
	for _, cl := range []struct {
		name   string
		client *http.Client
	}{
		{"guarded transport", nil},
		{"user client", &http.Client{Transport: &http.Transport{}}},
	} {
		t.Run(cl.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, memory.New(), func(cfg *convoy.Config) { cfg.HTTPClient = cl.client })
			srv := newRawServer(t, answerThenHold(huge))
			b.endpoint(t, srv.URL, nil)
			dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]

			a := b.failedWithin(t, dl.ID, 5*time.Second)
			require.Contains(t, a.Error, "header")
			size := 0
			for k, vs := range a.ResponseHeaders {
				for _, v := range vs {
					size += len(k) + len(v)
				}
			}
			require.Less(t, size, 64<<10)
		})
	}
}

// TestAttemptsReadTheSameUnwrapped: an attempt on the guarded transport
// itself (no WrapTransport) is recorded in the words and with the status
// it has through a wrapped transport, which goes through http.Client: a
// refused connection, an HTTPS endpoint answered in plain HTTP, and a
// redirect whose Location does not parse.
func TestAttemptsReadTheSameUnwrapped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := "http://" + ln.Addr().String() + "/hook"
	require.NoError(t, ln.Close()) // nothing listens there now
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(plain.Close)
	badRedirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Location"] = []string{"http://[::1"}
		w.WriteHeader(http.StatusFound)
	}))
	t.Cleanup(badRedirect.Close)

	cases := []struct{ name, url, want string }{
		{"refused", refused, "connection refused"},
		{"HTTP answer to HTTPS", strings.Replace(plain.URL, "http://", "https://", 1) + "/hook", "server gave HTTP response to HTTPS client"},
		{"unparsable Location", badRedirect.URL + "/hook", "failed to parse Location header"},
	}
	attempt := func(t *testing.T, url string, wrap func(http.RoundTripper) http.RoundTripper) *convoy.Attempt {
		b := setup(t, memory.New(), func(c *convoy.Config) { c.WrapTransport = wrap })
		b.endpoint(t, url, nil)
		dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
		return b.failedWithin(t, dl.ID, 10*time.Second)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			direct := attempt(t, c.url, nil)
			wrapped := attempt(t, c.url, func(rt http.RoundTripper) http.RoundTripper { return rt })
			require.Contains(t, direct.Error, c.want)
			require.Equal(t, wrapped.Error, direct.Error)
			require.Equal(t, wrapped.StatusCode, direct.StatusCode)
		})
	}
}

// TestTransportErrorsDoNotCarryTheURL: paths and queries of webhook URLs
// often hold tokens; attempt errors (stored and logged) leave them out.
func TestTransportErrorsDoNotCarryTheURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	b := setup(t, memoryStore(), nil)
	b.endpoint(t, "http://"+addr+"/hooks/T0KEN-in-path?sig=T0KEN-in-query", nil)
	dl := b.deliveries(t, b.send(t, "x", `{}`).ID)[0]
	got := b.waitStatus(t, dl.ID, convoy.DeliveryRetry)
	a := b.attempts(t, got.ID)[0]
	require.Contains(t, a.Error, "refused")
	require.NotContains(t, a.Error, "T0KEN")
	require.NotContains(t, got.LastError, "T0KEN")
	require.NotContains(t, testutil.CapturedLogs(), "T0KEN")
}
