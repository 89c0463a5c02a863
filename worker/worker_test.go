package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/samples"
	"github.com/jetflow/jetflow/worker"
	"github.com/stretchr/testify/require"
)

// wait waits for an instance to finish; on timeout it logs the instance's
// status and history.
func wait(t *testing.T, e *testengine.Engine, id string) *jetflow.Status {
	t.Helper()
	st, err := e.Client.WaitForCompletion(e.Context(60*time.Second), id)
	if err != nil {
		logInstance(t, e, id)
	}
	require.NoError(t, err)
	return st
}

func logInstance(t *testing.T, e *testengine.Engine, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := e.Client.GetStatus(ctx, id)
	if err == nil {
		b, _ := json.Marshal(st)
		t.Logf("status of %s: %s", id, b)
	}
	chunks, _ := e.Storage.LoadHistory(ctx, id)
	for _, c := range chunks {
		for _, ev := range c.Events {
			b, _ := json.Marshal(ev)
			t.Logf("chunk %d: %s", c.Number, b)
		}
	}
}

// waitCustom waits until an instance's custom status is want (JSON).
func waitCustom(t *testing.T, e *testengine.Engine, id, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch, err := e.Client.WatchStatus(ctx, id, 0)
	require.NoError(t, err)
	for u := range ch {
		if string(u.CustomStatus) == want {
			return
		}
	}
	t.Fatalf("custom status of %s never became %s", id, want)
}

// checkHistory asserts the invariants of an instance's stored history
// (see testkit.CheckChunks: chunks numbered without gaps, every message
// applied once, every task scheduled once and completed at most once, ...)
// and returns its events; on failure it logs the instance.
func checkHistory(t *testing.T, e *testengine.Engine, id string) []history.Event {
	t.Helper()
	chunks, err := e.Storage.LoadHistory(context.Background(), id)
	require.NoError(t, err)
	all, err := testkit.CheckChunks(chunks)
	if err != nil {
		logInstance(t, e, id)
	}
	require.NoError(t, err, "history of %s", id)
	return all
}

func count(events []history.Event, typ history.Type) int {
	n := 0
	for _, e := range events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

func TestRestartMidOrchestration(t *testing.T) {
	t.Parallel()
	var runsA, runsB atomic.Int32
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		r.AddActivity("A", func(ctx *jetflow.ActivityContext) (any, error) { runsA.Add(1); return "a", nil })
		r.AddActivity("B", func(ctx *jetflow.ActivityContext) (any, error) { runsB.Add(1); return "b", nil })
		return r.AddOrchestrator("AB", func(ctx *jetflow.OrchestrationContext) (any, error) {
			var a, b, ev string
			if err := ctx.CallActivity("A", nil).Await(&a); err != nil {
				return nil, err
			}
			ctx.SetCustomStatus("waiting")
			if err := ctx.WaitForExternalEvent("go").Await(&ev); err != nil {
				return nil, err
			}
			if err := ctx.CallActivity("B", nil).Await(&b); err != nil {
				return nil, err
			}
			return a + b + ev, nil
		})
	}})
	ctx := e.Context(60 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "AB", client.WithInstanceID("restart-1"))
	require.NoError(t, err)
	waitCustom(t, e, id, `"waiting"`)

	e.RestartServer() // stops the workers too
	require.NoError(t, e.Client.RaiseEvent(ctx, id, "go", "!"))
	e.StartWorker()
	st := wait(t, e, id)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
	require.JSONEq(t, `"ab!"`, string(st.Output))
	all := checkHistory(t, e, id)
	require.Equal(t, 2, count(all, history.TaskScheduled))
	require.Equal(t, 1, count(all, history.EventRaised))
	require.Equal(t, int32(1), runsA.Load())
	require.Equal(t, int32(1), runsB.Load())
}

func TestManyEventsAtOnce(t *testing.T) {
	t.Parallel()
	const n = 100
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return r.AddOrchestrator("Sum", func(ctx *jetflow.OrchestrationContext) (any, error) {
			sum := 0
			for i := 0; i < n; i++ {
				var v int
				if err := ctx.WaitForExternalEvent("add").Await(&v); err != nil {
					return nil, err
				}
				sum += v
			}
			return sum, nil
		})
	}})
	ctx := e.Context(60 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "Sum")
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			require.NoError(t, e.Client.RaiseEvent(ctx, id, "add", i))
		}()
	}
	wg.Wait()
	st := wait(t, e, id)
	require.JSONEq(t, fmt.Sprint(n*(n+1)/2), string(st.Output))
	require.Equal(t, n, count(checkHistory(t, e, id), history.EventRaised))
}

// fanOut calls n activities at once and sums their results.
func fanOut(n int) jetflow.Orchestrator {
	return func(ctx *jetflow.OrchestrationContext) (any, error) {
		tasks := make([]jetflow.Task, n)
		for i := range tasks {
			tasks[i] = ctx.CallActivity("Double", i)
		}
		var results []int
		if err := ctx.WhenAll(tasks...).Await(&results); err != nil {
			return nil, err
		}
		sum := 0
		for _, r := range results {
			sum += r
		}
		return sum, nil
	}
}

func double(ctx *jetflow.ActivityContext) (any, error) {
	var i int
	if err := ctx.GetInput(&i); err != nil {
		return nil, err
	}
	return 2 * i, nil
}

// TestWorkersRace runs three workers without sticky caches on the same
// instances, so that results of one instance reach several workers at once
// and they race to extend its history: every race must be settled by the
// history fence, never by luck.
func TestWorkersRace(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{
		Workers: 3,
		Worker:  worker.Config{CacheSize: -1},
		Register: func(r *jetflow.Registry) error {
			r.AddActivity("Double", double)
			return r.AddOrchestrator("FanOut", fanOut(20))
		},
	})
	ctx := e.Context(120 * time.Second)
	var ids []string
	for i := 0; i < 30; i++ {
		id, err := e.Client.StartOrchestration(ctx, "FanOut")
		require.NoError(t, err)
		ids = append(ids, id)
	}
	for _, id := range ids {
		st := wait(t, e, id)
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus, "output: %s", st.Output)
		require.JSONEq(t, "380", string(st.Output))
		all := checkHistory(t, e, id)
		require.Equal(t, 20, count(all, history.TaskScheduled))
		require.Equal(t, 20, count(all, history.TaskCompleted))
	}
	var conflicts int64
	for _, w := range e.Workers {
		conflicts += w.Stats().Conflicts
	}
	t.Logf("history fence conflicts settled: %d", conflicts)
}

// TestHistoryFence makes many writers race on the same chunk key: exactly
// one wins each time.
func TestHistoryFence(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Workers: -1})
	ctx := e.Context(30 * time.Second)
	var prev uint64
	for n := uint32(1); n <= 5; n++ {
		var wins, conflicts atomic.Int32
		var won atomic.Uint64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				rev, err := e.Storage.AppendChunk(ctx, "fence", n, prev, []history.Event{{Type: history.OrchestratorStarted}}, nil)
				if err == nil {
					wins.Add(1)
					won.Store(rev)
				} else {
					require.ErrorIs(t, err, storage.ErrConflict)
					conflicts.Add(1)
				}
			})
		}
		wg.Wait()
		require.Equal(t, int32(1), wins.Load())
		require.Equal(t, int32(7), conflicts.Load())
		prev = won.Load()
	}
}

func TestTimerFiresAfterDowntime(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return samples.Register(r, samples.Options{DiscountTimeout: 2 * time.Second})
	}})
	ctx := e.Context(60 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "ReserveTicket", client.WithInput("user-7"))
	require.NoError(t, err)
	waitCustom(t, e, id, fmt.Sprintf(`{"discount":%d,"discountTimeout":2,"bookingUrl":"https://www.myawesomebookingweb.com"}`, samples.Discount("user-7")))
	e.RestartServer()
	time.Sleep(3 * time.Second) // the scenario: the timer (due in 2 s) comes due while no worker runs
	e.StartWorker()
	st := wait(t, e, id)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
	require.JSONEq(t, "false", string(st.Output))
	require.JSONEq(t, `{"message":"The booking was not confirmed on time. Please try again."}`, string(st.CustomStatus))
	checkHistory(t, e, id)
}

func TestFailures(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		r.AddOrchestrator("CallsNobody", func(ctx *jetflow.OrchestrationContext) (any, error) {
			return nil, ctx.CallActivity("NoSuchActivity", nil).Await(nil)
		})
		r.AddOrchestrator("Panics", func(ctx *jetflow.OrchestrationContext) (any, error) {
			panic("the sky is falling")
		})
		r.AddOrchestrator("BigStatus", func(ctx *jetflow.OrchestrationContext) (any, error) {
			return nil, ctx.SetCustomStatus(strings.Repeat("x", 20000))
		})
		r.AddOrchestrator("HandlesBigStatus", func(ctx *jetflow.OrchestrationContext) (any, error) {
			err := ctx.SetCustomStatus(strings.Repeat("x", 20000))
			if !errors.Is(err, jetflow.ErrCustomStatusTooLarge) {
				return nil, fmt.Errorf("want ErrCustomStatusTooLarge, got %v", err)
			}
			return "handled", ctx.SetCustomStatus("small")
		})
		r.AddActivity("Fails", func(ctx *jetflow.ActivityContext) (any, error) { return nil, errors.New("disk full") })
		return r.AddOrchestrator("CatchesActivityError", func(ctx *jetflow.OrchestrationContext) (any, error) {
			err := ctx.CallActivity("Fails", nil).Await(nil)
			var tf *jetflow.TaskFailedError
			if !errors.As(err, &tf) {
				return nil, fmt.Errorf("want a TaskFailedError, got %v", err)
			}
			return tf.Message, nil
		})
	}})
	ctx := e.Context(60 * time.Second)
	for _, tc := range []struct {
		name, status, output string
	}{
		{"CallsNobody", "Failed", `activity "NoSuchActivity" is not registered with any worker`},
		{"Panics", "Failed", "the sky is falling"},
		{"BigStatus", "Failed", "custom status"},
		{"HandlesBigStatus", "Completed", `"handled"`},
		{"CatchesActivityError", "Completed", `"disk full"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := e.Client.StartOrchestration(ctx, tc.name)
			require.NoError(t, err)
			st := wait(t, e, id)
			require.Equal(t, tc.status, string(st.RuntimeStatus), "output: %s", st.Output)
			out := string(st.Output)
			var text string
			if json.Unmarshal(st.Output, &text) == nil && tc.status == "Failed" {
				out = text
			}
			require.Contains(t, out, tc.output)
		})
	}
}

func TestSubOrchestrationAndContinueAsNew(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		r.AddActivity("Double", double)
		r.AddOrchestrator("Counter", func(ctx *jetflow.OrchestrationContext) (any, error) {
			var n int
			if err := ctx.GetInput(&n); err != nil {
				return nil, err
			}
			if n < 5 {
				ctx.ContinueAsNew(n + 1)
				return nil, nil
			}
			return n, nil
		})
		return r.AddOrchestrator("Parent", func(ctx *jetflow.OrchestrationContext) (any, error) {
			var a, b int
			if err := ctx.CallSubOrchestrator("Counter", 0).Await(&a); err != nil {
				return nil, err
			}
			if err := ctx.CallSubOrchestrator("FanOut3", nil).Await(&b); err != nil {
				return nil, err
			}
			return a + b, nil
		})
	}})
	require.NoError(t, e.Registry.AddOrchestrator("FanOut3", fanOut(3)))
	// FanOut3 was added after the worker registered its names: a new worker
	// registers it.
	e.StartWorker()
	ctx := e.Context(60 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "Parent", client.WithInstanceID("parent"))
	require.NoError(t, err)
	st := wait(t, e, id)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus, "output: %s", st.Output)
	require.JSONEq(t, "11", string(st.Output))
	checkHistory(t, e, id)
	child, err := e.Client.GetStatus(ctx, "parent:0")
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusCompleted, child.RuntimeStatus)
	require.JSONEq(t, "5", string(child.Output))
}

func TestTerminate(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return samples.Register(r, samples.Options{})
	}})
	ctx := e.Context(30 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "SetStatusTest")
	require.NoError(t, err)
	waitCustom(t, e, id, `{"nextActions":["A","B","C"],"foo":2}`)
	require.NoError(t, e.Client.Terminate(ctx, id, "enough"))
	st := wait(t, e, id)
	require.Equal(t, jetflow.StatusTerminated, st.RuntimeStatus)
	require.JSONEq(t, `"enough"`, string(st.Output))
	require.ErrorIs(t, e.Client.Terminate(ctx, id, "again"), jetflow.ErrInstanceFinished)
	require.ErrorIs(t, e.Client.RaiseEvent(ctx, id, "Done", nil), jetflow.ErrInstanceFinished)
}

// TestStopHandsBackWork stops a busy worker gracefully and starts another:
// the second finishes every instance. Messages the first had fetched but not
// started are handed back at once; a message still in flight to the stopped
// consumer comes back after the ack wait (5 s here), so every instance must
// finish well within 15 s.
func TestStopHandsBackWork(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{
		Worker: worker.Config{OrchestrationConcurrency: 2}, // the default 30 s ack wait
		Register: func(r *jetflow.Registry) error {
			return samples.Register(r, samples.Options{})
		},
	})
	ctx := e.Context(60 * time.Second)
	var ids []string
	for i := 0; i < 40; i++ {
		id, err := e.Client.StartOrchestration(ctx, "E1_HelloSequence")
		require.NoError(t, err)
		ids = append(ids, id)
	}
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, e.StopWorker(stopCtx, 0))
	e.StartWorker()
	// Well within the ack wait: what the stopped worker held was handed
	// back at once, not left to time out.
	waitCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for _, id := range ids {
		st, err := e.Client.WaitForCompletion(waitCtx, id)
		require.NoError(t, err, "instance %s did not finish soon after the stop", id)
		if st.RuntimeStatus != jetflow.StatusCompleted {
			logInstance(t, e, id)
		}
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
		checkHistory(t, e, id)
	}
}

// TestRestartFinishedInstance starts an id again after it completed: a new
// execution replaces the old one, and its history continues the chunks.
func TestRestartFinishedInstance(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return samples.Register(r, samples.Options{})
	}})
	ctx := e.Context(30 * time.Second)
	for round := 0; round < 2; round++ {
		_, err := e.Client.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID("again"))
		require.NoError(t, err)
		_, err = e.Client.StartOrchestration(ctx, "E1_HelloSequence", client.WithInstanceID("again"))
		require.ErrorIs(t, err, jetflow.ErrInstanceExists)
		st := wait(t, e, "again")
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
		require.JSONEq(t, `["Hello Tokyo!","Hello Seattle!","Hello London!"]`, string(st.Output))
	}
	all := checkHistory(t, e, "again")
	require.Equal(t, 2, count(all, history.ExecutionStarted))
	require.Equal(t, 6, count(all, history.TaskCompleted))
}

// TestChangedOrchestratorFails changes an orchestrator's code while an
// instance of it waits: the replay on the next event must fail the
// instance with an error naming the step and both actions, not diverge
// silently.
func TestChangedOrchestratorFails(t *testing.T) {
	t.Parallel()
	version := func(first string) func(r *jetflow.Registry) error {
		return func(r *jetflow.Registry) error {
			for _, a := range []string{"A", "C"} {
				if err := r.AddActivity(a, double); err != nil {
					return err
				}
			}
			return r.AddOrchestrator("Changing", func(ctx *jetflow.OrchestrationContext) (any, error) {
				if err := ctx.CallActivity(first, 1).Await(nil); err != nil {
					return nil, err
				}
				ctx.SetCustomStatus("waiting")
				return nil, ctx.WaitForExternalEvent("go").Await(nil)
			})
		}
	}
	e := testengine.New(t, testengine.Options{Register: version("A")})
	ctx := e.Context(30 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "Changing")
	require.NoError(t, err)
	waitCustom(t, e, id, `"waiting"`)

	e.StopWorkers()
	e.Registry = jetflow.NewRegistry() // the new deployment
	require.NoError(t, version("C")(e.Registry))
	e.StartWorker()
	require.NoError(t, e.Client.RaiseEvent(ctx, id, "go", nil))
	st := wait(t, e, id)
	require.Equal(t, jetflow.StatusFailed, st.RuntimeStatus)
	var msg string
	require.NoError(t, json.Unmarshal(st.Output, &msg))
	require.Contains(t, msg, `nondeterministic orchestrator "Changing": at step #0 history has TaskScheduled #0 "A" but the orchestrator asked for TaskScheduled #0 "C"`)
}

// TestStatusNeverGoesBackwards races cache-less workers on instances that
// count their steps in their custom status, and watches every status
// write: per instance, the step never decreases and nothing follows the
// terminal status.
func TestStatusNeverGoesBackwards(t *testing.T) {
	t.Parallel()
	const steps = 6
	e := testengine.New(t, testengine.Options{
		Workers: 3,
		Worker:  worker.Config{CacheSize: -1},
		Register: func(r *jetflow.Registry) error {
			r.AddActivity("Double", double)
			return r.AddOrchestrator("Steps", func(ctx *jetflow.OrchestrationContext) (any, error) {
				// Two activities per step: results reach different workers.
				for i := 1; i <= steps; i++ {
					if err := ctx.WhenAll(ctx.CallActivity("Double", i), ctx.CallActivity("Double", -i)).Await(nil); err != nil {
						return nil, err
					}
					ctx.SetCustomStatus(i)
				}
				return steps, nil
			})
		},
	})
	ctx := e.Context(60 * time.Second)
	updates, err := e.Storage.WatchStatuses(ctx, "", 0)
	require.NoError(t, err)
	const n = 20
	var ids []string
	for i := 0; i < n; i++ {
		id, err := e.Client.StartOrchestration(ctx, "Steps")
		require.NoError(t, err)
		ids = append(ids, id)
	}
	last := map[string]int{}
	finished := map[string]bool{}
	for len(finished) < n {
		select {
		case u := <-updates:
			id := u.Status.InstanceID
			require.False(t, finished[id], "status of %s written after its terminal status: %s", id, u.Status.RuntimeStatus)
			step := 0
			if len(u.Status.CustomStatus) > 0 {
				require.NoError(t, json.Unmarshal(u.Status.CustomStatus, &step))
			}
			require.GreaterOrEqual(t, step, last[id], "custom status of %s went backwards", id)
			last[id] = step
			if u.Status.Finished() {
				require.Equal(t, jetflow.StatusCompleted, u.Status.RuntimeStatus)
				require.Equal(t, steps, step)
				finished[id] = true
			}
		case <-ctx.Done():
			t.Fatalf("only %d of %d instances finished", len(finished), n)
		}
	}
	for _, id := range ids {
		checkHistory(t, e, id)
	}
}

// TestLargePayloads: values over the limit fail the task or the instance
// that made them with a message that says so, and many large events raised
// at once are split over several commits instead of one that no NATS
// message could hold.
func TestLargePayloads(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", jetflow.MaxPayload)
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		r.AddActivity("Huge", func(ctx *jetflow.ActivityContext) (any, error) { return big, nil })
		r.AddOrchestrator("HugeResult", func(ctx *jetflow.OrchestrationContext) (any, error) {
			return nil, ctx.CallActivity("Huge", nil).Await(nil)
		})
		r.AddOrchestrator("HugeOutput", func(ctx *jetflow.OrchestrationContext) (any, error) {
			return big, nil
		})
		return r.AddOrchestrator("Collect", func(ctx *jetflow.OrchestrationContext) (any, error) {
			total := 0
			for i := 0; i < 12; i++ {
				var s string
				if err := ctx.WaitForExternalEvent("chunk").Await(&s); err != nil {
					return nil, err
				}
				total += len(s)
			}
			return total, nil
		})
	}})
	ctx := e.Context(60 * time.Second)
	for name, want := range map[string]string{
		"HugeResult": `the result of activity "Huge" is 524290 bytes of JSON, over the limit of 524288`,
		"HugeOutput": "the output is 524290 bytes of JSON, over the limit of 524288",
	} {
		id, err := e.Client.StartOrchestration(ctx, name)
		require.NoError(t, err)
		st := wait(t, e, id)
		require.Equal(t, jetflow.StatusFailed, st.RuntimeStatus)
		var msg string
		require.NoError(t, json.Unmarshal(st.Output, &msg))
		require.Contains(t, msg, want)
	}

	id, err := e.Client.StartOrchestration(ctx, "Collect")
	require.NoError(t, err)
	e.StopWorkers() // let the events pile up, then take them all at once
	piece := strings.Repeat("y", 400*1024)
	for i := 0; i < 12; i++ {
		require.NoError(t, e.Client.RaiseEvent(ctx, id, "chunk", piece))
	}
	e.StartWorker()
	st := wait(t, e, id)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus, "output %s", st.Output)
	require.JSONEq(t, fmt.Sprint(12*len(piece)), string(st.Output))
	require.Equal(t, 12, count(checkHistory(t, e, id), history.EventRaised))
}

// TestActivityRetryIsDurable retries a failing activity on durable timers,
// with the server restarted (and no worker running) between attempts.
func TestActivityRetryIsDurable(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	firstFailure := make(chan struct{})
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		r.AddActivity("Flaky", func(ctx *jetflow.ActivityContext) (any, error) {
			if n := runs.Add(1); n <= 2 {
				if n == 1 {
					close(firstFailure)
				}
				return nil, errors.New("not yet")
			}
			return "done", nil
		})
		return r.AddOrchestrator("Retrying", func(ctx *jetflow.OrchestrationContext) (any, error) {
			var out string
			err := ctx.CallActivity("Flaky", nil, jetflow.WithRetry(jetflow.RetryPolicy{
				MaxAttempts: 3, FirstRetryInterval: time.Second,
			})).Await(&out)
			return out, err
		})
	}})
	ctx := e.Context(60 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "Retrying")
	require.NoError(t, err)
	<-firstFailure
	e.RestartServer()
	e.StartWorker()
	st := wait(t, e, id)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus, "output %s", st.Output)
	require.JSONEq(t, `"done"`, string(st.Output))
	// Activities run at least once: across the restart an attempt may run
	// twice (its result is applied once), so count attempts in history.
	all := checkHistory(t, e, id)
	attempts := count(all, history.TaskScheduled)
	require.GreaterOrEqual(t, attempts, 2)
	require.LessOrEqual(t, attempts, 3)
	require.Equal(t, attempts-1, count(all, history.TimerFired), "one durable wait between attempts")
	require.Equal(t, attempts-1, count(all, history.TaskFailed))
	require.GreaterOrEqual(t, int(runs.Load()), attempts)
}

// TestSuspendResume: a suspended instance records what arrives but runs
// nothing; resumed, it applies it; terminate works while suspended.
func TestSuspendResume(t *testing.T) {
	t.Parallel()
	var ran atomic.Int32
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		r.AddActivity("Work", func(ctx *jetflow.ActivityContext) (any, error) { ran.Add(1); return "worked", nil })
		return r.AddOrchestrator("Pausable", func(ctx *jetflow.OrchestrationContext) (any, error) {
			ctx.SetCustomStatus("waiting")
			var in string
			if err := ctx.WaitForExternalEvent("go").Await(&in); err != nil {
				return nil, err
			}
			var out string
			err := ctx.CallActivity("Work", in).Await(&out)
			return out, err
		})
	}})
	ctx := e.Context(30 * time.Second)
	status := func(id string) *jetflow.Status {
		st, err := e.Client.GetStatus(ctx, id)
		require.NoError(t, err)
		return st
	}
	waitRuntime := func(id string, want jetflow.RuntimeStatus) {
		ch, err := e.Client.WatchStatus(ctx, id, 0)
		require.NoError(t, err)
		for u := range ch {
			if u.RuntimeStatus == want {
				return
			}
		}
		t.Fatalf("%s never became %s", id, want)
	}

	id, err := e.Client.StartOrchestration(ctx, "Pausable")
	require.NoError(t, err)
	waitCustom(t, e, id, `"waiting"`)
	require.NoError(t, e.Client.Suspend(ctx, id, "maintenance"))
	waitRuntime(id, jetflow.StatusSuspended)
	require.NoError(t, e.Client.RaiseEvent(ctx, id, "go", "now"))
	// The event is recorded in history, but nothing runs.
	testkit.WaitFor(t, 10*time.Second, "the event to be recorded", func() bool {
		return count(checkHistory(t, e, id), history.EventRaised) == 1
	})
	st := status(id)
	require.Equal(t, jetflow.StatusSuspended, st.RuntimeStatus)
	require.JSONEq(t, `"waiting"`, string(st.CustomStatus), "custom status is kept while suspended")
	require.Equal(t, int32(0), ran.Load())
	require.Equal(t, 0, count(checkHistory(t, e, id), history.TaskScheduled))

	require.NoError(t, e.Client.Resume(ctx, id, nil))
	st = wait(t, e, id)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
	require.JSONEq(t, `"worked"`, string(st.Output))
	require.ErrorIs(t, e.Client.Suspend(ctx, id, nil), jetflow.ErrInstanceFinished)
	require.ErrorIs(t, e.Client.Resume(ctx, "no-such-instance", nil), jetflow.ErrInstanceNotFound)

	id2, err := e.Client.StartOrchestration(ctx, "Pausable")
	require.NoError(t, err)
	waitCustom(t, e, id2, `"waiting"`)
	require.NoError(t, e.Client.Suspend(ctx, id2, nil))
	waitRuntime(id2, jetflow.StatusSuspended)
	require.NoError(t, e.Client.Terminate(ctx, id2, "stop"))
	st = wait(t, e, id2)
	require.Equal(t, jetflow.StatusTerminated, st.RuntimeStatus)
}

// TestPoisonActivity: an activity whose every delivery dies without an
// answer (as if it crashed its worker) ends after MaxDeliveries as a
// failed call with a clear reason, not in an endless loop.
func TestPoisonActivity(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	e := testengine.New(t, testengine.Options{
		Worker: worker.Config{MaxDeliveries: 2, AckWait: time.Second},
		Register: func(r *jetflow.Registry) error {
			r.AddActivity("Crash", func(ctx *jetflow.ActivityContext) (any, error) {
				runs.Add(1)
				runtime.Goexit() // the delivery ends with neither ack nor nak
				return nil, nil
			})
			return r.AddOrchestrator("CallsCrash", func(ctx *jetflow.OrchestrationContext) (any, error) {
				return nil, ctx.CallActivity("Crash", nil).Await(nil)
			})
		},
	})
	ctx := e.Context(30 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "CallsCrash")
	require.NoError(t, err)
	st := wait(t, e, id)
	require.Equal(t, jetflow.StatusFailed, st.RuntimeStatus)
	var msg string
	require.NoError(t, json.Unmarshal(st.Output, &msg))
	require.Contains(t, msg, `activity "Crash" was delivered 3 times without finishing`)
	require.Equal(t, int32(2), runs.Load(), "it ran MaxDeliveries times")
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	var got []time.Duration
	for n := uint64(0); n <= 9; n++ {
		got = append(got, worker.RetryDelay(n))
	}
	require.Equal(t, []time.Duration{time.Second, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 32 * time.Second, time.Minute, time.Minute, time.Minute}, got)
}

// TestActivityProgress: an activity's progress shows in the status as
// activityProgress while it runs (a burst of reports ends at the last one),
// without touching customStatus or history; the final status has none.
func TestActivityProgress(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		r.AddActivity("Copy", func(ctx *jetflow.ActivityContext) (any, error) {
			for i := 1; i <= 3; i++ {
				if err := ctx.SetProgress(map[string]int{"done": i, "of": 3}); err != nil {
					return nil, err
				}
			}
			<-release
			return "copied", nil
		})
		return r.AddOrchestrator("Copier", func(ctx *jetflow.OrchestrationContext) (any, error) {
			ctx.SetCustomStatus("copying")
			var out string
			err := ctx.CallActivity("Copy", nil).Await(&out)
			return out, err
		})
	}})
	ctx := e.Context(30 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "Copier")
	require.NoError(t, err)
	ch, err := e.Client.WatchStatus(ctx, id, 0)
	require.NoError(t, err)
	for u := range ch {
		if p := u.ActivityProgress; p != nil && string(p.Progress) == `{"done":3,"of":3}` {
			require.Equal(t, "Copy", p.Name)
			require.JSONEq(t, `"copying"`, string(u.CustomStatus), "progress leaves customStatus alone")
			break
		}
	}
	close(release)
	st := wait(t, e, id)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
	require.Nil(t, st.ActivityProgress)
	all := checkHistory(t, e, id)
	require.Equal(t, 1, count(all, history.TaskScheduled))
	require.Equal(t, 1, count(all, history.TaskCompleted))
}

// TestStaleCacheAfterRestart restarts one id again and again with two
// caching workers: a worker whose cache still holds an earlier, finished
// run must not drop the new run's events as "nothing running".
func TestStaleCacheAfterRestart(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Workers: 2, Register: func(r *jetflow.Registry) error {
		return samples.Register(r, samples.Options{})
	}})
	ctx := e.Context(60 * time.Second)
	for round := 0; round < 10; round++ {
		_, err := e.Client.StartOrchestration(ctx, "SetStatusTest", client.WithInstanceID("again-and-again"))
		require.NoError(t, err, "round %d", round)
		waitCustom(t, e, "again-and-again", `{"nextActions":["A","B","C"],"foo":2}`)
		require.NoError(t, e.Client.RaiseEvent(ctx, "again-and-again", "Done", nil))
		waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := e.Client.WaitForCompletion(waitCtx, "again-and-again")
		cancel()
		require.NoError(t, err, "round %d: the Done event was lost", round)
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
	}
}
