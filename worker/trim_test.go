package worker_test

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/jetflow/jetflow/worker"
	"github.com/stretchr/testify/require"
)

// eternal is a monitor loop: each execution waits for a tick, shows how
// many it has seen, and continues as new with the count.
func eternal(ctx *jetflow.OrchestrationContext) (any, error) {
	var n int
	if err := ctx.GetInput(&n); err != nil {
		return nil, err
	}
	ctx.SetCustomStatus(n)
	if err := ctx.WaitForExternalEvent("tick").Await(nil); err != nil {
		return nil, err
	}
	ctx.ContinueAsNew(n + 1)
	return nil, nil
}

// TestContinueAsNewTrimsHistory: an eternal orchestration's earlier
// executions leave its history once nothing can need them (see trim):
// not while their messages are still stored in the inbox, nor within the
// duplicate window (production default, 2 minutes: the hub's clock is
// moved past it), then at the next turn. Two workers share the instance,
// each with its own cache, and a worker that loads the trimmed history
// goes on counting: every tick is applied exactly once.
func TestContinueAsNewTrimsHistory(t *testing.T) {
	t.Parallel()
	var skew atomic.Int64
	e := testengine.New(t, testengine.Options{
		Register: func(r *jetflow.Registry) error { return r.AddOrchestrator("Eternal", eternal) },
		Store:    jetstream.Config{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }},
		// Acknowledged messages stay in the inbox until a worker that
		// purges them starts.
		Worker:  worker.Config{PurgeInterval: -1},
		Workers: 2,
	})
	ctx := e.Context(120 * time.Second)
	const id = "eternal-1"
	_, err := e.Client.StartOrchestration(ctx, "Eternal", client.WithInstanceID(id), client.WithInput(0))
	require.NoError(t, err)
	ticks := 0
	tick := func() {
		t.Helper()
		waitCustom(t, e, id, strconv.Itoa(ticks))
		require.NoError(t, e.Client.RaiseEvent(ctx, id, "tick", nil))
		ticks++
		waitCustom(t, e, id, strconv.Itoa(ticks))
	}
	trims := func() (n int64) {
		for _, w := range e.Workers {
			n += w.Stats().Trims
		}
		return n
	}
	chunkOne := func() bool {
		t.Helper()
		ok, err := e.Storage.ChunkExists(ctx, id, 1)
		require.NoError(t, err)
		return ok
	}

	for range 5 {
		tick()
	}
	require.Zero(t, trims(), "within the duplicate window")
	require.True(t, chunkOne())

	skew.Store(int64(5 * time.Minute))
	for range 3 {
		tick()
	}
	require.Zero(t, trims(), "the consumed messages are still stored in the inbox")
	require.True(t, chunkOne())

	e.StartWorkerWith(worker.Config{}) // purges what was acknowledged
	// tickUntilTrimmed ticks until a trim beyond done happened and returns
	// how many ticks that took.
	tickUntilTrimmed := func(done int64) int {
		t.Helper()
		for n := 1; ; n++ {
			tick()
			if testkit.Within(time.Second, func() bool { return trims() > done }) {
				return n
			}
		}
	}
	tickUntilTrimmed(0)
	// The chunks before the clock moved are gone: the start, the five ticks
	// of the first minute. The sixth chunk's execution ended in the
	// seventh, which began the next and stays.
	chunks, err := e.Storage.LoadHistory(ctx, id)
	require.NoError(t, err)
	require.EqualValues(t, 7, chunks[0].Number, "the chunks of the executions before the clock moved are trimmed")
	events := checkHistory(t, e, id)
	require.Equal(t, len(chunks), count(events, history.ExecutionStarted), "each chunk kept began an execution")

	// Another window on, the rest goes: what is left is the history since.
	skew.Add(int64(5 * time.Minute))
	n := tickUntilTrimmed(trims())
	chunks, err = e.Storage.LoadHistory(ctx, id)
	require.NoError(t, err)
	require.LessOrEqual(t, len(chunks), n+1, "only the chunks since the clock moved again are kept")
	checkHistory(t, e, id)

	// Workers that load the trimmed history go on counting.
	for range 3 {
		require.NoError(t, e.StopWorker(ctx, 0))
	}
	e.StartWorker()
	for range 3 {
		tick()
	}
	st, err := e.Client.GetStatus(ctx, id)
	require.NoError(t, err)
	require.JSONEq(t, strconv.Itoa(ticks), string(st.CustomStatus), "each tick applied once")
	checkHistory(t, e, id)
}
