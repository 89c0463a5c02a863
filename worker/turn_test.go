package worker

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/dispatcher"
	"github.com/jetflow/jetflow/internal/executor"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/stretchr/testify/require"
)

// The pure step of a turn, one rule a case, without NATS.

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func testExecutor(t *testing.T) executeFunc {
	t.Helper()
	r := jetflow.NewRegistry()
	r.AddActivity("A", func(ctx *jetflow.ActivityContext) (any, error) { return nil, nil })
	r.AddOrchestrator("Waits", func(ctx *jetflow.OrchestrationContext) (any, error) {
		var v any
		err := ctx.WaitForExternalEvent("go").Await(&v)
		return v, err
	})
	r.AddOrchestrator("Calls", func(ctx *jetflow.OrchestrationContext) (any, error) {
		var in string
		if err := ctx.GetInput(&in); err != nil {
			return nil, err
		}
		return nil, ctx.CallActivity("A", in).Await(nil)
	})
	r.AddOrchestrator("Next", func(ctx *jetflow.OrchestrationContext) (any, error) {
		if err := ctx.WaitForExternalEvent("next").Await(nil); err != nil {
			return nil, err
		}
		ctx.ContinueAsNew(nil)
		return nil, nil
	})
	require.NoError(t, r.AddOrchestrator("Forever", func(ctx *jetflow.OrchestrationContext) (any, error) {
		ctx.ContinueAsNew(nil)
		return nil, nil
	}))
	x := executor.Go(r, nil)
	return func(id string, past, turn []history.Event) (*executor.TurnResult, error) {
		return x.Execute(context.Background(), id, past, turn)
	}
}

func startEvent(name, exec string, input string) history.Event {
	return history.Event{Type: history.ExecutionStarted, Time: t0, Name: name, ExecutionID: exec, MsgID: exec + ":start",
		Input: json.RawMessage(input), Rules: history.CurrentRules}
}

func msg(ev history.Event) *storage.InboxMessage {
	return &storage.InboxMessage{InstanceID: "i", Event: ev}
}

func raised(name, id string) history.Event {
	return history.Event{Type: history.EventRaised, Time: t0, Name: name, Input: json.RawMessage(`1`), MsgID: id}
}

// running returns the state of an instance whose first turn ran start.
func running(t *testing.T, x executeFunc, start history.Event) *state {
	t.Helper()
	st := newState()
	p, err := decide(x, turnInput{id: "i", st: st, batch: []*storage.InboxMessage{msg(start)}, delivered: []uint64{1}, now: t0, maxChunk: 1 << 20})
	require.NoError(t, err)
	st.addChunk(1, 10, p.chunk, nil)
	return st
}

// pendingStatus is the Pending status of an instance of Waits that is to
// start at at.
func pendingStatus(at time.Time) *jetflow.Status {
	return &jetflow.Status{Name: "Waits", InstanceID: "i", RuntimeStatus: jetflow.StatusPending, Input: json.RawMessage("null"),
		CreatedTime: jetflow.Time{Time: t0}, LastUpdatedTime: jetflow.Time{Time: t0}, ScheduledStartTime: jetflow.Time{Time: at}}
}

// pendingState is what a worker loads for an instance whose Pending
// status (revision 7) has no history yet.
func pendingState(at time.Time) *state {
	st := newState()
	st.status, st.statusRev = pendingStatus(at), 7
	return st
}

func types(events []history.Event) []string {
	var out []string
	for _, e := range events {
		s := e.Type.String()
		if e.Type == history.ExecutionCompleted {
			s += ":" + e.Status.String()
		}
		out = append(out, s)
	}
	return out
}

func TestDecide(t *testing.T) {
	t.Parallel()
	x := testExecutor(t)
	for _, tc := range []struct {
		name      string
		state     func() *state
		batch     []history.Event
		delivered []uint64
		maxChunk  int
		want      []string // event types of the chunk
		fates     []fate
		republish []uint32
		refused   int
	}{{
		name:  "an event and its start, in either order, make one turn",
		state: newState,
		batch: []history.Event{raised("go", "e1"), startEvent("Waits", "x1", `null`)},
		want:  []string{"OrchestratorStarted", "ExecutionStarted", "EventRaised", "ExecutionCompleted:Completed"},
		fates: []fate{ack, ack},
	}, {
		name:  "a message twice in one batch is applied once",
		state: func() *state { return running(t, x, startEvent("Waits", "x1", `null`)) },
		batch: []history.Event{raised("other", "e1"), raised("other", "e1")},
		want:  []string{"OrchestratorStarted", "EventRaised"},
		fates: []fate{ack, ack},
	}, {
		name:      "a redelivered message re-publishes the chunk that consumed it, and adds nothing",
		state:     func() *state { return running(t, x, startEvent("Waits", "x1", `null`)) },
		batch:     []history.Event{startEvent("Waits", "x1", `null`)},
		fates:     []fate{ack},
		republish: []uint32{1},
	}, {
		name:  "an event for an instance that has not started waits for its start",
		state: newState,
		batch: []history.Event{raised("go", "e1")},
		fates: []fate{orphan},
	}, {
		name:  "a terminate of a Pending instance begins its run from the status and ends it, running nothing",
		state: func() *state { return pendingState(t0.Add(time.Hour)) },
		batch: []history.Event{raised("go", "e1"), {Type: history.ExecutionTerminated, Time: t0, MsgID: "t1", Input: json.RawMessage(`"stop"`)}},
		want:  []string{"OrchestratorStarted", "ExecutionStarted", "ExecutionTerminated", "EventRaised", "ExecutionCompleted:Terminated"},
		fates: []fate{ack, ack},
	}, {
		name:  "an event for a Pending instance scheduled for later waits for its start",
		state: func() *state { return pendingState(t0.Add(time.Hour)) },
		batch: []history.Event{raised("go", "e1")},
		fates: []fate{orphan},
	}, {
		name: "the scheduled start of a run terminated before it began is dropped",
		state: func() *state {
			st := pendingState(t0.Add(time.Hour))
			p, err := decide(x, turnInput{id: "i", st: st, now: t0, maxChunk: 1 << 20, delivered: []uint64{1},
				batch: []*storage.InboxMessage{msg(history.Event{Type: history.ExecutionTerminated, Time: t0, MsgID: "t1"})}})
			require.NoError(t, err)
			st.addChunk(1, 10, p.chunk, nil)
			return st
		},
		batch:     []history.Event{dispatcher.StartMessage("i", pendingStatus(t0.Add(time.Hour)), 7).Event},
		fates:     []fate{ack},
		republish: []uint32{1},
	}, {
		name:  "a terminate wins over an event that would continue as new",
		state: func() *state { return running(t, x, startEvent("Next", "x1", `null`)) },
		batch: []history.Event{raised("next", "e1"), {Type: history.ExecutionTerminated, Time: t0, MsgID: "t1", Input: json.RawMessage(`"stop"`)}},
		want:  []string{"OrchestratorStarted", "ExecutionTerminated", "EventRaised", "ExecutionCompleted:Terminated"},
		fates: []fate{ack, ack},
	}, {
		name: "a rewind is a turn of its own; the rest waits for the next",
		state: func() *state {
			st := running(t, x, startEvent("Calls", "x1", `"in"`))
			st.addChunk(2, 11, []history.Event{{Type: history.OrchestratorStarted, Time: t0},
				{Type: history.TaskFailed, Time: t0, TaskID: 0, MsgID: "x1:result:0", Failure: &history.Failure{Message: "boom"}},
				{Type: history.ExecutionCompleted, Time: t0, Status: history.StatusFailed, Failure: &history.Failure{Message: "boom"}}}, nil)
			return st
		},
		batch: []history.Event{raised("go", "e1"), {Type: history.ExecutionRewound, Time: t0, MsgID: "r1"}},
		want:  []string{"OrchestratorStarted", "ExecutionRewound", "TaskScheduled"},
		fates: []fate{carry, ack},
	}, {
		name:      "a message delivered too often fails the instance without running it",
		state:     func() *state { return running(t, x, startEvent("Waits", "x1", `null`)) },
		batch:     []history.Event{raised("other", "e1")},
		delivered: []uint64{11},
		want:      []string{"OrchestratorStarted", "EventRaised", "ExecutionCompleted:Failed"},
		fates:     []fate{ack},
	}, {
		name:      "a start delivered too often fails the instance it starts",
		state:     newState,
		batch:     []history.Event{startEvent("Waits", "x1", `null`)},
		delivered: []uint64{11},
		want:      []string{"OrchestratorStarted", "ExecutionStarted", "ExecutionCompleted:Failed"},
		fates:     []fate{ack},
	}, {
		name: "a suspended instance records what arrives and runs nothing",
		state: func() *state {
			st := running(t, x, startEvent("Waits", "x1", `null`))
			st.addChunk(2, 11, []history.Event{{Type: history.OrchestratorStarted, Time: t0}, {Type: history.ExecutionSuspended, Time: t0, MsgID: "s1"}}, nil)
			return st
		},
		batch: []history.Event{raised("go", "e1")},
		want:  []string{"OrchestratorStarted", "EventRaised"},
		fates: []fate{ack},
	}, {
		name: "a suspend that arrives after the resume sent after it does not suspend",
		state: func() *state {
			st := running(t, x, startEvent("Waits", "x1", `null`))
			st.addChunk(2, 11, []history.Event{{Type: history.OrchestratorStarted, Time: t0}, {Type: history.ExecutionResumed, Time: t0.Add(2 * time.Second), MsgID: "r1"}}, nil)
			return st
		},
		batch: []history.Event{{Type: history.ExecutionSuspended, Time: t0.Add(time.Second), MsgID: "s1"}, raised("go", "e1")},
		want:  []string{"OrchestratorStarted", "ExecutionSuspended", "EventRaised", "ExecutionCompleted:Completed"},
		fates: []fate{ack, ack},
	}, {
		name:     "a chunk over the server's largest message fails the execution instead",
		state:    newState,
		batch:    []history.Event{startEvent("Calls", "x1", `"`+strings.Repeat("x", 600_000)+`"`)},
		maxChunk: 1_000_000,
		want:     []string{"OrchestratorStarted", "ExecutionStarted", "ExecutionCompleted:Failed"},
		fates:    []fate{ack},
	}, {
		name:    "a start of another run while one runs is refused",
		state:   func() *state { return running(t, x, startEvent("Waits", "x1", `null`)) },
		batch:   []history.Event{startEvent("Waits", "x2", `null`)},
		fates:   []fate{ack},
		refused: 1,
	}, {
		name:  "a message for an earlier execution is dropped",
		state: func() *state { return running(t, x, startEvent("Waits", "x1", `null`)) },
		batch: []history.Event{{Type: history.TaskCompleted, Time: t0, MsgID: "old:result:0"}},
		fates: []fate{ack},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			in := turnInput{id: "i", st: tc.state(), now: t0, maxDeliveries: 10, maxChunk: tc.maxChunk}
			if in.maxChunk == 0 {
				in.maxChunk = 1 << 20
			}
			for i, ev := range tc.batch {
				m := msg(ev)
				if ev.Type == history.TaskCompleted {
					m.ExecutionID = "old"
				}
				in.batch = append(in.batch, m)
				n := uint64(1)
				if i < len(tc.delivered) {
					n = tc.delivered[i]
				}
				in.delivered = append(in.delivered, n)
			}
			p, err := decide(x, in)
			require.NoError(t, err)
			require.Equal(t, tc.want, types(p.chunk))
			require.Equal(t, tc.fates, p.fates)
			require.Equal(t, tc.republish, p.republish)
			require.Len(t, p.refused, tc.refused)
		})
	}
}

// TestDecideYields: an orchestrator that continues as new without waiting
// is cut after maxContinuesPerTurn executions; the chunk ends with the
// next execution begun and an OrchestratorYielded, whose message runs it.
func TestDecideYields(t *testing.T) {
	t.Parallel()
	x := testExecutor(t)
	p, err := decide(x, turnInput{id: "i", st: newState(), batch: []*storage.InboxMessage{msg(startEvent("Forever", "x1", `null`))},
		delivered: []uint64{1}, now: t0, maxChunk: 1 << 20})
	require.NoError(t, err)
	got := types(p.chunk)
	require.Equal(t, "OrchestratorYielded", got[len(got)-1])
	require.Equal(t, "ExecutionStarted", got[len(got)-2])
	n := 0
	for _, s := range got {
		if s == "ExecutionCompleted:ContinuedAsNew" {
			n++
		}
	}
	require.Equal(t, maxContinuesPerTurn+1, n)

	// The yield's message runs the execution begun: another round.
	st := newState()
	st.addChunk(1, 10, p.chunk, nil)
	require.True(t, st.running())
	yield := msg(history.Event{Type: history.OrchestratorStarted, Time: t0, MsgID: st.started.ExecutionID + ":yield"})
	yield.ExecutionID = st.started.ExecutionID
	p, err = decide(x, turnInput{id: "i", st: st, batch: []*storage.InboxMessage{yield}, delivered: []uint64{1}, now: t0, maxChunk: 1 << 20})
	require.NoError(t, err)
	got = types(p.chunk)
	require.Equal(t, "OrchestratorYielded", got[len(got)-1])
}

// TestNeedsFreshState: a cached state is checked against storage before a
// turn for the batches a stale cache would mishandle, and only those.
func TestNeedsFreshState(t *testing.T) {
	t.Parallel()
	x := testExecutor(t)
	calls := running(t, x, startEvent("Calls", "x1", `"a"`)) // scheduled activity 0
	waits := running(t, x, startEvent("Waits", "x2", `null`))
	result := func(exec string, id int32) *storage.InboxMessage {
		m := msg(history.Event{Type: history.TaskCompleted, Time: t0, TaskID: id, Result: json.RawMessage(`1`),
			MsgID: exec + ":result:" + string(rune('0'+id))})
		m.ExecutionID = exec
		return m
	}
	for _, tc := range []struct {
		name  string
		st    *state
		batch []*storage.InboxMessage
		want  bool
	}{
		{"the result of a task the cache scheduled", calls, []*storage.InboxMessage{result("x1", 0)}, false},
		{"an event for the running execution", waits, []*storage.InboxMessage{msg(raised("go", "e1"))}, false},
		{"the result of a task the cache never saw scheduled: another worker went on", calls,
			[]*storage.InboxMessage{result("x1", 0), result("x1", 1)}, true},
		{"a result for another execution", calls, []*storage.InboxMessage{result("x0", 0)}, true},
		{"a start of another run", waits, []*storage.InboxMessage{msg(startEvent("Waits", "x3", `null`))}, true},
	} {
		require.Equal(t, tc.want, needsFreshState(tc.st, tc.batch), tc.name)
	}
}
