package ssrf

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestZeroDialerRefusesLoopback(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, nil)
	srv.Start()

	_, err := (&Dialer{}).DialContext(context.Background(), "tcp", srv.Listener.Addr().String())
	require.ErrorIs(t, err, ErrBlocked)
	require.Zero(t, srv.conns.Load())

	d := &Dialer{Guard: New(prefixes(t, "127.0.0.1/32"))}
	conn, err := d.DialContext(context.Background(), "tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	require.Equal(t, 200, httpGet(t, conn))
}

func TestDialerRefusesEmptyHost(t *testing.T) {
	t.Parallel()
	// net.Dial takes an empty host as the local system.
	_, err := (&Dialer{}).DialContext(context.Background(), "tcp", ":80")
	require.ErrorIs(t, err, ErrBlocked)
}

func TestDialerUnsupportedNetwork(t *testing.T) {
	t.Parallel()
	_, err := (&Dialer{}).DialContext(context.Background(), "unix", "/run/docker.sock")
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrBlocked)

	_, err = (&Dialer{}).DialContext(context.Background(), "tcp", "no-port.example")
	require.Error(t, err)
}

func TestDialerResolverError(t *testing.T) {
	t.Parallel()
	d := &Dialer{Resolver: newFakeResolver(nil)}
	_, err := d.DialContext(context.Background(), "tcp", "missing.example:443")
	var dnsErr *net.DNSError
	require.ErrorAs(t, err, &dnsErr)
	require.NotErrorIs(t, err, ErrBlocked)
}

func TestDialerFiltersByFamily(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, nil)
	srv.Start()
	port := srv.port(t)
	res := newFakeResolver(map[string][]string{
		"dual.example": {"::1", "127.0.0.1"},
		"v4.example":   {"127.0.0.1"},
	})
	rec := &recorder{}
	d := &Dialer{
		Guard:    New(prefixes(t, "127.0.0.1/32", "::1/128")),
		Resolver: res,
		Dialer:   &net.Dialer{Timeout: 5 * time.Second, Control: rec.control},
	}

	conn, err := d.DialContext(context.Background(), "tcp4", net.JoinHostPort("dual.example", port))
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	require.Equal(t, []string{"127.0.0.1"}, rec.addrs(), "tcp4 never tries the IPv6 address")

	_, err = d.DialContext(context.Background(), "tcp6", net.JoinHostPort("v4.example", port))
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrBlocked, "no address of the family is not a refusal")
}

// TestDialerResolvesOnce shows that the address checked is the address
// dialed: one lookup per dial, so a rebinding DNS server cannot swap the
// answer between check and connect.
func TestDialerResolvesOnce(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, nil)
	srv.Start()
	res := newFakeResolver(nil)
	res.set("rebind.example", []string{"127.0.0.1"}, []string{"169.254.169.254"})
	rec := &recorder{}
	d := &Dialer{
		Guard:    New(prefixes(t, "127.0.0.1/32")),
		Resolver: res,
		Dialer:   &net.Dialer{Timeout: 5 * time.Second, Control: rec.control},
	}
	conn, err := d.DialContext(context.Background(), "tcp", net.JoinHostPort("rebind.example", srv.port(t)))
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	require.Equal(t, 1, res.lookups("rebind.example"))

	_, err = d.DialContext(context.Background(), "tcp", net.JoinHostPort("rebind.example", srv.port(t)))
	require.ErrorIs(t, err, ErrBlocked)
	require.Equal(t, []string{"127.0.0.1"}, rec.addrs())
}

func TestDialerKeepsUserControl(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	base := &net.Dialer{Timeout: 5 * time.Second, Control: rec.control}
	d := &Dialer{Guard: New(prefixes(t, "10.0.0.0/8")), Dialer: base}

	_, err := d.DialContext(context.Background(), "tcp", "10.1.2.3:443")
	require.ErrorIs(t, err, errRefusedByTest)
	require.Equal(t, []string{"10.1.2.3"}, rec.addrs())
	require.Nil(t, base.ControlContext, "the caller's net.Dialer is not modified")
}

func TestDialerDoesNotConnectAfterCancel(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, nil)
	srv.Start()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := &Dialer{Guard: New(prefixes(t, "127.0.0.1/32"))}
	_, err := d.DialContext(ctx, "tcp", srv.Listener.Addr().String())
	require.ErrorIs(t, err, context.Canceled)
}
