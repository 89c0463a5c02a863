package worker_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/dispatcher"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/jetflow/jetflow/jetstream/embedded"
	"github.com/jetflow/jetflow/worker"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// The tests of this file reproduce the defects of issue 9, each under the
// production defaults (30 s ack wait, 10 deliveries, a 1 MiB server).

// waitsForGo waits for the event "go" and returns its data.
func waitsForGo(ctx *jetflow.OrchestrationContext) (any, error) {
	var v string
	err := ctx.WaitForExternalEvent("go").Await(&v)
	return v, err
}

// TestEventOvertakesItsStart: a worker takes a start message and dies
// before acknowledging it, so the start comes back only after the 30 s ack
// wait; an event raised meanwhile waits for it (it is held back, not
// counted as a delivery each second) and the instance completes instead of
// failing as poison.
func TestEventOvertakesItsStart(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Workers: -1, Register: func(r *jetflow.Registry) error {
		return r.AddOrchestrator("WaitsForGo", waitsForGo)
	}})
	ctx := e.Context(120 * time.Second)
	require.NoError(t, e.Storage.Register(ctx, storage.KindOrchestrator, []string{"WaitsForGo"}, "test"))
	// A process that takes the start message and dies holding it.
	taken := make(chan struct{}, 1)
	dead, err := e.Storage.ConsumeInbox(ctx, "WaitsForGo", storage.ConsumeConfig{}, func(*storage.InboxMessage, storage.Delivery) {
		taken <- struct{}{}
	})
	require.NoError(t, err)
	id, err := e.Client.StartOrchestration(ctx, "WaitsForGo", client.WithInstanceID("overtaken-1"))
	require.NoError(t, err)
	testkit.Receive(t, taken, 30*time.Second, "the start message to be taken")
	dead.Stop()

	require.NoError(t, e.Client.RaiseEvent(ctx, id, "go", "went"))
	e.StartWorker()
	st := wait(t, e, id)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus, "output %s", st.Output)
	require.JSONEq(t, `"went"`, string(st.Output))
	require.Equal(t, 1, count(checkHistory(t, e, id), history.EventRaised))
}

// TestQueuedMessagesKeepTheirLeases: messages that wait in a worker's
// queue (behind the concurrency limit) longer than the ack wait are kept
// alive, not redelivered and counted; no healthy instance fails as poison.
// (Before leases, the same test failed 4 of 12 instances with a 1 s ack
// wait.)
func TestQueuedMessagesKeepTheirLeases(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{
		// A 2 s ack wait: the queue holds messages for several times that
		// (12 instances of two 300 ms turns behind one slot).
		Worker: worker.Config{OrchestrationConcurrency: 1, AckWait: 2 * time.Second, MaxDeliveries: 3},
		Register: func(r *jetflow.Registry) error {
			r.AddActivity("Echo", func(ctx *jetflow.ActivityContext) (any, error) { return "ok", nil })
			return r.AddOrchestrator("SlowTurns", func(ctx *jetflow.OrchestrationContext) (any, error) {
				if !ctx.IsReplaying() {
					time.Sleep(300 * time.Millisecond) // a turn that takes its time (well under TurnTimeout)
				}
				var s string
				err := ctx.CallActivity("Echo", nil).Await(&s)
				return s, err
			})
		},
	})
	ctx := e.Context(120 * time.Second)
	var ids []string
	for range 12 {
		id, err := e.Client.StartOrchestration(ctx, "SlowTurns")
		require.NoError(t, err)
		ids = append(ids, id)
	}
	for _, id := range ids {
		st := wait(t, e, id)
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus, "%s: %s", id, st.Output)
		checkHistory(t, e, id)
	}
}

// TestActivitiesWaitingForASlotRunOnce: a worker fetches only the tasks it
// can start, and keeps the leases of those that wait: with one slot and a
// 2 s ack wait, eight 0.7 s activities each run once.
func TestActivitiesWaitingForASlotRunOnce(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	runs := map[int]int{}
	e := testengine.New(t, testengine.Options{
		// A 2 s ack wait: the last tasks wait for their slot 5 s.
		Worker: worker.Config{ActivityConcurrency: 1, AckWait: 2 * time.Second},
		Register: func(r *jetflow.Registry) error {
			r.AddActivity("Slow", func(ctx *jetflow.ActivityContext) (any, error) {
				var n int
				if err := ctx.GetInput(&n); err != nil {
					return nil, err
				}
				mu.Lock()
				runs[n]++
				mu.Unlock()
				time.Sleep(700 * time.Millisecond) // a slow activity: the others wait for its slot
				return n, nil
			})
			return r.AddOrchestrator("EightSlow", func(ctx *jetflow.OrchestrationContext) (any, error) {
				var tasks []jetflow.Task
				for i := range 8 {
					tasks = append(tasks, ctx.CallActivity("Slow", i))
				}
				return nil, ctx.WhenAll(tasks...).Await(nil)
			})
		},
	})
	id, err := e.Client.StartOrchestration(e.Context(60*time.Second), "EightSlow")
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusCompleted, wait(t, e, id).RuntimeStatus)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, map[int]int{0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1, 7: 1}, runs)
}

// TestOversizeTurnFails: on a stock 1 MiB server, an orchestrator that
// passes its 524,280-byte input (within the value limit) to an activity
// makes a first chunk too large for one message. The instance fails with a
// message naming both sizes, instead of staying Pending for ever.
func TestOversizeTurnFails(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		r.AddActivity("Len", func(ctx *jetflow.ActivityContext) (any, error) {
			var s string
			err := ctx.GetInput(&s)
			return len(s), err
		})
		return r.AddOrchestrator("PassesItOn", func(ctx *jetflow.OrchestrationContext) (any, error) {
			var s string
			if err := ctx.GetInput(&s); err != nil {
				return nil, err
			}
			var n int
			err := ctx.CallActivity("Len", s).Await(&n)
			return n, err
		})
	}})
	require.Equal(t, int64(1<<20), e.Conn.MaxPayload(), "a stock server's limit")
	ctx := e.Context(60 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "PassesItOn", client.WithInput(strings.Repeat("x", 524278)))
	require.NoError(t, err)
	st := wait(t, e, id)
	require.Equal(t, jetflow.StatusFailed, st.RuntimeStatus)
	var msg string
	require.NoError(t, json.Unmarshal(st.Output, &msg))
	require.Contains(t, msg, "history chunk is ")
	require.Contains(t, msg, "max_payload")
	// The instance is finished: it can be purged.
	require.NoError(t, e.Client.PurgeInstance(ctx, id))
}

// TestOpenChecksMaxPayload: a server whose messages are too small for the
// engine's values is refused at Open with what to configure.
func TestOpenChecksMaxPayload(t *testing.T) {
	t.Parallel()
	srv, err := embedded.Run(embedded.Config{Dir: t.TempDir(), Listen: "127.0.0.1:0", MaxPayload: 256 << 10})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc := connectTo(t, srv.ClientURL())
	_, err = jetstream.Open(t.Context(), nc, jetstream.Config{})
	require.ErrorContains(t, err, "max_payload")
	require.ErrorContains(t, err, "262144")
}

// TestPendingWithoutStartMessage: a start whose Pending status was written
// but whose start message never was (the answer to the status write was
// lost, the caller gave up) is healed: a retry of the same start answers
// "exists" and sends the start, and so does a worker that holds an event
// for the instance; a terminate of such an instance works.
func TestPendingWithoutStartMessage(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return r.AddOrchestrator("WaitsForGo", waitsForGo)
	}})
	ctx := e.Context(90 * time.Second)
	pending := func(id string) {
		t.Helper()
		now := jetflow.Time{Time: time.Now().UTC().Truncate(time.Second)}
		_, err := e.Storage.PutStatus(ctx, id, &jetflow.Status{Name: "WaitsForGo", InstanceID: id, RuntimeStatus: jetflow.StatusPending,
			Input: json.RawMessage(`"in"`), CreatedTime: now, LastUpdatedTime: now}, 0)
		require.NoError(t, err)
	}

	t.Run("retry", func(t *testing.T) {
		pending("lost-1")
		_, err := e.Client.StartOrchestration(ctx, "WaitsForGo", client.WithInstanceID("lost-1"), client.WithInput("in"))
		require.ErrorIs(t, err, jetflow.ErrInstanceExists)
		_, err = e.Client.StartOrchestration(ctx, "WaitsForGo", client.WithInstanceID("lost-1"), client.WithInput("other"))
		require.ErrorIs(t, err, jetflow.ErrInstanceExists, "a start with other input is refused")
		require.NoError(t, e.Client.RaiseEvent(ctx, "lost-1", "go", "went"))
		st := wait(t, e, "lost-1")
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
		require.JSONEq(t, `"in"`, string(st.Input))
		require.Equal(t, 1, count(checkHistory(t, e, "lost-1"), history.ExecutionStarted))
	})
	t.Run("event", func(t *testing.T) {
		pending("lost-2")
		require.NoError(t, e.Client.RaiseEvent(ctx, "lost-2", "go", "went"))
		st := wait(t, e, "lost-2")
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
		require.JSONEq(t, `"went"`, string(st.Output))
	})
	t.Run("terminate", func(t *testing.T) {
		pending("lost-3")
		require.NoError(t, e.Client.Terminate(ctx, "lost-3", "no longer wanted"))
		st := wait(t, e, "lost-3")
		require.Equal(t, jetflow.StatusTerminated, st.RuntimeStatus)
		require.NoError(t, e.Client.PurgeInstance(ctx, "lost-3"))
	})
}

// TestScheduledPendingHeal: the heal of a Pending instance that events
// wait for (a worker sends its start again) respects a start scheduled
// for later. One created a minute ago but scheduled for a few seconds
// from now is not started early by the worker holding its event; one
// whose schedule was never stored (its starter died) is started by that
// worker once its time is past.
func TestScheduledPendingHeal(t *testing.T) {
	t.Parallel()
	var started sync.Map // instance id -> when its orchestrator first ran
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return r.AddOrchestrator("WaitsForGo", func(ctx *jetflow.OrchestrationContext) (any, error) {
			started.LoadOrStore(ctx.InstanceID(), time.Now())
			return waitsForGo(ctx)
		})
	}})
	ctx := e.Context(60 * time.Second)
	pending := func(id string, at time.Time) *storage.StatusEntry {
		t.Helper()
		created := jetflow.Time{Time: time.Now().Add(-time.Minute).UTC().Truncate(time.Second)}
		st := &jetflow.Status{Name: "WaitsForGo", InstanceID: id, RuntimeStatus: jetflow.StatusPending,
			Input: json.RawMessage(`"in"`), CreatedTime: created, LastUpdatedTime: created, ScheduledStartTime: jetflow.Time{Time: at}}
		rev, err := e.Storage.PutStatus(ctx, id, st, 0)
		require.NoError(t, err)
		return &storage.StatusEntry{Status: *st, Revision: rev}
	}

	at := time.Now().Add(3 * time.Second).UTC().Truncate(time.Second).Add(time.Second)
	require.NoError(t, dispatcher.New(e.Storage).ResendStart(ctx, pending("later", at)), "schedules its start")
	pending("lost", time.Now().Add(-time.Minute).UTC().Truncate(time.Second)) // no start message at all
	for _, id := range []string{"later", "lost"} {
		require.NoError(t, e.Client.RaiseEvent(ctx, id, "go", "went"))
	}
	for _, id := range []string{"lost", "later"} {
		st := wait(t, e, id)
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus, id)
		require.JSONEq(t, `"went"`, string(st.Output))
		require.Equal(t, 1, count(checkHistory(t, e, id), history.ExecutionStarted))
	}
	first, _ := started.Load("later")
	require.False(t, first.(time.Time).Before(at), "started at %s, before its time %s", first.(time.Time).Format(time.StampMilli), at)
}

// TestLateStartOfATerminatedPendingInstance: a starter writes the Pending
// status and stalls before it sends the start message (a frozen process);
// the instance is terminated meanwhile, which ends it without running it.
// When the start message comes at last it is dropped, whatever became of
// the instance since: purged (nothing is left, and nothing comes back), or
// started again and completed (the late start begins no second run).
func TestLateStartOfATerminatedPendingInstance(t *testing.T) {
	t.Parallel()
	var runs sync.Map // instance id -> *atomic.Int32
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return r.AddOrchestrator("WaitsForGo", func(ctx *jetflow.OrchestrationContext) (any, error) {
			if !ctx.IsReplaying() {
				n, _ := runs.LoadOrStore(ctx.InstanceID(), new(atomic.Int32))
				n.(*atomic.Int32).Add(1)
			}
			return waitsForGo(ctx)
		})
	}})
	ctx := e.Context(60 * time.Second)
	ran := func(id string) int32 {
		n, ok := runs.Load(id)
		if !ok {
			return 0
		}
		return n.(*atomic.Int32).Load()
	}
	stalled := func(id string) *storage.StatusEntry {
		t.Helper()
		now := jetflow.Time{Time: time.Now().UTC().Truncate(time.Second)}
		st := &jetflow.Status{Name: "WaitsForGo", InstanceID: id, RuntimeStatus: jetflow.StatusPending,
			Input: json.RawMessage(`"in"`), CreatedTime: now, LastUpdatedTime: now}
		rev, err := e.Storage.PutStatus(ctx, id, st, 0)
		require.NoError(t, err)
		require.NoError(t, e.Client.Terminate(ctx, id, "before it began"))
		done := wait(t, e, id)
		require.Equal(t, jetflow.StatusTerminated, done.RuntimeStatus)
		return &storage.StatusEntry{Status: *st, Revision: rev}
	}
	purged, again := stalled("purged"), stalled("again")
	require.NoError(t, e.Client.PurgeInstance(ctx, "purged"))
	_, err := e.Client.StartOrchestration(ctx, "WaitsForGo", client.WithInstanceID("again"), client.WithInput("in"))
	require.NoError(t, err)
	require.NoError(t, e.Client.RaiseEvent(ctx, "again", "go", "went"))
	require.Equal(t, jetflow.StatusCompleted, wait(t, e, "again").RuntimeStatus)

	// The stalled starters wake up and send their starts, which a worker
	// that has nothing cached takes.
	require.NoError(t, e.StopWorker(ctx, 0))
	e.StartWorker()
	d := dispatcher.New(e.Storage)
	for _, p := range []*storage.StatusEntry{purged, again} {
		require.NoError(t, d.ResendStart(ctx, p))
	}
	testkit.WaitForNoError(t, 30*time.Second, "the worker to take the late starts", func() error { return e.Idle(ctx) })
	_, err = e.Client.GetStatus(ctx, "purged")
	require.ErrorIs(t, err, jetflow.ErrInstanceNotFound, "a purged instance stays purged")
	chunks, err := e.Storage.LoadHistory(ctx, "purged")
	require.NoError(t, err)
	require.Empty(t, chunks)
	require.Zero(t, ran("purged"), "the terminated instance never ran")
	st, err := e.Client.GetStatus(ctx, "again")
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
	require.Equal(t, int32(1), ran("again"), "the late start began no second run")
}

// TestStartOvertakenDuringItsTurn: a worker reads an instance's Pending
// status and runs its first turn; before it commits, the instance is
// terminated (another worker's commit ends a Pending instance without
// running it) and purged, which empties its history. The first chunk's
// fence (no chunk yet) then holds, but the run it stands for is over: the
// turn must publish nothing (no activity runs for a purged instance) and
// leave nothing behind.
func TestStartOvertakenDuringItsTurn(t *testing.T) {
	t.Parallel()
	entered, release := make(chan string, 1), make(chan struct{})
	var sideRuns atomic.Int32
	e := testengine.New(t, testengine.Options{
		Worker: worker.Config{TurnTimeout: time.Minute},
		Register: func(r *jetflow.Registry) error {
			r.AddActivity("Side", func(*jetflow.ActivityContext) (any, error) {
				sideRuns.Add(1)
				return nil, nil
			})
			return r.AddOrchestrator("Overtaken", func(ctx *jetflow.OrchestrationContext) (any, error) {
				if !ctx.IsReplaying() {
					entered <- ctx.InstanceID()
					<-release
				}
				return nil, ctx.CallActivity("Side", nil).Await(nil)
			})
		}})
	ctx := e.Context(60 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "Overtaken")
	require.NoError(t, err)
	select {
	case <-entered: // the worker read the Pending status and runs the turn
	case <-ctx.Done():
		t.Fatal("the first turn did not run")
	}
	pending, err := e.Storage.GetStatus(ctx, id)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusPending, pending.Status.RuntimeStatus)
	ended := pending.Status
	ended.RuntimeStatus = jetflow.StatusTerminated
	_, err = e.Storage.PutStatus(ctx, id, &ended, pending.Revision) // as the terminating commit writes it
	require.NoError(t, err)
	require.NoError(t, e.Client.PurgeInstance(ctx, id))
	close(release)

	testkit.WaitForNoError(t, 30*time.Second, "the turn to be over", func() error { return e.Idle(ctx) })
	require.Zero(t, sideRuns.Load(), "an activity ran for an instance terminated before it began")
	_, err = e.Client.GetStatus(ctx, id)
	require.ErrorIs(t, err, jetflow.ErrInstanceNotFound, "a purged instance stays purged")
	chunks, err := e.Storage.LoadHistory(ctx, id)
	require.NoError(t, err)
	require.Empty(t, chunks, "the overtaken turn's chunk is taken back")
}

// TestRecursiveTerminationBeforeTheChildsStart: a parent's recursive
// termination can reach a sub-orchestration before its start does (the
// worker that created the child had not published its start when another
// worker took the parent's termination). The child then ends Terminated
// without running, and its start, when it comes, begins nothing; it used
// to drop the termination and run for ever.
func TestRecursiveTerminationBeforeTheChildsStart(t *testing.T) {
	t.Parallel()
	var childRuns atomic.Int32
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return r.AddOrchestrator("Child", func(ctx *jetflow.OrchestrationContext) (any, error) {
			if !ctx.IsReplaying() {
				childRuns.Add(1)
			}
			return nil, ctx.WaitForExternalEvent("never").Await(nil)
		})
	}})
	ctx := e.Context(60 * time.Second)
	// The parent's execution as its termination's commit sees it: it
	// created the child, whose start is still on its way.
	created := history.Event{Type: history.SubOrchestrationCreated, ID: 1, Time: time.Now().UTC(), Name: "Child", InstanceID: "early-child", Input: json.RawMessage(`"in"`)}
	ex := dispatcher.Execution{InstanceID: "early-parent", Name: "Parent", Events: []history.Event{
		{Type: history.ExecutionStarted, Name: "Parent", ExecutionID: "pe1"}, created}}
	d := dispatcher.New(e.Storage)
	for _, m := range dispatcher.ChildTerminations(&ex, &history.Event{Type: history.ExecutionTerminated, Input: json.RawMessage(`"stop"`), Recursive: true}) {
		out, err := e.Storage.InboxWrite(m)
		require.NoError(t, err)
		require.NoError(t, storage.FirstError(e.Storage.Publish(ctx, out)))
	}
	testkit.WaitForNoError(t, 30*time.Second, "the child to be terminated", func() error {
		_, err := e.Client.GetStatus(ctx, "early-child")
		return err
	})
	done, err := e.Client.WaitForCompletion(ctx, "early-child")
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusTerminated, done.RuntimeStatus)
	require.JSONEq(t, `"stop"`, string(done.Output))
	require.JSONEq(t, `"in"`, string(done.Input), "begun with the start the termination carried")

	// The start comes at last, as the parent's first commit publishes it.
	ex.ExecutionID = "pe1"
	require.NoError(t, storage.FirstError(d.PublishActions(ctx, ex, []history.Event{created})))
	testkit.WaitForNoError(t, 30*time.Second, "the late start to be taken", func() error { return e.Idle(ctx) })
	st, err := e.Client.GetStatus(ctx, "early-child")
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusTerminated, st.RuntimeStatus)
	require.Zero(t, childRuns.Load(), "the child never ran")
}

// TestHistoryWithoutItsStatusIsAPurgedInstance: a top-level run's status
// exists from before its start until a purge, which removes it first. A
// history found without it (what a first chunk stored after a purge
// leaves when its worker cannot read the status again, or the moment
// between a purge's two steps) is finished off, not brought back: a
// message for it runs nothing and writes no status.
func TestHistoryWithoutItsStatusIsAPurgedInstance(t *testing.T) {
	t.Parallel()
	var sideRuns atomic.Int32
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		r.AddActivity("Side", func(*jetflow.ActivityContext) (any, error) {
			sideRuns.Add(1)
			return nil, nil
		})
		return r.AddOrchestrator("Quick", func(ctx *jetflow.OrchestrationContext) (any, error) {
			return nil, ctx.CallActivity("Side", nil).Await(nil)
		})
	}})
	ctx := e.Context(60 * time.Second)
	const id = "leftover"
	start := history.Event{Type: history.ExecutionStarted, Time: time.Now().UTC(), Name: "Quick", ExecutionID: "x1",
		MsgID: "x1:start", Rules: history.CurrentRules, StatusRevision: 7}
	_, err := e.Storage.AppendChunk(ctx, id, 1, 0, []history.Event{
		{Type: history.OrchestratorStarted, Time: start.Time}, start,
		{Type: history.TaskScheduled, ID: 0, Time: start.Time, Name: "Side"},
	}, nil)
	require.NoError(t, err)
	// Its start comes back (its ack was lost), as it would to the worker
	// that stored that chunk.
	out, err := e.Storage.InboxWrite(&storage.InboxMessage{InstanceID: id, Orchestrator: "Quick", ExecutionID: "x1",
		StatusRevision: 7, Event: start})
	require.NoError(t, err)
	require.NoError(t, storage.FirstError(e.Storage.Publish(ctx, out)))
	testkit.WaitForNoError(t, 30*time.Second, "the message to be taken", func() error { return e.Idle(ctx) })

	_, err = e.Client.GetStatus(ctx, id)
	require.ErrorIs(t, err, jetflow.ErrInstanceNotFound, "no status brought back")
	chunks, err := e.Storage.LoadHistory(ctx, id)
	require.NoError(t, err)
	require.Empty(t, chunks, "the purge is finished")
	require.Zero(t, sideRuns.Load(), "nothing of it is published again")
}

// TestManyContinueAsNewInOneTurn: an orchestrator that continues as new
// without waiting for anything goes on past the per-turn bound in later
// turns, and an endless one can be terminated.
func TestManyContinueAsNewInOneTurn(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		r.AddOrchestrator("Count", func(ctx *jetflow.OrchestrationContext) (any, error) {
			var n int
			if err := ctx.GetInput(&n); err != nil {
				return nil, err
			}
			if n < 250 {
				ctx.ContinueAsNew(n + 1)
			}
			return n, nil
		})
		return r.AddOrchestrator("Forever", func(ctx *jetflow.OrchestrationContext) (any, error) {
			ctx.ContinueAsNew(nil)
			return nil, nil
		})
	}})
	ctx := e.Context(60 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "Count", client.WithInput(0))
	require.NoError(t, err)
	st := wait(t, e, id)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
	require.JSONEq(t, `250`, string(st.Output))

	id, err = e.Client.StartOrchestration(ctx, "Forever")
	require.NoError(t, err)
	testkit.WaitFor(t, 30*time.Second, "it to go on turn after turn", func() bool {
		chunks, err := e.Storage.LoadHistory(ctx, id)
		return err == nil && len(chunks) >= 3
	})
	require.NoError(t, e.Client.Terminate(ctx, id, "enough"))
	require.Equal(t, jetflow.StatusTerminated, wait(t, e, id).RuntimeStatus)
}

// TestActivityLongerThanTheDuplicateWindowRunsOnce: an activity that runs
// longer than the streams' duplicate window, whose result reaches a worker
// without the instance cached, is not sent again: re-publication is decided
// from history, not from the window.
func TestActivityLongerThanTheDuplicateWindowRunsOnce(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	e := testengine.New(t, testengine.Options{
		Workers: 2,
		Store:   jetstream.Config{DuplicateWindow: time.Second},
		Worker:  worker.Config{CacheSize: -1},
		Register: func(r *jetflow.Registry) error {
			r.AddActivity("Long", func(ctx *jetflow.ActivityContext) (any, error) {
				runs.Add(1)
				time.Sleep(3 * time.Second) // longer than the 1 s duplicate window
				return "done", nil
			})
			return r.AddOrchestrator("CallsLong", func(ctx *jetflow.OrchestrationContext) (any, error) {
				var s string
				err := ctx.CallActivity("Long", nil).Await(&s)
				return s, err
			})
		},
	})
	ctx := e.Context(60 * time.Second)
	var ids []string
	for range 10 {
		id, err := e.Client.StartOrchestration(ctx, "CallsLong")
		require.NoError(t, err)
		ids = append(ids, id)
	}
	for _, id := range ids {
		require.Equal(t, jetflow.StatusCompleted, wait(t, e, id).RuntimeStatus)
	}
	require.Equal(t, int32(10), runs.Load(), "each activity ran once")
}

// TestTerminateWinsOverContinueAsNew: a terminate that shares a turn with
// the event that makes an eternal orchestrator continue as new ends it.
func TestTerminateWinsOverContinueAsNew(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return r.AddOrchestrator("Eternal", func(ctx *jetflow.OrchestrationContext) (any, error) {
			if err := ctx.WaitForExternalEvent("next").Await(nil); err != nil {
				return nil, err
			}
			ctx.ContinueAsNew(nil)
			return nil, nil
		})
	}})
	ctx := e.Context(60 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "Eternal")
	require.NoError(t, err)
	testkit.WaitFor(t, 30*time.Second, "the instance to run", func() bool {
		st, err := e.Client.GetStatus(ctx, id)
		return err == nil && st.RuntimeStatus == jetflow.StatusRunning
	})
	e.StopWorkers()
	require.NoError(t, e.Client.RaiseEvent(ctx, id, "next", nil))
	require.NoError(t, e.Client.Terminate(ctx, id, "stop"))
	e.StartWorker()
	st := wait(t, e, id)
	require.Equal(t, jetflow.StatusTerminated, st.RuntimeStatus)
}

func connectTo(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// TestActivityTimeouts: an activity past its start-to-close timeout (the
// registered one, or the call's) fails its attempt with a "Timeout", even
// when it ignores its context: the worker abandons it and frees its slot.
func TestActivityTimeouts(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var sleeps atomic.Int32
	e := testengine.New(t, testengine.Options{
		Worker: worker.Config{ActivityConcurrency: 1},
		Register: func(r *jetflow.Registry) error {
			r.AddActivity("Hangs", func(ctx *jetflow.ActivityContext) (any, error) {
				<-release // ignores its context
				return nil, nil
			}, jetflow.WithActivityTimeout(time.Second))
			r.AddActivity("Sleeps", func(ctx *jetflow.ActivityContext) (any, error) {
				sleeps.Add(1)
				select {
				case <-ctx.Context().Done():
					return nil, ctx.Context().Err()
				case <-time.After(30 * time.Second):
					return "slept", nil
				}
			})
			r.AddActivity("Quick", func(ctx *jetflow.ActivityContext) (any, error) { return "quick", nil })
			return r.AddOrchestrator("Timeouts", func(ctx *jetflow.OrchestrationContext) (any, error) {
				var out []string
				err := ctx.CallActivity("Hangs", nil).Await(nil)
				out = append(out, err.Error())
				err = ctx.CallActivity("Sleeps", nil, jetflow.WithStartToCloseTimeout(500*time.Millisecond),
					jetflow.WithRetry(jetflow.RetryPolicy{MaxAttempts: 2, FirstRetryInterval: time.Second})).Await(nil)
				var tf *jetflow.TaskFailedError
				if !errors.As(err, &tf) || tf.Type != "Timeout" {
					return nil, fmt.Errorf("want a Timeout failure, got %v", err)
				}
				out = append(out, err.Error())
				var q string
				if err := ctx.CallActivity("Quick", nil).Await(&q); err != nil { // the one slot is free again
					return nil, err
				}
				return append(out, q), nil
			})
		},
	})
	id, err := e.Client.StartOrchestration(e.Context(60*time.Second), "Timeouts")
	require.NoError(t, err)
	st := wait(t, e, id)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus, "%s", st.Output)
	var out []string
	require.NoError(t, json.Unmarshal(st.Output, &out))
	require.Len(t, out, 3)
	require.Contains(t, out[0], `activity "Hangs" did not finish within its start-to-close timeout of 1s`)
	require.Contains(t, out[1], `start-to-close timeout of 500ms`)
	require.Equal(t, "quick", out[2])
	require.Equal(t, int32(2), sleeps.Load(), "the timed-out attempt was retried once")
}

// TestStreamsStayBounded: one long activity pins its consumer's ack floor;
// the janitor still removes every other acknowledged task and inbox
// message, so the streams hold what is outstanding, not everything since.
func TestStreamsStayBounded(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	e := testengine.New(t, testengine.Options{
		Worker: worker.Config{PurgeInterval: 500 * time.Millisecond},
		Register: func(r *jetflow.Registry) error {
			r.AddActivity("Work", func(ctx *jetflow.ActivityContext) (any, error) {
				var long bool
				if err := ctx.GetInput(&long); err != nil {
					return nil, err
				}
				if long {
					<-release
				}
				return "done", nil
			})
			return r.AddOrchestrator("Works", func(ctx *jetflow.OrchestrationContext) (any, error) {
				var long bool
				if err := ctx.GetInput(&long); err != nil {
					return nil, err
				}
				return nil, ctx.CallActivity("Work", long).Await(nil)
			})
		},
	})
	ctx := e.Context(60 * time.Second)
	_, err := e.Client.StartOrchestration(ctx, "Works", client.WithInput(true))
	require.NoError(t, err)
	var ids []string
	for range 50 {
		id, err := e.Client.StartOrchestration(ctx, "Works", client.WithInput(false))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	for _, id := range ids {
		require.Equal(t, jetflow.StatusCompleted, wait(t, e, id).RuntimeStatus)
	}
	js, err := natsjs.New(e.Conn)
	require.NoError(t, err)
	names := e.Storage.Names()
	msgs := func(stream func(p int) string) (n uint64) { // over the partitions
		for p := range names.Partitions() {
			st, err := js.Stream(ctx, stream(p))
			require.NoError(t, err)
			info, err := st.Info(ctx)
			require.NoError(t, err)
			n += info.State.Msgs
		}
		return n
	}
	testkit.WaitForNoError(t, 20*time.Second, "the streams to keep only the long activity's task", func() error {
		if act, orch := msgs(names.TaskStream), msgs(names.InboxStream); act > 1 || orch != 0 {
			return fmt.Errorf("act %d, orch %d", act, orch)
		}
		return nil
	})
}

// TestPoisonInboxMessage: a message whose turn fails every time (here the
// orchestrator blocks on every try, and the watchdog gives the turn up)
// ends, after MaxDeliveries, as a failed instance that names the message,
// instead of being retried for ever.
func TestPoisonInboxMessage(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	e := testengine.New(t, testengine.Options{
		Worker: worker.Config{MaxDeliveries: 2, TurnTimeout: 500 * time.Millisecond},
		Register: func(r *jetflow.Registry) error {
			return r.AddOrchestrator("AlwaysBlocks", func(ctx *jetflow.OrchestrationContext) (any, error) {
				if err := ctx.WaitForExternalEvent("go").Await(nil); err != nil {
					return nil, err
				}
				<-release // blocks on every try, replays included
				return nil, nil
			})
		},
	})
	ctx := e.Context(60 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "AlwaysBlocks")
	require.NoError(t, err)
	require.NoError(t, e.Client.RaiseEvent(ctx, id, "go", nil))
	st := wait(t, e, id)
	require.Equal(t, jetflow.StatusFailed, st.RuntimeStatus)
	var msg string
	require.NoError(t, json.Unmarshal(st.Output, &msg))
	// The event may come in the start's turn or in the next: either
	// message is the one given up.
	require.Contains(t, msg, "was delivered 3 times without being handled")
	require.Equal(t, int64(2), e.Workers[0].Stats().Blocked)
}
