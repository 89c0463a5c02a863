package client_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/jetstream"
)

// answerHolder is a TCP proxy between one NATS client and the server that,
// once the client publishes to a subject starting with trigger, holds
// what the server sends back (the write is stored; its answer does not
// come) until released. Held bytes are delivered on release, in order,
// so the connection stays sound: the late answer is dropped by the
// client, whose request gave up meanwhile.
type answerHolder struct {
	l       net.Listener
	trigger []byte
	// releaseOn, when set, releases the hold as soon as the client sends
	// bytes containing it after the hold began.
	releaseOn []byte

	mu       sync.Mutex
	holding  bool
	held     []byte
	down     net.Conn // to the client
	triggers int
	heldNow  chan struct{} // closed when the hold begins
}

func newAnswerHolder(t *testing.T, server string, trigger, releaseOn string) *answerHolder {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &answerHolder{l: l, trigger: []byte(trigger), heldNow: make(chan struct{})}
	if releaseOn != "" {
		p.releaseOn = []byte(releaseOn)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", server)
			if err != nil {
				c.Close()
				return
			}
			t.Cleanup(func() { c.Close(); s.Close() })
			go p.up(c, s)
			go p.downstream(s, c)
		}
	}()
	return p
}

func (p *answerHolder) url() string { return "nats://" + p.l.Addr().String() }

// up copies client → server, watching for the trigger and the release.
func (p *answerHolder) up(c, s net.Conn) {
	var tail []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			window := append(tail, buf[:n]...)
			p.mu.Lock()
			switch {
			case !p.holding && p.triggers == 0 && bytes.Contains(window, p.trigger):
				p.holding, p.triggers = true, 1
				close(p.heldNow)
				window = window[bytes.Index(window, p.trigger)+len(p.trigger):]
			case p.holding && p.releaseOn != nil && bytes.Contains(window, p.releaseOn):
				p.releaseLocked()
			}
			p.mu.Unlock()
			if _, err := s.Write(buf[:n]); err != nil {
				return
			}
			keep := max(len(p.trigger), len(p.releaseOn))
			tail = append(tail[:0], window[max(0, len(window)-keep):]...)
		}
		if err != nil {
			return
		}
	}
}

// downstream copies server → client, or into the hold.
func (p *answerHolder) downstream(s, c net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			p.mu.Lock()
			p.down = c
			if p.holding {
				p.held = append(p.held, buf[:n]...)
				p.mu.Unlock()
			} else {
				p.mu.Unlock()
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
		}
		if err != nil {
			if err != io.EOF {
				c.Close()
			}
			return
		}
	}
}

// release delivers what was held and stops holding.
func (p *answerHolder) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.releaseLocked()
}

func (p *answerHolder) releaseLocked() {
	if !p.holding {
		return
	}
	p.holding = false
	if p.down != nil && len(p.held) > 0 {
		_, _ = p.down.Write(p.held) // under the lock: nothing overtakes it
	}
	p.held = nil
}

// proxiedClient is a client of e's hub whose connection goes through p,
// with a storage timeout of 2 s (the production default is 10 s; shorter
// only makes the test quicker).
func proxiedClient(t *testing.T, e *testengine.Engine, p *answerHolder) *client.Client {
	t.Helper()
	nc, err := nats.Connect(p.url(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	st, err := jetstream.Open(context.Background(), nc, jetstream.Config{Timeout: 2 * time.Second})
	require.NoError(t, err)
	return client.New(st)
}

// executions counts the ExecutionStarted events in id's stored history:
// the runs the instance has had.
func executions(t *testing.T, e *testengine.Engine, id string) int {
	t.Helper()
	chunks, err := e.Storage.LoadHistory(context.Background(), id)
	require.NoError(t, err)
	n := 0
	for _, c := range chunks {
		for _, ev := range c.Events {
			if ev.Type == history.ExecutionStarted {
				n++
			}
		}
	}
	return n
}

// TestStartAnswerLost: a start whose status write is stored but whose
// answer is lost takes effect exactly once. Within the call, the client
// retries under the same request id and finds its own Pending start;
// in a later call with the same WithRequestID, made after the run has
// finished, it answers with that run instead of starting another.
func TestStartAnswerLost(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	statusPub := "PUB $KV." + e.Storage.Names().StatusBucket() + "."

	t.Run("retried within the call", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(90 * time.Second) // from when the subtest runs, not when it was queued
		// Hold the status write's answer until the client, having given
		// up on it, sends its next request.
		p := newAnswerHolder(t, e.Listen, statusPub, "$JS.API.")
		c := proxiedClient(t, e, p)
		id, err := c.StartOrchestration(context.Background(), "E1_HelloSequence", client.WithInstanceID("lost-within"))
		require.NoError(t, err, "the retry finds the start it stored")
		select {
		case <-p.heldNow:
		default:
			t.Fatal("the status write's answer was never held: the test tested nothing")
		}
		st, err := e.Client.WaitForCompletion(ctx, id)
		require.NoError(t, err)
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
		require.Equal(t, 1, executions(t, e, id))
	})

	t.Run("cut off by its caller", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(90 * time.Second) // from when the subtest runs, not when it was queued
		// The caller gives up (an HTTP client gone) while the status
		// write is on its way: the start still ends with its message.
		p := newAnswerHolder(t, e.Listen, statusPub, "")
		c := proxiedClient(t, e, p)
		cctx, cancel := context.WithCancel(ctx)
		go func() { <-p.heldNow; cancel() }()
		_, err := c.StartOrchestration(cctx, "E1_HelloSequence", client.WithInstanceID("lost-cut"))
		require.ErrorIs(t, err, jetflow.ErrOutcomeUnknown)
		require.ErrorIs(t, err, context.Canceled)
		p.release()
		testkit.WaitFor(t, 10*time.Second, "the write the proxy saw to be stored", func() bool {
			_, err := e.Client.GetStatus(ctx, "lost-cut")
			return err == nil
		})
		st, err := e.Client.WaitForCompletion(ctx, "lost-cut")
		require.NoError(t, err)
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
		require.Equal(t, 1, executions(t, e, "lost-cut"))
	})

	t.Run("retried after the run finished", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(90 * time.Second) // from when the subtest runs, not when it was queued
		// Hold the answer to the start message: it is stored and runs.
		p := newAnswerHolder(t, e.Listen, "PUB "+e.Storage.Names().Hub()+".orch.", "")
		c := proxiedClient(t, e, p)
		const key = "order-17"
		short, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := c.StartOrchestration(short, "E1_HelloSequence", client.WithInstanceID("lost-after"), client.WithRequestID(key))
		cancel()
		require.ErrorIs(t, err, jetflow.ErrOutcomeUnknown)
		require.Contains(t, err.Error(), `WithRequestID("order-17")`)

		// The run finishes while the caller knows nothing of it.
		st, err := e.Client.WaitForCompletion(ctx, "lost-after")
		require.NoError(t, err)
		require.Equal(t, key, st.RequestID)
		before, err := e.Client.GetStatusWithRevision(ctx, "lost-after")
		require.NoError(t, err)
		p.release()

		_, err = c.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID("lost-after"), client.WithRequestID(key))
		require.NoError(t, err, "the retry answers with the run the first call made")
		after, err := e.Client.GetStatusWithRevision(ctx, "lost-after")
		require.NoError(t, err)
		require.Equal(t, before.Revision, after.Revision, "nothing was written")
		require.Equal(t, 1, executions(t, e, "lost-after"))

		// Another request for the same finished id is a new run, as in
		// Durable Functions.
		_, err = c.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID("lost-after"), client.WithRequestID("order-18"))
		require.NoError(t, err)
		_, err = e.Client.WaitForCompletion(ctx, "lost-after")
		require.NoError(t, err)
		require.Equal(t, 2, executions(t, e, "lost-after"))
	})
}
