// Package worker runs orchestrations and activities: it takes inbox
// messages, replays each instance's history (kept in a sticky in-memory
// cache between turns), commits the next history chunk, publishes the
// resulting actions through the dispatcher, writes the instance's status,
// and runs activity tasks. Any number of workers may run against one hub.
//
// # The commit protocol
//
// For one instance, a turn (1) takes the instance's pending inbox messages
// and decides, in a pure step (turn.go), what each is for: applied now,
// already in history, held back, or given up; (2) runs the orchestrator
// through the worker's executor over the history and the new events;
// (3) appends the next history chunk only if the instance's last stored
// chunk is still the one the worker read (a compare-and-set on the
// instance's chunk keys: the fence; the loser reloads and tries again);
// (4) publishes the chunk's actions (tasks, timers, messages to other
// instances, each with a message id) and then writes the status, also by
// compare-and-set; (5) acknowledges the messages. A crash at any point is
// repaired by redelivery: a message already in history is not applied
// again, and the actions of the chunk that consumed it are published
// again (duplicates are dropped by message id).
package worker

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/dispatcher"
	"github.com/jetflow/jetflow/internal/executor"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/jetflow/jetflow/metrics"
)

// Config configures a Worker. The zero value is usable.
type Config struct {
	// Name identifies the worker in the registry and in logs. Defaults to
	// "<hostname>-<pid>".
	Name string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// OrchestrationConcurrency is how many instances the worker runs turns
	// for at once. Defaults to 256.
	OrchestrationConcurrency int
	// ActivityConcurrency is how many activities the worker runs at once.
	// Defaults to 64.
	ActivityConcurrency int
	// CacheSize is how many idle instances the sticky cache keeps (their
	// history stays in memory, so their next turn needs no reload).
	// Defaults to 10000; -1 disables the cache.
	CacheSize int
	// CacheBytes bounds the memory of the sticky cache too: idle instances
	// are evicted, least recently used first, while their histories (an
	// estimate: the events' payloads and a fixed cost per event) exceed
	// it. An instance whose history alone is larger is not kept. Defaults
	// to 256 MiB.
	CacheBytes int64
	// MaxAckPending bounds the inbox messages delivered to this worker and
	// not yet acknowledged. Defaults to 20000.
	MaxAckPending int
	// AckWait is how long a message may stay unacknowledged before the
	// server redelivers it (running activities extend it). Defaults to 30s.
	AckWait time.Duration
	// Metrics, when set, receives the worker's turns, activities, cache
	// lookups, slots, poison messages, timers and custom status updates
	// (one *metrics.Engine may serve every worker of a process), and the
	// operations of the store (those of the clients on it too; the first
	// Engine given to a store keeps them). Defaults to nil: no metrics.
	Metrics *metrics.Engine
	// MaxDeliveries is how many times a message may be delivered without
	// being handled (its worker crashed, or hung past AckWait, each time)
	// before it is given up: an activity task then fails its call with a
	// "PoisonMessage" failure, an inbox message fails its instance.
	// Defaults to 10; -1 retries without end.
	MaxDeliveries int
	// PurgeInterval is how often the worker removes acknowledged messages
	// from the inbox and task streams. Defaults to 5 seconds; -1 disables.
	PurgeInterval time.Duration
	// Orchestrators, when set, limits the worker to these of the registry's
	// orchestrators: the instances of the others go to other workers.
	// Defaults to all of them.
	Orchestrators []string
	// Activities, when set, limits the worker to these of the registry's
	// activities. Defaults to all of them.
	Activities []string
	// NoOrchestrations, when set, runs no orchestrations (activities only).
	NoOrchestrations bool
	// NoActivities, when set, runs no activities (orchestrations only).
	NoActivities bool
	// TurnTimeout is how long an orchestrator may run in one turn without
	// giving control back (by awaiting a task). A turn that blocks on
	// anything else (I/O, a channel, a lock, time.Sleep) is given up as a
	// failed turn: its slot is freed, its messages are handed back and
	// retried later (counting toward MaxDeliveries), and nothing of it is
	// committed. Defaults to 10 seconds; -1 disables.
	TurnTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		host, _ := os.Hostname()
		c.Name = host + "-" + strconv.Itoa(os.Getpid())
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.OrchestrationConcurrency == 0 {
		c.OrchestrationConcurrency = 256
	}
	if c.ActivityConcurrency == 0 {
		c.ActivityConcurrency = 64
	}
	if c.CacheSize == 0 {
		c.CacheSize = 10000
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = 256 << 20
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 20000
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxDeliveries == 0 {
		c.MaxDeliveries = 10
	}
	if c.PurgeInterval == 0 {
		c.PurgeInterval = 5 * time.Second
	}
	if c.TurnTimeout == 0 {
		c.TurnTimeout = 10 * time.Second
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.OrchestrationConcurrency < 1:
		return fmt.Errorf("OrchestrationConcurrency %d: want at least 1", c.OrchestrationConcurrency)
	case c.ActivityConcurrency < 1:
		return fmt.Errorf("ActivityConcurrency %d: want at least 1", c.ActivityConcurrency)
	case c.CacheSize < -1:
		return fmt.Errorf("CacheSize %d: want -1 or more", c.CacheSize)
	case c.CacheBytes < 0:
		return fmt.Errorf("CacheBytes %d: want 0 (the default) or more", c.CacheBytes)
	case c.MaxDeliveries < -1:
		return fmt.Errorf("MaxDeliveries %d: want -1 or more", c.MaxDeliveries)
	case c.AckWait < time.Second:
		return fmt.Errorf("AckWait %s: want at least 1s", c.AckWait)
	case c.TurnTimeout < 0 && c.TurnTimeout != -1:
		return fmt.Errorf("TurnTimeout %s: want -1 or a positive duration", c.TurnTimeout)
	}
	return nil
}

// Worker runs the orchestrators and activities of a registry.
type Worker struct {
	cfg   Config
	store *storage.Store
	disp  *dispatcher.Dispatcher
	reg   *jetflow.Registry
	exec  executor.Executor
	log   *slog.Logger

	ctx    context.Context // ends on StopAndCancel
	cancel context.CancelFunc

	mu        sync.Mutex
	instances map[string]*instance
	idle      *list.List // of *instance with cached state and no work, most recent first
	idleBytes int64      // the states' bytes of the idle instances
	consumers []storage.Consumer
	running   sync.WaitGroup // turns and activities in progress, and the janitor
	started   bool
	quit      chan struct{} // closed by Stop
	stopOnce  sync.Once

	orchSem chan struct{}
	actSem  chan struct{}
	leases  *leases
	// serving are the consumers of the names consumed, by kind and name
	// (see serve).
	serving map[string]map[string]storage.Consumer

	// slots are the orchestration and activity slots Start added to
	// Config.Metrics, which Stop takes away again.
	orchSlots, actSlots int

	turns, conflicts, loads, catchUps, activities, blocked, trims, expired atomic.Int64
}

// New returns a worker of the hub behind store for the orchestrators and
// activities of reg, on the store's clock. Call Start to run it.
func New(store *jetstream.Store, reg *jetflow.Registry, cfg Config) (*Worker, error) {
	if reg == nil {
		return nil, errors.New("worker: a nil registry")
	}
	return newWorker(store, reg, nil, cfg)
}

// newWorker makes a worker running its turns and activities on x, or on
// the Go executor of reg when x is nil (see remote.go for a worker
// without a registry).
func newWorker(store *jetstream.Store, reg *jetflow.Registry, x executor.Executor, cfg Config) (*Worker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("worker config: %w", err)
	}
	s := storage.Of(store)
	if x == nil {
		x = executor.Go(reg, cfg.Logger)
	}
	if cfg.Metrics != nil {
		s.Observe(cfg.Metrics) // the store's operations and watches, whoever makes them
	}
	w := &Worker{
		cfg:       cfg,
		store:     s,
		disp:      dispatcher.New(s),
		reg:       reg,
		exec:      x,
		log:       cfg.Logger.With(slog.String("worker", cfg.Name)),
		instances: map[string]*instance{},
		idle:      list.New(),
		orchSem:   make(chan struct{}, cfg.OrchestrationConcurrency),
		actSem:    make(chan struct{}, cfg.ActivityConcurrency),
		quit:      make(chan struct{}),
		leases:    newLeases(cfg.AckWait, cfg.PurgeInterval > 0),
		serving:   map[string]map[string]storage.Consumer{storage.KindOrchestrator: {}, storage.KindActivity: {}},
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w, nil
}

// Start registers the worker's names and starts consuming. It returns once
// the worker takes messages.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return errors.New("worker already started")
	}
	orchs, acts, err := w.names()
	if err != nil {
		return err
	}
	if err := w.serve(ctx, orchs, acts); err != nil {
		w.stopConsumers()
		return err
	}
	w.started = true
	// A worker without a registry may be given names later (serve).
	if len(orchs) > 0 || w.reg == nil {
		w.orchSlots = w.cfg.OrchestrationConcurrency
	}
	if len(acts) > 0 || w.reg == nil {
		w.actSlots = w.cfg.ActivityConcurrency
	}
	w.cfg.Metrics.OrchestrationSlots(w.orchSlots)
	w.cfg.Metrics.ActivitySlots(w.actSlots)
	go w.leases.keep(w.ctx.Done())
	if w.cfg.PurgeInterval > 0 {
		w.running.Add(1)
		go w.janitor()
	}
	w.log.Debug("worker started", slog.Int("orchestrators", len(orchs)), slog.Int("activities", len(acts)))
	return nil
}

// selectNames returns the names of want (all of registered when want is empty),
// or an error naming those that are not registered.
func selectNames(kind string, registered, want []string) ([]string, error) {
	if len(want) == 0 {
		return registered, nil
	}
	var unknown []string
	for _, n := range want {
		if !slices.Contains(registered, n) {
			unknown = append(unknown, strconv.Quote(n))
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("worker config: %s %s not registered (registered: %s)", kind, strings.Join(unknown, ", "), strings.Join(registered, ", "))
	}
	return slices.Compact(slices.Sorted(slices.Values(want))), nil
}

func (w *Worker) stopConsumers() {
	for _, c := range w.consumers {
		c.Stop()
	}
	w.consumers = nil
}

// Stop stops taking messages, hands back at once what the worker fetched
// and has not begun, and waits for the turns and activities in progress
// to finish, or for ctx to end: then it cancels them and returns
// ctx.Err() without waiting further (what they held is redelivered to
// another worker once its lease runs out).
func (w *Worker) Stop(ctx context.Context) error {
	w.stopOnce.Do(func() { close(w.quit) })
	w.mu.Lock()
	consumers := w.consumers
	w.consumers = nil
	orchSlots, actSlots := w.orchSlots, w.actSlots
	w.orchSlots, w.actSlots = 0, 0
	w.mu.Unlock()
	w.cfg.Metrics.OrchestrationSlots(-orchSlots)
	w.cfg.Metrics.ActivitySlots(-actSlots)
	// Draining hands every buffered message to the handlers, which hand
	// them back (Consumer.Stop would drop them until their ack wait).
	for _, c := range consumers {
		c.Drain()
	}
	done := make(chan struct{})
	go func() {
		for _, c := range consumers {
			<-c.Closed()
		}
		w.running.Wait()
		w.releaseHeld()
		w.dropCache()
		if r, ok := w.exec.(executor.Releaser); ok {
			r.Release() // no turn runs any more
		}
		close(done)
	}()
	select {
	case <-done:
		w.cancel()
		return nil
	case <-ctx.Done():
		w.cancel()
		return ctx.Err()
	}
}

// StopTimeout is how long Run gives the work in progress to finish once
// its context ends.
const StopTimeout = 30 * time.Second

// Run starts the worker, runs it until ctx ends (a signal, say), and then
// stops it gracefully, giving what runs up to StopTimeout to finish.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), StopTimeout)
	defer cancel()
	return w.Stop(sctx)
}

// StopAndCancel stops taking messages and cancels the work in progress.
func (w *Worker) StopAndCancel(ctx context.Context) error {
	w.cancel()
	return w.Stop(ctx)
}

// janitor removes acknowledged messages from the inbox and task
// streams every PurgeInterval: below every consumer's ack floor, and,
// one by one, the messages this worker acknowledged at least an interval
// ago that a floor pinned by an outstanding message (a long activity, a
// message held back) has not passed. The streams so hold about what is
// outstanding, however long one message stays.
func (w *Worker) janitor() {
	defer w.running.Done()
	t := time.NewTicker(w.cfg.PurgeInterval)
	defer t.Stop()
	var ripe []storage.Acked // acknowledged at least one interval ago
	for {
		select {
		case <-w.quit:
			return
		case <-t.C:
			fresh := w.leases.takeAcked()
			left, err := w.store.PurgeAcked(w.ctx, ripe)
			if err != nil && w.ctx.Err() == nil {
				w.log.Warn("purging acknowledged messages", slog.Any("error", err))
			}
			ripe = append(left, fresh...)
		}
	}
}

// onTask runs one activity task once a slot is free. It never blocks the
// consumer: a task waits for its slot with its lease kept alive.
func (w *Worker) onTask(t *storage.ActivityTask, d storage.Delivery) {
	le := w.leases.hold(d)
	w.running.Add(1)
	go func() {
		defer w.running.Done()
		// Whatever way the activity ends (even runtime.Goexit), its lease
		// is not kept beyond it.
		defer w.leases.release(le)
		select {
		case w.actSem <- struct{}{}:
		case <-w.quit:
			w.leases.nak(le, storage.HandBackDelay)
			return
		}
		w.cfg.Metrics.ActivitySlotsUsed(1)
		defer func() {
			<-w.actSem
			w.cfg.Metrics.ActivitySlotsUsed(-1)
		}()
		if w.stopping() {
			w.leases.nak(le, storage.HandBackDelay)
			return
		}
		if !w.leases.alive(le) {
			return // stalled past its ack wait: it is another worker's now
		}
		w.runActivity(t, le)
	}()
}

func (w *Worker) runActivity(t *storage.ActivityTask, le *lease) {
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	var result json.RawMessage
	var failure *history.Failure
	began := time.Now()
	if m := w.cfg.Metrics; m != nil {
		if stored := le.d.Stored(); !stored.IsZero() {
			m.ActivityStarted(t.Name, began.Sub(stored), le.d.NumDelivered() > 1)
		}
	}
	if n := le.d.NumDelivered(); poisoned(w.cfg.MaxDeliveries, n) {
		failure = &history.Failure{Type: jetflow.FailurePoisonMessage, Message: fmt.Sprintf(
			"activity %q was delivered %d times without finishing (its worker crashed or hung each time); giving up", t.Name, n)}
	} else {
		var err error
		if result, failure, err = w.callActivity(ctx, t); err != nil {
			if w.ctx.Err() == nil {
				w.log.Warn("the activity's executor handed its task back; it will run again", slog.String("instance_id", t.InstanceID),
					slog.String("activity", t.Name), slog.Any("error", err))
			}
			w.leases.nak(le, storage.HandBackDelay)
			return
		}
	}
	w.activities.Add(1)
	if m := w.cfg.Metrics; m != nil {
		var ft string
		if failure != nil {
			ft = failure.Type
		}
		m.ActivityDone(t.Name, metrics.ActivityOutcome(ft, failure != nil), time.Since(began))
	}
	if w.ctx.Err() != nil {
		w.leases.release(le)
		return // canceled by StopAndCancel: let another worker run it
	}
	err := w.disp.ActivityResult(ctx, t, result, failure)
	if err != nil {
		w.log.Warn("sending activity result; the task will run again", slog.String("instance_id", t.InstanceID),
			slog.String("activity", t.Name), slog.Any("error", err))
		w.leases.nak(le, time.Second)
		return
	}
	w.leases.ack(le)
}

// timeoutGrace is how long an activity past its start-to-close timeout
// may take to return once its context is canceled, before the worker
// abandons it.
const timeoutGrace = time.Second

// callActivity runs an activity within its start-to-close timeout (the
// call's, else the registered one), if it has one: past it the
// activity's context is canceled, and an activity that does not return
// within timeoutGrace is abandoned (it keeps running, but its slot and
// lease are given up). Either way the attempt fails with a "Timeout".
func (w *Worker) callActivity(ctx context.Context, t *storage.ActivityTask) (json.RawMessage, *history.Failure, error) {
	timeout := t.Timeout
	if timeout <= 0 && w.reg != nil {
		timeout = w.reg.ActivityTimeout(t.Name)
	}
	run := func(ctx context.Context) (json.RawMessage, *history.Failure, error) {
		progress := &progressWriter{w: w, id: t.InstanceID, name: t.Name, taskID: t.TaskID}
		defer progress.stop()
		return w.exec.RunActivity(ctx, executor.Task{Name: t.Name, InstanceID: t.InstanceID, ExecutionID: t.ExecutionID, TaskID: t.TaskID,
			Input: t.Input, Version: t.Version, Tags: t.Tags}, progress.report)
	}
	if timeout <= 0 {
		return run(ctx)
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type outcome struct {
		result  json.RawMessage
		failure *history.Failure
		err     error
	}
	done := make(chan outcome, 1)
	go func() {
		r, f, err := run(tctx)
		done <- outcome{r, f, err}
	}()
	var o outcome
	select {
	case o = <-done:
	case <-tctx.Done():
		select {
		case o = <-done:
		case <-time.After(timeoutGrace):
			w.log.Error("activity ignores its context past its timeout; abandoning it", slog.String("instance_id", t.InstanceID),
				slog.String("activity", t.Name), slog.Duration("timeout", timeout))
		}
	}
	if !errors.Is(tctx.Err(), context.DeadlineExceeded) || ctx.Err() != nil {
		return o.result, o.failure, o.err
	}
	return nil, &history.Failure{Type: jetflow.FailureTimeout, Message: fmt.Sprintf(
		"activity %q did not finish within its start-to-close timeout of %s", t.Name, timeout)}, nil
}

// Stats are a worker's counters since it was created.
type Stats struct {
	// Turns is the number of history chunks committed.
	Turns int64
	// Conflicts is the number of commits that lost the history fence to
	// another worker (and were retried once caught up).
	Conflicts int64
	// Loads is the number of times an instance's whole history was read
	// from storage (cache misses).
	Loads int64
	// CatchUps is the number of times a cached instance was behind other
	// workers' commits and read only the chunks they added.
	CatchUps int64
	// Activities is the number of activity executions finished.
	Activities int64
	// Blocked is the number of turns given up because the orchestrator
	// did not give control back within Config.TurnTimeout.
	Blocked int64
	// Trims is the number of times the chunks of executions that
	// continued as new were removed from an instance's history.
	Trims int64
	// Expired is the number of finished instances this worker removed
	// because the hub's retention had passed (see jetstream.Config.Retention).
	Expired int64
	// Cached is the number of idle instances in the sticky cache, and
	// CachedBytes the estimate of their histories' memory.
	Cached      int
	CachedBytes int64
}

// Stats returns the worker's counters.
func (w *Worker) Stats() Stats {
	w.mu.Lock()
	cached, cachedBytes := w.idle.Len(), w.idleBytes
	w.mu.Unlock()
	return Stats{
		Turns:       w.turns.Load(),
		Conflicts:   w.conflicts.Load(),
		Loads:       w.loads.Load(),
		CatchUps:    w.catchUps.Load(),
		Activities:  w.activities.Load(),
		Blocked:     w.blocked.Load(),
		Trims:       w.trims.Load(),
		Expired:     w.expired.Load(),
		Cached:      cached,
		CachedBytes: cachedBytes,
	}
}
