package bench_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/bench"
	"github.com/stretchr/testify/require"
)

// TestScenarios runs each scenario small on an embedded server and checks
// that what it reports is consistent (not how fast: benchmarks are not
// timed tests).
func TestScenarios(t *testing.T) {
	t.Parallel()
	for _, scenario := range bench.Scenarios {
		t.Run(scenario, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			// Progress is called from the scenario's goroutines (an activity's,
			// a watch's), which the scenario's end is not ordered after.
			var mu sync.Mutex
			var last, total int
			r, err := bench.Run(ctx, bench.Config{Scenario: scenario, Instances: 20, Changes: 20, Steps: 30, UncachedSteps: 20,
				Progress: func(done, all int) {
					mu.Lock()
					defer mu.Unlock()
					last, total = done, all
				}})
			require.NoError(t, err)
			mu.Lock()
			defer mu.Unlock()
			require.Positive(t, total)
			require.Equal(t, total, last, "progress reaches the end")
			require.Equal(t, scenario, r.Scenario)
			require.Positive(t, r.Seconds)
			switch scenario {
			case "hello", "fanout":
				require.Positive(t, r.OrchestrationsPerSecond)
				require.Positive(t, r.ActivitiesPerSecond)
				require.Positive(t, r.RawWritesPerSecond)
				// HelloSequence stores ~16 messages per instance; one fan-out of
				// 1,000 thousands.
				require.Greater(t, r.WritesPerOrchestration, 5.0)
				require.InDelta(t, r.OrchestrationsPerSecond*r.WritesPerOrchestration/r.RawWritesPerSecond, r.CeilingRatio, 1e-9)
			}
			switch scenario {
			case "hello":
				require.Equal(t, 20, r.Instances)
				require.Less(t, r.WritesPerOrchestration, 40.0)
				// Without its custom statuses, the sequence saves the status
				// writes of its second and third turns.
				require.InDelta(t, r.WritesPerOrchestration-2, r.PlainWritesPerOrchestration, 0.5)
				require.Positive(t, r.Alone)
				require.Positive(t, r.P50)
				require.GreaterOrEqual(t, r.P99, r.P50)
			case "fanout":
				require.Len(t, r.Cases, 2)
				require.Greater(t, r.WritesPerOrchestration, 1000.0, "1,100 activities' tasks and results")
			case "status-watch":
				w := r.StatusWatch
				require.NotNil(t, w)
				require.Equal(t, 20, w.Changes)
				want := make([]int, 20)
				for i := range want {
					want[i] = i + 1
				}
				require.Equal(t, want, w.WatcherValues, "the Go watcher saw every change, in order")
				require.Equal(t, want, w.SSEValues, "the SSE client saw every change, in order")
				for name, l := range map[string]bench.Latency{"raw": w.RawWatch, "watcher": w.Watcher, "sse": w.SSE, "turn": w.EventToWatcher} {
					requireQuantiles(t, name, l)
				}
				// A reader cannot see a value before it is stored, and a turn
				// includes its commit.
				require.GreaterOrEqual(t, w.EventToWatcher.P50, w.Watcher.P50)
			case "long-history":
				h := r.LongHistory
				require.NotNil(t, h)
				for _, s := range []bench.Steps{h.Cached, h.Uncached} {
					require.Greater(t, s.Events, 2*s.Activities, "each activity adds its scheduling and completion to history")
					require.Positive(t, s.Window)
					require.Positive(t, s.Start)
					require.Positive(t, s.End)
					require.InDelta(t, s.End/s.Start, s.Ratio, 1e-9)
					require.False(t, math.IsInf(s.Ratio, 0))
				}
				require.Equal(t, 30, h.Cached.Activities)
				require.Equal(t, 20, h.Uncached.Activities)
			case "waiting":
				w := r.Waiting
				require.NotNil(t, w)
				require.Equal(t, 20, r.Instances)
				for _, rate := range []float64{w.StartsPerSecond, w.WaitingPerSecond, w.RaisesPerSecond, w.CompletedPerSecond} {
					require.Positive(t, rate)
					require.False(t, math.IsInf(rate, 0))
				}
				require.GreaterOrEqual(t, w.StartsPerSecond, w.WaitingPerSecond, "start calls return before their instances wait")
				require.Positive(t, w.RSSMB)
				require.Positive(t, w.HeapMB)
				require.GreaterOrEqual(t, w.RSSMB, w.HeapMB/2)
				require.Contains(t, w.ServerMemoryMeasured, "embedded")
				require.Zero(t, w.ServerMemMB, "not told apart from the process's on an embedded server")
			case "scale":
				require.Len(t, r.Scale, len(bench.ScaleWorkers))
				for i, p := range r.Scale {
					require.Equal(t, bench.ScaleWorkers[i], p.Workers)
					require.Positive(t, p.OrchestrationsPerSecond)
					require.InDelta(t, p.OrchestrationsPerSecond/r.Scale[0].OrchestrationsPerSecond, p.Ratio, 1e-9)
					require.Positive(t, p.P50)
					require.GreaterOrEqual(t, p.P99, p.P50)
					require.Positive(t, p.CPUSeconds)
					require.InDelta(t, 1000*p.CPUSeconds/20, p.CPUPerOrchestration, 1e-9)
					require.Len(t, p.CPUShares, 4, "server, engine, bench and other")
					var sum float64
					for side, share := range p.CPUShares {
						require.Contains(t, []string{"server", "engine", "bench", "other"}, side)
						require.True(t, share >= 0 && share <= 1, "%s: %v", side, share)
						sum += share
					}
					if sum > 0 { // the profile took samples (at 100 Hz: a few, on this small load)
						require.InDelta(t, 1, sum, 1e-9)
					}
				}
				require.Equal(t, 1.0, r.Scale[0].Ratio)
			}
		})
	}
}

// requireQuantiles: a latency was measured, and its quantiles are in
// order.
func requireQuantiles(t *testing.T, name string, l bench.Latency) {
	t.Helper()
	require.Positive(t, l.P50, name)
	require.GreaterOrEqual(t, l.P99, l.P50, name)
	require.GreaterOrEqual(t, l.Max, l.P99, name)
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []bench.Config{
		{Scenario: "nope"},
		{Scenario: "hello", Instances: -1},
		{Scenario: "hello", Workers: -2},
		{Scenario: "status-watch", Changes: -1},
		{Scenario: "long-history", Steps: 1},
		{Scenario: "long-history", NoWorkers: true},
		{Scenario: "waiting", MonitorURL: "localhost:8222"},
	} {
		_, err := bench.Run(context.Background(), cfg)
		require.True(t, errors.Is(err, jetflow.ErrInvalidOption), "%+v: %v", cfg, err)
	}
}
