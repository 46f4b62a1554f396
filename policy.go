package convoy

import "time"

// DeadEndpointPolicy decides when an endpoint that keeps failing is dead:
// the dispatcher then makes it inactive, and its later deliveries are
// Discarded until it is re-activated and they are re-sent.
//
// Dead is called inside the store transaction that records a failed
// attempt, with the endpoint's health already counting that attempt. It must
// be quick, pure and safe for concurrent use.
type DeadEndpointPolicy interface {
	// Dead reports whether the endpoint is dead. exhausted is true when the
	// failed attempt was the delivery's last (the delivery ends Failure).
	Dead(h EndpointHealth, exhausted bool, now time.Time) bool
}

// DeadEndpointPolicyFunc adapts a function to DeadEndpointPolicy.
type DeadEndpointPolicyFunc func(h EndpointHealth, exhausted bool, now time.Time) bool

// Dead calls f.
func (f DeadEndpointPolicyFunc) Dead(h EndpointHealth, exhausted bool, now time.Time) bool {
	return f(h, exhausted, now)
}

// DeadOnExhaustedDelivery is the seed's rule and the default: an endpoint
// is dead as soon as one delivery to it exhausts its retries.
type DeadOnExhaustedDelivery struct{}

// Dead reports exhausted.
func (DeadOnExhaustedDelivery) Dead(_ EndpointHealth, exhausted bool, _ time.Time) bool {
	return exhausted
}

// DeadAfterFailures declares an endpoint dead after Deliveries consecutive
// deliveries ended in Failure, or once it has failed every attempt for
// longer than Window. A zero field disables its test; with both zero the
// endpoint never dies. New refuses a negative field.
type DeadAfterFailures struct {
	// Deliveries is how many consecutive deliveries must end in Failure.
	Deliveries int
	// Window is how long every attempt must have failed.
	Window time.Duration
}

// validate refuses negative fields, which read as "disabled" would hide a
// mistake.
func (p DeadAfterFailures) validate() error {
	if p.Deliveries < 0 || p.Window < 0 {
		return invalid(ErrInvalidConfig, "Config.DeadEndpoint", "DeadAfterFailures with a negative field")
	}
	return nil
}

// Dead implements DeadEndpointPolicy.
func (p DeadAfterFailures) Dead(h EndpointHealth, _ bool, now time.Time) bool {
	if p.Deliveries > 0 && h.ConsecutiveFailedDeliveries >= p.Deliveries {
		return true
	}
	if p.Window > 0 && !h.FailingSince.IsZero() && now.Sub(h.FailingSince) >= p.Window {
		return true
	}
	return false
}
