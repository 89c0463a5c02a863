package worker

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/dispatcher"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/jetstream"
)

// maxConflictRetries bounds how often one batch is retried after losing
// the history fence to another worker before it is handed back.
const maxConflictRetries = 8

// instance is one orchestration instance known to this worker: the
// messages waiting for its next turn, and its cached state.
type instance struct {
	id      string
	queue   []pending
	running bool          // a goroutine owns the instance and runs its turns
	state   *state        // nil until loaded; dropped after a conflict
	elem    *list.Element // position in Worker.idle, when idle with state
}

type pending struct {
	msg *jetstream.OrchMessage
	d   jetstream.Delivery
}

// state is what a worker knows of an instance's history.
type state struct {
	chunks    uint32              // number of the last stored chunk; 0 for none
	chunkRev  uint64              // its revision (the history fence); 0 for none
	events    []history.Event     // the current execution, from its first event
	applied   map[string]struct{} // message ids already in history
	started   *history.Event      // the current execution's ExecutionStarted; nil for none
	done      *history.Event      // its ExecutionCompleted, once finished
	suspended bool                // the execution is suspended

	status    *jetflow.Status // the last status written (or read); nil for none
	statusRev uint64          // its revision; 0 for none
	fresh     bool            // loaded from storage; the last chunk's actions not yet re-published
	lastChunk []history.Event // the events of the last chunk loaded; nil after a turn
	before    *history.Event  // the ExecutionStarted in force before lastChunk
}

// onMessage queues an inbox message for its instance and starts a turn
// runner for the instance unless one is running.
func (w *Worker) onMessage(m *jetstream.OrchMessage, d jetstream.Delivery) {
	select {
	case <-w.quit: // draining: hand it back to another worker
		d.Nak(0)
		return
	default:
	}
	w.mu.Lock()
	inst := w.instances[m.InstanceID]
	if inst == nil {
		inst = &instance{id: m.InstanceID}
		w.instances[m.InstanceID] = inst
	}
	inst.queue = append(inst.queue, pending{m, d})
	if inst.elem != nil {
		w.idle.Remove(inst.elem)
		inst.elem = nil
	}
	start := !inst.running
	inst.running = true
	if start {
		w.running.Add(1)
	}
	w.mu.Unlock()
	if start {
		go w.runInstance(inst)
	}
}

// runInstance runs turns for inst until its queue is empty. One goroutine
// at a time owns an instance, so a worker never races itself.
func (w *Worker) runInstance(inst *instance) {
	defer w.running.Done()
	select {
	case w.orchSem <- struct{}{}:
	case <-w.ctx.Done():
		w.release(inst)
		return
	}
	defer func() { <-w.orchSem }()
	for {
		w.mu.Lock()
		if len(inst.queue) == 0 {
			inst.running = false
			w.park(inst)
			w.mu.Unlock()
			return
		}
		if w.ctx.Err() != nil {
			w.mu.Unlock()
			w.release(inst)
			return
		}
		batch := w.takeBatch(inst)
		w.mu.Unlock()
		w.process(inst, batch)
	}
}

// takeBatch takes the messages of the next turn from an instance's queue:
// all of them, unless their payloads would not fit in one history chunk
// (half the server's largest message, leaving room for what the
// orchestrator adds). Called with w.mu held.
func (w *Worker) takeBatch(inst *instance) []pending {
	budget := int(w.store.Conn().MaxPayload() / 2)
	n, size := 0, 0
	for n < len(inst.queue) {
		ev := &inst.queue[n].msg.Event
		size += len(ev.Input) + len(ev.Result) + 256
		if n > 0 && size > budget {
			break
		}
		n++
	}
	batch := inst.queue[:n:n]
	inst.queue = inst.queue[n:]
	if len(inst.queue) == 0 {
		inst.queue = nil
	}
	return batch
}

// release hands an instance's queued messages back undone (on shutdown),
// for another worker to take at once.
func (w *Worker) release(inst *instance) {
	w.mu.Lock()
	queue := inst.queue
	inst.queue, inst.running = nil, false
	delete(w.instances, inst.id)
	w.mu.Unlock()
	for _, p := range queue {
		p.d.Nak(0)
	}
}

// park files an instance without work as idle, evicting the least recently
// used idle instances beyond the cache size. Called with w.mu held.
func (w *Worker) park(inst *instance) {
	if inst.state == nil || w.cfg.CacheSize < 0 {
		delete(w.instances, inst.id)
		return
	}
	inst.elem = w.idle.PushFront(inst)
	for w.idle.Len() > w.cfg.CacheSize {
		old := w.idle.Remove(w.idle.Back()).(*instance)
		old.elem = nil
		delete(w.instances, old.id)
	}
}

// process runs one turn over a batch of messages and acknowledges them
// once the turn is committed.
func (w *Worker) process(inst *instance, batch []pending) {
	log := w.log.With(slog.String("instance_id", inst.id))
	for attempt := 0; ; attempt++ {
		deferred, err := w.turn(inst, batch, attempt == 0)
		if err == nil {
			for i, p := range batch {
				if len(deferred) > 0 && deferred[0] == i {
					deferred = deferred[1:]
					p.d.Nak(time.Second)
					continue
				}
				p.d.Ack()
			}
			return
		}
		inst.state = nil // reload before the next try
		if errors.Is(err, jetstream.ErrConflict) {
			w.conflicts.Add(1)
		}
		if errors.Is(err, jetstream.ErrConflict) && attempt < maxConflictRetries {
			log.Debug("another worker extended the history first; reloading", slog.Int("attempt", attempt+1))
			continue
		}
		if w.ctx.Err() == nil {
			log.Warn("turn failed; its messages will be redelivered", slog.Any("error", err))
		}
		for _, p := range batch {
			p.d.Nak(retryDelay(p.d.NumDelivered()))
		}
		return
	}
}

// turn applies a batch to an instance: it loads the instance if needed,
// runs the orchestrator, and commits. deferred lists the messages (indexes
// into batch) to hand back for later instead of acknowledging.
//
// guess allows the start of a new instance to skip loading (see load); a
// retry after a conflict loads.
func (w *Worker) turn(inst *instance, batch []pending, guess bool) (deferred []int, err error) {
	ctx := w.ctx
	if inst.state == nil {
		st, err := w.load(ctx, inst.id, batch, guess)
		if err != nil {
			return nil, err
		}
		inst.state = st
	}
	st := inst.state
	justLoaded := st.fresh
	if st.fresh {
		// The worker that wrote the last chunk may have died before
		// publishing its actions: publish them again (duplicates are dropped).
		if err := jetstream.FirstError(w.disp.Commit(ctx, st.executionBefore(inst.id), st.lastChunk)); err != nil {
			return nil, err
		}
		st.fresh, st.lastChunk, st.before = false, nil, nil
	}
	now := w.cfg.Now().UTC()

	if !justLoaded && surprising(st, batch) {
		// Decide nothing on the word of a cache: another worker may have
		// run this id since (finished it, or started a new run). The
		// status moves with every run and turn; if it moved, reload and
		// take the batch again.
		if stale, err := w.stale(ctx, inst.id, st); err != nil || stale {
			if err == nil {
				err = fmt.Errorf("cached state of %s is stale: %w", inst.id, jetstream.ErrConflict)
			}
			return nil, err
		}
	}
	// A rewind of a failed execution is a turn of its own; the batch's
	// other messages are handed back for the next one (the execution runs
	// again then).
	for i := range batch {
		ev := &batch[i].msg.Event
		if ev.Type != history.ExecutionRewound || st.isApplied(ev.MsgID) || !st.failed() {
			continue
		}
		for j := range batch {
			if j != i && !st.isApplied(batch[j].msg.Event.MsgID) {
				deferred = append(deferred, j)
			}
		}
		return deferred, w.rewind(ctx, inst.id, st, ev, now)
	}
	// The start of a new execution, if the batch holds one: the batch's
	// other messages apply to it, whatever their order.
	var start *history.Event
	for i := range batch {
		ev := &batch[i].msg.Event
		if ev.Type != history.ExecutionStarted || st.isApplied(ev.MsgID) {
			continue
		}
		if start != nil || (st.started != nil && st.done == nil) {
			w.refuseStart(ctx, inst.id, st, start, ev)
			continue
		}
		start = ev
	}
	var events []history.Event
	startPending := sync.OnceValue(func() bool { return w.startPending(ctx, inst.id) })
	// A message can be in a batch twice: its ack wait ran out while it
	// waited in this worker's queue, and the server delivered it again.
	inBatch := make(map[string]struct{}, len(batch))
	for i := range batch {
		m := batch[i].msg
		ev := m.Event
		if ev.Type == history.ExecutionStarted || ev.Type == history.ExecutionRewound || st.isApplied(ev.MsgID) {
			continue // a rewind of an execution that has not failed is dropped
		}
		if ev.MsgID != "" {
			if _, twice := inBatch[ev.MsgID]; twice {
				continue
			}
			inBatch[ev.MsgID] = struct{}{}
		}
		current := st.started
		if start != nil {
			current = start
		} else if st.done != nil {
			current = nil
		}
		if current == nil {
			// Nothing runs. An event or command raised just after a start can
			// overtake the start message (a redelivery): keep it for the
			// execution about to begin. Otherwise drop it: the instance is
			// unknown or finished.
			if m.ExecutionID == "" && startPending() {
				deferred = append(deferred, i)
			}
			continue
		}
		if m.ExecutionID != "" && m.ExecutionID != current.ExecutionID {
			continue // for an earlier execution
		}
		events = append(events, ev)
	}
	if start == nil && len(events) == 0 {
		if justLoaded {
			return deferred, w.settle(ctx, inst.id, st)
		}
		return deferred, nil
	}

	turn := []history.Event{{Type: history.OrchestratorStarted, Time: now}}
	past := st.events
	if start != nil {
		past = nil
		turn = append(turn, *start)
	}
	turn = append(turn, events...)
	if poison := w.poison(batch); poison != "" && start == nil && st.started != nil && st.done == nil {
		// Running this batch has failed every time: end the instance
		// without running the orchestrator again.
		turn = append(turn, history.Event{Type: history.ExecutionCompleted, Time: now, Status: history.StatusFailed,
			Failure: &history.Failure{Type: "PoisonMessage", Message: poison}})
		return deferred, w.commit(ctx, inst.id, st, turn, st.customStatus())
	}
	if start == nil && holds(st.suspended, events) {
		// Suspended: record what arrived, run nothing until resumed.
		return deferred, w.commit(ctx, inst.id, st, turn, st.customStatus())
	}
	res := w.exec.Execute(inst.id, past, turn)
	chunk := append(turn, res.Events...)
	// Continue-as-new starts the next execution in the same commit.
	for i := 0; res.Done && last(res.Events).Status == history.StatusContinuedAsNew && i < 100; i++ {
		begun := started(past, turn)
		next := []history.Event{{Type: history.OrchestratorStarted, Time: now}, {
			Type: history.ExecutionStarted, Time: now, Name: begun.Name, Input: last(res.Events).Result,
			ExecutionID: nextExecutionID(begun.ExecutionID), Parent: begun.Parent,
		}}
		next = append(next, res.CarryOver...)
		past, turn = nil, next
		res = w.exec.Execute(inst.id, nil, next)
		chunk = append(chunk, next...)
		chunk = append(chunk, res.Events...)
	}

	return deferred, w.commit(ctx, inst.id, st, chunk, res.CustomStatus)
}

// rewind commits the turn that rewinds a failed execution: the failures
// leave the history (see history.Rewound), the execution takes a new id,
// and what failed or was still running when it failed is sent again.
func (w *Worker) rewind(ctx context.Context, id string, st *state, ev *history.Event, now time.Time) error {
	marker := *ev
	marker.ExecutionID = nextExecutionID(st.started.ExecutionID + "/" + ev.MsgID)
	turn := []history.Event{{Type: history.OrchestratorStarted, Time: now}, marker}
	turn = append(turn, history.Pending(history.Rewound(append(slices.Clip(st.events), marker)))...)
	res := w.exec.Execute(id, st.events, turn)
	return w.commit(ctx, id, st, append(turn, res.Events...), res.CustomStatus)
}

// commit stores the next history chunk (the fence), then publishes its
// actions and the status.
func (w *Worker) commit(ctx context.Context, id string, st *state, chunk []history.Event, custom json.RawMessage) error {
	n := st.chunks + 1
	rev, err := w.store.AppendChunk(ctx, id, n, st.chunkRev, chunk)
	if err != nil {
		return err
	}
	ex := st.executionBefore(id)
	w.turns.Add(1)
	st.chunks, st.chunkRev = n, rev
	st.add(chunk)
	return w.publish(ctx, id, st, ex, chunk, custom)
}

// holds reports whether a turn with these events leaves the orchestrator
// suspended: it was suspended, or is suspended now, and is neither resumed
// nor terminated by them.
func holds(suspended bool, events []history.Event) bool {
	for _, e := range events {
		switch e.Type {
		case history.ExecutionSuspended:
			suspended = true
		case history.ExecutionResumed:
			suspended = false
		case history.ExecutionTerminated:
			return false
		}
	}
	return suspended
}

// retryDelay is how long a message whose turn failed on its n-th delivery
// waits before the next: 1 s, doubling up to a minute, so that transient
// failures take minutes to reach MaxDeliveries.
func retryDelay(n uint64) time.Duration {
	if n > 7 {
		return time.Minute
	}
	return min(time.Second<<(max(n, 1)-1), time.Minute)
}

// poison describes the first message of the batch delivered more than
// MaxDeliveries times, or returns "".
func (w *Worker) poison(batch []pending) string {
	for _, p := range batch {
		if n := p.d.NumDelivered(); w.poisoned(n) {
			return fmt.Sprintf("message %s (%s) was delivered %d times without being handled (its worker crashed or hung each time); giving up",
				p.msg.Event.MsgID, p.msg.Event.Type, n)
		}
	}
	return ""
}

// surprising reports whether a batch holds a message that the cached
// state would refuse or drop, or that starts another execution: the cases
// where a stale cache would lose a message.
func surprising(st *state, batch []pending) bool {
	for _, p := range batch {
		m := p.msg
		if st.isApplied(m.Event.MsgID) {
			continue
		}
		switch {
		case st.started == nil || st.done != nil:
			return true // nothing runs, as far as the cache knows
		case m.Event.Type == history.ExecutionStarted && m.Event.ExecutionID != st.started.ExecutionID:
			return true // a new run while one runs
		case m.ExecutionID != "" && m.ExecutionID != st.started.ExecutionID:
			return true // for another run
		}
	}
	return false
}

// stale reports whether the instance's stored status has moved past the
// one st knows, so that st may miss a newer run.
func (w *Worker) stale(ctx context.Context, id string, st *state) (bool, error) {
	se, err := w.store.GetStatus(ctx, id)
	if errors.Is(err, jetstream.ErrNotFound) {
		return st.status != nil, nil
	}
	if err != nil {
		return false, err
	}
	return se.Revision != st.statusRev, nil
}

// startPending reports whether the instance's status is Pending (its start
// message is on its way), or may be: when the status cannot be read (its
// stream is electing a leader, say), the message is kept for later rather
// than dropped.
func (w *Worker) startPending(ctx context.Context, id string) bool {
	se, err := w.store.GetStatus(ctx, id)
	if err != nil {
		return !errors.Is(err, jetstream.ErrNotFound)
	}
	return se.Status.RuntimeStatus == jetflow.StatusPending
}

// customStatus is the custom status last written or read, if any.
func (st *state) customStatus() json.RawMessage {
	if st.status == nil {
		return nil
	}
	return st.status.CustomStatus
}

// failed reports whether the current execution ended by failing.
func (st *state) failed() bool {
	return st.done != nil && st.done.Status == history.StatusFailed
}

// isApplied reports whether the message with this id is in history.
func (st *state) isApplied(msgID string) bool {
	_, ok := st.applied[msgID]
	return ok && msgID != ""
}

// settle writes the status of a freshly loaded instance if it lags its
// history (the last writer died between its commit and its status write).
func (w *Worker) settle(ctx context.Context, id string, st *state) error {
	if st.started == nil {
		return nil
	}
	custom := st.customStatus()
	if st.done == nil {
		custom = w.exec.Execute(id, st.events, nil).CustomStatus
	}
	return w.publish(ctx, id, st, dispatcher.Execution{}, nil, custom)
}

// refuseStart drops a start message for an instance that is running; a
// sub-orchestration's parent is told its child could not start.
func (w *Worker) refuseStart(ctx context.Context, id string, st *state, batchStart, ev *history.Event) {
	if st.started != nil && ev.ExecutionID == st.started.ExecutionID || batchStart != nil && ev.ExecutionID == batchStart.ExecutionID {
		return // a redelivery
	}
	w.log.Warn("dropping start of an instance that is running", slog.String("instance_id", id))
	if ev.Parent == nil {
		return
	}
	done := &history.Event{Type: history.ExecutionCompleted, Time: w.cfg.Now().UTC(), Status: history.StatusFailed,
		Failure: &history.Failure{Type: "InstanceExists", Message: fmt.Sprintf("instance %q is already running", id)}}
	if err := w.disp.SendParentResult(ctx, ev.Parent, ev.Name, ev.ExecutionID, done); err != nil {
		w.log.Warn("telling a parent its sub-orchestration did not start", slog.String("instance_id", id), slog.Any("error", err))
	}
}

// publish sends a committed chunk's actions and the new status.
func (w *Worker) publish(ctx context.Context, id string, st *state, ex dispatcher.Execution, chunk []history.Event, custom json.RawMessage) error {
	status := st.statusOf(id, custom, w.cfg.Now())
	var extra []jetstream.Outgoing
	if !sameStatus(st.status, status) {
		out, err := w.store.StatusWrite(id, status, st.statusRev)
		if err != nil {
			return err
		}
		extra = append(extra, out)
	}
	res := w.disp.Commit(ctx, ex, chunk, extra...)
	if len(extra) == 0 {
		return jetstream.FirstError(res)
	}
	if err := jetstream.FirstError(res[:len(res)-1]); err != nil {
		return err
	}
	sr := res[len(res)-1]
	switch {
	case sr.Err == nil:
		st.status, st.statusRev = status, sr.Seq
		return nil
	case errors.Is(sr.Err, jetstream.ErrConflict):
		return w.settleStatus(ctx, id, st, status)
	}
	return sr.Err
}

// settleStatus writes status after a compare-and-set conflict: another
// worker wrote the status meanwhile. Ours still goes in unless a later
// chunk exists (its writer has a newer status), so status never goes
// backwards.
func (w *Worker) settleStatus(ctx context.Context, id string, st *state, status *jetflow.Status) error {
	for range maxConflictRetries {
		// Read the revision first, then look for a later chunk: a newer
		// status can only have been written after its chunk, so if there is
		// no later chunk now, the revision read is not a newer commit's, and
		// one written from now on makes the compare-and-set below fail.
		var rev uint64
		cur, err := w.store.GetStatus(ctx, id)
		switch {
		case err == nil:
			rev = cur.Revision
		case !errors.Is(err, jetstream.ErrNotFound):
			return err
		case st.statusRev != 0:
			// There was a status and it is gone: the instance was purged
			// (only finished instances are). Writing one would bring back
			// an instance without history.
			return nil
		}
		if cur != nil && sameStatus(&cur.Status, status) {
			// Another worker wrote this very status (it replayed the same
			// history): writing it again would only repeat it to watchers.
			st.status, st.statusRev = &cur.Status, cur.Revision
			return nil
		}
		later, err := w.store.ChunkExists(ctx, id, st.chunks+1)
		if err != nil {
			return err
		}
		if later {
			return jetstream.ErrConflict // our cache is stale: reload
		}
		nrev, err := w.store.PutStatus(ctx, id, status, rev)
		if err == nil {
			st.status, st.statusRev = status, nrev
			return nil
		}
		if !errors.Is(err, jetstream.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("writing status of %s: %w", id, jetstream.ErrConflict)
}

// load reads an instance's history and status. A batch that starts a new
// instance skips the read: creating chunk 1 fails if the instance has
// history, and then the turn is retried with a full load.
func (w *Worker) load(ctx context.Context, id string, batch []pending, guess bool) (*state, error) {
	st := &state{applied: map[string]struct{}{}}
	if first := batch[0].msg; guess && first.Event.Type == history.ExecutionStarted {
		st.statusRev = first.StatusRevision // 0: none written yet
		return st, nil
	}
	w.loads.Add(1)
	// The status is read before the history: its revision then belongs to
	// a commit no newer than the history read, so a status computed from
	// this history can never overwrite a newer one (the compare-and-set
	// fails, and settleStatus finds the later chunk).
	se, err := w.store.GetStatus(ctx, id)
	switch {
	case err == nil:
		st.status, st.statusRev = &se.Status, se.Revision
	case !errors.Is(err, jetstream.ErrNotFound):
		return nil, err
	}
	chunks, err := w.store.LoadHistory(ctx, id)
	if err != nil {
		return nil, err
	}
	st.fresh = len(chunks) > 0
	for i, c := range chunks {
		if i == len(chunks)-1 {
			st.before = st.started
			st.lastChunk = c.Events
		}
		st.chunks, st.chunkRev = c.Number, c.Revision
		st.add(c.Events)
	}
	return st, nil
}

// executionBefore is the execution in progress before the last chunk was
// added (before a turn: the current one). A chunk's actions belong to it
// until the chunk starts another execution.
func (st *state) executionBefore(id string) dispatcher.Execution {
	b := st.started
	if st.fresh {
		b = st.before
	}
	if b == nil {
		return dispatcher.Execution{InstanceID: id}
	}
	return dispatcher.Execution{InstanceID: id, ExecutionID: b.ExecutionID, Name: b.Name, Parent: b.Parent}
}

// add appends committed events to the state. An ExecutionStarted begins
// a new execution, from the OrchestratorStarted before it.
func (st *state) add(events []history.Event) {
	for i := range events {
		e := &events[i]
		if e.MsgID != "" {
			st.applied[e.MsgID] = struct{}{}
		}
		if e.Type == history.ExecutionStarted {
			var carry []history.Event
			if n := len(st.events); n > 0 && st.events[n-1].Type == history.OrchestratorStarted {
				carry = st.events[n-1:]
			}
			st.events = append([]history.Event(nil), carry...)
		}
		st.events = append(st.events, *e)
	}
	st.events = history.Rewound(st.events)
	st.started, st.done, st.suspended = nil, nil, false
	for i := range st.events {
		switch st.events[i].Type {
		case history.ExecutionStarted:
			st.started = &st.events[i]
		case history.ExecutionCompleted:
			st.done = &st.events[i]
		case history.ExecutionSuspended:
			st.suspended = true
		case history.ExecutionResumed:
			st.suspended = false
		}
	}
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
	}
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

// sameStatus reports whether writing b over a would change what a reader
// sees, other than lastUpdatedTime. Empty JSON values and null are the same
// (a status read back from storage holds null where one computed from
// history holds nothing).
func sameStatus(a, b *jetflow.Status) bool {
	return a != nil && a.Name == b.Name && a.RuntimeStatus == b.RuntimeStatus &&
		sameJSON(a.Input, b.Input) && sameJSON(a.CustomStatus, b.CustomStatus) &&
		sameJSON(a.Output, b.Output) && a.CreatedTime.Equal(b.CreatedTime.Time)
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

// started returns the last ExecutionStarted among past and turn.
func started(past, turn []history.Event) *history.Event {
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
