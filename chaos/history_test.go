//go:build chaos

package chaos_test

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jetflow/jetflow/chaos"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testkit"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// histWant is what the history of a finished instance of the randomized
// load must hold.
type histWant struct {
	// final is the status of the last execution: "Completed" or
	// "Terminated".
	final string
	// acts, timers and subs are the activity calls, timers and
	// sub-orchestrations of all executions together, when Completed.
	acts, timers, subs int
	// executions is how many executions a Completed instance has (0
	// means 1): it continued as new executions-1 times.
	executions int
	// events maps each external event the test raised (eventKey) to the
	// number of RaiseEvent calls made for it: the most copies (distinct
	// message ids) history may hold. Any other event is an error.
	events map[string]int
	// required are the events whose raise was acknowledged: a Completed
	// instance has each at least once.
	required []string
	// terminated and suspended say the test sent a terminate, a suspend:
	// without them, such an event in history is an error.
	terminated, suspended bool
}

// eventKey names an external event by its name (case-insensitive, as
// events are matched) and data.
func eventKey(name string, data any) string {
	b, _ := json.Marshal(data)
	return strings.ToLower(name) + "=" + string(compact(b))
}

func compact(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return raw("null")
	}
	var v any
	if json.Unmarshal(b, &v) != nil {
		return b
	}
	out, _ := json.Marshal(v)
	return out
}

// checkExecutions checks the history of a finished instance of the
// randomized load, one execution after the other (an instance that
// continues as new has several, each beginning with ExecutionStarted),
// and returns its activity calls (chaos.CallKey), and those of them that
// have a result. The history must be sound (testkit.CheckChunks: chunks
// numbered 1, 2, 3… without gap, none empty; nothing but turn markers
// after an execution's ExecutionCompleted; no message id applied twice,
// but for an event carried over, unconsumed, into the next execution; in
// each execution, unique scheduling ids, every completion matching its
// scheduling event, none with two; no timer fired before its time, less
// a second), and
//   - every execution ends with one ExecutionCompleted, ContinuedAsNew
//     but the last, whose status is w.final; nothing was rewound;
//   - in an execution that completed or continued as new every scheduling
//     event has its completion; no activity or sub-orchestration failed;
//   - Square's results are its input squared, ChaosStep's its input;
//   - events: only those raised, at most one copy per call made, each
//     acknowledged one present when Completed; a terminate or a suspend
//     only if the test sent one;
//   - a Completed instance has w's activity calls, timers,
//     sub-orchestrations and executions.
func checkExecutions(id string, chunks []storage.Chunk, w histWant) (calls, results []string, err error) {
	events, err := testkit.CheckChunks(chunks)
	if err != nil {
		return nil, nil, err
	}
	var execs [][]history.Event
	for _, e := range events {
		switch {
		case e.Type == history.ExecutionStarted:
			execs = append(execs, []history.Event{e})
		case len(execs) > 0:
			execs[len(execs)-1] = append(execs[len(execs)-1], e)
		}
	}
	copies := map[string]map[string]bool{} // event key -> message ids
	acts, timers, subs := 0, 0, 0
	for k, ex := range execs {
		last := k == len(execs)-1
		scheduled := map[int32]*history.Event{}
		completed := map[int32]int{}
		var end *history.Event
		for j := 1; j < len(ex); j++ {
			e := &ex[j]
			where := fmt.Sprintf("execution %d, %s", k+1, e.Describe())
			switch {
			case e.IsScheduling():
				scheduled[e.ID] = e
				switch e.Type {
				case history.TaskScheduled:
					acts++
					calls = append(calls, chaos.CallKey(id, e.ID, e.Input))
				case history.TimerCreated:
					timers++
				case history.SubOrchestrationCreated:
					subs++
				}
			case e.IsCompletion():
				sch := scheduled[e.TaskID]
				completed[e.TaskID]++
				switch e.Type {
				case history.TaskFailed, history.SubOrchestrationFailed:
					return nil, nil, fmt.Errorf("%s: %s failed: %+v", where, sch.Describe(), e.Failure)
				case history.TaskCompleted:
					if err := checkResult(sch, e); err != nil {
						return nil, nil, fmt.Errorf("%s: %w", where, err)
					}
					results = append(results, chaos.CallKey(id, sch.ID, sch.Input))
				}
			case e.Type == history.EventRaised:
				key := strings.ToLower(e.Name) + "=" + string(compact(e.Input))
				if w.events[key] == 0 {
					return nil, nil, fmt.Errorf("%s: an event the test did not raise (%s)", where, key)
				}
				if copies[key] == nil {
					copies[key] = map[string]bool{}
				}
				copies[key][e.MsgID] = true
			case e.Type == history.ExecutionTerminated:
				if !w.terminated {
					return nil, nil, fmt.Errorf("%s, but the test did not terminate it", where)
				}
			case e.Type == history.ExecutionSuspended, e.Type == history.ExecutionResumed:
				if !w.suspended {
					return nil, nil, fmt.Errorf("%s, but the test did not suspend it", where)
				}
			case e.Type == history.ExecutionCompleted:
				end = e
			case e.Type == history.ExecutionRewound:
				return nil, nil, fmt.Errorf("%s: the test rewinds nothing", where)
			}
		}
		switch {
		case end == nil:
			return nil, nil, fmt.Errorf("execution %d of %d has no ExecutionCompleted", k+1, len(execs))
		case !last && end.Status != history.StatusContinuedAsNew:
			return nil, nil, fmt.Errorf("execution %d of %d ended %s", k+1, len(execs), end.Status)
		case last && end.Status.String() != w.final:
			return nil, nil, fmt.Errorf("the last execution ended %s, the status says %s", end.Status, w.final)
		}
		if end.Status == history.StatusCompleted || end.Status == history.StatusContinuedAsNew {
			for sid, sch := range scheduled {
				if completed[sid] != 1 {
					return nil, nil, fmt.Errorf("execution %d ended %s with %s unfinished", k+1, end.Status, sch.Describe())
				}
			}
		}
	}
	for key, ids := range copies {
		if len(ids) > w.events[key] {
			return nil, nil, fmt.Errorf("event %s applied %d times, raised with %d calls", key, len(ids), w.events[key])
		}
	}
	if w.final != "Completed" {
		return calls, results, nil
	}
	for _, key := range w.required {
		if len(copies[key]) == 0 {
			return nil, nil, fmt.Errorf("event %s was acknowledged but is not in history", key)
		}
	}
	wantExecs := max(w.executions, 1)
	if len(execs) != wantExecs || acts != w.acts || timers != w.timers || subs != w.subs {
		return nil, nil, fmt.Errorf("%d executions, %d activity calls, %d timers, %d sub-orchestrations; want %d, %d, %d, %d",
			len(execs), acts, timers, subs, wantExecs, w.acts, w.timers, w.subs)
	}
	return calls, results, nil
}

// checkResult checks the result of the activities whose result follows
// from their input.
func checkResult(sch, e *history.Event) error {
	switch sch.Name {
	case "Square":
		var x, sq int
		if json.Unmarshal(sch.Input, &x) != nil || json.Unmarshal(e.Result, &sq) != nil || sq != x*x {
			return fmt.Errorf("Square of %s is %s", sch.Input, e.Result)
		}
	case chaos.StepActivity:
		if !jsonEqual(compact(e.Result), string(compact(sch.Input))) {
			return fmt.Errorf("%s of %s returned %s", chaos.StepActivity, sch.Input, e.Result)
		}
	}
	return nil
}

// natsJS is a JetStream context on the test's connection.
func natsJS(h *hub) (natsjs.JetStream, error) { return natsjs.New(h.nc) }

// natsjsSubjects asks stream info for the subjects matching filter.
func natsjsSubjects(filter string) natsjs.StreamInfoOpt { return natsjs.WithSubjectFilter(filter) }
