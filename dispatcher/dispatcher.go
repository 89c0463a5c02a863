// Package dispatcher publishes every orchestration and activity message of
// a hub: new instances, external events, terminations, activity tasks and
// their results, durable timers, sub-orchestration starts and the results
// sent back to parents. Workers and clients go through it; nothing else
// writes to the inbox or task streams.
//
// Every message carries a message id derived from what it is (execution id
// + task id, for example), so publishing the same action twice is harmless:
// the stream drops the duplicate within its window and the instance's
// history drops it after.
//
// It is the engine's plumbing: worker.New and client.New make their own
// dispatcher, and its API takes the engine's storage (internal/storage),
// which programs outside jetflow cannot name.
package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"strconv"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/nats-io/nuid"
)

// Dispatcher publishes messages through a store. It is safe for concurrent
// use. Workers and clients make their own; users never need one.
type Dispatcher struct {
	store *storage.Store
	now   func() time.Time
}

// New returns a dispatcher publishing through store, on its clock.
func New(store *storage.Store) *Dispatcher {
	return &Dispatcher{store: store, now: store.Now}
}

// Start is a request to start an instance (StartInstance). The caller
// validates the id, name and input.
type Start struct {
	// ID is the instance id.
	ID string
	// Name is the orchestrator's name.
	Name string
	// Input is the input JSON; empty for none.
	Input json.RawMessage
	// RequestID, when not empty, names the request (see StartInstance).
	RequestID string
	// At, when more than MinStartDelay after now, is when the instance is
	// to start, rounded up to the second: its Pending status records it,
	// and its start message is a message schedule that the server delivers
	// then. A zero, past or nearer time starts the instance at once.
	At time.Time
	// Version and Tags, when set, are the run's version and tags (its
	// status and ExecutionStarted carry them). The caller validates them.
	Version string
	Tags    map[string]string
}

// MinStartDelay is how far ahead a start time (Start.At) must be for the
// start to be scheduled; a nearer one starts at once.
const MinStartDelay = time.Second

// StartInstance creates an instance: it writes its Pending status, which
// fails with jetflow.ErrInstanceExists while an instance with that id is
// Pending, Running or Suspended, and then sends it the ExecutionStarted
// message, or schedules it for s.At. A finished instance with the same id
// is replaced by the new one.
//
// The Pending status is the durable record of the start: the start
// message is derived from it (its execution id from the status
// revision), so anyone can send it again (ResendStart). When a write's
// answer is lost, the error wraps jetflow.ErrOutcomeUnknown and the
// instance may be Pending. s.RequestID, when not empty, names the request:
// the same call again (same id, name and request id) finds the run the
// first one made, in whatever state, sends its start again while it is
// Pending (a scheduled start is scheduled again, for its own time, on the
// same subject, which holds one schedule), and returns its status; so
// exactly one run runs, even when it finished before the retry. Without a
// request id, a retry that finds the instance Pending with the same name
// and input sends the start again and fails with ErrInstanceExists; one
// that finds it finished starts a second run.
func (d *Dispatcher) StartInstance(ctx context.Context, s Start) (*jetflow.Status, error) {
	id, name, input, requestID := s.ID, s.Name, s.Input, s.RequestID
	registered, err := d.store.IsRegistered(ctx, storage.KindOrchestrator, name)
	if err != nil {
		return nil, err
	}
	if !registered {
		return nil, fmt.Errorf("%w: %q is not registered with any worker", jetflow.ErrUnknownOrchestrator, name)
	}
	var rev uint64
	prev, err := d.store.GetStatus(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return nil, err
	case requestID != "" && prev.Status.RequestID == requestID && prev.Status.Name == name:
		// A retry of a start that was stored: the run it made is the
		// answer, whatever its state.
		if err := d.ResendStart(ctx, prev); err != nil {
			return nil, fmt.Errorf("starting %q: %w (%w)", id, jetflow.ErrOutcomeUnknown, err)
		}
		return &prev.Status, nil
	case prev.Status.RuntimeStatus == jetflow.StatusPending && prev.Status.Name == name && sameJSON(prev.Status.Input, input):
		// Maybe a retry of a start whose outcome was unknown: make sure
		// its start message is sent, and answer that the instance exists.
		if err := d.ResendStart(ctx, prev); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %q is Pending", jetflow.ErrInstanceExists, id)
	case !prev.Status.Finished():
		return nil, fmt.Errorf("%w: %q is %s", jetflow.ErrInstanceExists, id, prev.Status.RuntimeStatus)
	default:
		rev = prev.Revision
	}
	now := d.now().UTC().Truncate(time.Second)
	st := &jetflow.Status{
		Name:               name,
		InstanceID:         id,
		RuntimeStatus:      jetflow.StatusPending,
		Input:              input,
		CreatedTime:        jetflow.Time{Time: now},
		LastUpdatedTime:    jetflow.Time{Time: now},
		RequestID:          requestID,
		ScheduledStartTime: jetflow.Time{Time: scheduledFor(s.At, d.now())},
		Version:            s.Version,
		Tags:               s.Tags,
	}
	newRev, err := d.store.PutStatus(ctx, id, st, rev)
	switch {
	case errors.Is(err, storage.ErrConflict):
		return nil, fmt.Errorf("%w: %q was started at the same time by another request", jetflow.ErrInstanceExists, id)
	case errors.Is(err, storage.ErrTooLarge):
		return nil, fmt.Errorf("%w: the instance's status: %w", jetflow.ErrPayloadTooLarge, err)
	case err != nil:
		return nil, fmt.Errorf("starting %q: %w (%w)", id, jetflow.ErrOutcomeUnknown, err)
	}
	if err := d.sendStart(ctx, st, newRev); err != nil {
		// The start message may have been stored (a timeout says nothing
		// else): the Pending status stays, and a retry, or a worker that
		// meets the Pending status, sends the same start again.
		return nil, fmt.Errorf("starting %q: %w (%w)", id, jetflow.ErrOutcomeUnknown, err)
	}
	return st, nil
}

// scheduledFor is the time a start asked for at, made at now, is
// scheduled for: at rounded up to the second (a schedule holds whole
// seconds, and a run never starts before its time), or zero when it is
// not more than MinStartDelay ahead (the start is sent at once).
func scheduledFor(at, now time.Time) time.Time {
	if at.IsZero() || !at.After(now.Add(MinStartDelay)) {
		return time.Time{}
	}
	at = at.UTC()
	if sec := at.Truncate(time.Second); !sec.Equal(at) {
		at = sec.Add(time.Second)
	}
	return at
}

// ResendStart sends again the start message of an instance whose status
// is Pending: the same message as the first (derived from the status and
// its revision), so a duplicate is dropped by message id or by history.
// It heals a start whose message was never stored. A start scheduled for
// a time still to come is scheduled again for that time, on its own
// subject (one schedule a subject: never two); once the time has passed,
// it is sent at once.
func (d *Dispatcher) ResendStart(ctx context.Context, pending *storage.StatusEntry) error {
	if pending.Status.RuntimeStatus != jetflow.StatusPending {
		return nil
	}
	return d.sendStart(ctx, &pending.Status, pending.Revision)
}

// sendStart sends the start message of the Pending status st (at revision
// rev), or schedules it while its scheduled time is to come.
func (d *Dispatcher) sendStart(ctx context.Context, st *jetflow.Status, rev uint64) error {
	m := StartMessage(st.InstanceID, st, rev)
	at := st.ScheduledStartTime.Time
	if at.IsZero() || !at.After(d.now()) {
		return d.send(ctx, m)
	}
	out, err := d.store.StartWrite(m, at)
	if err != nil {
		return err
	}
	return storage.FirstError(d.store.Publish(ctx, out))
}

// StartMessage is the start message of the run whose Pending status st
// was written at revision rev. Its execution id is derived from the
// instance id and rev, which no other run of the id shares, so every
// sender of a run's start (the starter, a retry, a worker healing a lost
// start, a worker terminating the run before it began) sends the same
// message, and history applies it once.
func StartMessage(id string, st *jetflow.Status, rev uint64) *storage.InboxMessage {
	h := fnv.New64a()
	h.Write([]byte(id))
	exec := "s" + strconv.FormatUint(h.Sum64(), 36) + "-" + strconv.FormatUint(rev, 36)
	at := st.CreatedTime.UTC()
	return &storage.InboxMessage{InstanceID: id, Orchestrator: st.Name, ExecutionID: exec, StatusRevision: rev, Event: history.Event{
		Type: history.ExecutionStarted, Time: at, Name: st.Name, Input: st.Input,
		ExecutionID: exec, MsgID: exec + ":start", Rules: history.CurrentRules, RequestID: st.RequestID,
		ScheduledStart: st.ScheduledStartTime.UTC(), Version: st.Version, Tags: st.Tags, StatusRevision: rev,
	}}
}

// sameJSON reports whether two JSON values are the same text but for
// insignificant space (empty and null are the same).
func sameJSON(a, b json.RawMessage) bool {
	compact := func(v json.RawMessage) string {
		if len(v) == 0 {
			return "null"
		}
		var buf bytes.Buffer
		if json.Compact(&buf, v) != nil {
			return string(v)
		}
		return buf.String()
	}
	return compact(a) == compact(b)
}

// RaiseEvent sends an external event to an instance. It fails with
// jetflow.ErrInstanceNotFound or jetflow.ErrInstanceFinished.
func (d *Dispatcher) RaiseEvent(ctx context.Context, id, name string, data json.RawMessage) error {
	orch, err := d.active(ctx, id)
	if err != nil {
		return err
	}
	return d.send(ctx, &storage.InboxMessage{InstanceID: id, Orchestrator: orch, Event: history.Event{
		Type: history.EventRaised, Time: d.now().UTC(), Name: name, Input: data, MsgID: nuid.Next(),
	}})
}

// Terminate asks an instance to stop, with reason (JSON) as its output.
// It fails with jetflow.ErrInstanceNotFound or jetflow.ErrInstanceFinished.
func (d *Dispatcher) Terminate(ctx context.Context, id string, reason json.RawMessage) error {
	return d.control(ctx, id, history.ExecutionTerminated, reason)
}

// TerminateRecursive is Terminate, and the commit that terminates the
// instance also terminates, the same way, the sub-orchestrations it
// started that are still running (see PublishActions), so a whole tree
// stops, depth-first, through the outbox of each commit.
func (d *Dispatcher) TerminateRecursive(ctx context.Context, id string, reason json.RawMessage) error {
	return d.command(ctx, id, history.Event{Type: history.ExecutionTerminated, Input: reason, Recursive: true})
}

// Suspend pauses an instance: until Resume, events, activity results and
// timers that reach it are recorded but its orchestrator does not run. It
// fails with jetflow.ErrInstanceNotFound or jetflow.ErrInstanceFinished.
func (d *Dispatcher) Suspend(ctx context.Context, id string, reason json.RawMessage) error {
	return d.control(ctx, id, history.ExecutionSuspended, reason)
}

// Resume lets a suspended instance run again, applying what arrived while
// it was suspended. It fails like Suspend.
func (d *Dispatcher) Resume(ctx context.Context, id string, reason json.RawMessage) error {
	return d.control(ctx, id, history.ExecutionResumed, reason)
}

// Rewind asks a failed instance to run again from where it failed: its
// failed activities and sub-orchestrations are retried, and what succeeded
// is kept. reason (JSON) is recorded in history. It fails with
// jetflow.ErrInstanceNotFound, or jetflow.ErrInstanceNotFailed unless the
// instance is Failed.
func (d *Dispatcher) Rewind(ctx context.Context, id string, reason json.RawMessage) error {
	st, err := d.store.GetStatus(ctx, id)
	if err != nil {
		return err
	}
	if st.Status.RuntimeStatus != jetflow.StatusFailed {
		return fmt.Errorf("%w: %q is %s; only a failed instance can be rewound", jetflow.ErrInstanceNotFailed, id, st.Status.RuntimeStatus)
	}
	return d.send(ctx, &storage.InboxMessage{InstanceID: id, Orchestrator: st.Status.Name, Event: history.Event{
		Type: history.ExecutionRewound, Time: d.now().UTC(), Input: reason, MsgID: nuid.Next(),
	}})
}

func (d *Dispatcher) control(ctx context.Context, id string, typ history.Type, reason json.RawMessage) error {
	return d.command(ctx, id, history.Event{Type: typ, Input: reason})
}

// command sends ev, stamped now with a message id of its own, to an
// instance that has not finished.
func (d *Dispatcher) command(ctx context.Context, id string, ev history.Event) error {
	orch, err := d.active(ctx, id)
	if err != nil {
		return err
	}
	ev.Time, ev.MsgID = d.now().UTC(), nuid.Next()
	return d.send(ctx, &storage.InboxMessage{InstanceID: id, Orchestrator: orch, Event: ev})
}

// active returns the orchestrator of an instance that has not finished.
func (d *Dispatcher) active(ctx context.Context, id string) (string, error) {
	st, err := d.store.GetStatus(ctx, id)
	if err != nil {
		return "", err
	}
	if st.Status.Finished() {
		return "", fmt.Errorf("%w: %q is %s", jetflow.ErrInstanceFinished, id, st.Status.RuntimeStatus)
	}
	return st.Status.Name, nil
}

func (d *Dispatcher) send(ctx context.Context, m *storage.InboxMessage) error {
	out, err := d.store.InboxWrite(m)
	if err != nil {
		return err
	}
	return storage.FirstError(d.store.Publish(ctx, out))
}

// ActivityResult sends the outcome of an activity task back to its
// instance: result on success, failure otherwise.
func (d *Dispatcher) ActivityResult(ctx context.Context, t *storage.ActivityTask, result json.RawMessage, failure *history.Failure) error {
	ev := history.Event{Type: history.TaskCompleted, Time: d.now().UTC(), TaskID: t.TaskID, Result: result,
		MsgID: t.ExecutionID + ":result:" + strconv.Itoa(int(t.TaskID))}
	if failure != nil {
		ev.Type, ev.Result, ev.Failure = history.TaskFailed, nil, failure
	}
	return d.send(ctx, &storage.InboxMessage{InstanceID: t.InstanceID, Orchestrator: t.Orchestrator, ExecutionID: t.ExecutionID, Event: ev})
}

// Execution identifies the execution whose commit is being dispatched.
type Execution struct {
	InstanceID  string
	ExecutionID string
	// Name is the orchestrator's name.
	Name string
	// Parent is set for sub-orchestrations.
	Parent *history.Parent
	// Tags are the execution's tags, which its sub-orchestrations inherit.
	Tags map[string]string
	// Events are the execution's events as the caller knows them, up to
	// and including the chunk being published, or nil. A recursive
	// termination needs them: they say which sub-orchestrations are still
	// running.
	Events []history.Event
}

// PublishActions publishes the actions of a committed history chunk (activity
// tasks, timers, sub-orchestration starts, the result to a parent, the
// start of the next execution after continue-as-new, the removal of a
// finished instance once the hub's retention has passed) together with extra
// writes prepared by the caller (the instance's status), and waits for all
// of them. The chunk must already be durable: these messages are its
// outbox, and re-publishing them after a crash is harmless.
func (d *Dispatcher) PublishActions(ctx context.Context, ex Execution, events []history.Event, extra ...storage.Outgoing) []storage.Result {
	outs := make([]storage.Outgoing, 0, len(events)+len(extra))
	for i := range events {
		out, ok, err := d.action(ctx, &ex, &events[i])
		if err != nil {
			return []storage.Result{{Err: err}}
		}
		if ok {
			outs = append(outs, out)
		}
		if e := &events[i]; e.Type == history.ExecutionTerminated && e.Recursive {
			for _, m := range ChildTerminations(&ex, e) {
				out, err := d.store.InboxWrite(m)
				if err != nil {
					return []storage.Result{{Err: err}}
				}
				outs = append(outs, out)
			}
		}
		if exp, ok, err := d.expiry(ctx, &ex, &events[i]); err != nil {
			return []storage.Result{{Err: err}}
		} else if ok {
			outs = append(outs, exp)
		}
		ex.advance(&events[i])
	}
	outs = append(outs, extra...)
	if len(outs) == 0 {
		return nil
	}
	return d.store.Publish(ctx, outs...)
}

// advance moves ex past e: a new execution (a start, or continue-as-new)
// or a rewound one (which goes on under a new id), to which the actions of
// the events after it belong.
func (ex *Execution) advance(e *history.Event) {
	switch e.Type {
	case history.ExecutionStarted:
		ex.ExecutionID, ex.Name, ex.Parent, ex.Tags = e.ExecutionID, e.Name, e.Parent, e.Tags
	case history.ExecutionRewound:
		ex.ExecutionID = e.ExecutionID
	}
}

// action returns the message that carries out one event, if any.
func (d *Dispatcher) action(ctx context.Context, ex *Execution, e *history.Event) (storage.Outgoing, bool, error) {
	id := strconv.Itoa(int(e.ID))
	switch e.Type {
	case history.TaskScheduled:
		ok, err := d.store.IsRegistered(ctx, storage.KindActivity, e.Name)
		if err != nil {
			return storage.Outgoing{}, false, err
		}
		if !ok {
			out, err := d.store.InboxWrite(&storage.InboxMessage{InstanceID: ex.InstanceID, Orchestrator: ex.Name, ExecutionID: ex.ExecutionID, Event: history.Event{
				Type: history.TaskFailed, Time: e.Time, TaskID: e.ID, MsgID: ex.ExecutionID + ":result:" + id,
				Failure: &history.Failure{Type: jetflow.FailureActivityNotRegistered,
					Message: fmt.Sprintf("activity %q is not registered with any worker", e.Name)},
			}})
			return out, true, err
		}
		out, err := d.store.TaskWrite(&storage.ActivityTask{
			InstanceID: ex.InstanceID, ExecutionID: ex.ExecutionID, Orchestrator: ex.Name, TaskID: e.ID, Name: e.Name, Input: e.Input,
			Timeout: e.Timeout, Version: e.Version, Tags: e.Tags,
		}, ex.ExecutionID+":task:"+id)
		return out, true, err
	case history.TimerCreated:
		out, err := d.store.TimerWrite(&storage.InboxMessage{InstanceID: ex.InstanceID, Orchestrator: ex.Name, ExecutionID: ex.ExecutionID, Event: history.Event{
			Type: history.TimerFired, Time: e.FireAt, TaskID: e.ID, FireAt: e.FireAt, MsgID: ex.ExecutionID + ":timer:" + id,
		}}, e.ID, e.FireAt)
		return out, true, err
	case history.SubOrchestrationCreated:
		out, err := d.store.InboxWrite(childStart(ex, e))
		return out, true, err
	case history.EventSent:
		// An event to another instance, to its orchestrator's inbox, with a
		// message id of the sender's execution and event, so that a chunk
		// published again raises it once. As with RaiseEvent, an unknown or
		// finished target gets nothing, and the sender is not told.
		st, err := d.store.GetStatus(ctx, e.InstanceID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return storage.Outgoing{}, false, nil
		case err != nil:
			return storage.Outgoing{}, false, err
		case st.Status.Finished():
			return storage.Outgoing{}, false, nil
		}
		out, err := d.store.InboxWrite(&storage.InboxMessage{InstanceID: e.InstanceID, Orchestrator: st.Status.Name, Event: history.Event{
			Type: history.EventRaised, Time: e.Time, Name: e.Name, Input: e.Input, MsgID: ex.ExecutionID + ":sent:" + id,
		}})
		return out, true, err
	case history.OrchestratorYielded:
		out, err := d.store.InboxWrite(&storage.InboxMessage{InstanceID: ex.InstanceID, Orchestrator: ex.Name, ExecutionID: ex.ExecutionID, Event: history.Event{
			Type: history.OrchestratorStarted, Time: e.Time, MsgID: ex.ExecutionID + ":yield",
		}})
		return out, true, err
	case history.ExecutionCompleted:
		if ex.Parent == nil || e.Status == history.StatusContinuedAsNew {
			return storage.Outgoing{}, false, nil
		}
		out, err := d.store.InboxWrite(ParentResult(ex.Parent, ex.Name, ex.ExecutionID, e))
		return out, true, err
	}
	return storage.Outgoing{}, false, nil
}

// childTags are the tags of the sub-orchestration that e, in execution
// ex, creates: the parent's, with those the call gave over them (as the
// Durable Task Framework merges them).
func childTags(ex *Execution, e *history.Event) map[string]string {
	if len(ex.Tags) == 0 {
		return e.Tags
	}
	tags := maps.Clone(ex.Tags)
	maps.Copy(tags, e.Tags)
	return tags
}

// childStart is the start message of the sub-orchestration that event e
// of execution ex creates.
func childStart(ex *Execution, e *history.Event) *storage.InboxMessage {
	exec := ex.ExecutionID + "-" + strconv.Itoa(int(e.ID))
	return &storage.InboxMessage{InstanceID: e.InstanceID, Orchestrator: e.Name, ExecutionID: exec, Event: history.Event{
		Type: history.ExecutionStarted, Time: e.Time, Name: e.Name, Input: e.Input, ExecutionID: exec, Rules: history.CurrentRules,
		MsgID: exec + ":start", Version: e.Version, Tags: childTags(ex, e),
		Parent: &history.Parent{InstanceID: ex.InstanceID, ExecutionID: ex.ExecutionID, TaskID: e.ID, Name: ex.Name},
	}}
}

// ChildTerminations are the messages that a recursive termination (term,
// applied to execution ex) sends to the sub-orchestrations ex.Events show
// still running: a recursive termination each, with the same reason, and
// a message id of the parent's execution and the child's task, so a chunk
// published again terminates each child once. Each carries the child's
// start event (the one its start message carries): the termination can
// reach the child before its start does (another worker took the parent's
// next turn before the turn that created the child had published its
// start), and a child that has applied no start then begins and ends its
// run with that start, without running, instead of dropping the
// termination and running for ever once its start comes. (Not when the
// child's input and the reason together are over jetflow.MaxPayload: the
// message must fit the server's limit, which one value of that size and
// its record do.)
func ChildTerminations(ex *Execution, term *history.Event) []*storage.InboxMessage {
	open := map[int32]*storage.InboxMessage{} // task -> the child's start
	var order []int32
	cur := Execution{InstanceID: ex.InstanceID, ExecutionID: ex.ExecutionID, Name: ex.Name, Parent: ex.Parent, Tags: ex.Tags}
	for i := range ex.Events {
		e := &ex.Events[i]
		cur.advance(e) // the execution whose actions e's are, as PublishActions published them
		switch e.Type {
		case history.ExecutionStarted:
			clear(open) // an execution's children are its own
			order = order[:0]
		case history.SubOrchestrationCreated:
			open[e.ID] = childStart(&cur, e)
			order = append(order, e.ID)
		case history.SubOrchestrationCompleted, history.SubOrchestrationFailed:
			delete(open, e.TaskID)
		}
	}
	var out []*storage.InboxMessage
	for _, task := range order {
		start, ok := open[task]
		if !ok {
			continue
		}
		m := &storage.InboxMessage{InstanceID: start.InstanceID, Orchestrator: start.Orchestrator, Event: history.Event{
			Type: history.ExecutionTerminated, Time: term.Time, Input: term.Input, Recursive: true,
			MsgID: ex.ExecutionID + ":terminate:" + strconv.Itoa(int(task)),
		}}
		if len(start.Event.Input)+len(term.Input) <= jetflow.MaxPayload {
			m.Start = &start.Event
		}
		out = append(out, m)
	}
	return out
}

// expiry returns, for the event that finishes an execution on a hub with a
// retention, the message that removes the instance once it has passed.
func (d *Dispatcher) expiry(ctx context.Context, ex *Execution, e *history.Event) (storage.Outgoing, bool, error) {
	if e.Type != history.ExecutionCompleted || e.Status == history.StatusContinuedAsNew {
		return storage.Outgoing{}, false, nil
	}
	keep, err := d.store.Retention(ctx)
	if err != nil || keep <= 0 {
		return storage.Outgoing{}, false, err
	}
	at := e.Time.Add(keep)
	out, err := d.store.ExpiryWrite(&storage.InboxMessage{InstanceID: ex.InstanceID, Orchestrator: ex.Name, ExecutionID: ex.ExecutionID,
		Event: history.Event{Type: history.InstanceExpired, Time: at, MsgID: ex.ExecutionID + ":expire"}}, at)
	return out, true, err
}

// ParentResult is the message telling a parent how its sub-orchestration
// (execution childExec of orchestrator name) ended, given the child's
// ExecutionCompleted event.
func ParentResult(p *history.Parent, name, childExec string, done *history.Event) *storage.InboxMessage {
	ev := history.Event{Type: history.SubOrchestrationCompleted, Time: done.Time, TaskID: p.TaskID,
		Result: done.Result, MsgID: childExec + ":done"}
	switch done.Status {
	case history.StatusFailed:
		ev.Type, ev.Result, ev.Failure = history.SubOrchestrationFailed, nil, done.Failure
	case history.StatusTerminated:
		ev.Type, ev.Result = history.SubOrchestrationFailed, nil
		ev.Failure = &history.Failure{Type: jetflow.FailureTerminated, Message: fmt.Sprintf("sub-orchestration %q was terminated: %s", name, string(done.Result))}
	}
	return &storage.InboxMessage{InstanceID: p.InstanceID, Orchestrator: p.Name, ExecutionID: p.ExecutionID, Event: ev}
}

// SendParentResult publishes ParentResult directly; a worker uses it when a
// sub-orchestration cannot even start (its id is taken).
func (d *Dispatcher) SendParentResult(ctx context.Context, p *history.Parent, name, childExec string, done *history.Event) error {
	return d.send(ctx, ParentResult(p, name, childExec, done))
}
