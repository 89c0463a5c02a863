package worker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/dispatcher"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
)

// state is what a worker knows of an instance's history.
type state struct {
	chunks    uint32            // number of the last stored chunk; 0 for none
	chunkRev  uint64            // its revision (the history fence); 0 for none
	events    []history.Event   // the current execution, from its first event
	applied   map[string]uint32 // message ids in history -> the chunk that consumed them
	started   *history.Event    // the current execution's ExecutionStarted; nil for none
	done      *history.Event    // its ExecutionCompleted, once finished
	suspended bool              // the execution is suspended
	toggled   time.Time         // when the suspend or resume in force was sent
	scheduled int32             // the current execution's scheduling events have IDs below it
	// startedAt and doneAt index started and done in events (-1: none);
	// rewoundView: events is a rewound view (it holds an ExecutionRewound).
	startedAt, doneAt int
	rewoundView       bool

	status    *jetflow.Status // the last status written (or read); nil for none
	statusRev uint64          // its revision; 0 for none
	lastChunk []history.Event // the events of the last chunk
	before    *history.Event  // the ExecutionStarted in force before the last chunk; nil for none
	custom    json.RawMessage // the custom status the last chunk that recorded one left
	customSet bool            // a chunk recorded a custom status

	// marks are the stored chunks from the first one loaded to the last,
	// oldest first, for trimming the executions that continued as new;
	// startChunk is the chunk holding the current execution's
	// ExecutionStarted (0 for none).
	marks      []chunkMark
	startChunk uint32

	// bytes estimates the memory the state holds (sizeOf its events and
	// message ids), for the sticky cache's byte bound.
	bytes int64
}

// chunkMark is what a state keeps of a stored chunk to trim it later:
// its number, its revision and its turn's time.
type chunkMark struct {
	n   uint32
	rev uint64
	at  time.Time
}

// appliedOverhead is what sizeOf counts for an entry of the applied map
// besides its key.
const appliedOverhead = 48

// markOverhead is what sizeOf counts for a chunk's mark.
const markOverhead = 32

// eventOverhead is what sizeOf counts for an event besides its payloads:
// the struct, its strings and times.
const eventOverhead = 256

// sizeOf estimates the memory of events: their payloads and a fixed cost
// each.
func sizeOf(events []history.Event) int64 {
	var n int64
	for i := range events {
		e := &events[i]
		n += eventOverhead + int64(len(e.Input)+len(e.Result)+len(e.Name)+len(e.MsgID))
		if e.Failure != nil {
			n += int64(len(e.Failure.Message) + len(e.Failure.Type))
		}
	}
	return n
}

func newState() *state { return &state{applied: map[string]uint32{}, startedAt: -1, doneAt: -1} }

// customStatus is the custom status last written or read, if any.
func (st *state) customStatus() json.RawMessage {
	if st.status == nil {
		return nil
	}
	return st.status.CustomStatus
}

// chunkCustom is what a chunk whose turn leaves custom records of it:
// nothing when history already holds that value, else the value (null
// for none).
func (st *state) chunkCustom(custom json.RawMessage) json.RawMessage {
	if len(custom) == 0 {
		custom = json.RawMessage("null")
	}
	if st.customSet && bytes.Equal(custom, st.custom) {
		return nil
	}
	return custom
}

// lastCustom is the custom status of the last commit, as history records
// it, or as the stored status has it for histories written before chunks
// recorded it.
func (st *state) lastCustom() json.RawMessage {
	if st.customSet {
		return st.custom
	}
	return st.customStatus()
}

// running reports whether an execution has begun and not finished.
func (st *state) running() bool { return st.started != nil && st.done == nil }

// failed reports whether the current execution ended by failing.
func (st *state) failed() bool {
	return st.done != nil && st.done.Status == history.StatusFailed
}

// wasScheduled reports whether the current execution has a scheduling
// event (activity, timer, sub-orchestration) of this ID: IDs number them
// from 0 in order.
func (st *state) wasScheduled(id int32) bool { return id >= 0 && id < st.scheduled }

// isExecution reports whether executionID is the current execution's.
func (st *state) isExecution(executionID string) bool {
	return st.started != nil && st.started.ExecutionID == executionID
}

// isApplied reports whether the message with this id is in history.
func (st *state) isApplied(msgID string) bool {
	_, ok := st.appliedIn(msgID)
	return ok
}

// appliedIn returns the chunk that consumed the message with this id.
func (st *state) appliedIn(msgID string) (uint32, bool) {
	if msgID == "" {
		return 0, false
	}
	n, ok := st.applied[msgID]
	return n, ok
}

// suspension applies the suspends and resumes among events to a state
// that is suspended or not since toggled: the one sent last wins, whatever
// order they arrived in (a suspend held by a worker that died comes back
// after the resume sent after it, and must not suspend the instance again).
func suspension(suspended bool, toggled time.Time, events []history.Event) (bool, time.Time) {
	for _, e := range events {
		if e.Type != history.ExecutionSuspended && e.Type != history.ExecutionResumed || e.Time.Before(toggled) {
			continue
		}
		suspended, toggled = e.Type == history.ExecutionSuspended, e.Time
	}
	return suspended, toggled
}

// execution is the dispatcher's view of the execution begun by e.
func execution(id string, e *history.Event) dispatcher.Execution {
	if e == nil {
		return dispatcher.Execution{InstanceID: id}
	}
	return dispatcher.Execution{InstanceID: id, ExecutionID: e.ExecutionID, Name: e.Name, Parent: e.Parent, Tags: e.Tags}
}

// addChunk appends committed chunk n (at revision rev) to the state;
// custom is the custom status it recorded, if any. Its cost is that of
// the chunk, not of the history before it, unless the chunk begins an
// execution or the execution was rewound.
func (st *state) addChunk(n uint32, rev uint64, events []history.Event, custom json.RawMessage) {
	st.before, st.lastChunk = st.started, events
	st.chunks, st.chunkRev = n, rev
	var at time.Time
	if len(events) > 0 {
		at = events[0].Time
	}
	st.marks = append(st.marks, chunkMark{n: n, rev: rev, at: at})
	st.bytes += markOverhead
	if custom != nil {
		st.custom, st.customSet = custom, true
	}
	base, rescan := len(st.events), st.rewoundView
	for i := range events {
		e := &events[i]
		if e.MsgID != "" {
			st.applied[e.MsgID] = n
			st.bytes += int64(len(e.MsgID)) + appliedOverhead
		}
		switch e.Type {
		case history.ExecutionStarted:
			st.startChunk = n
			var carry []history.Event
			if k := len(st.events); k > 0 && st.events[k-1].Type == history.OrchestratorStarted {
				carry = st.events[k-1:]
			}
			st.bytes -= sizeOf(st.events) - sizeOf(carry)
			st.events = append([]history.Event(nil), carry...)
			rescan = true
		case history.ExecutionRewound:
			rescan = true
		}
		st.events = append(st.events, *e)
		st.bytes += sizeOf(events[i : i+1])
	}
	if rescan {
		if rewound := history.Rewound(st.events); len(rewound) != len(st.events) {
			st.bytes -= sizeOf(st.events) - sizeOf(rewound)
			st.events = rewound
		}
		st.rewoundView = slices.ContainsFunc(st.events, func(e history.Event) bool { return e.Type == history.ExecutionRewound })
		st.startedAt, st.doneAt, st.scheduled = -1, -1, 0
		st.suspended, st.toggled = false, time.Time{}
		base = 0
	}
	for i := base; i < len(st.events); i++ {
		switch e := &st.events[i]; e.Type {
		case history.ExecutionStarted:
			st.startedAt = i
		case history.ExecutionCompleted:
			st.doneAt = i
		case history.TaskScheduled, history.TimerCreated, history.SubOrchestrationCreated:
			st.scheduled = max(st.scheduled, e.ID+1)
		}
	}
	st.started, st.done = nil, nil // pointers into events, which may have moved
	if st.startedAt >= 0 {
		st.started = &st.events[st.startedAt]
	}
	if st.doneAt >= 0 {
		st.done = &st.events[st.doneAt]
	}
	st.suspended, st.toggled = suspension(st.suspended, st.toggled, st.events[base:])
}

// pendingStart is the start message of the run that the instance's
// Pending status stands for, when the status is Pending and history has
// not applied that start; nil otherwise.
func (st *state) pendingStart(id string) *storage.InboxMessage {
	if st.status == nil || st.status.RuntimeStatus != jetflow.StatusPending {
		return nil
	}
	m := dispatcher.StartMessage(id, st.status, st.statusRev)
	if st.isApplied(m.Event.MsgID) {
		return nil
	}
	return m
}

// startStands reports whether the start message m may begin a run. A
// start sent for a Pending status (m.StatusRevision is its revision) may
// only while that status stands: once it moved on, the run it stood for
// was ended before it began (a termination that found it Pending) and
// the instance may since have been purged or started again, so the
// message, late (its sender stalled, or its schedule fired), must bring
// nothing back; history cannot tell, as a purge takes it. A start without
// a status (a sub-orchestration's) always may.
func (st *state) startStands(m *storage.InboxMessage) bool {
	return m.StatusRevision == 0 ||
		st.status != nil && st.statusRev == m.StatusRevision && st.status.RuntimeStatus == jetflow.StatusPending
}

// statusOf is the status of the instance in state st.
func (st *state) statusOf(id string, custom json.RawMessage, now time.Time) *jetflow.Status {
	s := &jetflow.Status{
		Name:            st.started.Name,
		InstanceID:      id,
		RuntimeStatus:   jetflow.StatusRunning,
		Input:           st.started.Input,
		CustomStatus:    custom,
		CreatedTime:     jetflow.Time{Time: st.started.Time.UTC().Truncate(time.Second)},
		LastUpdatedTime: jetflow.Time{Time: now.UTC().Truncate(time.Second)},
		RequestID:       st.started.RequestID,
	}
	s.ScheduledStartTime.Time = st.started.ScheduledStart
	s.Version, s.Tags = st.started.Version, st.started.Tags
	if st.suspended {
		s.RuntimeStatus = jetflow.StatusSuspended
	}
	if d := st.done; d != nil {
		switch d.Status {
		case history.StatusCompleted:
			s.RuntimeStatus, s.Output = jetflow.StatusCompleted, d.Result
		case history.StatusFailed:
			s.RuntimeStatus = jetflow.StatusFailed
			msg := "failed"
			if d.Failure != nil {
				msg = d.Failure.Message
			}
			s.Output, _ = json.Marshal(fmt.Sprintf("Orchestrator function '%s' failed: %s", st.started.Name, msg))
		case history.StatusTerminated:
			s.RuntimeStatus, s.Output = jetflow.StatusTerminated, d.Result
		case history.StatusContinuedAsNew:
			s.RuntimeStatus = jetflow.StatusContinuedAsNew
		}
	}
	return s
}

// fitStatus makes a status small enough for one message of limit bytes:
// an instance whose input and output are both near jetflow.MaxPayload
// would otherwise have a status no server stores (its write would fail
// for ever). The larger of input and output is replaced by a note; the
// value itself stays in history (showHistory gives it).
func fitStatus(s *jetflow.Status, limit int) {
	for range 2 {
		if len(s.Input)+len(s.Output)+len(s.CustomStatus)+2048 <= limit {
			return
		}
		v, what := &s.Output, "output"
		if len(s.Input) > len(s.Output) {
			v, what = &s.Input, "input"
		}
		*v, _ = json.Marshal(fmt.Sprintf("(the %s, %d bytes of JSON, is left out of the status so that it fits in one NATS message; it is in the history)", what, len(*v)))
	}
}

// sameStatus reports whether writing b over a would change what a reader
// sees, other than lastUpdatedTime. Empty JSON values and null are the same
// (a status read back from storage holds null where one computed from
// history holds nothing).
func sameStatus(a, b *jetflow.Status) bool {
	return a != nil && a.Name == b.Name && a.RuntimeStatus == b.RuntimeStatus &&
		sameJSON(a.Input, b.Input) && sameJSON(a.CustomStatus, b.CustomStatus) &&
		sameJSON(a.Output, b.Output) && a.CreatedTime.Equal(b.CreatedTime.Time) &&
		a.Version == b.Version && maps.Equal(a.Tags, b.Tags)
}

func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 {
		a = json.RawMessage("null")
	}
	if len(b) == 0 {
		b = json.RawMessage("null")
	}
	return string(a) == string(b)
}

func last(events []history.Event) *history.Event { return &events[len(events)-1] }

// currentStart returns the last ExecutionStarted among past and turn.
func currentStart(past, turn []history.Event) *history.Event {
	for _, evs := range [][]history.Event{turn, past} {
		for i := len(evs) - 1; i >= 0; i-- {
			if evs[i].Type == history.ExecutionStarted {
				return &evs[i]
			}
		}
	}
	return nil
}

// nextExecutionID derives the id of the execution after a continue-as-new,
// deterministically, so a retried turn names it the same.
func nextExecutionID(prev string) string {
	h := fnv.New64a()
	h.Write([]byte(prev))
	return strconv.FormatUint(h.Sum64(), 36)
}
