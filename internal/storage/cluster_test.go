package storage_test

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/storage"
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

// TestBackToBackWritesOnCluster: on an R3 hub, a writer's next
// compare-and-set right after its acknowledged one (a history chunk over
// the last, a status over the one just written) is not a conflict. The
// stream's leader may still hold the first write's expectation "in
// process" when the second arrives and refuses it without a sequence
// (error 10164); the store tries such a write again instead of reporting
// a conflict that never happened.
func TestBackToBackWritesOnCluster(t *testing.T) {
	t.Parallel()
	servers := runCluster(t, 3)
	// A store on each server: most writes go through one that does not
	// lead the stream.
	var stores []*storage.Store
	for _, srv := range servers {
		nc, _ := connect(t, srv)
		stores = append(stores, openStore(t, nc, storage.Config{Hub: "b2b", Replicas: 3}))
	}
	ctx := t.Context()
	const writers, writes = 24, 25
	errs := make(chan error, writers)
	for w := range writers {
		s := stores[w%len(stores)]
		go func() {
			id := "b2b-" + strconv.Itoa(w)
			var chunkRev, statusRev uint64
			for c := uint32(1); c <= writes; c++ {
				var err error
				if chunkRev, err = s.AppendChunk(ctx, id, c, chunkRev, events(int(c), 1), nil); err != nil {
					errs <- fmt.Errorf("chunk %d of %s: %w", c, id, err)
					return
				}
				if statusRev, err = s.PutStatus(ctx, id, status(id, jetflow.StatusRunning, strconv.Itoa(int(c))), statusRev); err != nil {
					errs <- fmt.Errorf("status %d of %s: %w", c, id, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		require.NoError(t, <-errs)
	}
}

// TestRetryInProcess: a write refused because the leader still processes
// an earlier expectation on its subject (10164) is tried again until it
// goes through; a real conflict (10071, with the stream's sequence) is
// returned at once; a refusal that lasts ends as a conflict.
func TestRetryInProcess(t *testing.T) {
	t.Parallel()
	inProcess := &natsjs.APIError{Code: 400, ErrorCode: natsjs.JSErrCodeStreamWrongLastSequenceConstant, Description: "wrong last sequence"}
	conflict := &natsjs.APIError{Code: 400, ErrorCode: natsjs.JSErrCodeStreamWrongLastSequence, Description: "wrong last sequence: 7"}
	for _, tc := range []struct {
		name     string
		answers  []error // what the server says to each try; the last one repeats
		tries    int
		conflict bool
	}{
		{"refused twice, then stored", []error{inProcess, inProcess, nil}, 3, false},
		{"a real conflict", []error{conflict}, 1, true},
		{"refused every time", []error{inProcess}, 21, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tries := 0
			err := storage.RetryInProcess(t.Context(), func() error {
				tries++
				return tc.answers[min(tries, len(tc.answers))-1]
			})
			require.Equal(t, tc.tries, tries)
			if tc.conflict {
				require.Error(t, err)
				require.True(t, errors.Is(storage.MapErrForTest(err), storage.ErrConflict), "%v is a conflict", err)
			} else {
				require.NoError(t, err)
			}
		})
	}
}
