package bench_test

import (
	"context"
	"errors"
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
			var last, total int
			r, err := bench.Run(ctx, bench.Config{Scenario: scenario, Instances: 20,
				Progress: func(done, all int) { last, total = done, all }})
			require.NoError(t, err)
			require.Equal(t, total, last, "progress reaches the end")
			require.Equal(t, scenario, r.Scenario)
			require.Positive(t, r.OrchestrationsPerSecond)
			require.Positive(t, r.ActivitiesPerSecond)
			require.Positive(t, r.RawWritesPerSecond)
			// HelloSequence stores ~16 messages per instance; one fan-out of
			// 1,000 thousands.
			require.Greater(t, r.WritesPerOrchestration, 5.0)
			require.InDelta(t, r.OrchestrationsPerSecond*r.WritesPerOrchestration/r.RawWritesPerSecond, r.CeilingRatio, 1e-9)
			switch scenario {
			case "hello":
				require.Equal(t, 20, r.Instances)
				require.Less(t, r.WritesPerOrchestration, 40.0)
				require.Positive(t, r.Alone)
				require.Positive(t, r.P50)
				require.GreaterOrEqual(t, r.P99, r.P50)
			case "fanout":
				require.Len(t, r.Cases, 2)
				require.Greater(t, r.WritesPerOrchestration, 1000.0, "1,100 activities' tasks and results")
			}
		})
	}
}

func TestBadConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []bench.Config{
		{Scenario: "nope"},
		{Scenario: "hello", Instances: -1},
		{Scenario: "hello", Workers: -2},
	} {
		_, err := bench.Run(context.Background(), cfg)
		require.True(t, errors.Is(err, jetflow.ErrInvalidOption), "%+v: %v", cfg, err)
	}
}
