// Package metrics holds every Prometheus metric family of the engine:
// the counters and histograms that workers update as they run turns and
// activities ([Engine], given to worker.Config.Metrics), the collectors
// that read the hub itself at scrape time (the consumers' backlog,
// [NewBacklogCollector]; the instances by orchestrator and runtime status,
// [NewInstancesCollector]), and the /metrics handler ([NewRegistry],
// [Handler]).
//
// Names have the jetflow_ prefix, counters end in _total, durations are
// in seconds. Labels are bounded: orchestrator and activity names,
// runtime statuses, and the enums below; never an instance id.
//
// # Wiring
//
//	reg := metrics.NewRegistry()              // Go, process and build info collectors
//	hub := metrics.ForHub(reg, store.Hub())   // hub="jetflow" on the engine's families
//	m, err := metrics.New(hub)                // the engine's families
//	hub.MustRegister(metrics.NewBacklogCollector(store, 0), metrics.NewInstancesCollector(client, 0))
//	w, err := worker.New(store, registry, worker.Config{Metrics: m})
//	mux.Handle("GET /metrics", metrics.Handler(reg))
//	srv := &http.Server{Handler: m.Middleware(mux)} // HTTP requests by route
//
// The Engine given to a worker also counts the storage operations and the
// Go client watches of its store (those of the clients and HTTP API on the
// same store too); an HTTP API's event streams report themselves with
// Engine.WatchStarted.
//
// The collectors read the whole hub, so every process that registers them
// reports the same figures: aggregate them with max by hub, not sum, or
// register them in one process only.
package metrics

import (
	"time"

	"github.com/jetflow/jetflow"
	"github.com/prometheus/client_golang/prometheus"
)

// Namespace is the prefix of every metric name of the engine.
const Namespace = "jetflow"

// Turn results (the result label of the turn families).
const (
	// TurnCommitted: the turn stored a history chunk.
	TurnCommitted = "committed"
	// TurnNoop: the turn had nothing to store (its messages were already
	// in history, held back or dropped).
	TurnNoop = "noop"
	// TurnConflict: another worker extended the history first (the
	// fence); the turn is retried after a reload.
	TurnConflict = "conflict"
	// TurnError: the turn failed (storage, a blocked orchestrator); its
	// messages are redelivered.
	TurnError = "error"
)

// Activity outcomes (the outcome label of the activity families).
const (
	// ActivityCompleted: the activity returned a result.
	ActivityCompleted = "completed"
	// ActivityFailed: it returned an error or panicked, or its result was
	// not valid.
	ActivityFailed = "failed"
	// ActivityTimeout: it ran past its start-to-close timeout.
	ActivityTimeout = "timeout"
	// ActivityPoison: its task was delivered MaxDeliveries times without
	// finishing, and was given up without running.
	ActivityPoison = "poison"
	// ActivityNotRegistered: the worker that took it has no such activity.
	ActivityNotRegistered = "not_registered"
)

// Poison message kinds (the kind label of jetflow_poison_messages_total).
const (
	// PoisonInbox: an inbox message; its instance failed.
	PoisonInbox = "inbox"
	// PoisonActivity: an activity task; its call failed.
	PoisonActivity = "activity"
)

// Replay results (the result label of jetflow_replays_total).
const (
	// ReplayResumed: the executor continued the replay it kept from the
	// instance's previous turn.
	ReplayResumed = "resumed"
	// ReplayFull: it replayed the execution's history from the start.
	ReplayFull = "full"
)

// Cache lookup results (the result label of
// jetflow_sticky_cache_lookups_total).
const (
	// CacheHit: the instance's state was in the sticky cache.
	CacheHit = "hit"
	// CacheCaughtUp: it was in the cache, behind the chunks other workers
	// committed since, and only those were read.
	CacheCaughtUp = "caught_up"
	// CacheMiss: its whole history was read from storage.
	CacheMiss = "miss"
)

// failureReasons are the failure types that are their own reason label;
// any other is "other".
var failureReasons = map[string]bool{
	jetflow.FailureActivityError: true, jetflow.FailurePanic: true, jetflow.FailureActivityNotRegistered: true,
	jetflow.FailureInvalidOutput: true, jetflow.FailureTimeout: true, jetflow.FailurePoisonMessage: true,
	jetflow.FailureTerminated: true, jetflow.FailureOrchestratorError: true, jetflow.FailureOrchestratorNotRegistered: true,
	jetflow.FailureNonDeterminism: true, jetflow.FailureInvalidHistory: true, jetflow.FailureInvalidInput: true,
	jetflow.FailureInstanceExists: true, jetflow.FailureHistoryTooLarge: true, jetflow.FailureExecutorError: true,
}

// FailureReason is the reason label of a failure of type t: one of the
// jetflow.Failure… constants, or "other" for any other type (so a label
// never takes an unbounded value).
func FailureReason(t string) string {
	if failureReasons[t] {
		return t
	}
	return "other"
}

// Buckets of the histograms, in seconds (or events).
var (
	// DurationBuckets are for orchestration durations: from 10 ms to a day.
	DurationBuckets = []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400}
	// LatencyBuckets are for turns, activities and waits: from 1 ms to 10 minutes.
	LatencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}
	// EventBuckets are for the events of one history chunk.
	EventBuckets = []float64{1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 1000}
)

// Engine is the engine's metric families that workers update. A nil
// *Engine is valid and does nothing, so that code without metrics pays
// only a nil check. It is safe for concurrent use, and one Engine serves
// every worker of a process.
type Engine struct {
	orchStarted    *prometheus.CounterVec
	orchCompleted  *prometheus.CounterVec
	orchDuration   *prometheus.HistogramVec
	orchFailures   *prometheus.CounterVec
	turns          *prometheus.CounterVec
	turnDuration   *prometheus.HistogramVec
	turnWait       *prometheus.HistogramVec
	turnEvents     *prometheus.HistogramVec
	cacheLookups   *prometheus.CounterVec
	replays        *prometheus.CounterVec
	cacheSize      prometheus.Gauge
	cacheBytes     prometheus.Gauge
	actExecutions  *prometheus.CounterVec
	actDuration    *prometheus.HistogramVec
	actWait        *prometheus.HistogramVec
	actRetries     *prometheus.CounterVec
	actRedelivered *prometheus.CounterVec
	actSlots       prometheus.Gauge
	actSlotsUsed   prometheus.Gauge
	poison         *prometheus.CounterVec
	timerLateness  *prometheus.HistogramVec
	customStatus   *prometheus.CounterVec
	orchSlots      prometheus.Gauge
	orchSlotsUsed  prometheus.Gauge
	http           httpFamilies    // the HTTP server's and the watches' (http.go)
	storage        storageFamilies // storage.go
}

// New returns the engine's families, registered on reg.
func New(reg prometheus.Registerer) (*Engine, error) {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: buckets}, labels)
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
	}
	m := &Engine{
		orchStarted: counter("orchestrations_started_total",
			"Executions begun (a new instance, a restart, or a continue-as-new), by orchestrator.", "orchestrator"),
		orchCompleted: counter("orchestrations_completed_total",
			"Executions ended, by orchestrator and final status (Completed, Failed, Terminated, ContinuedAsNew).", "orchestrator", "status"),
		orchDuration: histogram("orchestration_duration_seconds",
			"Time from an execution's start to its end, by orchestrator and final status.", DurationBuckets, "orchestrator", "status"),
		orchFailures: counter("orchestration_failures_total",
			"Failed executions, by orchestrator and reason (the failure type: NonDeterminism, PoisonMessage, OrchestratorError, ...).",
			"orchestrator", "reason"),
		turns: counter("turns_total",
			"Orchestration turns, by orchestrator and result (committed, noop, conflict, error).", "orchestrator", "result"),
		turnDuration: histogram("turn_duration_seconds",
			"Time of one turn (load, replay, commit, publish), by orchestrator and result.", LatencyBuckets, "orchestrator", "result"),
		turnWait: histogram("turn_schedule_to_start_seconds",
			"Time from an inbox message being stored to the first turn that takes it, by orchestrator.", LatencyBuckets, "orchestrator"),
		turnEvents: histogram("turn_history_events",
			"History events in one committed chunk, by orchestrator.", EventBuckets, "orchestrator"),
		cacheLookups: counter("sticky_cache_lookups_total",
			"Turns that found the instance's state in the sticky cache (hit), found it there behind other workers' commits and read only those (caught_up), or read its whole history (miss).", "result"),
		replays: counter("replays_total",
			"Orchestrator turns by how the executor got to the turn: it continued the replay kept from the previous turn (resumed) or replayed the history from the start (full).",
			"orchestrator", "result"),
		cacheSize: gauge("sticky_cache_instances",
			"Idle instances whose state the workers of this process keep in their sticky caches."),
		cacheBytes: gauge("sticky_cache_bytes",
			"Estimated memory of the histories the sticky caches of this process keep (bounded by worker.Config.CacheBytes per worker)."),
		actExecutions: counter("activity_executions_total",
			"Activity executions finished, by activity and outcome (completed, failed, timeout, poison, not_registered).",
			"activity", "outcome"),
		actDuration: histogram("activity_duration_seconds",
			"Time of one activity execution, by activity and outcome.", LatencyBuckets, "activity", "outcome"),
		actWait: histogram("activity_schedule_to_start_seconds",
			"Time from an activity task being stored to its execution starting (a slot taken), by activity.", LatencyBuckets, "activity"),
		actRetries: counter("activity_retries_total",
			"Activity attempts scheduled again by a retry policy (WithRetry) after a failed attempt, by activity.", "activity"),
		actRedelivered: counter("activity_redeliveries_total",
			"Activity tasks started again after an earlier delivery was not finished (a worker crashed, hung or stopped), by activity.",
			"activity"),
		actSlots: gauge("activity_slots",
			"Activity slots of the workers of this process (their ActivityConcurrency)."),
		actSlotsUsed: gauge("activity_slots_used",
			"Activity slots in use by running activities."),
		orchSlots: gauge("orchestration_slots",
			"Orchestration slots of the workers of this process (their OrchestrationConcurrency)."),
		orchSlotsUsed: gauge("orchestration_slots_used",
			"Orchestration slots in use: instances whose turns are running."),
		poison: counter("poison_messages_total",
			"Messages given up after MaxDeliveries deliveries, by kind (inbox: the instance failed; activity: the call failed) and name.",
			"kind", "name"),
		timerLateness: histogram("timer_lateness_seconds",
			"Time from a durable timer's due time to its TimerFired message being stored, by orchestrator.", LatencyBuckets, "orchestrator"),
		customStatus: counter("custom_status_updates_total",
			"Committed turns that changed the custom status, by orchestrator.", "orchestrator"),
		http:    newHTTPFamilies(),
		storage: newStorageFamilies(),
	}
	for _, c := range append([]prometheus.Collector{m.orchStarted, m.orchCompleted, m.orchDuration, m.orchFailures,
		m.turns, m.turnDuration, m.turnWait, m.turnEvents, m.cacheLookups, m.replays, m.cacheSize, m.cacheBytes,
		m.actExecutions, m.actDuration, m.actWait, m.actRetries, m.actRedelivered, m.actSlots, m.actSlotsUsed,
		m.orchSlots, m.orchSlotsUsed, m.poison, m.timerLateness, m.customStatus}, append(m.http.collectors(), m.storage.collectors()...)...) {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// The series of fixed label values exist from the start, so that a
	// rate over them is defined before the first event.
	m.cacheLookups.WithLabelValues(CacheHit)
	m.cacheLookups.WithLabelValues(CacheCaughtUp)
	m.cacheLookups.WithLabelValues(CacheMiss)
	m.http.watchers.WithLabelValues(WatchSSE)
	m.http.watchers.WithLabelValues(WatchGo)
	return m, nil
}

// seconds is d in seconds, never negative (clocks of two machines).
func seconds(d time.Duration) float64 { return max(d, 0).Seconds() }

// Serving makes the counters of the orchestrators and activities a worker
// serves exist at zero (started, completed by each final status,
// executions by their usual outcomes, retries), so that the first event of
// each is counted by rate and increase: a series that appears at 1 looks
// like no change.
func (m *Engine) Serving(orchestrators, activities []string) {
	if m == nil {
		return
	}
	for _, o := range orchestrators {
		m.orchStarted.WithLabelValues(o)
		for _, st := range []jetflow.RuntimeStatus{jetflow.StatusCompleted, jetflow.StatusFailed, jetflow.StatusTerminated, jetflow.StatusContinuedAsNew} {
			m.orchCompleted.WithLabelValues(o, string(st))
		}
	}
	for _, a := range activities {
		for _, outcome := range []string{ActivityCompleted, ActivityFailed} {
			m.actExecutions.WithLabelValues(a, outcome)
		}
		m.actRetries.WithLabelValues(a)
	}
}

// OrchestrationStarted counts an execution begun.
func (m *Engine) OrchestrationStarted(orchestrator string) {
	if m == nil {
		return
	}
	m.orchStarted.WithLabelValues(orchestrator).Inc()
}

// OrchestrationCompleted counts an execution ended with status (a
// jetflow runtime status: Completed, Failed, Terminated, ContinuedAsNew)
// after d; failureType is the failure's type when it failed.
func (m *Engine) OrchestrationCompleted(orchestrator string, status jetflow.RuntimeStatus, failureType string, d time.Duration) {
	if m == nil {
		return
	}
	m.orchCompleted.WithLabelValues(orchestrator, string(status)).Inc()
	m.orchDuration.WithLabelValues(orchestrator, string(status)).Observe(seconds(d))
	if status == jetflow.StatusFailed {
		m.orchFailures.WithLabelValues(orchestrator, FailureReason(failureType)).Inc()
	}
}

// TurnDone counts a turn with its result (TurnCommitted, TurnNoop,
// TurnConflict, TurnError) and duration.
func (m *Engine) TurnDone(orchestrator, result string, d time.Duration) {
	if m == nil {
		return
	}
	m.turns.WithLabelValues(orchestrator, result).Inc()
	m.turnDuration.WithLabelValues(orchestrator, result).Observe(seconds(d))
}

// ChunkCommitted records the number of events of a committed history
// chunk.
func (m *Engine) ChunkCommitted(orchestrator string, events int) {
	if m == nil {
		return
	}
	m.turnEvents.WithLabelValues(orchestrator).Observe(float64(events))
}

// TurnScheduleToStart records the wait of an inbox message, from being
// stored to its first turn.
func (m *Engine) TurnScheduleToStart(orchestrator string, d time.Duration) {
	if m == nil {
		return
	}
	m.turnWait.WithLabelValues(orchestrator).Observe(seconds(d))
}

// CacheLookup counts a sticky cache lookup by its result: CacheHit,
// CacheCaughtUp or CacheMiss.
func (m *Engine) CacheLookup(result string) {
	if m == nil {
		return
	}
	m.cacheLookups.WithLabelValues(result).Inc()
}

// Replay counts a turn of orchestrator that resumed a kept replay, or
// replayed its history from the start.
func (m *Engine) Replay(orchestrator string, resumed bool) {
	if m == nil {
		return
	}
	r := ReplayFull
	if resumed {
		r = ReplayResumed
	}
	m.replays.WithLabelValues(orchestrator, r).Inc()
}

// CacheSize adds d to the number of instances in the sticky caches.
func (m *Engine) CacheSize(d int) {
	if m == nil {
		return
	}
	m.cacheSize.Add(float64(d))
}

// CacheBytes adds d to the estimated bytes of the sticky caches' idle
// instances.
func (m *Engine) CacheBytes(d int64) {
	if m == nil {
		return
	}
	m.cacheBytes.Add(float64(d))
}

// ActivityOutcome is the outcome label of an activity execution that
// failed with failureType ("" for none).
func ActivityOutcome(failureType string, failed bool) string {
	switch {
	case !failed:
		return ActivityCompleted
	case failureType == jetflow.FailureTimeout:
		return ActivityTimeout
	case failureType == jetflow.FailurePoisonMessage:
		return ActivityPoison
	case failureType == jetflow.FailureActivityNotRegistered:
		return ActivityNotRegistered
	}
	return ActivityFailed
}

// ActivityDone counts an activity execution with its outcome (see
// ActivityOutcome) and duration.
func (m *Engine) ActivityDone(activity, outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.actExecutions.WithLabelValues(activity, outcome).Inc()
	m.actDuration.WithLabelValues(activity, outcome).Observe(seconds(d))
	if outcome == ActivityPoison {
		m.poison.WithLabelValues(PoisonActivity, activity).Inc()
	}
}

// ActivityRetried counts an attempt of activity scheduled again by a
// retry policy.
func (m *Engine) ActivityRetried(activity string) {
	if m == nil {
		return
	}
	m.actRetries.WithLabelValues(activity).Inc()
}

// ActivityStarted records an activity task's wait from being stored to
// its execution, and whether it had been delivered before.
func (m *Engine) ActivityStarted(activity string, wait time.Duration, redelivered bool) {
	if m == nil {
		return
	}
	m.actWait.WithLabelValues(activity).Observe(seconds(wait))
	if redelivered {
		m.actRedelivered.WithLabelValues(activity).Inc()
	}
}

// ActivitySlots adds d to the activity slots of the process (a worker
// starting or stopping).
func (m *Engine) ActivitySlots(d int) {
	if m == nil {
		return
	}
	m.actSlots.Add(float64(d))
}

// ActivitySlotsUsed adds d to the activity slots in use.
func (m *Engine) ActivitySlotsUsed(d int) {
	if m == nil {
		return
	}
	m.actSlotsUsed.Add(float64(d))
}

// OrchestrationSlots adds d to the orchestration slots of the process.
func (m *Engine) OrchestrationSlots(d int) {
	if m == nil {
		return
	}
	m.orchSlots.Add(float64(d))
}

// OrchestrationSlotsUsed adds d to the orchestration slots in use.
func (m *Engine) OrchestrationSlotsUsed(d int) {
	if m == nil {
		return
	}
	m.orchSlotsUsed.Add(float64(d))
}

// InboxPoisoned counts an inbox message given up (its instance failed
// with a PoisonMessage failure).
func (m *Engine) InboxPoisoned(orchestrator string) {
	if m == nil {
		return
	}
	m.poison.WithLabelValues(PoisonInbox, orchestrator).Inc()
}

// TimerFired records how late a durable timer fired: its TimerFired
// message's stored time less its due time.
func (m *Engine) TimerFired(orchestrator string, lateness time.Duration) {
	if m == nil {
		return
	}
	m.timerLateness.WithLabelValues(orchestrator).Observe(seconds(lateness))
}

// CustomStatusUpdated counts a committed change of an instance's custom
// status.
func (m *Engine) CustomStatusUpdated(orchestrator string) {
	if m == nil {
		return
	}
	m.customStatus.WithLabelValues(orchestrator).Inc()
}
