package worker

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/executor"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
)

// maxContinuesPerTurn bounds how many executions one turn runs when an
// orchestrator continues as new without waiting for anything; the next
// turn carries on (see history.OrchestratorYielded).
const maxContinuesPerTurn = 100

// executeFunc runs a turn through the worker's executor
// (executor.Executor.Execute); an error gives the turn up (the worker's
// watchdog, see Worker.execute).
type executeFunc func(id string, past, turn []history.Event) (*executor.TurnResult, error)

// turnInput is what the pure step of a turn decides from: what the worker
// knows of the instance, and the batch of inbox messages to apply.
type turnInput struct {
	id    string
	st    *state
	batch []*storage.InboxMessage
	// delivered is how many times each message of batch was delivered.
	delivered []uint64
	now       time.Time
	// maxDeliveries is Config.MaxDeliveries.
	maxDeliveries int
	// maxChunk is the largest history chunk, in encoded bytes, that the
	// server stores.
	maxChunk int
}

// fate is what becomes of one message of a batch after the turn.
type fate uint8

const (
	// ack: the chunk applies it, or it is dropped (already applied, for an
	// earlier execution, for a finished or unknown instance); acknowledge.
	ack fate = iota
	// orphan: nothing runs for it, and it is for whatever execution is
	// current. It may have overtaken its start: keep it (and try again
	// soon) while the instance is Pending, otherwise drop it.
	orphan
	// carry: keep it for the next turn of this instance (the turn was a
	// rewind, which takes nothing else).
	carry
)

// plan is the outcome of the pure step: what the turn writes and what
// becomes of each message. The worker carries it out: commit the chunk
// (the history fence), publish its actions and the status, then ack,
// keep or drop each message by its fate.
type plan struct {
	// chunk is the next history chunk; nil when the turn commits nothing.
	chunk []history.Event
	// custom is the instance's custom status after the chunk.
	custom json.RawMessage
	// fates holds one fate per message of the batch.
	fates []fate
	// republish lists the chunks (by number) that consumed a message of
	// this batch: it came back, so its ack is missing and the writer of
	// the chunk may have died before publishing the chunk's actions.
	republish []uint32
	// expire is set when the batch removes the instance: the hub's
	// retention has passed since it finished (see expired).
	expire bool
	// refused are start messages of other runs that arrived while the
	// instance runs; a sub-orchestration's parent is told.
	refused []*history.Event
}

// decide is the pure step of a turn: it has no I/O and no clock. Given
// the instance's state and a batch, it returns the chunk to commit (if
// any) and the fate of every message. Each rule of a turn has its home
// here: duplicates, redeliveries, rewind, start, messages that overtake
// their start, poison, suspension, termination, continue-as-new and the
// size of a chunk.
func decide(x executeFunc, in turnInput) (plan, error) {
	st := in.st
	p := plan{fates: make([]fate, len(in.batch))}
	for _, m := range in.batch {
		if n, ok := st.appliedIn(m.Event.MsgID); ok && !slices.Contains(p.republish, n) {
			p.republish = append(p.republish, n)
		}
	}
	if expired(st, in.batch) {
		p.expire = true // the batch's other messages are for a finished instance
		return p, nil
	}
	// A rewind of a failed execution is a turn of its own; the batch's
	// other messages wait for the next one (the execution runs again then).
	for i, m := range in.batch {
		ev := &m.Event
		if ev.Type != history.ExecutionRewound || st.isApplied(ev.MsgID) || !st.failed() {
			continue
		}
		for j, o := range in.batch {
			if j != i && !st.isApplied(o.Event.MsgID) {
				p.fates[j] = carry
			}
		}
		var err error
		p.chunk, p.custom, err = rewindChunk(x, in, ev)
		return p.fit(in), err
	}
	// The start of a new execution, if the batch holds one: the batch's
	// other messages apply to it, whatever their order.
	var start *history.Event
	for _, m := range in.batch {
		ev := &m.Event
		if ev.Type != history.ExecutionStarted || st.isApplied(ev.MsgID) || !st.startStands(m) {
			continue // applied, or overtaken (see startStands): dropped
		}
		if start != nil || st.running() {
			if !st.isExecution(ev.ExecutionID) && (start == nil || ev.ExecutionID != start.ExecutionID) {
				p.refused = append(p.refused, ev)
			}
			continue
		}
		start = ev
	}
	if start == nil && !st.running() && terminates(st, in.batch) {
		// A termination that finds its instance Pending (its start
		// scheduled for later, or on its way) ends it now, and the run
		// never starts: the turn begins the execution with the start
		// message the Pending status stands for (the very message the
		// starter sent or scheduled, so when that one comes its id is
		// applied and it is dropped), and the termination below ends it
		// without running the orchestrator.
		if m := st.pendingStart(in.id); m != nil {
			start = &m.Event
		} else if s := carriedStart(st, in.batch); s != nil {
			// The same for a sub-orchestration that a recursive
			// termination reached before its start: the termination
			// carries the start.
			start = s
		}
	}
	current := st.started
	if start != nil {
		current = start
	} else if st.done != nil {
		current = nil
	}
	var events, terminations []history.Event
	seen := make(map[string]struct{}, len(in.batch))
	for i, m := range in.batch {
		ev := m.Event
		if ev.Type == history.ExecutionStarted || ev.Type == history.ExecutionRewound || ev.Type == history.InstanceExpired ||
			st.isApplied(ev.MsgID) {
			continue // dropped here: a rewind of an execution that has not failed, an expiry that expired did not take
		}
		// A message can be in a batch twice: delivered again while it
		// waited (a server restart can do that), or published twice.
		if ev.MsgID != "" {
			if _, twice := seen[ev.MsgID]; twice {
				continue
			}
			seen[ev.MsgID] = struct{}{}
		}
		switch {
		case current == nil:
			if m.ExecutionID == "" {
				p.fates[i] = orphan
			}
		case m.ExecutionID != "" && m.ExecutionID != current.ExecutionID:
			// for an earlier execution: dropped
		case ev.Type == history.ExecutionTerminated:
			terminations = append(terminations, ev)
		default:
			events = append(events, ev)
		}
	}
	if start == nil && len(events)+len(terminations) == 0 {
		return p, nil
	}
	turn := []history.Event{{Type: history.OrchestratorStarted, Time: in.now}}
	past := st.events
	if start != nil {
		past = nil
		turn = append(turn, *start)
	}
	turn = append(turn, terminations...)
	turn = append(turn, events...)
	if len(terminations) > 0 {
		// A termination wins over whatever else the batch holds: the
		// execution ends here, without running the orchestrator, so that
		// nothing (an event that makes it continue as new, or an execution
		// begun and not yet run) can carry it past the termination.
		reason := terminations[0].Input
		if len(reason) == 0 {
			reason = json.RawMessage("null")
		}
		p.chunk = append(turn, history.Event{Type: history.ExecutionCompleted, Time: in.now, Status: history.StatusTerminated, Result: reason})
		p.custom = st.customStatus()
		return p.fit(in), nil
	}
	if poison := poisonOf(in); poison != "" && (start != nil || st.running()) {
		// Running this batch has failed every time (a start included):
		// end the execution without running the orchestrator again.
		p.chunk = append(turn, history.Event{Type: history.ExecutionCompleted, Time: in.now, Status: history.StatusFailed,
			Failure: &history.Failure{Type: jetflow.FailurePoisonMessage, Message: poison}})
		p.custom = st.customStatus()
		return p.fit(in), nil
	}
	if suspended, _ := suspension(st.suspended, st.toggled, events); start == nil && suspended {
		// Suspended: record what arrived, run nothing until resumed.
		p.chunk, p.custom = turn, st.customStatus()
		return p.fit(in), nil
	}
	var err error
	p.chunk, p.custom, err = runTurn(x, in.id, past, turn, in.now)
	return p.fit(in), err
}

// runTurn runs the orchestrator over past and the turn's events and
// returns the chunk. An execution that continues as new starts the next
// one in the same chunk, up to maxContinuesPerTurn times; then the chunk
// ends with the next execution begun but not run, and an
// OrchestratorYielded event whose message runs it in the next turn.
func runTurn(x executeFunc, id string, past, turn []history.Event, now time.Time) ([]history.Event, json.RawMessage, error) {
	res, err := x(id, past, turn)
	if err != nil {
		return nil, nil, err
	}
	chunk := append(turn, res.Events...)
	for i := 0; res.Done && last(res.Events).Status == history.StatusContinuedAsNew; i++ {
		begun, done := currentStart(past, turn), last(res.Events)
		version := done.Version // the next execution's, if the orchestrator gave one
		if version == "" {
			version = begun.Version
		}
		next := []history.Event{{Type: history.OrchestratorStarted, Time: now}, {
			Type: history.ExecutionStarted, Time: now, Name: begun.Name, Input: done.Result,
			ExecutionID: nextExecutionID(begun.ExecutionID), Parent: begun.Parent, Rules: history.CurrentRules,
			RequestID: begun.RequestID, Version: version, Tags: begun.Tags,
		}}
		next = append(next, res.CarryOver...)
		chunk = append(chunk, next...)
		if i == maxContinuesPerTurn {
			return append(chunk, history.Event{Type: history.OrchestratorYielded, Time: now}), nil, nil
		}
		past, turn = nil, next
		if res, err = x(id, nil, next); err != nil {
			return nil, nil, err
		}
		chunk = append(chunk, res.Events...)
	}
	return chunk, res.CustomStatus, nil
}

// rewindChunk is the turn that rewinds a failed execution: the failures
// leave the history (see history.Rewound), the execution takes a new id,
// and what failed or was still running when it failed is scheduled again.
func rewindChunk(x executeFunc, in turnInput, ev *history.Event) ([]history.Event, json.RawMessage, error) {
	st := in.st
	marker := *ev
	marker.ExecutionID = nextExecutionID(st.started.ExecutionID + "/" + ev.MsgID)
	turn := []history.Event{{Type: history.OrchestratorStarted, Time: in.now}, marker}
	turn = append(turn, history.Pending(history.Rewound(append(slices.Clip(st.events), marker)))...)
	res, err := x(in.id, st.events, turn)
	if err != nil {
		return nil, nil, err
	}
	return append(turn, res.Events...), res.CustomStatus, nil
}

// fit makes sure the plan's chunk can be stored: a chunk over the
// server's largest message would fail on every try and wedge the
// instance. Such a turn instead fails the execution, keeping the events
// the batch brought (their messages fit the batch budget) and dropping
// what the orchestrator added, with a message that names both sizes.
func (p plan) fit(in turnInput) plan {
	size := chunkSize(p.chunk, p.custom)
	if size <= in.maxChunk {
		return p
	}
	var keep []history.Event
	for _, e := range p.chunk {
		if e.Type == history.ExecutionStarted && e.MsgID == "" {
			break // continue-as-new began another execution: the failure ends the first
		}
		if e.MsgID != "" || e.Type == history.OrchestratorStarted {
			keep = append(keep, e)
		}
	}
	p.chunk = append(keep, history.Event{Type: history.ExecutionCompleted, Time: in.now, Status: history.StatusFailed,
		Failure: &history.Failure{Type: jetflow.FailureHistoryTooLarge, Message: fmt.Sprintf(
			"the turn's history chunk is %d bytes, over the %d bytes the NATS server stores in one message (its max_payload); "+
				"pass smaller inputs and outputs to activities and sub-orchestrations, or schedule fewer of them at once",
			size, in.maxChunk)}})
	if chunkSize(p.chunk, p.custom) > in.maxChunk {
		// Even the failure does not fit (the batch's own events are too
		// large together): keep the start and the failure alone.
		p.chunk = slices.DeleteFunc(p.chunk, func(e history.Event) bool {
			return e.Type != history.OrchestratorStarted && e.Type != history.ExecutionStarted && e.Type != history.ExecutionCompleted
		})
	}
	return p
}

// chunkSize is the encoded size of a history chunk, at most: custom is
// recorded in it when the turn changed it.
func chunkSize(chunk []history.Event, custom json.RawMessage) int {
	if chunk == nil {
		return 0
	}
	n, err := storage.ChunkSize(chunk, custom)
	if err != nil {
		return int(^uint(0) >> 1)
	}
	return n
}

// poisonOf describes the first message of the batch delivered more than
// MaxDeliveries times, or returns "".
func poisonOf(in turnInput) string {
	for i, m := range in.batch {
		if n := in.delivered[i]; poisoned(in.maxDeliveries, n) {
			return fmt.Sprintf("message %s (%s) was delivered %d times without being handled (its turn failed or its worker crashed each time); giving up",
				m.Event.MsgID, m.Event.Type, n)
		}
	}
	return ""
}

// expired reports whether a batch removes its instance: it holds the
// InstanceExpired of the execution that finished last, and the instance
// was not started again since (the status is that execution's final one,
// and the batch starts no new run). An expiry of an execution that was
// rewound or restarted is dropped: the run that took its place schedules
// its own when it finishes.
func expired(st *state, batch []*storage.InboxMessage) bool {
	found := false
	for _, m := range batch {
		switch {
		case m.Event.Type == history.ExecutionStarted && !st.isApplied(m.Event.MsgID):
			return false
		case m.Event.Type == history.InstanceExpired && st.isExecution(m.ExecutionID):
			found = true
		}
	}
	return found && st.done != nil && st.done.Status != history.StatusContinuedAsNew &&
		st.status != nil && st.status.RuntimeStatus.IsTerminal()
}

// terminates reports whether the batch holds a termination not yet
// applied for whatever execution is current.
func terminates(st *state, batch []*storage.InboxMessage) bool {
	return slices.ContainsFunc(batch, func(m *storage.InboxMessage) bool {
		return m.Event.Type == history.ExecutionTerminated && m.ExecutionID == "" && !st.isApplied(m.Event.MsgID)
	})
}

// carriedStart is the start event that a recursive termination of the
// batch carries (see dispatcher.ChildTerminations), for an instance that
// has no status and no history: its start has not come yet.
func carriedStart(st *state, batch []*storage.InboxMessage) *history.Event {
	if st.status != nil || st.started != nil || st.chunks > 0 {
		return nil
	}
	for _, m := range batch {
		if m.Event.Type == history.ExecutionTerminated && m.Start != nil && !st.isApplied(m.Start.MsgID) {
			return m.Start
		}
	}
	return nil
}

// isResult reports whether events of type t complete a scheduling event
// (by TaskID).
func isResult(t history.Type) bool {
	switch t {
	case history.TaskCompleted, history.TaskFailed, history.TimerFired,
		history.SubOrchestrationCompleted, history.SubOrchestrationFailed:
		return true
	}
	return false
}

// poisoned reports whether a message delivered n times is to be given up.
func poisoned(maxDeliveries int, n uint64) bool {
	return maxDeliveries > 0 && n > uint64(maxDeliveries)
}

// needsFreshState reports whether a batch holds a message that the cached
// state would refuse or drop, or that starts another execution: the cases
// where a stale cache would lose a message; or the result of a task, timer
// or sub-orchestration that the cache never saw scheduled, the sign that
// another worker went on with the instance (running the turn on the cache
// would only end in a lost commit).
func needsFreshState(st *state, batch []*storage.InboxMessage) bool {
	for _, m := range batch {
		if st.isApplied(m.Event.MsgID) {
			continue
		}
		switch {
		case !st.running():
			return true // nothing runs, as far as the cache knows
		case m.Event.Type == history.InstanceExpired:
			return true // the cache may not know that it finished
		case m.Event.Type == history.ExecutionStarted && m.Event.ExecutionID != st.started.ExecutionID:
			return true // a new run while one runs
		case m.ExecutionID != "" && m.ExecutionID != st.started.ExecutionID:
			return true // for another run
		case isResult(m.Event.Type):
			if !st.wasScheduled(m.Event.TaskID) {
				return true // scheduled by a turn the cache missed
			}
		}
	}
	return false
}
