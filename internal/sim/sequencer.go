package sim

import (
	"slices"
	"sync"
	"testing/synctest"
)

// sequencer makes a run the seed's alone. Goroutines of the dispatchers
// woken at the same fake instant run in an order the Go scheduler picks;
// where that order matters (a record landing before or after a claim,
// two attempts timing out at once), the run would depend on it. So every
// store call a dispatcher makes, and every wake-up of a request in the
// fake network, first takes a ticket named after what it is ("p1 Record
// d3.2#2 lease 1") and waits: the sequencer lets them go one name at a
// time, in name order, each time everything else in the bubble is blocked
// (synctest.Wait). What runs between two tickets is then only what the
// previous one set off, and the order of tickets is canonical.
//
// Tickets with the same name go together: they are the same read by two
// workers of one dispatcher (two deliveries of one event), whose order
// does not matter.
//
// The sequencer is the only caller of synctest.Wait in a run; the driver
// asks it for quiescence (settle) instead.
type sequencer struct {
	mu     sync.Mutex
	queue  []*ticket
	kick   chan struct{}
	settle chan chan struct{}
	quit   chan struct{}
	done   chan struct{}
	grants int
}

type ticket struct {
	name string
	go_  chan struct{}
}

func newSequencer() *sequencer {
	s := &sequencer{
		kick: make(chan struct{}, 1), settle: make(chan chan struct{}),
		quit: make(chan struct{}), done: make(chan struct{}),
	}
	go s.run()
	return s
}

// wait takes a ticket and returns when the sequencer lets it go.
func (s *sequencer) wait(name string) {
	t := &ticket{name: name, go_: make(chan struct{})}
	s.mu.Lock()
	s.queue = append(s.queue, t)
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	<-t.go_
}

// settled returns once every goroutine of the run is blocked with no
// ticket waiting: the dispatchers are at rest.
func (s *sequencer) settled() {
	c := make(chan struct{})
	s.settle <- c
	<-c
}

// stop ends the sequencer; nothing may take a ticket after.
func (s *sequencer) stop() {
	close(s.quit)
	<-s.done
}

func (s *sequencer) run() {
	defer close(s.done)
	var waiter chan struct{}
	for {
		synctest.Wait()
		s.mu.Lock()
		if len(s.queue) > 0 {
			first := slices.MinFunc(s.queue, func(a, b *ticket) int {
				switch {
				case a.name < b.name:
					return -1
				case a.name > b.name:
					return 1
				}
				return 0
			}).name
			var grant []*ticket
			s.queue = slices.DeleteFunc(s.queue, func(t *ticket) bool {
				if t.name == first {
					grant = append(grant, t)
					return true
				}
				return false
			})
			s.grants++
			s.mu.Unlock()
			for _, t := range grant {
				close(t.go_)
			}
			continue
		}
		s.mu.Unlock()
		if waiter != nil {
			close(waiter)
			waiter = nil
		}
		select {
		case <-s.kick:
		case waiter = <-s.settle:
		case <-s.quit:
			return
		}
	}
}
