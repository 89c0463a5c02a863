package storage_test

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/nats-io/nats-server/v2/server"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// runCluster starts an in-process JetStream cluster of n servers on
// 127.0.0.1, each routed to all the others, waits until it has a
// JetStream meta leader that knows every server, every server is current
// and a stream of n replicas can be placed, and shuts it down when the
// test ends.
func runCluster(t *testing.T, n int) []*server.Server {
	t.Helper()
	// Every server must have its routes configured before it starts
	// (JetStream clustering refuses to start without), so the cluster
	// ports are picked first; the listeners stay open until all are
	// picked, so that they differ.
	routes := make([]*url.URL, n)
	ports := make([]int, n)
	listeners := make([]net.Listener, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		listeners[i] = l
		ports[i] = l.Addr().(*net.TCPAddr).Port
		routes[i] = &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])}
	}
	for _, l := range listeners {
		require.NoError(t, l.Close())
	}
	opts := make([]*server.Options, n)
	for i := range n {
		opts[i] = &server.Options{
			ServerName:         fmt.Sprintf("node-%d", i),
			Host:               "127.0.0.1",
			Port:               -1,
			NoSigs:             true,
			NoLog:              true,
			JetStream:          true,
			StoreDir:           t.TempDir(),
			JetStreamMaxMemory: 256 << 20,
			// One route per pair of servers (no pool): fewer connections
			// to settle before the cluster is steady.
			Cluster: server.ClusterOpts{Name: "conformance", Host: "127.0.0.1", Port: ports[i], PoolSize: -1},
			Routes:  routes, // a server skips the route to itself
		}
	}

	servers := make([]*server.Server, n)
	for i := range n {
		srv, err := server.NewServer(opts[i])
		require.NoError(t, err)
		servers[i] = srv
		t.Cleanup(func() {
			srv.Shutdown()
			srv.WaitForShutdown()
		})
		go srv.Start()
	}
	for _, srv := range servers {
		require.True(t, srv.ReadyForConnections(10*time.Second), "%s takes connections", srv.Name())
	}
	// Until every route is up, the meta leader may count a server as
	// offline for a moment and refuse to place replicated streams.
	testkit.WaitForNoError(t, 30*time.Second, "a JetStream meta leader that knows every server", func() error {
		leaders := 0
		for _, srv := range servers {
			if got := srv.NumRoutes(); got != n-1 {
				return fmt.Errorf("%s has %d routes, not %d", srv.Name(), got, n-1)
			}
			if !srv.JetStreamIsCurrent() {
				return fmt.Errorf("%s is not current", srv.Name())
			}
			if srv.JetStreamIsLeader() {
				leaders++
				if peers := srv.JetStreamClusterPeers(); len(peers) != n {
					return fmt.Errorf("the meta leader knows %d of %d servers", len(peers), n)
				}
			}
		}
		if leaders != 1 {
			return fmt.Errorf("%d meta leaders", leaders)
		}
		for _, srv := range servers {
			if h := srv.Healthz(&server.HealthzOptions{JSEnabledOnly: true}); h.Status != "ok" {
				return fmt.Errorf("%s: %s %s", srv.Name(), h.Status, h.Error)
			}
		}
		return nil
	})
	// The meta leader may know every server before it has the
	// configuration of each (it then refuses to place a replicated stream,
	// "peer offline"): wait until it places one.
	nc, js := connect(t, servers[0])
	testkit.WaitForNoError(t, 30*time.Second, "the cluster to place a stream of "+strconv.Itoa(n)+" replicas", func() error {
		_, err := js.CreateStream(t.Context(), natsjs.StreamConfig{Name: "placement-probe", Replicas: n, Storage: natsjs.MemoryStorage})
		return err
	})
	require.NoError(t, js.DeleteStream(t.Context(), "placement-probe"))
	nc.Close()
	return servers
}
