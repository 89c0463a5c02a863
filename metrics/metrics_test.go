package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/httpapi"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/metrics"
	"github.com/jetflow/jetflow/samples"
	"github.com/jetflow/jetflow/worker"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// scrape is one GET /metrics, parsed.
type scrape struct {
	raw      []byte
	families map[string]*dto.MetricFamily
}

func get(t *testing.T, url string) scrape {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	require.NoError(t, err)
	return scrape{raw: raw, families: fams}
}

// value returns the value of the series of family name with exactly the
// labels given (name=value pairs), and whether there is one. A
// histogram's value is its count.
func (s scrape) value(name string, labels ...string) (float64, bool) {
	f := s.families[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		if len(have) != len(labels)/2 {
			continue
		}
		for i := 0; i < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// v is value, failing the test when the series is missing.
func (s scrape) v(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	x, ok := s.value(name, labels...)
	require.True(t, ok, "no series %s%v in the scrape", name, labels)
	return x
}

// TestMetricsMatchWhatHappened runs a small load of the samples through
// an engine with metrics on, scrapes /metrics over HTTP, and checks the
// figures against what the load did. CityRecommender's only worker is
// stopped before its instances start, so they wait in the stream: a
// backlog with no waiting pulls.
func TestMetricsMatchWhatHappened(t *testing.T) {
	t.Parallel()
	const n, orphans, delays = 5, 3, 2
	reg := metrics.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	e := testengine.New(t, testengine.Options{
		Register: func(r *jetflow.Registry) error { return samples.Register(r, samples.Options{}) },
		Workers:  -1,
	})
	served := worker.Config{Metrics: m, Orchestrators: []string{"E1_HelloSequence", "Delay", "FanOutFanIn"}}
	e.StartWorkerWith(served)
	e.StartWorkerWith(worker.Config{Metrics: m, Orchestrators: []string{"CityRecommender"}, NoActivities: true})
	ctx := e.Context(time.Minute)
	require.NoError(t, e.StopWorker(ctx, 1)) // its durable consumer stays, unserved
	reg.MustRegister(metrics.NewBacklogCollector(e.Store, 0), metrics.NewInstancesCollector(e.Client, 0))
	srv := httptest.NewServer(metrics.Handler(reg))
	t.Cleanup(srv.Close)

	var ids []string
	for range n {
		id, err := e.Client.StartOrchestration(ctx, "E1_HelloSequence")
		require.NoError(t, err)
		ids = append(ids, id)
	}
	for range delays {
		id, err := e.Client.StartOrchestration(ctx, "Delay", client.WithInput(1))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	bad, err := e.Client.StartOrchestration(ctx, "Delay", client.WithInput(-1)) // fails: out of range
	require.NoError(t, err)
	for range orphans {
		_, err := e.Client.StartOrchestration(ctx, "CityRecommender", client.WithInput(1))
		require.NoError(t, err)
	}
	for _, id := range ids {
		st, err := e.Client.WaitForCompletion(ctx, id)
		require.NoError(t, err)
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
	}
	st, err := e.Client.WaitForCompletion(ctx, bad)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusFailed, st.RuntimeStatus)
	// The last activity's slot and the last instance's orchestration slot
	// are given back just after the status that WaitForCompletion saw.
	var s scrape
	testkit.WaitFor(t, 10*time.Second, "the slots to be given back", func() bool {
		s = get(t, srv.URL)
		used, _ := s.value("jetflow_activity_slots_used")
		orch, _ := s.value("jetflow_orchestration_slots_used")
		return used == 0 && orch == 0
	})

	if testing.Verbose() {
		for _, line := range strings.Split(string(s.raw), "\n") {
			if strings.HasPrefix(line, "jetflow_") && !strings.Contains(line, "_bucket{") {
				t.Log(line)
			}
		}
	}
	const hello = "E1_HelloSequence"
	require.Equal(t, float64(n), s.v(t, "jetflow_orchestrations_started_total", "orchestrator", hello))
	require.Equal(t, float64(n), s.v(t, "jetflow_orchestrations_completed_total", "orchestrator", hello, "status", "Completed"))
	require.Equal(t, float64(n), s.v(t, "jetflow_orchestration_duration_seconds", "orchestrator", hello, "status", "Completed"))
	require.Equal(t, float64(delays), s.v(t, "jetflow_orchestrations_completed_total", "orchestrator", "Delay", "status", "Completed"))
	_, failed := s.value("jetflow_orchestration_failures_total", "orchestrator", hello, "reason", jetflow.FailureOrchestratorError)
	require.False(t, failed)
	require.Equal(t, 1.0, s.v(t, "jetflow_orchestrations_completed_total", "orchestrator", "Delay", "status", "Failed"))
	require.Equal(t, 1.0, s.v(t, "jetflow_orchestration_failures_total", "orchestrator", "Delay", "reason", jetflow.FailureOrchestratorError))
	require.Equal(t, float64(delays+1), s.v(t, "jetflow_orchestrations_started_total", "orchestrator", "Delay"))
	// One turn for the start and one per activity result; the start's
	// turn creates the instance without a lookup, the others hit the cache.
	require.Equal(t, float64(4*n), s.v(t, "jetflow_turns_total", "orchestrator", hello, "result", metrics.TurnCommitted))
	require.Equal(t, float64(4*n), s.v(t, "jetflow_turn_history_events", "orchestrator", hello))
	require.GreaterOrEqual(t, s.v(t, "jetflow_turn_schedule_to_start_seconds", "orchestrator", hello), float64(4*n))
	require.GreaterOrEqual(t, s.v(t, "jetflow_sticky_cache_lookups_total", "result", metrics.CacheHit), float64(3*n))
	// Hello's executions are too short to keep replay sessions.
	require.Equal(t, float64(4*n), s.v(t, "jetflow_replays_total", "orchestrator", hello, "result", metrics.ReplayFull))
	require.Equal(t, float64(3*n), s.v(t, "jetflow_custom_status_updates_total", "orchestrator", hello))
	require.Equal(t, float64(3*n), s.v(t, "jetflow_activity_executions_total", "activity", "E1_SayHello", "outcome", metrics.ActivityCompleted))
	require.Equal(t, float64(3*n), s.v(t, "jetflow_activity_duration_seconds", "activity", "E1_SayHello", "outcome", metrics.ActivityCompleted))
	require.Equal(t, float64(3*n), s.v(t, "jetflow_activity_schedule_to_start_seconds", "activity", "E1_SayHello"))
	require.Equal(t, float64(delays), s.v(t, "jetflow_timer_lateness_seconds", "orchestrator", "Delay"))
	require.Equal(t, 64.0, s.v(t, "jetflow_activity_slots"), "the served worker's ActivityConcurrency; the stopped one's is gone")
	require.Equal(t, 256.0, s.v(t, "jetflow_orchestration_slots"))
	require.Equal(t, float64(n+delays+1), s.v(t, "jetflow_sticky_cache_instances"))
	require.Equal(t, 0.0, s.v(t, "jetflow_sticky_cache_lookups_total", "result", metrics.CacheMiss))

	// Backlog, read from the consumers: the unserved orchestrator's
	// instances wait, with nobody pulling.
	require.Equal(t, float64(orphans), s.v(t, "jetflow_consumer_pending_messages", "kind", "orchestrator", "name", "CityRecommender"))
	require.Equal(t, 0.0, s.v(t, "jetflow_consumer_waiting_pulls", "kind", "orchestrator", "name", "CityRecommender"))
	require.Greater(t, s.v(t, "jetflow_consumer_backlog_age_seconds", "kind", "orchestrator", "name", "CityRecommender"), 0.0)
	require.Equal(t, 0.0, s.v(t, "jetflow_consumer_pending_messages", "kind", "orchestrator", "name", hello))
	require.Equal(t, 0.0, s.v(t, "jetflow_consumer_backlog_age_seconds", "kind", "orchestrator", "name", hello))
	require.Greater(t, s.v(t, "jetflow_consumer_waiting_pulls", "kind", "orchestrator", "name", hello), 0.0)
	require.Equal(t, 0.0, s.v(t, "jetflow_consumer_pending_messages", "kind", "activity", "name", "E1_SayHello"))

	// Instances, from the status bucket.
	require.Equal(t, float64(n), s.v(t, "jetflow_instances", "orchestrator", hello, "runtime_status", "Completed"))
	require.Equal(t, 0.0, s.v(t, "jetflow_instances", "orchestrator", hello, "runtime_status", "Running"))
	require.Equal(t, float64(orphans), s.v(t, "jetflow_instances", "orchestrator", "CityRecommender", "runtime_status", "Pending"))

	for _, c := range []string{"backlog", "instances"} {
		require.Equal(t, 0.0, s.v(t, "jetflow_scrape_errors_total", "collector", c))
		require.Equal(t, 1.0, s.v(t, "jetflow_scrape_success", "collector", c))
	}
	require.Contains(t, s.families, "jetflow_build_info")
	require.Contains(t, s.families, "go_goroutines")
	require.Contains(t, s.families, "process_cpu_seconds_total")
	for name, f := range s.families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				require.NotEqual(t, "instance", l.GetName(), "%s has a label named instance", name)
				for _, id := range ids {
					require.NotEqual(t, id, l.GetValue(), "%s has an instance id in a label", name)
				}
			}
		}
	}

	// The scrape passes the linter of promtool check metrics.
	problems, err := promlint.New(bytes.NewReader(s.raw)).Lint()
	require.NoError(t, err)
	require.Empty(t, problems, "promlint: %s", describe(problems))

	// A stopped worker's cache is gone, and so are its slots.
	require.NoError(t, e.StopWorker(ctx, 0))
	s = get(t, srv.URL)
	require.Equal(t, 0.0, s.v(t, "jetflow_sticky_cache_instances"))
	require.Equal(t, 0.0, s.v(t, "jetflow_activity_slots"))
	require.Equal(t, 0.0, s.v(t, "jetflow_orchestration_slots"))
}

// TestScrapeOfAnUnreachableHub checks that a collector that cannot read
// the hub counts a scrape error and the scrape still serves the rest.
func TestScrapeOfAnUnreachableHub(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Workers: -1})
	reg := metrics.NewRegistry()
	_, err := metrics.New(reg)
	require.NoError(t, err)
	reg.MustRegister(metrics.NewBacklogCollector(e.Store, 500*time.Millisecond), metrics.NewInstancesCollector(e.Client, 500*time.Millisecond))
	srv := httptest.NewServer(metrics.Handler(reg))
	t.Cleanup(srv.Close)
	e.Server.Shutdown()
	e.Server.WaitForShutdown()
	e.Server = nil
	began := time.Now()
	s := get(t, srv.URL)
	require.Less(t, time.Since(began), 3*time.Second, "the scrape is bounded by the collectors' timeouts")
	for _, c := range []string{"backlog", "instances"} {
		require.Equal(t, 1.0, s.v(t, "jetflow_scrape_errors_total", "collector", c))
		require.Equal(t, 0.0, s.v(t, "jetflow_scrape_success", "collector", c))
	}
	require.Contains(t, s.families, "go_goroutines")
}

// TestNilEngine checks that a nil *Engine takes every call.
func TestNilEngine(t *testing.T) {
	t.Parallel()
	var m *metrics.Engine
	m.OrchestrationStarted("x")
	m.OrchestrationCompleted("x", jetflow.StatusFailed, jetflow.FailureNonDeterminism, time.Second)
	m.TurnDone("x", metrics.TurnCommitted, time.Second)
	m.ChunkCommitted("x", 3)
	m.TurnScheduleToStart("x", time.Second)
	m.CacheLookup(metrics.CacheHit)
	m.Replay("x", true)
	m.CacheSize(1)
	m.ActivityStarted("a", time.Second, true)
	m.ActivityDone("a", metrics.ActivityFailed, time.Second)
	m.ActivitySlots(1)
	m.ActivitySlotsUsed(1)
	m.OrchestrationSlots(1)
	m.OrchestrationSlotsUsed(1)
	m.InboxPoisoned("x")
	m.TimerFired("x", time.Second)
	m.CustomStatusUpdated("x")
	m.StorageOp(storage.OpPublish, time.Second, storage.ErrConflict)
}

func TestFailureReasonIsBounded(t *testing.T) {
	t.Parallel()
	require.Equal(t, jetflow.FailureNonDeterminism, metrics.FailureReason(jetflow.FailureNonDeterminism))
	require.Equal(t, jetflow.FailurePoisonMessage, metrics.FailureReason(jetflow.FailurePoisonMessage))
	require.Equal(t, "other", metrics.FailureReason("MyOwnErrorType"))
	require.Equal(t, metrics.ActivityTimeout, metrics.ActivityOutcome(jetflow.FailureTimeout, true))
	require.Equal(t, metrics.ActivityCompleted, metrics.ActivityOutcome("", false))
	require.Equal(t, metrics.ActivityFailed, metrics.ActivityOutcome(jetflow.FailureActivityError, true))
	require.Equal(t, metrics.ErrKindConflict, metrics.ErrorKind(fmt.Errorf("appending: %w", storage.ErrConflict)))
	require.Equal(t, metrics.ErrKindUnavailable, metrics.ErrorKind(fmt.Errorf("x: %w", jetflow.ErrUnavailable)))
	require.Equal(t, metrics.ErrKindOther, metrics.ErrorKind(io.EOF))
}

func describe(problems []promlint.Problem) string {
	var out []string
	for _, p := range problems {
		out = append(out, fmt.Sprintf("%s: %s", p.Metric, p.Text))
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// TestPoisonAndFailedTurns runs an orchestrator that blocks on every try
// after its first turn: two turns fail (given up after TurnTimeout), the
// third delivery is poison and fails the instance.
func TestPoisonAndFailedTurns(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	reg := metrics.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	e := testengine.New(t, testengine.Options{
		Worker: worker.Config{Metrics: m, MaxDeliveries: 2, TurnTimeout: 500 * time.Millisecond},
		Register: func(r *jetflow.Registry) error {
			return r.AddOrchestrator("AlwaysBlocks", func(ctx *jetflow.OrchestrationContext) (any, error) {
				if err := ctx.WaitForExternalEvent("go").Await(nil); err != nil {
					return nil, err
				}
				<-release // blocks on every try, replays included
				return nil, nil
			})
		},
	})
	srv := httptest.NewServer(metrics.Handler(reg))
	t.Cleanup(srv.Close)
	ctx := e.Context(time.Minute)
	id, err := e.Client.StartOrchestration(ctx, "AlwaysBlocks")
	require.NoError(t, err)
	// The event only once the start's turn is committed: in one batch with
	// the start, the first turn would fail too, and append nothing.
	testkit.WaitFor(t, 30*time.Second, "the instance to run", func() bool {
		st, err := e.Client.GetStatus(ctx, id)
		return err == nil && st.RuntimeStatus == jetflow.StatusRunning
	})
	require.NoError(t, e.Client.RaiseEvent(ctx, id, "go", nil))
	st, err := e.Client.WaitForCompletion(ctx, id)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusFailed, st.RuntimeStatus)

	s := get(t, srv.URL)
	const name = "AlwaysBlocks"
	require.Equal(t, 2.0, s.v(t, "jetflow_turns_total", "orchestrator", name, "result", metrics.TurnError))
	require.Equal(t, 1.0, s.v(t, "jetflow_poison_messages_total", "kind", metrics.PoisonInbox, "name", name))
	require.Equal(t, 1.0, s.v(t, "jetflow_orchestrations_completed_total", "orchestrator", name, "status", "Failed"))
	require.Equal(t, 1.0, s.v(t, "jetflow_orchestration_failures_total", "orchestrator", name, "reason", jetflow.FailurePoisonMessage))
	// The start's turn and the poison's turn each appended a chunk; a
	// failed turn reloads the instance (a cache miss) before the next try.
	require.Equal(t, 2.0, s.v(t, "jetflow_storage_operation_duration_seconds", "operation", storage.OpHistoryAppend))
	require.GreaterOrEqual(t, s.v(t, "jetflow_storage_operation_duration_seconds", "operation", storage.OpHistoryLoad), 2.0)
	require.GreaterOrEqual(t, s.v(t, "jetflow_sticky_cache_lookups_total", "result", metrics.CacheMiss), 2.0)
	_, failedAppend := s.value("jetflow_storage_errors_total", "operation", storage.OpHistoryAppend, "kind", metrics.ErrKindOther)
	require.False(t, failedAppend)
	problems, err := promlint.New(bytes.NewReader(s.raw)).Lint()
	require.NoError(t, err)
	require.Empty(t, problems, "promlint: %s", describe(problems))
}

// TestServedNamesStartAtZero: a worker's orchestrators and activities have
// their counters at 0 before anything runs, so that rate and increase see
// the first start, completion and execution (a series that appears at 1
// reads as no change).
func TestServedNamesStartAtZero(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	testengine.New(t, testengine.Options{Worker: worker.Config{Metrics: m}, Register: func(r *jetflow.Registry) error {
		return samples.Register(r, samples.Options{})
	}})
	srv := httptest.NewServer(metrics.Handler(reg))
	t.Cleanup(srv.Close)
	s := get(t, srv.URL)
	require.Equal(t, 0.0, s.v(t, "jetflow_orchestrations_started_total", "orchestrator", "E1_HelloSequence"))
	require.Equal(t, 0.0, s.v(t, "jetflow_orchestrations_completed_total", "orchestrator", "E1_HelloSequence", "status", "Completed"))
	require.Equal(t, 0.0, s.v(t, "jetflow_orchestrations_completed_total", "orchestrator", "E1_HelloSequence", "status", "Failed"))
	require.Equal(t, 0.0, s.v(t, "jetflow_activity_executions_total", "activity", "E1_SayHello", "outcome", metrics.ActivityCompleted))
}

// TestStorageOpsOfClients: the storage operations a client makes (a start,
// status reads, a purge) and its watches are counted on the metrics its
// store is observed by, as a worker's are: an HTTP server's process shows
// them.
func TestStorageOpsOfClients(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	e := testengine.New(t, testengine.Options{
		Register: func(r *jetflow.Registry) error { return samples.Register(r, samples.Options{}) },
	})
	e.Storage.Observe(m)
	srv := httptest.NewServer(metrics.Handler(reg))
	t.Cleanup(srv.Close)
	ctx := e.Context(time.Minute)
	id, err := e.Client.StartOrchestration(ctx, "E1_HelloSequence")
	require.NoError(t, err)
	_, err = e.Client.WaitForCompletion(ctx, id)
	require.NoError(t, err)
	require.NoError(t, e.Client.PurgeInstance(ctx, id))

	// A Go watch counts while it runs.
	watchers := func() float64 { return get(t, srv.URL).v(t, "jetflow_status_watchers", "kind", metrics.WatchGo) }
	require.Equal(t, 0.0, watchers())
	wctx, stop := context.WithCancel(ctx)
	updates, err := e.Client.WatchAll(wctx, client.WatchFilter{}, 0)
	require.NoError(t, err)
	require.Equal(t, 1.0, watchers())
	stop()
	testkit.Collect(t, updates, 10*time.Second)
	testkit.WaitFor(t, 10*time.Second, "the watch to end", func() bool { return watchers() == 0 })

	// An SSE stream of the HTTP API counts as sse, not as the Go watch
	// under it.
	api := httptest.NewServer(httpapi.New(e.Client, httpapi.Config{Metrics: m}))
	t.Cleanup(api.Close)
	sctx, endStream := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, api.URL+httpapi.BasePath+"/watch", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req) // returns with the stream's headers: it runs
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	sse := get(t, srv.URL)
	require.Equal(t, 1.0, sse.v(t, "jetflow_status_watchers", "kind", metrics.WatchSSE))
	require.Equal(t, 0.0, sse.v(t, "jetflow_status_watchers", "kind", metrics.WatchGo))
	endStream()
	resp.Body.Close()

	s := get(t, srv.URL)
	for _, op := range []string{storage.OpPublish, storage.OpStatusRead, storage.OpPurge} {
		require.GreaterOrEqual(t, s.v(t, "jetflow_storage_operation_duration_seconds", "operation", op), 1.0, op)
	}
	// The worker's store is another one (its own connection), unobserved.
	_, appended := s.value("jetflow_storage_operation_duration_seconds", "operation", storage.OpHistoryAppend)
	require.False(t, appended, "history appends are the worker's")
}

// TestActivityRetries: each attempt a retry policy schedules again is
// counted once, by activity, when the turn that schedules it commits.
func TestActivityRetries(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	var runs atomic.Int32
	e := testengine.New(t, testengine.Options{
		Worker: worker.Config{Metrics: m},
		Register: func(r *jetflow.Registry) error {
			if err := r.AddActivity("Flaky", func(*jetflow.ActivityContext) (any, error) {
				if runs.Add(1) < 3 {
					return nil, errors.New("not yet")
				}
				return "ok", nil
			}); err != nil {
				return err
			}
			return r.AddOrchestrator("Retrying", func(ctx *jetflow.OrchestrationContext) (any, error) {
				var out string
				err := ctx.CallActivity("Flaky", nil, jetflow.WithRetry(jetflow.RetryPolicy{MaxAttempts: 5, FirstRetryInterval: 50 * time.Millisecond})).Await(&out)
				return out, err
			})
		},
	})
	srv := httptest.NewServer(metrics.Handler(reg))
	t.Cleanup(srv.Close)
	ctx := e.Context(time.Minute)
	id, err := e.Client.StartOrchestration(ctx, "Retrying")
	require.NoError(t, err)
	st, err := e.Client.WaitForCompletion(ctx, id)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)

	s := get(t, srv.URL)
	require.Equal(t, 2.0, s.v(t, "jetflow_activity_retries_total", "activity", "Flaky"))
	require.Equal(t, 2.0, s.v(t, "jetflow_activity_executions_total", "activity", "Flaky", "outcome", metrics.ActivityFailed))
	require.Equal(t, 1.0, s.v(t, "jetflow_activity_executions_total", "activity", "Flaky", "outcome", metrics.ActivityCompleted))
}
