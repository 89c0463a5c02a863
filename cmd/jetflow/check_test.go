package main

import (
	"context"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCheckFlag runs command lines with --check: a valid one exits 0 and
// does nothing (it neither connects to NATS, nor listens, nor reads its
// files, nor creates its data directory); an invalid one gets a one-line
// error and a non-zero exit.
func TestCheckFlag(t *testing.T) {
	t.Parallel()
	// A listener standing in for NATS and taking the HTTP port: a verb that
	// connected would be counted, and one that listened would fail.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	natsURL := "nats://" + ln.Addr().String()
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	t.Cleanup(func() { // after every subtest, parallel ones included
		require.Zero(t, accepted.Load(), "a checked command line connected")
		require.NoDirExists(t, filepath.Join(dir, "data"), "a checked dev created its data directory")
	})

	valid := map[string][]string{
		"worker": {"--check", "worker", "--nats", natsURL, "--replicas", "3", "--metrics", ":9464",
			"--concurrency", "64", "--ack-wait", "45s", "--orchestrators", "A,B", "--user", "worker", "--password", "pw",
			"--inbox-prefix", "_INBOX_worker"},
		"flag after the verb": {"worker", "--nats", natsURL, "--check"},
		"server": {"--check", "server", "--nats", natsURL, "--http", ln.Addr().String(), "--api-key", "0123456789abcdef",
			"--keys", missing, "--creds", missing},
		"init":           {"--check", "--hub", "orders", "init", "--nats", natsURL, "--replicas", "3"},
		"dev":            {"--check", "dev", "--data", filepath.Join(dir, "data"), "--http", ln.Addr().String()},
		"client verb":    {"--check", "status", "some-id", "--nats", natsURL},
		"list":           {"--check", "list", "--nats", natsURL, "--top", "10", "--json"},
		"check=true":     {"--check=true", "raise", "some-id", "Event", `{"a":1}`, "--nats", natsURL},
		"help of a verb": {"--check", "worker", "--help"},
	}
	for name, args := range valid {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, context.Background(), args...)
			require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
			require.Empty(t, r.stderr)
		})
	}

	invalid := []struct {
		name     string
		args     []string
		contains string
	}{
		{"unknown verb", []string{"--check", "wroker"}, `unknown command "wroker"`},
		{"no verb", []string{"--check"}, "--check: no verb given"},
		{"unknown flag", []string{"--check", "worker", "--metric", ":9464"}, "unknown flag: --metric"},
		{"flag of another verb", []string{"--check", "worker", "--http", ":8080"}, "unknown flag: --http"},
		{"bad int", []string{"--check", "worker", "--replicas", "three"}, `invalid argument "three" for "--replicas"`},
		{"bad duration", []string{"--check", "worker", "--ack-wait", "45"}, `invalid argument "45" for "--ack-wait"`},
		{"bad bool", []string{"--check=maybe", "worker"}, `invalid argument "maybe" for "--check"`},
		{"missing argument", []string{"--check", "status"}, "got 0 arguments; usage: jetflow status ID"},
		{"extra argument", []string{"--check", "worker", "extra"}, "got 1 arguments; usage: jetflow worker"},
		{"flag without value", []string{"--check", "server", "--http"}, "flag needs an argument: --http"},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			requireOneLineError(t, cli(t, context.Background(), tc.args...), tc.contains)
		})
	}

}

// TestCheckFlagHidden keeps --check out of the help (it is for
// deploy/check), and the root without --check printing its help.
func TestCheckFlagHidden(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"worker", "--help"}, {}} {
		r := cli(t, context.Background(), args...)
		require.Equal(t, 0, r.code, "%v: %s", args, r.stderr)
		require.Contains(t, r.stdout, "Usage:", "%v", args)
		require.NotContains(t, r.stdout, "--check", "%v", args)
	}
}
