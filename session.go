package jetflow

import (
	"bytes"
	"container/list"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/jetflow/jetflow/internal/history"
)

// Replay sessions keep an orchestrator running between its turns, so that
// a turn of a long execution costs what its new events cost, not a replay
// of everything before them: after a turn, the replay (its orchestrator
// goroutine blocked on the task it awaits) is kept instead of unwound,
// and the next turn of the instance continues it if the history it is
// given begins with the one the session has seen, followed by the last
// turn's events and results as that turn returned them. What follows
// those (the turns other workers committed since, which the worker's
// cache caught up with, or what a suspended instance recorded without
// running) the session replays as history, as a replay from the start
// would. Anything else (a turn that was never committed, a rewind, a
// reload) fails that check, and the turn replays from the start as it
// always did. History is append-only within an execution, so checking what the
// last turn added is enough: everything before it was checked by an
// earlier turn.
//
// Only executions of at least sessionMinEvents events keep a session
// (short ones replay in microseconds), and at most sessionMaxCount
// sessions of at most sessionMaxEvents events together stay, the least
// recently used unwound first.
const (
	sessionMinEvents = 100
	sessionMaxCount  = 256
	sessionMaxEvents = 1_000_000
)

// session is a replay kept between two turns of an instance.
type session struct {
	r        *replay
	exec     string          // the execution's id (its ExecutionStarted's)
	n        int             // how many history events the replay has seen
	expect   []history.Event // what the next turn's history holds after those n: the last turn's events and results
	recorded int32           // the replay's count of matched actions once expect is history
	elem     *list.Element
}

// events is the length of the history the session stands for.
func (s *session) events() int { return s.n + len(s.expect) }

// follows reports whether past begins with the history the session
// expects; past[s.events():] is then what it has not seen.
func (s *session) follows(past []history.Event) bool {
	if len(past) < s.events() || executionOf(past) != s.exec {
		return false
	}
	for i := range s.expect {
		if !sameEvent(&past[s.n+i], &s.expect[i]) {
			return false
		}
	}
	return true
}

// executionOf returns the execution id of the first ExecutionStarted of
// events (after the OrchestratorStarted of its turn), or "".
func executionOf(events []history.Event) string {
	for i := range events {
		if events[i].Type == history.ExecutionStarted {
			return events[i].ExecutionID
		}
	}
	return ""
}

// sameEvent reports whether two events are the same record: every field
// that replay reads, and those that tell two records of one turn apart.
func sameEvent(a, b *history.Event) bool {
	return a.Type == b.Type && a.ID == b.ID && a.TaskID == b.TaskID && a.Time.Equal(b.Time) && a.Name == b.Name &&
		bytes.Equal(a.Input, b.Input) && bytes.Equal(a.Result, b.Result) && sameFailure(a.Failure, b.Failure) &&
		a.FireAt.Equal(b.FireAt) && a.InstanceID == b.InstanceID && a.ExecutionID == b.ExecutionID &&
		a.Status == b.Status && a.MsgID == b.MsgID && a.Rules == b.Rules
}

func sameFailure(a, b *history.Failure) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Type == b.Type && a.Message == b.Message
}

// sessions holds the kept replays of a replayer, by instance id.
type sessions struct {
	mu        sync.Mutex
	byID      map[string]*session
	lru       list.List // of *session, most recently kept first
	total     int       // events of all sessions
	minEvents int
	maxCount  int
	maxEvents int
	resumed   atomic.Uint64 // turns that continued a session
}

func newSessions(minEvents, maxCount, maxEvents int) *sessions {
	return &sessions{byID: map[string]*session{}, minEvents: minEvents, maxCount: maxCount, maxEvents: maxEvents}
}

// take removes and returns the session of an instance, or nil: a turn
// uses a session alone, and keeps it again when it is done.
func (ss *sessions) take(id string) *session {
	if ss == nil {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.byID[id]
	if s != nil {
		ss.remove(id, s)
	}
	return s
}

// keep stores the replay r of execution exec after a turn over a history
// of seen events and newEvents that returned results, unless the execution is too short to be worth it;
// otherwise, or when it pushes older sessions out, those replays are
// unwound.
func (ss *sessions) keep(id, exec string, r *replay, seen int, newEvents, results []history.Event) {
	if ss == nil || seen+len(newEvents) < ss.minEvents {
		r.stop()
		return
	}
	expect := make([]history.Event, 0, len(newEvents)+len(results))
	expect = append(append(expect, newEvents...), results...)
	s := &session{r: r, exec: exec, n: seen, expect: expect, recorded: int32(len(r.c.actions))}
	var unwind []*session
	ss.mu.Lock()
	if old := ss.byID[id]; old != nil { // another turn of the instance ran meanwhile
		ss.remove(id, old)
		unwind = append(unwind, old)
	}
	ss.byID[id] = s
	s.elem = ss.lru.PushFront(s)
	ss.total += s.events()
	for ss.lru.Len() > ss.maxCount || ss.total > ss.maxEvents {
		last := ss.lru.Back().Value.(*session)
		ss.remove(last.r.c.instanceID, last)
		unwind = append(unwind, last)
	}
	ss.mu.Unlock()
	for _, u := range unwind {
		u.r.stop()
	}
}

func (ss *sessions) remove(id string, s *session) {
	delete(ss.byID, id)
	ss.lru.Remove(s.elem)
	ss.total -= s.events()
}

// release unwinds every kept session.
func (ss *sessions) release() {
	if ss == nil {
		return
	}
	ss.mu.Lock()
	var all []*session
	for id, s := range ss.byID {
		ss.remove(id, s)
		all = append(all, s)
	}
	ss.mu.Unlock()
	for _, s := range all {
		s.r.stop()
	}
}

// count returns how many sessions are kept.
func (ss *sessions) count() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.byID)
}

// rewinds reports whether events hold an ExecutionRewound.
func rewinds(events []history.Event) bool {
	return slices.ContainsFunc(events, func(e history.Event) bool { return e.Type == history.ExecutionRewound })
}
