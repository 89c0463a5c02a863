package worker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow/internal/storage"
)

// TestLeaseLostBeforeTheAckWait: a lease left unextended for most of the
// ack wait (the process was frozen) is lost, not only one past it. The
// randomized chaos test found the case: a worker frozen 29.8 s of a 30 s
// ack wait woke, judged the tasks it held still its own by its clock, and
// ran them 83 ms before another worker, to which the server had already
// given them, ran them again.
func TestLeaseLostBeforeTheAckWait(t *testing.T) {
	t.Parallel()
	const ackWait = 30 * time.Second
	for _, tc := range []struct {
		name  string
		age   time.Duration
		alive bool
	}{
		{"just received", 0, true},
		{"due for its extension", ackWait / 4, true},
		{"an extension late", ackWait / 2, true},
		{"frozen for most of the ack wait", 29800 * time.Millisecond, false},
		{"frozen three quarters of it", ackWait * 3 / 4, false},
		{"frozen past it", ackWait + time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLeases(ackWait, false)
			le := l.hold(storage.Delivery{})
			le.extended = time.Now().Add(-tc.age)
			require.Equal(t, tc.alive, l.alive(le))
			if !tc.alive {
				l.extend(time.Now()) // a lost lease is not extended again
				require.False(t, l.alive(le))
			}
		})
	}
}
