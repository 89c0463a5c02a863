package samples_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/samples"
	"github.com/stretchr/testify/require"
)

func TestFanOutFanIn(t *testing.T) {
	t.Parallel()
	e := newEngine(t, samples.Options{})
	ctx := e.Context(30 * time.Second)
	for _, tc := range []struct {
		input      string
		activities int
	}{
		{"null", samples.DefaultFanOut},
		{"0", samples.DefaultFanOut},
		{"5", 5},
		{"1", 1},
	} {
		t.Run("input "+tc.input, func(t *testing.T) {
			id, err := e.Client.StartOrchestration(ctx, "FanOutFanIn", client.WithRawInput(json.RawMessage(tc.input)))
			require.NoError(t, err)
			st, err := e.Client.WaitForCompletion(ctx, id)
			require.NoError(t, err)
			require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus, "output %s", st.Output)
			var sum int
			require.NoError(t, json.Unmarshal(st.Output, &sum))
			require.Equal(t, samples.SumOfSquares(tc.activities), sum)
			hist, err := e.Client.GetHistory(ctx, id, client.WithOutputs())
			require.NoError(t, err)
			completed := 0
			for _, ev := range hist {
				if ev.EventType == "TaskCompleted" {
					require.Equal(t, "Square", ev.FunctionName)
					completed++
				}
			}
			require.Equal(t, tc.activities, completed)
		})
	}
	require.Equal(t, 2870, samples.SumOfSquares(20))
	t.Run("bad input", func(t *testing.T) {
		for _, in := range []string{"-1", `"x"`, "1001"} {
			id, err := e.Client.StartOrchestration(ctx, "FanOutFanIn", client.WithRawInput(json.RawMessage(in)))
			require.NoError(t, err)
			st, err := e.Client.WaitForCompletion(ctx, id)
			require.NoError(t, err)
			require.Equal(t, jetflow.StatusFailed, st.RuntimeStatus, "input %s", in)
			require.Contains(t, string(st.Output), "input must be an integer from 0 to 1000")
		}
	})
}

func TestDelay(t *testing.T) {
	t.Parallel()
	e := newEngine(t, samples.Options{})
	ctx := e.Context(30 * time.Second)
	start := time.Now()
	id, err := e.Client.StartOrchestration(ctx, "Delay", client.WithInput(2))
	require.NoError(t, err)
	st, err := e.Client.WaitForCompletion(ctx, id)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus, "output %s", st.Output)
	require.JSONEq(t, "2", string(st.Output))
	// Timers are accurate to about a second.
	require.GreaterOrEqual(t, time.Since(start), time.Second)
	hist, err := e.Client.GetHistory(ctx, id)
	require.NoError(t, err)
	var types []string
	for _, ev := range hist {
		types = append(types, ev.EventType)
	}
	require.Contains(t, types, "TimerFired")

	id, err = e.Client.StartOrchestration(ctx, "Delay", client.WithInput(-1))
	require.NoError(t, err)
	st, err = e.Client.WaitForCompletion(ctx, id)
	require.NoError(t, err)
	require.Equal(t, jetflow.StatusFailed, st.RuntimeStatus)
	require.Contains(t, string(st.Output), "from 0 to 86400")
}
