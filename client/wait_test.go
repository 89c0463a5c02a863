package client_test

import (
	"context"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
)

// TestWaitForCompletionNotFound: waiting for an id that has no status,
// never had one or was purged, answers ErrInstanceNotFound at once instead
// of waiting for the context to end; so does a wait whose instance is
// purged while it waits.
func TestWaitForCompletionNotFound(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	ctx := e.Context(60 * time.Second)
	c := e.Client

	// wait runs WaitForCompletion with a deadline far beyond what an
	// answer from the server takes, and requires ErrInstanceNotFound
	// before it.
	type answer struct {
		st          *jetflow.Status
		err, ctxErr error
	}
	waitFor := func(id string) answer {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		st, err := c.WaitForCompletion(wctx, id)
		return answer{st, err, wctx.Err()}
	}
	check := func(t *testing.T, id string, a answer) {
		t.Helper()
		require.ErrorIs(t, a.err, jetflow.ErrInstanceNotFound, "status %+v", a.st)
		require.NoError(t, a.ctxErr, "the answer came before the deadline")
		require.Contains(t, a.err.Error(), id)
	}
	wait := func(t *testing.T, id string) {
		t.Helper()
		check(t, id, waitFor(id))
	}

	t.Run("never started", func(t *testing.T) {
		t.Parallel()
		wait(t, "never-started")
	})

	t.Run("purged", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(60 * time.Second) // from when the subtest runs, not when it was queued
		id, err := c.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID("wait-purged"))
		require.NoError(t, err)
		_, err = c.WaitForCompletion(ctx, id)
		require.NoError(t, err)
		require.NoError(t, c.PurgeInstance(ctx, id))
		wait(t, id)
	})

	t.Run("purged while waiting", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(60 * time.Second) // from when the subtest runs, not when it was queued
		id, err := c.StartOrchestration(ctx, "SetStatusTest", client.WithInstanceID("wait-gone"))
		require.NoError(t, err)
		ch, err := c.WatchStatus(ctx, id, 0)
		require.NoError(t, err)
		untilCustomStatus(t, ch) // Running, waiting for an event nobody sends

		consumers := statusConsumers(t, e)
		done := make(chan answer, 1)
		go func() { done <- waitFor(id) }()
		// The wait is under way once its watch (a consumer of the status
		// stream) exists; then the status goes, as a purge removes it.
		testkit.WaitFor(t, 10*time.Second, "the wait's watch", func() bool { return statusConsumers(t, e) > consumers })
		cur, err := c.GetStatusWithRevision(ctx, id)
		require.NoError(t, err)
		require.NoError(t, e.Storage.DeleteStatus(ctx, id, cur.Revision))
		check(t, id, testkit.Receive(t, done, 15*time.Second, "WaitForCompletion still waits after the status was purged"))
	})
}

// statusConsumers is the number of consumers (watches) of the status
// bucket's stream.
func statusConsumers(t *testing.T, e *testengine.Engine) int {
	t.Helper()
	js, err := natsjs.New(e.Conn)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, "KV_"+e.Storage.Names().StatusBucket())
	require.NoError(t, err)
	info, err := s.Info(ctx)
	require.NoError(t, err)
	return info.State.Consumers
}
