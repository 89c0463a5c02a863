package worker_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/jetstream"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// TestRetention: on a hub with a retention, a finished instance is
// removed that long after it finished (its status and history), and an
// instance started again under the same id before then is not: the
// removal belongs to the execution that finished.
func TestRetention(t *testing.T) {
	t.Parallel()
	const keep = time.Second
	e := testengine.New(t, testengine.Options{
		Register: func(r *jetflow.Registry) error {
			return r.AddOrchestrator("WaitForGo", func(ctx *jetflow.OrchestrationContext) (any, error) {
				var v string
				err := ctx.WaitForExternalEvent("go").Await(&v)
				return v, err
			})
		},
		Store:   jetstream.Config{Retention: keep},
		Workers: 2,
	})
	gone := func(ctx context.Context, id string) func() bool {
		return func() bool {
			_, err := e.Client.GetStatus(ctx, id)
			if !errors.Is(err, jetflow.ErrInstanceNotFound) {
				require.NoError(t, err)
				return false
			}
			chunks, err := e.Storage.LoadHistory(ctx, id)
			require.NoError(t, err)
			return len(chunks) == 0
		}
	}
	finish := func(ctx context.Context, id string) {
		t.Helper()
		require.NoError(t, e.Client.RaiseEvent(ctx, id, "go", "done"))
		st, err := e.Client.WaitForCompletion(ctx, id)
		require.NoError(t, err)
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
	}

	t.Run("removed after it finished", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(60 * time.Second)
		id, err := e.Client.StartOrchestration(ctx, "WaitForGo", client.WithInstanceID("kept-1"))
		require.NoError(t, err)
		finish(ctx, id)
		testkit.WaitFor(t, 30*time.Second, "the finished instance to be removed", gone(ctx, id))
	})

	t.Run("started again before its removal", func(t *testing.T) {
		t.Parallel()
		ctx := e.Context(60 * time.Second)
		id, err := e.Client.StartOrchestration(ctx, "WaitForGo", client.WithInstanceID("kept-2"))
		require.NoError(t, err)
		finish(ctx, id)
		first := lastStart(t, e, id).ExecutionID
		_, err = e.Client.StartOrchestration(ctx, "WaitForGo", client.WithInstanceID(id))
		require.NoError(t, err)
		testkit.WaitFor(t, 30*time.Second, "the second run", func() bool { return lastStart(t, e, id).ExecutionID != first })

		// The first run's removal comes due and is taken: its schedule is
		// gone and so is the message it sent.
		names := e.Storage.Names()
		js, err := natsjs.New(e.Storage.Conn())
		require.NoError(t, err)
		inbox, err := js.Stream(ctx, names.InboxStream(names.Partition(id)))
		require.NoError(t, err)
		testkit.WaitFor(t, 30*time.Second, "the first run's removal to be taken", func() bool {
			info, err := inbox.Info(ctx, natsjs.WithSubjectFilter(names.ExpirySubject(id, first)))
			require.NoError(t, err)
			ids, _, err := e.Storage.InboxMessageIDs(ctx, id)
			require.NoError(t, err)
			return info.State.Msgs == 0 && !slices.Contains(ids, first+":expire")
		})
		st, err := e.Client.GetStatus(ctx, id)
		require.NoError(t, err, "the run started again was removed with the first")
		require.Equal(t, jetflow.StatusRunning, st.RuntimeStatus)

		finish(ctx, id)
		testkit.WaitFor(t, 30*time.Second, "the second run to be removed", gone(ctx, id))
	})
}
