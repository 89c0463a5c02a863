package main

import (
	"context"
	"testing"

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
		require.Equal(t, "jetflow init: hub orders ready on "+url+"\n", r.stdout)
	}
	require.ElementsMatch(t, []string{"orders-orch", "orders-act", "KV_orders-status", "KV_orders-history", "KV_orders-registry"}, streams())
}
