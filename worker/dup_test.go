package worker_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/stretchr/testify/require"
)

// TestDuplicateInOneBatch delivers one message twice into the same turn
// (as when its ack wait runs out while it waits in a worker's queue): it
// is applied once.
func TestDuplicateInOneBatch(t *testing.T) {
	t.Parallel()
	// A short duplicate window lets the same message be stored twice.
	e := testengine.New(t, testengine.Options{Register: registerSamples, Store: jetstream.Config{DuplicateWindow: 100 * time.Millisecond}})
	ctx := e.Context(60 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "SetStatusTest", client.WithInstanceID("dup-1"))
	require.NoError(t, err)
	waitCustom(t, e, id, `{"nextActions":["A","B","C"],"foo":2}`)
	e.StopWorkers()

	msg := &storage.InboxMessage{InstanceID: id, Orchestrator: "SetStatusTest", Event: history.Event{
		Type: history.EventRaised, Time: time.Now().UTC(), Name: "Done", Input: json.RawMessage(`1`), MsgID: "event-dup-1",
	}}
	publish := func() storage.Result {
		out, err := e.Storage.InboxWrite(msg)
		require.NoError(t, err)
		res := e.Storage.Publish(ctx, out)[0]
		require.NoError(t, res.Err)
		return res
	}
	require.False(t, publish().Duplicate)
	// Within the window the stream drops the copy; once it has passed, the
	// copy is stored.
	testkit.WaitFor(t, 10*time.Second, "the second copy to be stored past the duplicate window", func() bool {
		return !publish().Duplicate
	})
	e.StartWorker()
	require.Equal(t, jetflow.StatusCompleted, wait(t, e, id).RuntimeStatus)
	all := checkHistory(t, e, id) // fails on a message id applied twice
	require.Equal(t, 1, count(all, history.EventRaised))
}
