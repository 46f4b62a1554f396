package ssrf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// DefaultDialTimeout bounds one connection attempt when no net.Dialer (or
// no TransportOptions.DialTimeout) says otherwise.
const DefaultDialTimeout = 5 * time.Second

// defaultKeepAlive is the TCP keep-alive period of the default net.Dialer.
const defaultKeepAlive = 30 * time.Second

// minAttemptTimeout is the least time an address gets when several share
// the context's deadline (the standard library's choice).
const minAttemptTimeout = 2 * time.Second

// Resolver looks up the IP addresses of a host name. network is "ip",
// "ip4" or "ip6". *net.Resolver, and so net.DefaultResolver, implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Dialer connects only to addresses its Guard allows. It resolves host names
// itself, drops the addresses the guard refuses, tries the others in the
// order the resolver returned them, and checks the address of every socket
// again just before it connects (see [Guard.Control]).
//
// The zero Dialer is ready to use. Its fields must not be changed once
// DialContext has been called; then a Dialer is safe for concurrent use.
type Dialer struct {
	// Guard decides which addresses are allowed. Nil refuses every
	// special-purpose range.
	Guard *Guard
	// Resolver resolves host names. Nil means net.DefaultResolver.
	Resolver Resolver
	// Dialer makes the connections: timeouts, keep-alive, local address.
	// DialContext uses a copy whose ControlContext checks the address with
	// Guard first and then calls this Dialer's ControlContext or Control,
	// if set. Its Resolver is never used: it only ever sees IP addresses.
	// Nil means a net.Dialer with Timeout DefaultDialTimeout and KeepAlive
	// 30 s.
	Dialer *net.Dialer
}

// DialContext connects to address ("host:port") on network, which must be
// tcp, tcp4, tcp6, udp, udp4 or udp6. It has the signature of
// http.Transport.DialContext.
//
// A host that [Guard.CheckHost] refuses is refused without a lookup. An IP
// literal is used as it is; any other host is resolved through Resolver, and
// the addresses the guard refuses are dropped. If none is left, DialContext
// returns an error wrapping [ErrBlocked] that lists them, having sent
// nothing. Otherwise it tries the allowed addresses in order, splitting the
// context's deadline among them, and returns the first connection made or
// the first error.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	ipNetwork, ok := lookupNetworks[network]
	if !ok {
		return nil, fmt.Errorf("convoy: dial %s %s: unsupported network", network, address)
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("convoy: dial %s: %w", network, err)
	}
	if err := d.Guard.CheckHost(host); err != nil {
		return nil, err
	}

	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		addrs, err = d.resolver().LookupNetIP(ctx, ipNetwork, host)
		if err != nil {
			return nil, fmt.Errorf("convoy: dial %s %s: resolve %s: %w", network, address, host, err)
		}
	}

	allowed, blocked := d.filter(network, host, addrs)
	if len(allowed) == 0 {
		switch len(blocked) {
		case 0:
			return nil, fmt.Errorf("convoy: dial %s %s: no %s address for %s", network, address, ipNetwork, host)
		case 1:
			return nil, blocked[0]
		default:
			return nil, &blockedAddrsError{host: host, errs: blocked}
		}
	}

	nd := d.netDialer()
	var firstErr error
	for i, a := range allowed {
		conn, err := dialOne(ctx, nd, network, net.JoinHostPort(a.String(), port), len(allowed)-i)
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(blocked) > 0 {
		skipped := make([]string, len(blocked))
		for i, be := range blocked {
			skipped[i] = be.Addr.String() + " is " + be.Reason
		}
		return nil, fmt.Errorf("%w (blocked addresses skipped: %s)", firstErr, strings.Join(skipped, "; "))
	}
	return nil, firstErr
}

// lookupNetworks maps the networks DialContext supports to the network
// argument of Resolver.LookupNetIP.
var lookupNetworks = map[string]string{
	"tcp": "ip", "tcp4": "ip4", "tcp6": "ip6",
	"udp": "ip", "udp4": "ip4", "udp6": "ip6",
}

// filter splits addrs into those of network's family the guard allows, in
// order and without duplicates, and the refusals of the others.
func (d *Dialer) filter(network, host string, addrs []netip.Addr) (allowed []netip.Addr, blocked []*BlockedError) {
	seen := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		if a.Is4In6() {
			a = a.Unmap()
		}
		if seen[a] || !a.IsValid() {
			continue
		}
		seen[a] = true
		switch {
		case strings.HasSuffix(network, "4") && !a.Is4(),
			strings.HasSuffix(network, "6") && !a.Is6():
			continue
		}
		if err := d.Guard.Check(a); err != nil {
			var be *BlockedError
			if errors.As(err, &be) {
				if host != a.String() {
					be.Host = host
				}
				blocked = append(blocked, be)
			}
			continue
		}
		allowed = append(allowed, a)
	}
	return allowed, blocked
}

// dialOne dials one address, giving it its share of ctx's deadline when
// remaining addresses (this one included) are left to try.
func dialOne(ctx context.Context, nd *net.Dialer, network, address string, remaining int) (net.Conn, error) {
	if deadline, ok := ctx.Deadline(); ok && remaining > 1 {
		left := time.Until(deadline)
		share := left / time.Duration(remaining)
		if share < minAttemptTimeout {
			share = min(left, minAttemptTimeout)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, share)
		defer cancel()
	}
	return nd.DialContext(ctx, network, address)
}

func (d *Dialer) resolver() Resolver {
	if d.Resolver != nil {
		return d.Resolver
	}
	return net.DefaultResolver
}

// netDialer returns a copy of d.Dialer (or of the default) whose
// ControlContext checks the connect address with the guard before calling
// the original hook.
func (d *Dialer) netDialer() *net.Dialer {
	nd := net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: defaultKeepAlive}
	if d.Dialer != nil {
		nd = *d.Dialer
	}
	guard, control, controlContext := d.Guard, nd.Control, nd.ControlContext
	nd.Control = nil
	nd.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		if err := guard.Control(network, address, c); err != nil {
			return err
		}
		switch {
		case controlContext != nil:
			return controlContext(ctx, network, address, c)
		case control != nil:
			return control(network, address, c)
		}
		return nil
	}
	return &nd
}
