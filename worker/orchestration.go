package worker

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/dispatcher"
	"github.com/jetflow/jetflow/internal/executor"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/metrics"
)

// maxConflictRetries bounds how often one batch is retried after losing
// the history fence to another worker before it is handed back.
const maxConflictRetries = 8

// resendStartAfter is how long an instance may stay Pending, while
// messages for it wait, before a worker sends its start message again.
const resendStartAfter = 5 * time.Second

// holdBackDelay is how long a message that overtook its instance's start
// waits before the worker tries it again.
const holdBackDelay = time.Second

// instance is one orchestration instance known to this worker: the
// messages waiting for its next turn, and its cached state.
type instance struct {
	id      string
	queue   []pending
	running bool   // a goroutine owns the instance and runs its turns
	state   *state // nil until loaded; dropped after a failed turn
	// behind: another worker's commit overtook state (it lost the
	// fence), which catches up before the next turn.
	behind bool
	elem   *list.Element // position in Worker.idle, when idle with state
	// parkedBytes are the state's bytes counted in Worker.idleBytes while
	// idle.
	parkedBytes int64
	// held are messages that overtook the instance's start (it is
	// Pending): kept, with their leases, and queued again after
	// holdBackDelay by the timer retry.
	held  []pending
	retry *time.Timer
}

// pending is an inbox message the worker holds.
type pending struct {
	msg *storage.InboxMessage
	le  *lease
	// observed: its schedule-to-start time went to Config.Metrics (at
	// its first turn; not again when held back or carried).
	observed bool
}

// onMessage queues an inbox message for its instance and starts a turn
// runner for the instance unless one is running.
func (w *Worker) onMessage(m *storage.InboxMessage, d storage.Delivery) {
	le := w.leases.hold(d)
	select {
	case <-w.quit: // stopping: hand it back to another worker at once
		w.leases.nak(le, storage.HandBackDelay)
		return
	default:
	}
	w.mu.Lock()
	inst := w.instances[m.InstanceID]
	if inst == nil {
		inst = &instance{id: m.InstanceID}
		w.instances[m.InstanceID] = inst
	}
	inst.queue = append(inst.queue, pending{msg: m, le: le})
	w.wake(inst)
	w.mu.Unlock()
}

// wake starts a turn runner for inst unless one runs. Called with w.mu
// held.
func (w *Worker) wake(inst *instance) {
	if inst.elem != nil {
		w.unpark(inst)
	}
	if inst.running {
		return
	}
	inst.running = true
	w.running.Add(1)
	go w.runInstance(inst)
}

// runInstance runs turns for inst until its queue is empty. One goroutine
// at a time owns an instance, so a worker never races itself.
func (w *Worker) runInstance(inst *instance) {
	defer w.running.Done()
	select {
	case w.orchSem <- struct{}{}:
	case <-w.quit:
		w.release(inst)
		return
	}
	w.cfg.Metrics.OrchestrationSlotsUsed(1)
	defer func() {
		<-w.orchSem
		w.cfg.Metrics.OrchestrationSlotsUsed(-1)
	}()
	for {
		w.mu.Lock()
		if len(inst.queue) == 0 {
			inst.running = false
			w.park(inst)
			w.mu.Unlock()
			return
		}
		if w.stopping() {
			w.mu.Unlock()
			w.release(inst)
			return
		}
		batch := w.takeBatch(inst)
		w.mu.Unlock()
		// A message whose lease ran out while the process stalled is
		// another worker's now (or gone with a purge): not applied here.
		batch = slices.DeleteFunc(batch, func(p pending) bool {
			if w.leases.alive(p.le) {
				return false
			}
			w.leases.release(p.le)
			return true
		})
		if len(batch) > 0 {
			w.process(inst, batch)
		}
	}
}

// stopping reports whether Stop was called.
func (w *Worker) stopping() bool {
	select {
	case <-w.quit:
		return true
	default:
		return false
	}
}

// takeBatch takes the messages of the next turn from an instance's queue:
// all of them, unless their payloads would not fit in one history chunk
// (half the server's largest message, leaving room for what the
// orchestrator adds; a chunk that still grows too large fails its
// execution, see plan.fit). Called with w.mu held.
func (w *Worker) takeBatch(inst *instance) []pending {
	budget := w.maxChunk() / 2
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

// maxChunk is the largest history chunk the server stores, in encoded
// bytes: its largest message, less room for the headers and subject.
func (w *Worker) maxChunk() int { return int(w.store.Conn().MaxPayload()) - 4096 }

// release hands an instance's queued and held messages back undone (on
// shutdown), for another worker to take at once.
func (w *Worker) release(inst *instance) {
	w.mu.Lock()
	back := append(inst.queue, inst.held...)
	inst.queue, inst.held, inst.running = nil, nil, false
	if inst.retry != nil {
		inst.retry.Stop()
		inst.retry = nil
	}
	delete(w.instances, inst.id)
	w.mu.Unlock()
	for _, p := range back {
		w.leases.nak(p.le, storage.HandBackDelay)
	}
}

// releaseHeld hands back the held-back messages of the instances that no
// runner owns (on shutdown, once the runners are done).
func (w *Worker) releaseHeld() {
	w.mu.Lock()
	var held []*instance
	for _, inst := range w.instances {
		if !inst.running && len(inst.held) > 0 {
			held = append(held, inst)
		}
	}
	w.mu.Unlock()
	for _, inst := range held {
		w.release(inst)
	}
}

// park files an instance without work as idle, evicting the least recently
// used idle instances beyond the cache size. Called with w.mu held.
func (w *Worker) park(inst *instance) {
	if len(inst.held) > 0 {
		return // its retry timer brings it back
	}
	if inst.state == nil || w.cfg.CacheSize < 0 {
		delete(w.instances, inst.id)
		return
	}
	inst.elem = w.idle.PushFront(inst)
	inst.parkedBytes = inst.state.bytes
	w.idleBytes += inst.parkedBytes
	w.cfg.Metrics.CacheSize(1)
	w.cfg.Metrics.CacheBytes(inst.parkedBytes)
	for w.idle.Len() > w.cfg.CacheSize || w.idleBytes > w.cfg.CacheBytes {
		old := w.idle.Back().Value.(*instance)
		w.unpark(old)
		delete(w.instances, old.id)
	}
}

// unpark takes an idle instance out of the sticky cache's list. Called
// with w.mu held.
func (w *Worker) unpark(inst *instance) {
	w.idle.Remove(inst.elem)
	inst.elem = nil
	w.idleBytes -= inst.parkedBytes
	w.cfg.Metrics.CacheSize(-1)
	w.cfg.Metrics.CacheBytes(-inst.parkedBytes)
}

// holdBack keeps messages that overtook their instance's start, and
// queues them again after holdBackDelay. Their leases are kept alive
// meanwhile: holding back is not a delivery, so it never makes a message
// poison.
func (w *Worker) holdBack(inst *instance, ps []pending) {
	w.mu.Lock()
	defer w.mu.Unlock()
	inst.held = append(inst.held, ps...)
	if inst.retry != nil {
		return
	}
	inst.retry = time.AfterFunc(holdBackDelay, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		inst.retry = nil
		if w.stopping() || len(inst.held) == 0 {
			return // release hands them back
		}
		inst.queue = append(inst.queue, inst.held...)
		inst.held = nil
		w.wake(inst)
	})
}

// process runs one turn over a batch of messages and then acknowledges,
// keeps or hands back each message as the turn decided.
func (w *Worker) process(inst *instance, batch []pending) {
	log := w.log.With(slog.String("instance_id", inst.id))
	w.observeBatch(batch)
	for attempt := 0; ; attempt++ {
		began := time.Now()
		p, wait, err := w.turn(inst, batch, attempt == 0)
		w.cfg.Metrics.TurnDone(batch[0].msg.Orchestrator, turnResult(p, err), time.Since(began))
		if err == nil {
			var held, carried []pending
			for i, b := range batch {
				switch {
				case p.fates[i] == carry:
					carried = append(carried, b)
				case p.fates[i] == orphan && wait.pending:
					held = append(held, b)
				default:
					w.leases.ack(b.le)
				}
			}
			if len(carried) > 0 {
				w.mu.Lock()
				inst.queue = append(carried, inst.queue...)
				w.mu.Unlock()
			}
			if len(held) > 0 && wait.due.Sub(w.store.Now()) > deferAfter {
				held = w.deferHeld(inst.id, held, wait.due)
			}
			if len(held) > 0 {
				w.holdBack(inst, held)
			}
			if inst.state != nil {
				if err := w.trim(w.ctx, inst.id, inst.state); err != nil {
					log.Warn("jetflow: trimming the executions that continued as new", slog.Any("error", err))
				}
			}
			return
		}
		if errors.Is(err, errBehind) {
			inst.behind = true // catch up before the next try
		} else {
			inst.state = nil // reload before the next try
		}
		if errors.Is(err, storage.ErrConflict) {
			w.conflicts.Add(1)
		}
		if errors.Is(err, storage.ErrConflict) && attempt < maxConflictRetries {
			log.Debug("another worker extended the history first; trying again", slog.Int("attempt", attempt+1))
			continue
		}
		if w.ctx.Err() == nil {
			log.Warn("turn failed; its messages will be redelivered", slog.Any("error", err))
		}
		for _, b := range batch {
			w.leases.nak(b.le, retryDelay(b.le.d.NumDelivered()))
		}
		return
	}
}

// turn applies a batch to an instance: it loads the instance if needed,
// lets decide plan the turn, and carries the plan out (re-publishes what
// may not have been published, commits, publishes, tells refused
// parents). When the plan has orphans, it reports whether the instance is
// Pending (startPending), so that they are held back instead of dropped.
//
// guess allows the start of a new instance to skip loading (see load); a
// retry after a lost fence catches up (catchUp).
func (w *Worker) turn(inst *instance, batch []pending, guess bool) (p plan, wait startWait, err error) {
	ctx := w.ctx
	msgs, delivered := make([]*storage.InboxMessage, len(batch)), make([]uint64, len(batch))
	for i, b := range batch {
		msgs[i], delivered[i] = b.msg, b.le.d.NumDelivered()
	}
	fresh := inst.state == nil
	switch {
	case fresh:
		st, err := w.load(ctx, inst.id, batch, guess)
		if err != nil {
			return p, startWait{}, err
		}
		inst.state, inst.behind = st, false
	case inst.behind || needsFreshState(inst.state, msgs):
		// Decide nothing on the word of a cache that lost the fence, or
		// whose messages say another worker may have run this id since
		// (went on with it, finished it, or started a new run): catch up
		// with what is stored first.
		st, err := w.catchUp(ctx, inst.id, inst.state, batch)
		if err != nil {
			return p, startWait{}, err
		}
		inst.state, inst.behind = st, false
		fresh = true // read from storage: its status may lag it (catchUpStatus)
	default:
		w.cfg.Metrics.CacheLookup(metrics.CacheHit)
	}
	st := inst.state
	in := turnInput{id: inst.id, st: st, batch: msgs, delivered: delivered, now: w.store.Now().UTC(),
		maxDeliveries: w.cfg.MaxDeliveries, maxChunk: w.maxChunk()}
	if p, err = decide(w.execute, in); err != nil {
		return p, startWait{}, err
	}
	for _, n := range p.republish {
		if err := w.republish(ctx, inst.id, st, n); err != nil {
			return p, startWait{}, err
		}
	}
	if p.expire {
		// The compare-and-set on the status revision loses to a restart
		// that got in first: the turn is then taken again on fresh state.
		if err := w.store.PurgeInstance(ctx, inst.id, st.statusRev); err != nil {
			return p, startWait{}, err
		}
		w.expired.Add(1)
		inst.state = nil
		return p, startWait{}, nil
	}
	switch {
	case p.chunk != nil:
		if err := w.commit(ctx, inst.id, st, p.chunk, p.custom); err != nil {
			return p, startWait{}, err
		}
		if w.cfg.Metrics != nil && poisonOf(in) != "" && last(p.chunk).Type == history.ExecutionCompleted &&
			last(p.chunk).Failure != nil && last(p.chunk).Failure.Type == jetflow.FailurePoisonMessage {
			w.cfg.Metrics.InboxPoisoned(batch[0].msg.Orchestrator)
		}
	case fresh || len(p.republish) > 0:
		if err := w.catchUpStatus(ctx, inst.id, st); err != nil {
			return p, startWait{}, err
		}
	}
	for _, ev := range p.refused {
		w.refuseStart(ctx, inst.id, ev)
	}
	for _, f := range p.fates {
		if f == orphan {
			return p, w.startPending(ctx, inst.id, st), nil
		}
	}
	return p, startWait{}, nil
}

// execute runs the executor with a watchdog: a turn whose orchestrator
// does not give control back within Config.TurnTimeout (it blocks on
// something other than a task, or the process stalls) is given up, as a
// stalled process loses its lease: its slot is freed, its messages are
// handed back for a later try, and should the blocked code ever return,
// nothing of that turn is committed. An executor that fails (a remote
// SDK that dropped its stream) gives the turn up the same way.
func (w *Worker) execute(id string, past, turn []history.Event) (res *executor.TurnResult, err error) {
	defer func() {
		if res != nil && w.cfg.Metrics != nil {
			w.cfg.Metrics.Replay(orchestratorOf(past, turn), res.Resumed)
		}
	}()
	if w.cfg.TurnTimeout < 0 {
		return w.exec.Execute(w.ctx, id, past, turn)
	}
	ctx, cancel := context.WithTimeout(w.ctx, w.cfg.TurnTimeout)
	defer cancel()
	type outcome struct {
		res *executor.TurnResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := w.exec.Execute(ctx, id, past, turn)
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		return o.res, o.err
	case <-ctx.Done():
		if w.ctx.Err() != nil {
			return nil, fmt.Errorf("turn canceled: %w", w.ctx.Err())
		}
		w.blocked.Add(1)
		return nil, fmt.Errorf("the orchestrator did not give control back within %s (orchestrator code must not block "+
			"except by awaiting tasks: no I/O, channels, locks or time.Sleep); the turn is given up", w.cfg.TurnTimeout)
	}
}

// orchestratorOf is the orchestrator whose execution past (or, for a
// start, the turn) begins.
func orchestratorOf(past, turn []history.Event) string {
	for _, evs := range [][]history.Event{past, turn} {
		if s := leadingStart(evs); s != nil {
			return s.Name
		}
	}
	return ""
}

// fromPending reports whether events, a history's first chunk, begin a
// run started from a Pending status.
func fromPending(events []history.Event) bool {
	s := leadingStart(events)
	return s != nil && s.StatusRevision != 0
}

// leadingStart is the ExecutionStarted that begins events (a chunk or a
// turn that begins an execution: it is among their first events), or nil.
func leadingStart(events []history.Event) *history.Event {
	for i := range min(len(events), 3) {
		if events[i].Type == history.ExecutionStarted {
			return &events[i]
		}
	}
	return nil
}

// republish publishes again the actions of chunk n, one of whose messages
// came back: the message is acknowledged only after the chunk's actions
// are published, so its return means that they may not have been. This
// is decided from what is stored, not from the streams' duplicate window:
// actions whose messages were acknowledged are never sent again.
func (w *Worker) republish(ctx context.Context, id string, st *state, n uint32) error {
	before, events := st.before, st.lastChunk
	if n != st.chunks {
		// An older chunk (later turns went on while its message waited):
		// read the history to find it and the execution in force before it.
		chunks, err := w.store.LoadHistory(ctx, id)
		if err != nil {
			return err
		}
		old := newState()
		found := false
		for _, c := range chunks {
			old.addChunk(c.Number, c.Revision, c.Events, c.CustomStatus)
			if c.Number == n {
				before, events, found = old.before, c.Events, true
				break
			}
		}
		if !found {
			return nil // trimmed: its messages were all acknowledged (see trim)
		}
		st = old
	}
	ex := execution(id, before)
	ex.Events = st.events
	return storage.FirstError(w.disp.PublishActions(ctx, ex, events))
}

// commit stores the next history chunk (the fence), then publishes its
// actions and the status.
func (w *Worker) commit(ctx context.Context, id string, st *state, chunk []history.Event, custom json.RawMessage) error {
	n := st.chunks + 1
	recorded := st.chunkCustom(custom)
	rev, err := w.store.AppendChunk(ctx, id, n, st.chunkRev, chunk, recorded)
	if errors.Is(err, storage.ErrConflict) {
		return fmt.Errorf("%w: %w", errBehind, err)
	}
	if err != nil {
		return err
	}
	if n == 1 && st.statusRev != 0 {
		if err := w.firstChunkStands(ctx, id, st, rev); err != nil {
			return err
		}
	}
	ex := execution(id, st.started)
	w.turns.Add(1)
	w.observeChunk(st.started, chunk, w.cfg.Metrics != nil && !sameJSON(st.lastCustom(), custom))
	st.addChunk(n, rev, chunk, recorded)
	ex.Events = st.events
	return w.publish(ctx, id, st, ex, chunk, custom)
}

// firstChunkStands checks, before a run's first chunk (stored at
// revision rev) is acted on, that the Pending status the run started from
// (st.statusRev) was not overtaken meanwhile. The fence of a first chunk
// is an empty history, and a purge empties it too: a termination that
// found the instance Pending (another worker's commit) and a purge may
// have come between this worker's status read and its commit. Then the
// status is gone, or is a later run's Pending one, and the chunk is taken
// back (only it: a later run's chunks are stored after it) and
// ErrConflict returned, so that nothing of the turn is published and its
// messages are decided again (and dropped: the start no longer stands).
// Any other status is this run's: its Pending one, or one a worker wrote
// from this chunk (catching up, or a later turn), and so is a Pending one
// of a later run when this run has a second chunk (it went on, and ended,
// while this worker stalled).
func (w *Worker) firstChunkStands(ctx context.Context, id string, st *state, rev uint64) error {
	se, err := w.store.GetStatus(ctx, id)
	switch {
	case err == nil && (se.Revision == st.statusRev || se.Status.RuntimeStatus != jetflow.StatusPending):
		return nil
	case err == nil:
		if went, err := w.store.ChunkExists(ctx, id, 2); err != nil || went {
			return err
		}
	case !errors.Is(err, storage.ErrNotFound):
		return err // unknown: nothing is published; the messages come back
	}
	w.log.Info("a start was overtaken by a termination and a purge during its turn; its chunk is taken back",
		slog.String("instance_id", id))
	if err := w.store.TrimHistory(ctx, id, rev+1); err != nil {
		return err
	}
	return fmt.Errorf("the start of %s was overtaken: %w", id, storage.ErrConflict)
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

// errBehind: the history fence was lost, to a commit of another worker
// that the cached state does not hold.
var errBehind = errors.New("another worker's commit is not in the cached state")

// catchUp brings st, a cached state that other workers' commits may have
// overtaken, up to what is stored: it reads the status, then the chunks
// from st's last one on, and adds those after it, so that it costs what
// was committed since, not the whole history. The status is read first,
// as load reads it. When st's last chunk is no longer stored (a purge,
// or a trim after a continue-as-new), the status is gone, or st has no
// chunk, the whole instance is loaded again instead.
func (w *Worker) catchUp(ctx context.Context, id string, st *state, batch []pending) (*state, error) {
	if st.chunkRev == 0 {
		return w.load(ctx, id, batch, false)
	}
	se, err := w.store.GetStatus(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return w.load(ctx, id, batch, false)
	case err != nil:
		return nil, err
	}
	chunks, err := w.store.LoadHistoryFrom(ctx, id, st.chunkRev)
	if err != nil {
		return nil, err
	}
	if len(chunks) == 0 || chunks[0].Revision != st.chunkRev {
		return w.load(ctx, id, batch, false)
	}
	for i, c := range chunks {
		if c.Number != st.chunks+uint32(i) {
			return w.load(ctx, id, batch, false) // not one chain after st's chunk: read it all
		}
	}
	st.status, st.statusRev = &se.Status, se.Revision
	for _, c := range chunks[1:] {
		st.addChunk(c.Number, c.Revision, c.Events, c.CustomStatus)
	}
	if len(chunks) == 1 {
		w.cfg.Metrics.CacheLookup(metrics.CacheHit) // nothing new: the cache was right
	} else {
		w.catchUps.Add(1)
		w.cfg.Metrics.CacheLookup(metrics.CacheCaughtUp)
	}
	return st, nil
}

// startPending reports whether the instance's status is Pending (its start
// message is on its way), or may be: when the status cannot be read (its
// stream is electing a leader, say), or a chunk st does not know of exists
// (the start was just committed), the message is kept for later rather
// than dropped; the next try reloads.
//
// A start whose outcome was unknown to its caller may have left a Pending
// status without a start message: once the status is older than
// resendStartAfter (or, for a start scheduled for later, its time is that
// far past), the worker sends the start again (the same message, derived
// from the status, so a duplicate is dropped).
func (w *Worker) startPending(ctx context.Context, id string, st *state) startWait {
	se, err := w.store.GetStatus(ctx, id)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return startWait{pending: true}
	}
	if err != nil || se.Status.RuntimeStatus != jetflow.StatusPending {
		// Not Pending (any more): unless the start was committed since st
		// was read (its status not written yet), nothing will run them.
		later, err := w.store.ChunkExists(ctx, id, st.chunks+1)
		return startWait{pending: err != nil || later}
	}
	// A start scheduled for later is due at its time, not before: until
	// then its message is the server's schedule, and nothing is resent.
	due := se.Status.CreatedTime.Time
	if at := se.Status.ScheduledStartTime.Time; at.After(due) {
		due = at
	}
	now := w.store.Now()
	if now.Sub(due) > resendStartAfter {
		if err := w.disp.ResendStart(ctx, se); err != nil {
			w.log.Warn("sending the start of a Pending instance again", slog.String("instance_id", id), slog.Any("error", err))
		}
	}
	wait := startWait{pending: true}
	if due.After(now) {
		wait.due = due
	}
	return wait
}

// startWait is what startPending found.
type startWait struct {
	// pending: the instance is Pending, or may be: messages that overtook
	// its start are held back.
	pending bool
	// due is when the start is scheduled for, when that is to come.
	due time.Time
}

// deferAfter is how far off a scheduled start must be for the messages
// that overtook it to be deferred to its time (deferHeld) rather than
// held back and tried every holdBackDelay.
const deferAfter = 10 * time.Second

// deferHeld hands the messages that overtook a start scheduled for due to
// the server, as schedules that deliver them again at that time (among
// the instance's timers, so a purge removes them), and acknowledges them:
// held back instead, a message would keep its lease (and a slot of its
// consumer's unacknowledged messages) and a status read every second
// until the start, for hours or days. It returns those it could not
// defer, to hold back as before.
func (w *Worker) deferHeld(id string, held []pending, due time.Time) []pending {
	var outs []storage.Outgoing
	var deferred, left []pending
	for _, b := range held {
		out, err := w.store.DeferWrite(b.msg, due)
		if err != nil {
			left = append(left, b)
			continue
		}
		outs, deferred = append(outs, out), append(deferred, b)
	}
	if len(outs) == 0 {
		return left
	}
	for i, r := range w.store.Publish(w.ctx, outs...) {
		if r.Err != nil {
			w.log.Warn("deferring a message to the scheduled start of its instance", slog.String("instance_id", id), slog.Any("error", r.Err))
			left = append(left, deferred[i])
			continue
		}
		w.leases.ack(deferred[i].le)
	}
	return left
}

// catchUpStatus writes the instance's status if it lags its history (the last
// writer died between its commit and its status write), with the custom
// status the last commit recorded: the orchestrator is not run again.
func (w *Worker) catchUpStatus(ctx context.Context, id string, st *state) error {
	if st.started == nil {
		return nil
	}
	return w.publish(ctx, id, st, dispatcher.Execution{}, nil, st.lastCustom())
}

// refuseStart drops a start message of another run that arrived while
// the instance runs; a sub-orchestration's parent is told its child could
// not start.
func (w *Worker) refuseStart(ctx context.Context, id string, ev *history.Event) {
	w.log.Warn("dropping start of an instance that is running", slog.String("instance_id", id))
	if ev.Parent == nil {
		return
	}
	done := &history.Event{Type: history.ExecutionCompleted, Time: w.store.Now().UTC(), Status: history.StatusFailed,
		Failure: &history.Failure{Type: jetflow.FailureInstanceExists, Message: fmt.Sprintf("instance %q is already running", id)}}
	if err := w.disp.SendParentResult(ctx, ev.Parent, ev.Name, ev.ExecutionID, done); err != nil {
		w.log.Warn("telling a parent its sub-orchestration did not start", slog.String("instance_id", id), slog.Any("error", err))
	}
}

// publish sends a committed chunk's actions and the new status, together
// (their fsyncs overlap), or the status after the actions when it is a
// finished one.
func (w *Worker) publish(ctx context.Context, id string, st *state, ex dispatcher.Execution, chunk []history.Event, custom json.RawMessage) error {
	status := st.statusOf(id, custom, w.store.Now())
	fitStatus(status, w.maxChunk())
	var extra []storage.Outgoing
	if !sameStatus(st.status, status) {
		out, err := w.store.StatusWrite(id, status, st.statusRev)
		if err != nil {
			return err
		}
		extra = append(extra, out)
	}
	if len(extra) > 0 && status.Finished() {
		// A finished status lets the instance be purged: it goes out only
		// once the chunk's actions (a child's result to its parent, say)
		// are stored, or a purge could take the history that would
		// publish them again.
		err := storage.FirstError(w.disp.PublishActions(ctx, ex, chunk))
		if err != nil {
			return err
		}
		chunk = nil
	}
	res := w.disp.PublishActions(ctx, ex, chunk, extra...)
	if len(extra) == 0 {
		return storage.FirstError(res)
	}
	if err := storage.FirstError(res[:len(res)-1]); err != nil {
		return err
	}
	sr := res[len(res)-1]
	switch {
	case sr.Err == nil:
		st.status, st.statusRev = status, sr.Seq
		return nil
	case errors.Is(sr.Err, storage.ErrConflict):
		return w.retryStatusWrite(ctx, id, st, status)
	}
	return sr.Err
}

// retryStatusWrite writes status after a compare-and-set conflict: another
// worker wrote the status meanwhile. Ours still goes in unless a later
// chunk exists (its writer has a newer status), so status never goes
// backwards.
func (w *Worker) retryStatusWrite(ctx context.Context, id string, st *state, status *jetflow.Status) error {
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
		case !errors.Is(err, storage.ErrNotFound):
			return err
		case st.statusRev != 0:
			// There was a status and it is gone: the instance was purged
			// (only finished instances are) while this turn ran. Writing a
			// status would bring back an instance without history, and the
			// chunks this worker knows of are the purged run's: remove
			// them, or a later run of the id would find them.
			return w.store.TrimHistory(ctx, id, st.chunkRev+1)
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
			return storage.ErrConflict // our cache is stale: reload
		}
		nrev, err := w.store.PutStatus(ctx, id, status, rev)
		if err == nil {
			st.status, st.statusRev = status, nrev
			return nil
		}
		if !errors.Is(err, storage.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("writing status of %s: %w", id, storage.ErrConflict)
}

// load reads an instance's history and status. A batch that starts a new
// instance skips the history: creating chunk 1 fails if the instance has
// history, and then the turn is retried with a full load. The start of a
// sub-orchestration, which has no Pending status, skips the status too
// (creating the status fails the same way).
func (w *Worker) load(ctx context.Context, id string, batch []pending, guess bool) (*state, error) {
	st := newState()
	first := batch[0].msg
	guess = guess && first.Event.Type == history.ExecutionStarted
	if guess && first.StatusRevision == 0 {
		return st, nil
	}
	// The status is read before the history: its revision then belongs to
	// a commit no newer than the history read, so a status computed from
	// this history can never overwrite a newer one (the compare-and-set
	// fails, and retryStatusWrite finds the later chunk).
	se, err := w.store.GetStatus(ctx, id)
	switch {
	case err == nil:
		st.status, st.statusRev = &se.Status, se.Revision
	case !errors.Is(err, storage.ErrNotFound):
		return nil, err
	}
	if guess && st.startStands(first) {
		return st, nil // Pending for this very start: nothing ran it yet
	}
	w.loads.Add(1)
	w.cfg.Metrics.CacheLookup(metrics.CacheMiss)
	chunks, err := w.store.LoadHistory(ctx, id)
	if err != nil {
		return nil, err
	}
	if len(chunks) > 0 && st.status == nil && fromPending(chunks[0].Events) {
		// A run started from a Pending status has a status until it is
		// purged, and a purge removes the status first: this history is
		// a purged instance's, the rest of the purge still to come, or a
		// first chunk stored after the purge by a worker that read the
		// status before it (firstChunkStands, when its second read
		// failed). Finish the purge rather than bring the instance back
		// with a status made from it.
		w.log.Info("the history of a purged instance was left; removing it", slog.String("instance_id", id))
		if err := w.store.TrimHistory(ctx, id, chunks[len(chunks)-1].Revision+1); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("the history of %s outlived its purge: %w", id, storage.ErrConflict)
	}
	for _, c := range chunks {
		st.addChunk(c.Number, c.Revision, c.Events, c.CustomStatus)
	}
	return st, nil
}
