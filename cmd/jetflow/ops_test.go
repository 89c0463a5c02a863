package main

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/jetstream/embedded"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// TestInit creates a hub with `jetflow init` on a fresh server and runs it
// again on the existing hub; a hub it cannot create (three replicas on one
// server) is a one-line error, and nothing is created.
func TestInit(t *testing.T) {
	t.Parallel()
	srv, err := embedded.Run(embedded.Config{Dir: t.TempDir(), Listen: "127.0.0.1:-1"})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	url := srv.ClientURL()
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := natsjs.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	streams := func() []string {
		var names []string
		for name := range js.StreamNames(ctx).Name() {
			names = append(names, name)
		}
		return names
	}

	requireOneLineError(t, cli(t, ctx, "init", "--nats", url, "--replicas", "3", "--hub", "big"), "replicas")
	require.Empty(t, streams(), "a failed init created streams")

	for range 2 { // creates the hub, then finds it
		r := cli(t, ctx, "init", "--nats", url, "--hub", "orders")
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		require.Equal(t, "jetflow init: hub orders ready on "+url+"; finished instances are kept until purged\n", r.stdout)
	}
	require.ElementsMatch(t, []string{"orders-orch", "orders-act", "KV_orders-status", "KV_orders-history", "KV_orders-registry"}, streams())

	// --retention is the hub's: recorded once, followed by a later init
	// that gives none, turned off with a negative one.
	for _, tc := range []struct{ flag, says string }{
		{"--retention=720h", "removed 720h0m0s after they finish"},
		{"", "removed 720h0m0s after they finish"},
		{"--retention=-1s", "kept until purged"},
	} {
		args := []string{"init", "--nats", url, "--hub", "orders"}
		if tc.flag != "" {
			args = append(args, tc.flag)
		}
		r := cli(t, ctx, args...)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		require.Equal(t, "jetflow init: hub orders ready on "+url+"; finished instances are "+tc.says+"\n", r.stdout, "init %s", tc.flag)
	}
	requireOneLineError(t, cli(t, ctx, "init", "--nats", url, "--hub", "orders", "--retention", "10ms"), "retention 10ms: want at least 1s")

	// --partitions is the hub's layout: recorded once, followed by a later
	// init that gives none, refused when another is given.
	for _, args := range [][]string{{"--partitions", "3"}, nil} {
		r := cli(t, ctx, append([]string{"init", "--nats", url, "--hub", "parted"}, args...)...)
		require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
		require.Equal(t, "jetflow init: hub parted ready on "+url+" (3 partitions); finished instances are kept until purged\n", r.stdout)
	}
	for p := range 3 {
		for _, name := range []string{"parted-orch-", "parted-act-", "KV_parted-history-"} {
			require.Contains(t, streams(), name+strconv.Itoa(p))
		}
	}
	requireOneLineError(t, cli(t, ctx, "init", "--nats", url, "--hub", "parted", "--partitions", "2"), `hub "parted" was created with 3 partition(s), not 2`)
	requireOneLineError(t, cli(t, ctx, "init", "--nats", url, "--hub", "wide", "--partitions", "65"), "partitions 65: want 1 to 64")
	require.NotContains(t, streams(), "KV_wide-status", "a refused layout creates nothing")
}

// TestHealthcheck probes a real `jetflow server`: 0 once it serves, a
// one-line error for a route that is not 200 and for a port nobody
// listens on.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	srv, err := embedded.Run(embedded.Config{Dir: t.TempDir(), Listen: "127.0.0.1:-1"})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // free again: nobody listens there yet

	requireOneLineError(t, cli(t, context.Background(), "healthcheck", "http://"+addr+"/healthz", "--timeout", "2s"), "connection refused")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		var out, stderr testkit.Buffer
		done <- run(ctx, []string{"server", "--nats", srv.ClientURL(), "--http", addr, "--api-key", "0123456789abcdef", "--log-level", "warn"}, &out, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		require.Equal(t, 0, testkit.Receive(t, done, 20*time.Second, "the server did not stop"))
	})
	testkit.WaitFor(t, 20*time.Second, "jetflow healthcheck to pass", func() bool {
		return cli(t, context.Background(), "healthcheck", "http://"+addr+"/healthz").code == 0
	})
	requireOneLineError(t, cli(t, context.Background(), "healthcheck", "http://"+addr+"/metrics"), "401 Unauthorized")
	requireOneLineError(t, cli(t, context.Background(), "healthcheck", "://bad"), "missing protocol scheme")
}
