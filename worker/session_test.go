package worker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/metrics"
	"github.com/jetflow/jetflow/worker"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// registerLongSum registers LongSum: steps calls of Double one after the
// other, the sum so far as custom status after each, the sum as output.
func registerLongSum(steps int) func(r *jetflow.Registry) error {
	return func(r *jetflow.Registry) error {
		if err := r.AddActivity("Double", func(ctx *jetflow.ActivityContext) (any, error) {
			var n int
			err := ctx.GetInput(&n)
			return 2 * n, err
		}); err != nil {
			return err
		}
		return r.AddOrchestrator("LongSum", func(ctx *jetflow.OrchestrationContext) (any, error) {
			sum := 0
			for i := range steps {
				var d int
				if err := ctx.CallActivity("Double", i).Await(&d); err != nil {
					return nil, err
				}
				sum += d
				if err := ctx.SetCustomStatus(sum); err != nil {
					return nil, err
				}
			}
			return sum, nil
		})
	}
}

// TestLongExecutionsOnRacingWorkers: long executions (past the size at
// which the Go executor keeps replay sessions between turns) whose
// messages go to whichever of two workers pulls them, one worker replaced
// midway, so that turns continue sessions, find the other worker went on
// (a history the session never saw), and lose fences: every instance ends
// with the right output, custom status and history.
func TestLongExecutionsOnRacingWorkers(t *testing.T) {
	t.Parallel()
	const steps = 120
	e := testengine.New(t, testengine.Options{Workers: 2, Register: registerLongSum(steps)})
	ctx := e.Context(120 * time.Second)
	ids := make([]string, 6)
	for i := range ids {
		id, err := e.Client.StartOrchestration(ctx, "LongSum", client.WithInstanceID(fmt.Sprintf("long-%d", i)))
		require.NoError(t, err)
		ids[i] = id
	}
	// Once the executions are long enough to keep sessions, one worker
	// goes and another comes.
	testkit.WaitFor(t, 60*time.Second, "an instance halfway", func() bool {
		st, err := e.Client.GetStatus(ctx, ids[0])
		if err != nil {
			return false
		}
		var n int
		_, _ = fmt.Sscan(string(st.CustomStatus), &n)
		return n >= 2*(60*59/2)
	})
	e.StartWorker()
	require.NoError(t, e.StopWorker(ctx, 0))
	want := 2 * (steps * (steps - 1) / 2)
	for _, id := range ids {
		st := wait(t, e, id)
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus, id)
		require.JSONEq(t, fmt.Sprint(want), string(st.Output), id)
		require.JSONEq(t, fmt.Sprint(want), string(st.CustomStatus), id)
		events := checkHistory(t, e, id)
		require.Equal(t, steps, count(events, history.TaskCompleted), id)
		require.Equal(t, steps, count(events, history.TaskScheduled), id)
	}
	for i, w := range e.Workers { // the one that stayed, the one that came
		require.Positive(t, w.Stats().Turns, "worker %d ran turns", i)
	}
}

// TestStaleCachesCatchUp: one long sequence whose results go to whichever
// of two workers pulls them. A worker whose cached state another worker
// went past reads only the chunks committed since (a catch-up), not the
// whole history, and its replay session goes through them instead of
// replaying from the start: each worker reads the whole history at most
// once, however often the turns change hands.
func TestStaleCachesCatchUp(t *testing.T) {
	t.Parallel()
	const steps = 80
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	e := testengine.New(t, testengine.Options{Workers: 2, Worker: worker.Config{Metrics: m}, Register: registerLongSum(steps)})
	ctx := e.Context(120 * time.Second)
	id, err := e.Client.StartOrchestration(ctx, "LongSum", client.WithInstanceID("catch-up"))
	require.NoError(t, err)
	st := wait(t, e, id)
	want := 2 * (steps * (steps - 1) / 2)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
	require.JSONEq(t, fmt.Sprint(want), string(st.Output))
	events := checkHistory(t, e, id)
	require.Equal(t, steps, count(events, history.TaskCompleted))

	var turns, loads, catchUps int64
	for i, w := range e.Workers {
		s := w.Stats()
		require.Positive(t, s.Turns, "worker %d ran turns", i)
		require.LessOrEqual(t, s.Loads, int64(1), "worker %d read the whole history more than once", i)
		turns, loads, catchUps = turns+s.Turns, loads+s.Loads, catchUps+s.CatchUps
	}
	resumed := counter(t, reg, "jetflow_replays_total", "result", metrics.ReplayResumed)
	t.Logf("%d turns, %d whole loads, %d catch-ups, %.0f turns resumed a session", turns, loads, catchUps, resumed)
	require.Positive(t, catchUps, "the turns changed hands")
	// Sessions are kept from 100 events on (a third of the way): every
	// turn after that, on either worker, resumes one.
	require.GreaterOrEqual(t, resumed, float64(steps/2))
}

// counter sums the series of a counter family in reg whose label has
// value.
func counter(t *testing.T, reg *prometheus.Registry, family, label, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, f := range families {
		if f.GetName() != family {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}
