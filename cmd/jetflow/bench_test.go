package main

import (
	"context"
	"encoding/json"
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
}
