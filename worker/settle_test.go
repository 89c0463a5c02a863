package worker_test

import (
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/stretchr/testify/require"
)

// TestSettleTakesCustomStatusFromHistory: when the writer of a commit dies
// before writing the status, the next worker writes it with the custom
// status that commit recorded in history, without running the
// orchestrator again (an executor in another process, or language, should
// not be asked to replay for a status).
func TestSettleTakesCustomStatusFromHistory(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return r.AddOrchestrator("Shows", func(ctx *jetflow.OrchestrationContext) (any, error) {
			runs.Add(1)
			if err := ctx.SetCustomStatus("A"); err != nil {
				return nil, err
			}
			return nil, ctx.WaitForExternalEvent("go").Await(nil)
		})
	}})
	ctx := e.Context(60 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "Shows", client.WithInstanceID("settle-1"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st, err := e.Client.GetStatus(ctx, id)
		return err == nil && string(st.CustomStatus) == `"A"`
	}, 20*time.Second, 5*time.Millisecond)
	require.NoError(t, e.StopWorker(ctx, 0))

	// A turn that applied message m1 and left the custom status "B",
	// committed by a worker that died before its status write.
	chunks, err := e.Storage.LoadHistory(ctx, id)
	require.NoError(t, err)
	last := chunks[len(chunks)-1]
	m1 := history.Event{Type: history.EventRaised, Time: time.Now().UTC(), Name: "other", Input: json.RawMessage(`1`), MsgID: "settle-m1"}
	_, err = e.Storage.AppendChunk(ctx, id, last.Number+1, last.Revision,
		[]history.Event{{Type: history.OrchestratorStarted, Time: m1.Time}, m1}, json.RawMessage(`"B"`))
	require.NoError(t, err)
	before := runs.Load()

	// m1 comes back (its ack was lost with the worker): a fresh worker
	// finds it applied, and settles the status.
	out, err := e.Storage.InboxWrite(&storage.InboxMessage{InstanceID: id, Orchestrator: "Shows", Event: m1})
	require.NoError(t, err)
	require.NoError(t, storage.FirstError(e.Storage.Publish(ctx, out)))
	e.StartWorker()
	require.Eventually(t, func() bool {
		st, err := e.Client.GetStatus(ctx, id)
		return err == nil && string(st.CustomStatus) == `"B"`
	}, 20*time.Second, 5*time.Millisecond, "the status takes the custom status the commit recorded")
	require.Equal(t, before, runs.Load(), "the orchestrator did not run again")

	// The instance goes on from there.
	require.NoError(t, e.Client.RaiseEvent(ctx, id, "go", nil))
	st, err := e.Client.WaitForCompletion(ctx, id)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
}
