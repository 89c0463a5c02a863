package worker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/samples"
	"github.com/jetflow/jetflow/worker"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

func registerSamples(r *jetflow.Registry) error { return samples.Register(r, samples.Options{}) }

// TestSpecialisedWorkers runs workers limited to some orchestrators and
// activities: an instance goes only to a worker that runs its
// orchestrator, and waits until one does.
func TestSpecialisedWorkers(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Workers: -1, Register: registerSamples})
	ctx := e.Context(60 * time.Second)
	c := e.Client

	w := e.StartWorkerWith(worker.Config{Orchestrators: []string{"E1_HelloSequence", "CityRecommender"}, NoActivities: true})
	// An activity worker for SayHello only.
	e.StartWorkerWith(worker.Config{Activities: []string{"E1_SayHello"}, NoOrchestrations: true})
	city, err := c.StartOrchestration(ctx, "CityRecommender", client.WithInput(1))
	require.NoError(t, err)
	hello, err := c.StartOrchestration(ctx, "E1_HelloSequence")
	require.NoError(t, err)
	require.JSONEq(t, `["Hello Tokyo!","Hello Seattle!","Hello London!"]`, string(wait(t, e, hello).Output))

	// SetStatusTest's worker has stopped: its instance waits, Pending,
	// until another starts.
	e.StartWorkerWith(worker.Config{Orchestrators: []string{"SetStatusTest"}, NoActivities: true})
	require.NoError(t, e.StopWorker(ctx, len(e.Workers)-1))
	set, err := c.StartOrchestration(ctx, "SetStatusTest")
	require.NoError(t, err)
	// Its start is stored in the queue of SetStatusTest's workers, and no
	// other worker took it.
	js, err := natsjs.New(e.Conn)
	require.NoError(t, err)
	names := e.Storage.Names()
	testkit.WaitForNoError(t, 10*time.Second, "the start to wait in the queue of SetStatusTest", func() error {
		cons, err := js.Consumer(ctx, names.InboxStream(names.Partition(set)), names.InboxConsumer("SetStatusTest"))
		require.NoError(t, err)
		info, err := cons.Info(ctx)
		require.NoError(t, err)
		if info.NumPending != 1 || info.Delivered.Consumer != 0 {
			return fmt.Errorf("%d pending, %d delivered", info.NumPending, info.Delivered.Consumer)
		}
		return nil
	})
	st, err := c.GetStatus(ctx, set)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusPending, st.RuntimeStatus)

	e.StartWorkerWith(worker.Config{Orchestrators: []string{"SetStatusTest"}, NoActivities: true})
	waitCustom(t, e, set, `{"nextActions":["A","B","C"],"foo":2}`)
	require.NoError(t, c.RaiseEvent(ctx, set, "Done", nil))
	require.NoError(t, c.RaiseEvent(ctx, city, "CitySelected", "Paris"))
	require.Equal(t, jetflow.StatusCompleted, wait(t, e, set).RuntimeStatus)
	require.Equal(t, jetflow.StatusCompleted, wait(t, e, city).RuntimeStatus)
	require.Positive(t, w.Stats().Turns)

	_, err = worker.New(e.Store, e.Registry, worker.Config{Orchestrators: []string{"Nope"}})
	require.NoError(t, err)
	bad, err := worker.New(e.Store, e.Registry, worker.Config{Orchestrators: []string{"Nope"}, Activities: []string{"E1_SayHello", "Nada"}})
	require.NoError(t, err)
	err = bad.Start(ctx)
	require.ErrorContains(t, err, `orchestrator "Nope" not registered`)
}

// TestWorkSpreads runs a load on four workers: each takes a fair part,
// and a fifth started during the load takes work within seconds.
func TestWorkSpreads(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Workers: 4, Register: registerSamples})
	ctx := e.Context(120 * time.Second)
	const n = 400
	ids := make([]string, 0, n)
	for i := range n {
		id, err := e.Client.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID(fmt.Sprintf("spread-%d", i)))
		require.NoError(t, err)
		ids = append(ids, id)
		if i == n/2 {
			e.StartWorker()
		}
	}
	for _, id := range ids {
		wait(t, e, id)
	}
	var total int64
	turns := make([]int64, len(e.Workers))
	for i, w := range e.Workers {
		turns[i] = w.Stats().Turns + w.Stats().Activities
		total += turns[i]
	}
	t.Logf("turns+activities per worker: %v", turns)
	for i, n := range turns[:4] {
		require.Greater(t, n, total/20, "worker %d got %d of %d", i, n, total)
	}
	require.Positive(t, turns[4], "the worker started during the load took work")
}
