package worker

import (
	"sync"
	"time"

	"github.com/jetflow/jetflow/internal/storage"
)

// lease is one delivery the worker holds: an inbox message queued, held
// back or in a turn, or an activity task waiting for a slot or running.
// Until it is acknowledged or handed back, the worker keeps it alive with
// in-progress acks, so the server does not deliver it again (and count
// the delivery) while it merely waits.
type lease struct {
	d        storage.Delivery
	extended time.Time // when the worker last told the server of it (received, or in-progress ack sent)
	lost     bool      // it went unextended so long that the server may have given it to another worker
}

// leases are the deliveries a worker holds, and those it acknowledged
// since the janitor last asked (see Worker.janitor).
type leases struct {
	mu        sync.Mutex
	held      map[*lease]struct{}
	every     time.Duration // how often to extend a lease: a quarter of the ack wait
	lostAfter time.Duration // three quarters of the ack wait: see lost
	record    bool          // keep acked for the janitor
	acked     []storage.Acked
}

// newLeases returns the leases of a worker whose consumers have ackWait.
//
// A lease not extended for three quarters of the ack wait is lost: the
// worker's clock of it starts when the handler gets the message, later
// than the server's (which starts at delivery, and the message may wait
// in the client's buffer first), and an in-progress ack is not confirmed;
// so a process that wakes from a stall just short of the ack wait by its
// own clock may find the server has already given the message to another
// worker, and both would run it. Extended every quarter, a live lease is
// never that old.
func newLeases(ackWait time.Duration, record bool) *leases {
	return &leases{held: map[*lease]struct{}{}, every: ackWait / 4, lostAfter: ackWait * 3 / 4, record: record}
}

// hold starts keeping d alive.
func (l *leases) hold(d storage.Delivery) *lease {
	le := &lease{d: d, extended: time.Now()}
	l.mu.Lock()
	l.held[le] = struct{}{}
	l.mu.Unlock()
	return le
}

// release stops keeping le alive (it was handled, handed back, or is
// given up on purpose).
func (l *leases) release(le *lease) {
	l.mu.Lock()
	delete(l.held, le)
	l.mu.Unlock()
}

// ack acknowledges le and releases it.
func (l *leases) ack(le *lease) {
	l.release(le)
	le.d.Ack()
	if !l.record {
		return
	}
	if a, ok := le.d.Acked(); ok {
		l.mu.Lock()
		l.acked = append(l.acked, a)
		l.mu.Unlock()
	}
}

// takeAcked returns the messages acknowledged since the last call.
func (l *leases) takeAcked() []storage.Acked {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.acked
	l.acked = nil
	return a
}

// nak hands le back for redelivery after delay and releases it.
func (l *leases) nak(le *lease, delay time.Duration) {
	l.release(le)
	le.d.Nak(delay)
}

// extend sends an in-progress ack for every lease not extended for a
// quarter of the ack wait.
func (l *leases) extend(now time.Time) {
	var due []*lease
	l.mu.Lock()
	for le := range l.held {
		switch age := now.Sub(le.extended); {
		case le.lost:
		case age >= l.lostAfter:
			// The process stalled (a freeze, a long pause): the server
			// may have given the message to another worker by now.
			le.lost = true
		case age >= l.every:
			le.extended = now
			due = append(due, le)
		}
	}
	l.mu.Unlock()
	for _, le := range due {
		le.d.InProgress()
	}
}

// keep extends the leases until quit is closed.
func (l *leases) keep(quit <-chan struct{}) {
	t := time.NewTicker(max(l.every/2, 50*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case now := <-t.C:
			l.extend(now)
		}
	}
}

// alive reports whether le is still this worker's: it is not lost (a
// worker that stalled must not run an activity that another worker may be
// running by now).
func (l *leases) alive(le *lease) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !le.lost && time.Since(le.extended) >= l.lostAfter {
		le.lost = true
	}
	return !le.lost
}
