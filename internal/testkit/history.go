package testkit

import (
	"encoding"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
)

// timerSkew is how much earlier than its due time a timer may fire: the
// turn's time comes from the clock of the worker that ran it, the due time
// from the one that created the timer.
const timerSkew = time.Second

// CheckChunks checks the chunks of an instance's stored history, as
// [jetstream.Store.LoadHistory] returns them: numbered without a gap from
// 1, or, once the executions that continued as new were trimmed, from the
// chunk that began an execution; none empty; and their events together
// sound (see [CheckHistory]). The events of a trimmed history before its
// first ExecutionStarted end an execution whose start was trimmed, and are
// not checked. It returns the events from the first ExecutionStarted on
// (all of them for an untrimmed history), or an error that names the chunk
// and the event at fault.
func CheckChunks(chunks []storage.Chunk) ([]history.Event, error) {
	if len(chunks) == 0 {
		return nil, errors.New("no history")
	}
	first := chunks[0].Number
	var events []history.Event
	chunkOf := make([]uint32, 0, len(chunks))
	for i, c := range chunks {
		if c.Number != first+uint32(i) {
			return nil, fmt.Errorf("chunk %d is number %d: chunk numbers are not %d..%d", i+1, c.Number, first, first+uint32(len(chunks))-1)
		}
		if len(c.Events) == 0 {
			return nil, fmt.Errorf("chunk %d is empty", c.Number)
		}
		evs := c.Events
		if i == 0 && first > 1 {
			k := slices.IndexFunc(evs, func(e history.Event) bool { return e.Type == history.ExecutionStarted })
			if k < 0 {
				return nil, fmt.Errorf("chunk %d, the first of a trimmed history, begins no execution", c.Number)
			}
			evs = evs[k:]
		}
		for range evs {
			chunkOf = append(chunkOf, c.Number)
		}
		events = append(events, evs...)
	}
	if err := check(events, func(i int) string { return fmt.Sprintf("chunk %d, event %d", chunkOf[i], i) }); err != nil {
		return nil, err
	}
	return events, nil
}

// CheckHistory checks the invariants that every instance's stored history
// holds, finished or not, whatever its orchestrator did, and returns an
// error that names the first event that breaks one:
//   - only turn markers (OrchestratorStarted) come before the first
//     ExecutionStarted, and an execution begins only once the one before
//     it has ended; execution ids are unique;
//   - an execution ends with at most one ExecutionCompleted, after which
//     come only turn markers (OrchestratorStarted, OrchestratorYielded),
//     the ExecutionStarted of the next execution, or, after a failure, an
//     ExecutionRewound that brings the execution back; one that continued
//     as new is followed by the next execution;
//   - no message id is applied twice; the one exception is an external
//     event carried over, unconsumed, into the execution that continues
//     the one that received it, where it follows ExecutionStarted;
//   - in an execution, scheduling ids are unique (a rewind may send again
//     what had failed or had not finished), every completion matches a
//     scheduling event of its kind, and none has two (a failure that a
//     rewind removed aside);
//   - no timer fires in a turn earlier than its due time (less a second
//     for the clocks of different workers).
//
// It does not require an execution to have finished, its tasks to have
// completed (a WhenAny leaves the losers pending) or anything to have
// succeeded: those depend on the orchestrator, and a test checks them.
func CheckHistory(events []history.Event) error {
	if len(events) == 0 {
		return errors.New("no history")
	}
	return check(events, func(i int) string { return fmt.Sprintf("event %d", i) })
}

// execution is what check knows of one execution.
type execution struct {
	number    int // from 1
	scheduled map[int32]*history.Event
	results   map[int32]int  // completions per scheduling id
	failed    map[int32]bool // scheduling ids whose completion is a failure
	again     map[int32]bool // scheduling ids a rewind may send again
	end       *history.Event // the ExecutionCompleted, nil while it runs
	// carried is true from ExecutionStarted up to the first event that is
	// not an EventRaised: the events carried over from the execution
	// before, if it continued as new.
	carried   bool
	continues bool // the execution before ended ContinuedAsNew
}

func check(events []history.Event, pos func(i int) string) error {
	var (
		ex    *execution
		turn  time.Time
		msgs  = map[string]int{} // message id -> execution that applied it first
		execs = map[string]int{} // execution id -> execution
	)
	for i := range events {
		e := &events[i]
		fail := func(format string, args ...any) error {
			where := pos(i)
			if ex != nil {
				where = fmt.Sprintf("execution %d, %s", ex.number, where)
			}
			return fmt.Errorf("%s (%s): %s", where, e.Describe(), fmt.Sprintf(format, args...))
		}
		if !known(e.Type) {
			return fail("unknown event type")
		}
		if ex != nil && e.Type != history.EventRaised {
			ex.carried = false
		}
		if e.MsgID != "" {
			first, dup := msgs[e.MsgID]
			switch {
			case !dup:
				msgs[e.MsgID] = execNumber(ex)
			case e.Type == history.EventRaised && ex != nil && ex.carried && ex.continues && first < ex.number:
				// carried over into the next execution
			default:
				return fail("message id %q applied twice (first in execution %d)", e.MsgID, first)
			}
		}
		if e.Type == history.OrchestratorStarted {
			if e.MsgID == "" { // the turn's own marker, not a message's
				turn = e.Time
			}
			continue
		}
		if ex == nil && e.Type != history.ExecutionStarted {
			return fail("comes before ExecutionStarted")
		}
		if ex != nil && ex.end != nil {
			switch {
			case e.Type == history.ExecutionStarted, e.Type == history.OrchestratorYielded:
			case e.Type == history.ExecutionRewound && ex.end.Status == history.StatusFailed:
			case e.Type == history.ExecutionRewound:
				return fail("rewinds an execution that ended %s, not Failed", ex.end.Status)
			default:
				return fail("after ExecutionCompleted (%s)", ex.end.Status)
			}
		}
		switch {
		case e.Type == history.ExecutionStarted:
			if ex != nil && ex.end == nil {
				return fail("begins an execution while execution %d runs", ex.number)
			}
			if err := newExecutionID(execs, e.ExecutionID, execNumber(ex)+1); err != nil {
				return fail("%v", err)
			}
			next := &execution{
				number: execNumber(ex) + 1, scheduled: map[int32]*history.Event{}, results: map[int32]int{},
				failed: map[int32]bool{}, again: map[int32]bool{}, carried: true,
			}
			next.continues = ex != nil && ex.end.Status == history.StatusContinuedAsNew
			ex = next
		case e.Type == history.ExecutionRewound:
			if ex.end == nil {
				return fail("rewinds an execution that runs")
			}
			if err := newExecutionID(execs, e.ExecutionID, ex.number); err != nil {
				return fail("%v", err)
			}
			ex.end = nil
			for id := range ex.scheduled {
				if ex.failed[id] {
					ex.results[id] = 0
					delete(ex.failed, id)
				}
				if ex.results[id] == 0 {
					ex.again[id] = true
				}
			}
		case e.Type == history.ExecutionCompleted:
			if !known(e.Status) {
				return fail("unknown status %s", e.Status)
			}
			ex.end = e
		case e.IsScheduling():
			if prev := ex.scheduled[e.ID]; prev != nil {
				if !ex.again[e.ID] || prev.Type != e.Type {
					return fail("scheduling id %d used twice (%s)", e.ID, prev.Describe())
				}
				delete(ex.again, e.ID)
			}
			ex.scheduled[e.ID] = e
		case e.IsCompletion():
			sch := ex.scheduled[e.TaskID]
			if sch == nil {
				return fail("for task %d, never scheduled", e.TaskID)
			}
			if !completes(e.Type, sch.Type) {
				return fail("completes %s", sch.Describe())
			}
			delete(ex.again, e.TaskID)
			if ex.results[e.TaskID]++; ex.results[e.TaskID] > 1 {
				return fail("%s has %d results", sch.Describe(), ex.results[e.TaskID])
			}
			switch e.Type {
			case history.TaskFailed, history.SubOrchestrationFailed:
				ex.failed[e.TaskID] = true
			case history.TimerFired:
				if turn.Before(sch.FireAt.Add(-timerSkew)) {
					return fail("fired in a turn at %s, before its time %s", turn.Format(time.RFC3339Nano), sch.FireAt.Format(time.RFC3339Nano))
				}
			}
		}
	}
	if ex == nil {
		return errors.New("no ExecutionStarted")
	}
	if ex.end != nil && ex.end.Status == history.StatusContinuedAsNew {
		return fmt.Errorf("execution %d continued as new, but no execution follows it", ex.number)
	}
	return nil
}

// execNumber is the number of execution ex, 0 before the first.
func execNumber(ex *execution) int {
	if ex == nil {
		return 0
	}
	return ex.number
}

// newExecutionID records the id of execution n (begun or rewound).
func newExecutionID(execs map[string]int, id string, n int) error {
	if id == "" {
		return errors.New("no execution id")
	}
	if prev, dup := execs[id]; dup {
		return fmt.Errorf("execution id %q is also that of execution %d", id, prev)
	}
	execs[id] = n
	return nil
}

// completes reports whether a completion event of type c can complete a
// scheduling event of type s.
func completes(c, s history.Type) bool {
	switch c {
	case history.TaskCompleted, history.TaskFailed:
		return s == history.TaskScheduled
	case history.TimerFired:
		return s == history.TimerCreated
	case history.SubOrchestrationCompleted, history.SubOrchestrationFailed:
		return s == history.SubOrchestrationCreated
	}
	return false
}

// known reports whether v is one of the values of its type (an event
// type, an execution status): those alone have a name.
func known(v encoding.TextMarshaler) bool {
	_, err := v.MarshalText()
	return err == nil
}
