package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jetflow/jetflow/internal/bench"
	"github.com/stretchr/testify/require"
)

// TestBenchVerb: bench runs on its own embedded server and prints a table,
// or JSON only with --json; a bad scenario is a one-line error.
func TestBenchVerb(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	r := cli(t, ctx, "bench", "--instances", "5", "--json")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Empty(t, r.stderr, "no progress when stderr is not a terminal")
	var results []bench.Result
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &results), "stdout: %s", r.stdout)
	require.Len(t, results, 1)
	require.Equal(t, "hello", results[0].Scenario)
	require.Equal(t, 5, results[0].Instances)
	require.Positive(t, results[0].CeilingRatio)

	r = cli(t, ctx, "bench", "--instances", "5")
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Contains(t, r.stdout, "CEILING")
	require.Contains(t, r.stdout, "hello ")

	requireOneLineError(t, cli(t, ctx, "bench", "--scenario", "nope"), `scenario "nope"`)
	requireOneLineError(t, cli(t, ctx, "bench", "--instances", "0"), "--instances 0")
	requireOneLineError(t, cli(t, ctx, "bench", "--scenario", "status-watch", "--changes", "0"), "--changes 0")
	requireOneLineError(t, cli(t, ctx, "bench", "--scenario", "long-history", "--steps", "1"), "--steps 1")
	requireOneLineError(t, cli(t, ctx, "bench", "--scenario", "waiting", "--monitor", "n1:8222"), `--monitor "n1:8222"`)
	requireOneLineError(t, cli(t, ctx, "bench", "--scenario", "status-watch", "--workers", "0"), "runs its own workers")
	requireOneLineError(t, cli(t, ctx, "bench", "--cpuprofile", filepath.Join(t.TempDir(), "no", "such", "dir", "cpu.out")), "--cpuprofile")
}

// TestBenchVerbScenarios: each new scenario at a tiny size prints its own
// figures, in the table and in JSON; the profiles are written and are
// pprof's (gzipped protocol buffers).
func TestBenchVerbScenarios(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cpu, mem := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "mem.pprof")
	r := cli(t, ctx, "bench", "--scenario", "status-watch", "--changes", "5", "--json", "--cpuprofile", cpu, "--memprofile", mem)
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	var results []bench.Result
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &results), "stdout: %s", r.stdout)
	require.Len(t, results, 1)
	require.NotNil(t, results[0].StatusWatch)
	require.Equal(t, 5, results[0].StatusWatch.Changes)
	require.Positive(t, results[0].StatusWatch.SSE.P50)
	require.NotContains(t, r.stdout, `"waiting"`, "another scenario's figures are left out")
	for _, f := range []string{cpu, mem} {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.Greater(t, len(b), 2)
		require.Equal(t, []byte{0x1f, 0x8b}, b[:2], "%s is gzipped", f)
	}

	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--scenario", "status-watch", "--changes", "3"}, []string{"commit -> SSE client: p50 ", "(3 changes)"}},
		{[]string{"--scenario", "long-history", "--steps", "10", "--uncached-steps", "5"},
			[]string{"cached: 10 activities", "cache off: 5 activities", "at the end (x"}},
		{[]string{"--scenario", "waiting", "--instances", "5"}, []string{"starts/s", "5 waiting: process RSS", "bytes waiting", "the server is embedded"}},
	} {
		r := cli(t, ctx, append([]string{"bench"}, c.args...)...)
		require.Equal(t, 0, r.code, "%v: stderr: %s", c.args, r.stderr)
		for _, w := range c.want {
			require.Contains(t, r.stdout, w, "%v", c.args)
		}
	}
}
