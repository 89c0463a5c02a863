package jetflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow/internal/executor"
	"github.com/jetflow/jetflow/internal/history"
)

// testRegistry has a few activities; tests add their orchestrators.
func testRegistry(t testing.TB) *Registry {
	t.Helper()
	r := NewRegistry()
	require.NoError(t, r.AddActivity("SayHello", func(ctx *ActivityContext) (any, error) {
		var name string
		if err := ctx.GetInput(&name); err != nil {
			return nil, err
		}
		return "Hello " + name + "!", nil
	}))
	require.NoError(t, r.AddActivity("Double", func(ctx *ActivityContext) (any, error) {
		var n int
		if err := ctx.GetInput(&n); err != nil {
			return nil, err
		}
		return 2 * n, nil
	}))
	require.NoError(t, r.AddActivity("Fail", func(ctx *ActivityContext) (any, error) {
		return nil, errors.New("boom")
	}))
	return r
}

func addOrchestrator(t testing.TB, r *Registry, name string, o Orchestrator) {
	t.Helper()
	require.NoError(t, r.AddOrchestrator(name, o))
}

func requireCompleted(t testing.TB, e history.Event, want string) {
	t.Helper()
	require.Equal(t, history.ExecutionCompleted, e.Type)
	require.Nil(t, e.Failure)
	require.Equal(t, history.StatusCompleted, e.Status)
	require.JSONEq(t, want, string(e.Result))
}

func requireFailed(t testing.TB, e history.Event, typ string, msgParts ...string) {
	t.Helper()
	require.Equal(t, history.ExecutionCompleted, e.Type)
	require.Equal(t, history.StatusFailed, e.Status)
	require.NotNil(t, e.Failure)
	require.Equal(t, typ, e.Failure.Type, e.Failure.Message)
	for _, p := range msgParts {
		require.Contains(t, e.Failure.Message, p)
	}
}

func TestSequence(t *testing.T) {
	t.Parallel()
	r := testRegistry(t)
	addOrchestrator(t, r, "Hello", func(ctx *OrchestrationContext) (any, error) {
		var out []string
		for _, city := range []string{"Tokyo", "Seattle", "London"} {
			var s string
			if err := ctx.CallActivity("SayHello", city).Await(&s); err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	})
	s := newSim(t, r, "seq")
	res := s.start("Hello", nil)
	require.False(t, res.Done)
	require.Len(t, res.Events, 1)
	e := res.Events[0]
	require.Equal(t, history.TaskScheduled, e.Type)
	require.Equal(t, int32(0), e.ID)
	require.Equal(t, "SayHello", e.Name)
	require.JSONEq(t, `"Tokyo"`, string(e.Input))

	requireCompleted(t, s.run(), `["Hello Tokyo!","Hello Seattle!","Hello London!"]`)
	var ids []int32
	for _, e := range s.hist {
		if e.IsScheduling() {
			ids = append(ids, e.ID)
		}
	}
	require.Equal(t, []int32{0, 1, 2}, ids)
}

func TestFanOutFanIn(t *testing.T) {
	t.Parallel()
	r := testRegistry(t)
	addOrchestrator(t, r, "FanOut", func(ctx *OrchestrationContext) (any, error) {
		var n int
		if err := ctx.GetInput(&n); err != nil {
			return nil, err
		}
		var tasks []Task
		for i := range n {
			tasks = append(tasks, ctx.CallActivity("Double", i+1))
		}
		var results []int
		if err := ctx.WhenAll(tasks...).Await(&results); err != nil {
			return nil, err
		}
		sum := 0
		for _, v := range results {
			sum += v
		}
		return map[string]any{"results": results, "sum": sum}, nil
	})
	s := newSim(t, r, "fan")
	res := s.start("FanOut", 4)
	require.Len(t, res.Events, 4)

	// Results arrive out of order, over several turns.
	res = s.turn(history.Event{Type: history.TaskCompleted, TaskID: 2, Result: json.RawMessage(`6`)})
	require.Empty(t, res.Events)
	res = s.turn(
		history.Event{Type: history.TaskCompleted, TaskID: 3, Result: json.RawMessage(`8`)},
		history.Event{Type: history.TaskCompleted, TaskID: 0, Result: json.RawMessage(`2`)},
	)
	require.Empty(t, res.Events)
	res = s.turn(history.Event{Type: history.TaskCompleted, TaskID: 1, Result: json.RawMessage(`4`)})
	require.True(t, res.Done)
	requireCompleted(t, s.final(), `{"results":[2,4,6,8],"sum":20}`)
}

func TestWhenAllErrors(t *testing.T) {
	t.Parallel()
	r := testRegistry(t)
	addOrchestrator(t, r, "FanOutFail", func(ctx *OrchestrationContext) (any, error) {
		tasks := []Task{ctx.CallActivity("Double", 1), ctx.CallActivity("Fail", nil), ctx.CallActivity("Double", 3)}
		var results []int
		err := ctx.WhenAll(tasks...).Await(&results)
		var tf *TaskFailedError
		if !errors.As(err, &tf) {
			return nil, fmt.Errorf("want a TaskFailedError, got %v", err)
		}
		return map[string]any{"results": results, "failed": tf.Name, "msg": tf.Message, "type": tf.Type}, nil
	})
	s := newSim(t, r, "fanfail")
	s.start("FanOutFail", nil)
	requireCompleted(t, s.run(), `{"results":[2,0,6],"failed":"Fail","msg":"boom","type":"ActivityError"}`)

	// The first failure in task order wins, whatever order they failed in.
	addOrchestrator(t, r, "TwoFail", func(ctx *OrchestrationContext) (any, error) {
		a, b := ctx.CallActivity("Fail", "a"), ctx.CallActivity("Fail", "b")
		return nil, ctx.WhenAll(a, b, ctx.WhenAll()).Await(nil)
	})
	s = newSim(t, r, "twofail")
	s.start("TwoFail", nil)
	s.turn(history.Event{Type: history.TaskFailed, TaskID: 1, Failure: &history.Failure{Message: "second", Type: "X"}})
	s.turn(history.Event{Type: history.TaskFailed, TaskID: 0, Failure: &history.Failure{Message: "first", Type: "X"}})
	requireFailed(t, s.final(), FailureOrchestratorError, `task "Fail" failed: first`)
}

func TestWhenAny(t *testing.T) {
	t.Parallel()
	r := testRegistry(t)
	addOrchestrator(t, r, "Race", func(ctx *OrchestrationContext) (any, error) {
		act := ctx.CallActivity("SayHello", "race")
		timer := ctx.CreateTimer(time.Hour)
		var idx int
		if err := ctx.WhenAny(act, timer).Await(&idx); err != nil {
			return nil, err
		}
		var winner Task
		if err := ctx.WhenAny(act, timer).Await(&winner); err != nil {
			return nil, err
		}
		if winner != Task(act) && winner != Task(timer) {
			return nil, errors.New("winner is neither task")
		}
		var s string
		if winner == Task(act) {
			if err := act.Await(&s); err != nil {
				return nil, err
			}
		}
		return map[string]any{"index": idx, "result": s, "timerDone": timer.IsDone()}, nil
	})

	t.Run("ActivityWins", func(t *testing.T) {
		t.Parallel()
		s := newSim(t, r, "any1")
		res := s.start("Race", nil)
		require.Len(t, res.Events, 2)
		require.Equal(t, history.TimerCreated, res.Events[1].Type)
		require.Equal(t, s.now.Add(time.Hour), res.Events[1].FireAt)
		s.turn(s.completions()...)
		requireCompleted(t, s.final(), `{"index":0,"result":"Hello race!","timerDone":false}`)
	})
	t.Run("TimerWins", func(t *testing.T) {
		t.Parallel()
		s := newSim(t, r, "any2")
		s.start("Race", nil)
		s.turn(s.fire(1))
		requireCompleted(t, s.final(), `{"index":1,"result":"","timerDone":true}`)
	})
	t.Run("NoTasks", func(t *testing.T) {
		t.Parallel()
		r := NewRegistry()
		addOrchestrator(t, r, "Empty", func(ctx *OrchestrationContext) (any, error) {
			return nil, ctx.WhenAny().Await(nil)
		})
		s := newSim(t, r, "any3")
		s.start("Empty", nil)
		requireFailed(t, s.final(), FailureOrchestratorError, "WhenAny needs at least one task")
	})
}

func TestExternalEvents(t *testing.T) {
	t.Parallel()
	r := testRegistry(t)
	addOrchestrator(t, r, "Events", func(ctx *OrchestrationContext) (any, error) {
		// Wait for an activity first, so "early" arrives before anyone waits.
		if err := ctx.CallActivity("SayHello", "x").Await(nil); err != nil {
			return nil, err
		}
		var early, late1, late2 string
		if err := ctx.WaitForExternalEvent("Early").Await(&early); err != nil {
			return nil, err
		}
		w1 := ctx.WaitForExternalEvent("late")
		w2 := ctx.WaitForExternalEvent("LATE")
		if err := w2.Await(&late2); err != nil {
			return nil, err
		}
		if err := w1.Await(&late1); err != nil {
			return nil, err
		}
		var none any = "unchanged"
		if err := ctx.WaitForExternalEvent("Empty").Await(&none); err != nil {
			return nil, err
		}
		return []any{early, late1, late2, none}, nil
	})
	s := newSim(t, r, "events")
	s.start("Events", nil)
	// "Early" arrives with the activity result's turn, before the wait.
	res := s.turn(raised(t, "EARLY", "e"))
	require.Empty(t, res.Events)
	res = s.turn(s.completions()...)
	require.Empty(t, res.Events)
	// Two "late" events go to the two waits in the order the waits were made.
	res = s.turn(raised(t, "Late", "first"), raised(t, "late", "second"))
	require.False(t, res.Done)
	res = s.turn(history.Event{Type: history.EventRaised, Name: "empty"})
	require.True(t, res.Done)
	requireCompleted(t, s.final(), `["e","first","second","unchanged"]`)
}

func TestWaitTimeout(t *testing.T) {
	t.Parallel()
	r := testRegistry(t)
	addOrchestrator(t, r, "Approve", func(ctx *OrchestrationContext) (any, error) {
		var ok bool
		err := ctx.WaitForExternalEvent("Approval", WithTimeout(30*time.Minute)).Await(&ok)
		if errors.Is(err, ErrTimeout) {
			return "timed out: " + err.Error(), nil
		}
		if err != nil {
			return nil, err
		}
		if err := ctx.CreateTimer(time.Hour).Await(nil); err != nil {
			return nil, err
		}
		return ok, nil
	})

	t.Run("TimerFiresFirst", func(t *testing.T) {
		t.Parallel()
		s := newSim(t, r, "to1")
		res := s.start("Approve", nil)
		require.Len(t, res.Events, 1)
		require.Equal(t, history.TimerCreated, res.Events[0].Type)
		require.Equal(t, s.now.Add(30*time.Minute), res.Events[0].FireAt)
		s.turn(s.fire(0))
		requireCompleted(t, s.final(), `"timed out: waiting for external event \"Approval\": timed out after 30m0s"`)
	})
	t.Run("EventFirst", func(t *testing.T) {
		t.Parallel()
		s := newSim(t, r, "to2")
		s.start("Approve", nil)
		res := s.turn(raised(t, "approval", true))
		require.Len(t, res.Events, 1) // the hour timer
		require.Equal(t, int32(1), res.Events[0].ID)
		// The timeout timer fires later and is ignored.
		res = s.turn(s.fire(0))
		require.Empty(t, res.Events)
		s.turn(s.fire(1))
		requireCompleted(t, s.final(), `true`)
	})
	t.Run("ZeroTimeout", func(t *testing.T) {
		t.Parallel()
		r := NewRegistry()
		addOrchestrator(t, r, "Zero", func(ctx *OrchestrationContext) (any, error) {
			err := ctx.WaitForExternalEvent("Missing", WithTimeout(0)).Await(nil)
			var got string
			if err2 := ctx.WaitForExternalEvent("There", WithTimeout(0)).Await(&got); err2 != nil {
				return nil, err2
			}
			return []string{err.Error(), got}, nil
		})
		s := newSim(t, r, "to3")
		res := s.turn(
			raised(t, "There", "here"), // before ExecutionStarted: buffered for the first wait
			history.Event{Type: history.ExecutionStarted, Name: "Zero"},
		)
		require.True(t, res.Done)
		requireCompleted(t, s.final(), `["waiting for external event \"Missing\": timed out after 0s","here"]`)
	})
}

func TestTimer(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	addOrchestrator(t, r, "Sleep", func(ctx *OrchestrationContext) (any, error) {
		start := ctx.Now()
		if err := ctx.CreateTimer(10 * time.Minute).Await(nil); err != nil {
			return nil, err
		}
		return ctx.Now().Sub(start).String(), nil
	})
	s := newSim(t, r, "timer")
	res := s.start("Sleep", nil)
	require.Len(t, res.Events, 1)
	require.Equal(t, history.TimerCreated, res.Events[0].Type)
	require.Equal(t, t0.Add(time.Second+10*time.Minute), res.Events[0].FireAt)
	fireAt := res.Events[0].FireAt
	// A TaskCompleted for a timer is not a TimerFired: ignored.
	res = s.turn(history.Event{Type: history.TaskCompleted, TaskID: 0})
	require.False(t, res.Done)
	require.Empty(t, res.Events)
	s.now = fireAt.Add(-time.Second)
	s.turn(history.Event{Type: history.TimerFired, TaskID: 0, FireAt: fireAt})
	requireCompleted(t, s.final(), `"10m0s"`)
}

func TestSubOrchestration(t *testing.T) {
	t.Parallel()
	r := testRegistry(t)
	addOrchestrator(t, r, "Child", func(ctx *OrchestrationContext) (any, error) {
		var name string
		if err := ctx.GetInput(&name); err != nil {
			return nil, err
		}
		if name == "bad" {
			return nil, errors.New("child refuses")
		}
		var s string
		err := ctx.CallActivity("SayHello", name).Await(&s)
		return s + " from " + ctx.InstanceID(), err
	})
	addOrchestrator(t, r, "Parent", func(ctx *OrchestrationContext) (any, error) {
		var s1, s2 string
		if err := ctx.CallSubOrchestrator("Child", "a").Await(&s1); err != nil {
			return nil, err
		}
		if err := ctx.CallSubOrchestrator("Child", "b", WithSubInstanceID("my-child")).Await(&s2); err != nil {
			return nil, err
		}
		err := ctx.CallSubOrchestrator("Child", "bad").Await(nil)
		var tf *TaskFailedError
		if !errors.As(err, &tf) {
			return nil, fmt.Errorf("want TaskFailedError, got %v", err)
		}
		return []string{s1, s2, tf.Name, tf.Type, tf.Message}, nil
	})
	s := newSim(t, r, "parent")
	res := s.start("Parent", nil)
	require.Len(t, res.Events, 1)
	e := res.Events[0]
	require.Equal(t, history.SubOrchestrationCreated, e.Type)
	require.Equal(t, "Child", e.Name)
	require.Equal(t, "parent:0", e.InstanceID)
	require.JSONEq(t, `"a"`, string(e.Input))
	requireCompleted(t, s.run(),
		`["Hello a! from parent:0","Hello b! from my-child","Child","OrchestratorError","child refuses"]`)

	addOrchestrator(t, r, "BadChildID", func(ctx *OrchestrationContext) (any, error) {
		return nil, ctx.CallSubOrchestrator("Child", "a", WithSubInstanceID("a/b")).Await(nil)
	})
	s = newSim(t, r, "badid")
	s.start("BadChildID", nil)
	requireFailed(t, s.final(), FailureOrchestratorError, "invalid instance id")
}

func TestActivityFailure(t *testing.T) {
	t.Parallel()
	r := testRegistry(t)
	addOrchestrator(t, r, "CallFail", func(ctx *OrchestrationContext) (any, error) {
		err := ctx.CallActivity("Fail", nil).Await(nil)
		var tf *TaskFailedError
		if !errors.As(err, &tf) {
			return nil, fmt.Errorf("want TaskFailedError, got %T %v", err, err)
		}
		err = ctx.CallActivity("Missing", nil).Await(nil)
		if !errors.As(err, &tf) || tf.Type != "ActivityNotRegistered" {
			return nil, fmt.Errorf("want ActivityNotRegistered, got %v", err)
		}
		return nil, ctx.CallActivity("Fail", nil).Await(nil) // unhandled: fails the instance
	})
	s := newSim(t, r, "actfail")
	s.start("CallFail", nil)
	requireFailed(t, s.run(), FailureOrchestratorError, `task "Fail" failed: boom`)
}

func TestInvalidInput(t *testing.T) {
	t.Parallel()
	r := testRegistry(t)
	addOrchestrator(t, r, "BadInput", func(ctx *OrchestrationContext) (any, error) {
		err1 := ctx.CallActivity("SayHello", make(chan int)).Await(nil)
		err2 := ctx.CallActivity("SayHello", json.RawMessage(`{nope`)).Await(nil)
		err3 := ctx.CallActivity("", nil).Await(nil)
		var n int
		err4 := ctx.CallActivity("SayHello", "x").Await(&n) // a string into an int
		for _, err := range []error{err1, err2, err4} {
			if !errors.Is(err, ErrInvalidInput) {
				return nil, fmt.Errorf("want ErrInvalidInput, got %v", err)
			}
		}
		if !errors.Is(err3, ErrInvalidName) {
			return nil, fmt.Errorf("want ErrInvalidName, got %v", err3)
		}
		return "ok", nil
	})
	s := newSim(t, r, "badinput")
	res := s.start("BadInput", nil)
	require.Len(t, res.Events, 1, "only the valid call is scheduled")
	require.Equal(t, int32(0), res.Events[0].ID)
	requireCompleted(t, s.run(), `"ok"`)
}

func TestContinueAsNew(t *testing.T) {
	t.Parallel()
	r := NewRegistry()
	addOrchestrator(t, r, "Counter", func(ctx *OrchestrationContext) (any, error) {
		var count int
		if err := ctx.GetInput(&count); err != nil {
			return nil, err
		}
		var add int
		if err := ctx.WaitForExternalEvent("Add").Await(&add); err != nil {
			return nil, err
		}
		count += add
		if count >= 10 {
			return count, nil
		}
		ctx.ContinueAsNew(count)
		return "ignored", nil
	})

	x := newReplayer(r, nil)
	input, carry := json.RawMessage(`0`), []history.Event(nil)
	var ends []history.Event
	for gen := 1; ; gen++ {
		s := newSim(t, r, "counter")
		s.x = x
		msgs := append([]history.Event{{Type: history.ExecutionStarted, Name: "Counter", Input: input}}, carry...)
		if gen == 1 {
			// Three events in one turn: one is consumed, two carry over.
			msgs = append(msgs, raised(t, "Other", "o"), raised(t, "add", 3), raised(t, "Add", 4), raised(t, "Add", 5))
		}
		res := s.turn(msgs...)
		for !res.Done {
			res = s.turn(raised(t, "Add", 1))
		}
		end := s.final()
		ends = append(ends, end)
		if end.Status != history.StatusContinuedAsNew {
			break
		}
		require.Less(t, gen, 10)
		input, carry = end.Result, res.CarryOver
		if gen == 1 {
			require.JSONEq(t, `3`, string(end.Result))
			require.Len(t, res.CarryOver, 3)
			require.Equal(t, "Other", res.CarryOver[0].Name)
			require.JSONEq(t, `4`, string(res.CarryOver[1].Input))
			require.JSONEq(t, `5`, string(res.CarryOver[2].Input))
		}
	}
	// 0+3, +4, +5 (carried over), then +1 each until 10 or more: 3, 7, 12.
	require.Len(t, ends, 3)
	requireCompleted(t, ends[2], `12`)

	addOrchestrator(t, r, "BadNext", func(ctx *OrchestrationContext) (any, error) {
		ctx.ContinueAsNew(make(chan int))
		return nil, nil
	})
	addOrchestrator(t, r, "NextButFails", func(ctx *OrchestrationContext) (any, error) {
		ctx.ContinueAsNew(1)
		return nil, errors.New("failed after all in " + ctx.Name())
	})
	s0 := newSim(t, r, "badnext")
	s0.start("BadNext", nil)
	requireFailed(t, s0.final(), FailureInvalidInput, "continue as new: invalid JSON")
	s0 = newSim(t, r, "nextfails")
	s0.start("NextButFails", nil)
	requireFailed(t, s0.final(), FailureOrchestratorError, "failed after all in NextButFails")

	// Carry-over is only for continue-as-new.
	s := newSim(t, r, "counter2")
	res := s.start("Counter", 20)
	require.False(t, res.Done)
	res = s.turn(raised(t, "Add", 1), raised(t, "Add", 2))
	require.True(t, res.Done)
	require.Empty(t, res.CarryOver)
}

func TestTerminate(t *testing.T) {
	t.Parallel()
	r := testRegistry(t)
	addOrchestrator(t, r, "Forever", func(ctx *OrchestrationContext) (any, error) {
		if err := ctx.SetCustomStatus("working"); err != nil {
			return nil, err
		}
		for {
			if err := ctx.CallActivity("SayHello", "again").Await(nil); err != nil {
				return nil, err
			}
		}
	})
	s := newSim(t, r, "term")
	s.start("Forever", nil)
	// The activity result in the same turn is applied, but terminate stops
	// the execution before the next call is scheduled.
	res := s.turn(append(s.completions(), history.Event{Type: history.ExecutionTerminated, Input: json.RawMessage(`"enough"`)})...)
	require.True(t, res.Done)
	require.Len(t, res.Events, 1)
	end := s.final()
	require.Equal(t, history.StatusTerminated, end.Status)
	require.JSONEq(t, `"enough"`, string(end.Result))
	require.JSONEq(t, `"working"`, string(res.CustomStatus))

	// Suspend and resume are the worker's business.
	s = newSim(t, r, "term2")
	s.start("Forever", nil)
	res = s.turn(history.Event{Type: history.ExecutionSuspended}, history.Event{Type: history.ExecutionResumed})
	require.Empty(t, res.Events)
	res = s.turn(history.Event{Type: history.ExecutionTerminated})
	require.JSONEq(t, `null`, string(res.Events[0].Result))
}

func TestPanics(t *testing.T) {
	t.Parallel()
	r := testRegistry(t)
	addOrchestrator(t, r, "Panic", func(ctx *OrchestrationContext) (any, error) {
		if err := ctx.CallActivity("SayHello", "x").Await(nil); err != nil {
			return nil, err
		}
		var m map[string]int
		m["x"] = 1 // nil map write
		return nil, nil
	})
	addOrchestrator(t, r, "PanicValue", func(ctx *OrchestrationContext) (any, error) {
		panic(fmt.Sprintf("custom %d", 42))
	})
	addOrchestrator(t, r, "Recovers", func(ctx *OrchestrationContext) (any, error) {
		// An orchestrator that recovers everything still lets the turn end.
		for {
			func() {
				defer func() { _ = recover() }()
				_ = ctx.CreateTimer(time.Hour).Await(nil)
			}()
		}
	})
	addOrchestrator(t, r, "DeferAwait", func(ctx *OrchestrationContext) (any, error) {
		// Awaiting in a deferred call while the turn ends still ends it.
		defer func() { _ = ctx.CreateTimer(time.Minute).Await(nil) }()
		return nil, ctx.CreateTimer(time.Hour).Await(nil)
	})
	addOrchestrator(t, r, "BadOutput", func(ctx *OrchestrationContext) (any, error) {
		return func() {}, nil
	})

	s := newSim(t, r, "p1")
	s.start("Panic", nil)
	requireFailed(t, s.run(), FailurePanic, "orchestrator panicked: assignment to entry in nil map")
	s = newSim(t, r, "p2")
	s.start("PanicValue", nil)
	requireFailed(t, s.final(), FailurePanic, "orchestrator panicked: custom 42")
	s = newSim(t, r, "p3")
	res := s.start("Recovers", nil)
	require.False(t, res.Done)
	require.Len(t, res.Events, 1)
	s = newSim(t, r, "p4")
	res = s.start("DeferAwait", nil)
	require.False(t, res.Done)
	require.Len(t, res.Events, 1, "nothing asked for while the turn ends is kept")
	s = newSim(t, r, "p5")
	s.start("BadOutput", nil)
	requireFailed(t, s.final(), FailureInvalidOutput, `orchestrator "BadOutput"`)
}

func TestUnknownOrchestrator(t *testing.T) {
	t.Parallel()
	s := newSim(t, NewRegistry(), "unknown")
	res := s.start("Nope", nil)
	require.True(t, res.Done)
	requireFailed(t, s.final(), FailureOrchestratorNotRegistered, `orchestrator "Nope" is not registered`)

	x := newReplayer(NewRegistry(), nil)
	res = x.Execute("none", nil, []history.Event{{Type: history.OrchestratorStarted, Time: t0}})
	require.True(t, res.Done)
	requireFailed(t, res.Events[0], FailureInvalidHistory, "no ExecutionStarted")
}

func TestAlreadyCompleted(t *testing.T) {
	t.Parallel()
	x := newReplayer(NewRegistry(), nil)
	past := []history.Event{
		{Type: history.OrchestratorStarted, Time: t0},
		{Type: history.ExecutionStarted, Name: "Whatever", Time: t0},
		{Type: history.ExecutionCompleted, Status: history.StatusCompleted, Time: t0},
	}
	res := x.Execute("done", past, []history.Event{{Type: history.OrchestratorStarted, Time: t0}, raised(t, "Late", 1)})
	require.Equal(t, &executor.TurnResult{Done: true}, res)
}

func TestUnknownCompletionIgnored(t *testing.T) {
	t.Parallel()
	r := testRegistry(t)
	addOrchestrator(t, r, "One", func(ctx *OrchestrationContext) (any, error) {
		var s string
		err := ctx.CallActivity("SayHello", "one").Await(&s)
		return s, err
	})
	s := newSim(t, r, "ignore")
	s.start("One", nil)
	res := s.turn(
		history.Event{Type: history.TaskCompleted, TaskID: 7, Result: json.RawMessage(`"stray"`)},
		history.Event{Type: history.TimerFired, TaskID: 0},
	)
	require.Empty(t, res.Events)
	s.turn(history.Event{Type: history.TaskCompleted, TaskID: 0, Result: json.RawMessage(`"real"`)})
	// Completions after the end are ignored too.
	requireCompleted(t, s.final(), `"real"`)
}

func TestCustomStatus(t *testing.T) {
	t.Parallel()
	// A JSON string of n code units is n-2 units of content plus quotes.
	fits := strings.Repeat("a", MaxCustomStatusLength-2)
	over := strings.Repeat("a", MaxCustomStatusLength-1)
	// U+1F600 is 2 UTF-16 units (4 UTF-8 bytes): the limit counts units.
	emojiFits := strings.Repeat("a", MaxCustomStatusLength-4) + "😀"
	emojiOver := strings.Repeat("a", MaxCustomStatusLength-3) + "😀"
	require.Equal(t, MaxCustomStatusLength, utf16Len(mustJSON(t, fits)))
	require.Equal(t, MaxCustomStatusLength, utf16Len(mustJSON(t, emojiFits)))

	r := NewRegistry()
	addOrchestrator(t, r, "Status", func(ctx *OrchestrationContext) (any, error) {
		var results []string
		for _, v := range []string{fits, over, emojiFits, emojiOver} {
			if err := ctx.SetCustomStatus(v); err != nil {
				if !errors.Is(err, ErrCustomStatusTooLarge) {
					return nil, err
				}
				results = append(results, err.Error())
			} else {
				results = append(results, "ok")
			}
		}
		if err := ctx.SetCustomStatus(nil); err != nil {
			return nil, err
		}
		if err := ctx.SetCustomStatus(map[string]int{"step": 2}); err != nil {
			return nil, err
		}
		return results, nil
	})
	addOrchestrator(t, r, "Unhandled", func(ctx *OrchestrationContext) (any, error) {
		if err := ctx.SetCustomStatus("small"); err != nil {
			return nil, err
		}
		if err := ctx.SetCustomStatus(over); err != nil {
			return nil, fmt.Errorf("publishing progress: %w", err)
		}
		return nil, nil
	})
	addOrchestrator(t, r, "Null", func(ctx *OrchestrationContext) (any, error) {
		return nil, ctx.SetCustomStatus(nil)
	})

	s := newSim(t, r, "status")
	res := s.start("Status", nil)
	require.JSONEq(t, `{"step":2}`, string(res.CustomStatus))
	tooLarge := "custom status too large: custom status is 16385 UTF-16 code units, over the limit of 16384"
	requireCompleted(t, s.final(), string(mustJSON(t, []string{"ok", tooLarge, "ok", tooLarge})))

	s = newSim(t, r, "status2")
	res = s.start("Unhandled", nil)
	require.JSONEq(t, `"small"`, string(res.CustomStatus), "the status is unchanged")
	requireFailed(t, s.final(), FailureOrchestratorError, "publishing progress: "+tooLarge)

	s = newSim(t, r, "status3")
	res = s.start("Null", nil)
	require.Equal(t, "null", string(res.CustomStatus))
}

func TestReplayingAndLogger(t *testing.T) {
	t.Parallel()
	r := testRegistry(t)
	type step struct {
		Where     string
		Replaying bool
	}
	var steps []step // written only by the orchestrator, read after Execute returns
	addOrchestrator(t, r, "Logs", func(ctx *OrchestrationContext) (any, error) {
		steps = append(steps, step{"start", ctx.IsReplaying()})
		ctx.Logger().Info("started")
		if err := ctx.CallActivity("SayHello", "a").Await(nil); err != nil {
			return nil, err
		}
		steps = append(steps, step{"after a", ctx.IsReplaying()})
		ctx.Logger().With("k", "v").WithGroup("g").Info("after a")
		if err := ctx.CallActivity("SayHello", "b").Await(nil); err != nil {
			return nil, err
		}
		steps = append(steps, step{"after b", ctx.IsReplaying()})
		ctx.Logger().Info("after b")
		return nil, nil
	})
	h := &recordingHandler{}
	s := newSim(t, r, "logs")
	s.x = newReplayer(r, slog.New(h))
	s.start("Logs", nil)
	s.turn(s.completions()...)
	s.turn(s.completions()...)
	require.True(t, s.last.Done)

	// Each turn runs the orchestrator once, plus the replay checks of sim.
	var turns [][]step
	var cur []step
	for _, st := range steps {
		if st.Where == "start" && cur != nil {
			turns = append(turns, cur)
			cur = nil
		}
		cur = append(cur, st)
	}
	turns = append(turns, cur)
	require.Equal(t, []step{{"start", false}}, turns[0])
	require.Equal(t, []step{{"start", true}}, turns[1]) // checkReplay
	require.Equal(t, []step{{"start", true}, {"after a", false}}, turns[2])
	require.Equal(t, []step{{"start", true}, {"after a", true}}, turns[3])
	require.Equal(t, []step{{"start", true}, {"after a", true}, {"after b", false}}, turns[4])
	// Every line is logged once, by the turn that ran the code first.
	require.Equal(t, []string{"started", "after a", "after b"}, h.messages())
}

func TestAwaitMisuse(t *testing.T) {
	t.Parallel()
	r := testRegistry(t)
	var leaked Task
	addOrchestrator(t, r, "Misuse", func(ctx *OrchestrationContext) (any, error) {
		task := ctx.CallActivity("SayHello", "x")
		if leaked == nil {
			leaked = task
		}
		return nil, task.Await(nil)
	})
	s := newSim(t, r, "misuse")
	res := s.start("Misuse", nil)
	require.False(t, res.Done, "%v", res.Events)
	err := leaked.Await(nil)
	require.ErrorContains(t, err, "turn has ended")
	require.True(t, errors.Is(err, errTurnEnded))

	// A task from another execution cannot be combined.
	addOrchestrator(t, r, "Foreign", func(ctx *OrchestrationContext) (any, error) {
		return nil, ctx.WhenAll(leaked).Await(nil)
	})
	s = newSim(t, r, "foreign")
	s.start("Foreign", nil)
	requireFailed(t, s.final(), FailureOrchestratorError, "not made by this orchestration")
}

func TestNonDeterminism(t *testing.T) {
	t.Parallel()
	r := testRegistry(t)
	addOrchestrator(t, r, "Sub", func(ctx *OrchestrationContext) (any, error) {
		return nil, ctx.CallSubOrchestrator("Child", nil, WithSubInstanceID("new-id")).Await(nil)
	})
	x := newReplayer(r, nil)
	past := []history.Event{
		{Type: history.OrchestratorStarted, Time: t0},
		{Type: history.ExecutionStarted, Name: "Sub", Time: t0},
		{Type: history.SubOrchestrationCreated, ID: 0, Name: "Child", InstanceID: "old-id", Time: t0},
	}
	res := x.Execute("nd", past, []history.Event{{Type: history.OrchestratorStarted, Time: t0.Add(time.Minute)}})
	require.True(t, res.Done)
	require.Len(t, res.Events, 1)
	requireFailed(t, res.Events[0], FailureNonDeterminism,
		`nondeterministic orchestrator "Sub": at step #0 history has SubOrchestrationInstanceCreated #0 "Child" (instance "old-id") `+
			`but the orchestrator asked for SubOrchestrationInstanceCreated #0 "Child" (instance "new-id")`)
	require.Equal(t, t0.Add(time.Minute), res.Events[0].Time)
}

// TestNoGoroutineLeak is not parallel: it counts goroutines, and parallel
// tests only start once the sequential ones are done.
func TestNoGoroutineLeak(t *testing.T) {
	r := testRegistry(t)
	addOrchestrator(t, r, "Blocks", func(ctx *OrchestrationContext) (any, error) {
		a := ctx.CallActivity("SayHello", "a")
		b := ctx.WaitForExternalEvent("go", WithTimeout(time.Hour))
		return nil, ctx.WhenAll(a, b).Await(nil)
	})
	x := newReplayer(r, nil)
	past := []history.Event{
		{Type: history.OrchestratorStarted, Time: t0},
		{Type: history.ExecutionStarted, Name: "Blocks", Time: t0},
		{Type: history.TaskScheduled, ID: 0, Name: "SayHello", Input: json.RawMessage(`"a"`), Time: t0},
		{Type: history.TimerCreated, ID: 1, FireAt: t0.Add(time.Hour), Time: t0},
	}
	newEvents := []history.Event{{Type: history.OrchestratorStarted, Time: t0.Add(time.Second)}, raised(t, "other", 1)}

	before := runtime.NumGoroutine()
	for range 2000 {
		res := x.Execute("leak", past, newEvents)
		require.False(t, res.Done)
		require.Empty(t, res.Events)
	}
	// Execute waits for the orchestrator goroutine's last step; give the
	// runtime a moment to retire them.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	require.LessOrEqual(t, runtime.NumGoroutine(), before)
}
