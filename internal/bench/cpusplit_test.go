package bench

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/stretchr/testify/require"
)

// TestSideShares: samples are summed by the bench's label, the server's
// own label counts as the server, and the rest is other.
func TestSideShares(t *testing.T) {
	t.Parallel()
	fn := &profile.Function{ID: 1, Name: "f"}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn}}}
	sample := func(ns int64, labels map[string][]string) *profile.Sample {
		return &profile.Sample{Location: []*profile.Location{loc}, Value: []int64{1, ns}, Label: labels}
	}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		Sample: []*profile.Sample{
			sample(40, map[string][]string{sideLabel: {sideServer}}),
			sample(20, map[string][]string{serverLabel: {"$G"}, "stream": {"jetflow-orch"}}),
			sample(30, map[string][]string{sideLabel: {sideEngine}}),
			sample(5, map[string][]string{sideLabel: {sideBench}}),
			sample(5, nil),
		},
		Location: []*profile.Location{loc}, Function: []*profile.Function{fn},
	}
	var buf bytes.Buffer
	require.NoError(t, p.Write(&buf))
	shares, err := sideShares(buf.Bytes())
	require.NoError(t, err)
	require.InDeltaMapValues(t, map[string]float64{sideServer: 0.6, sideEngine: 0.3, sideBench: 0.05, sideOther: 0.05}, shares, 1e-9)

	p.Sample = nil
	buf.Reset()
	require.NoError(t, p.Write(&buf))
	shares, err = sideShares(buf.Bytes())
	require.NoError(t, err)
	require.Equal(t, map[string]float64{sideServer: 0, sideEngine: 0, sideBench: 0, sideOther: 0}, shares, "no samples")

	_, err = sideShares([]byte("not a profile"))
	require.Error(t, err)
}

// TestOnSide: a goroutine started under onSide carries the label, and
// the CPU it uses is counted on its side.
func TestOnSide(t *testing.T) {
	// Not parallel: a process has one CPU profiler.
	var shares map[string]float64
	shares, ok, err := cpuSplit(func() error {
		done := make(chan struct{})
		onSide(context.Background(), sideEngine, func(context.Context) {
			go func() {
				defer close(done)
				for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
				}
			}()
		})
		<-done
		return nil
	})
	require.NoError(t, err)
	require.True(t, ok, "no other CPU profile runs in this test binary")
	require.Greater(t, shares[sideEngine], 0.5, "%v", shares)
}
