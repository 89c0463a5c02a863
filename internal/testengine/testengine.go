// Package testengine runs a whole jetflow engine for tests: an embedded
// nats-server on a temporary store directory (fsync on every write, as
// `jetflow dev` runs it), the store, a dispatcher, workers and a client.
// The server can be restarted on the same directory, and workers stopped
// and started, to test crashes and restarts.
package testengine

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/jetflow/jetflow/jetstream/embedded"
	"github.com/jetflow/jetflow/worker"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// Engine is a running test engine.
type Engine struct {
	t        testing.TB
	Dir      string
	Listen   string
	Server   *server.Server
	Conn     *nats.Conn
	Store    *jetstream.Store
	Storage  *storage.Store // the engine's storage behind Store
	Client   *client.Client
	Registry *jetflow.Registry
	Workers  []*worker.Worker
	opts     Options
	conns    []*nats.Conn // the workers' own connections
}

// PartitionsEnv names the environment variable that gives the engines'
// hubs their partitions (Options.Store).
const PartitionsEnv = "JETFLOW_TEST_PARTITIONS"

// Options tunes an engine.
type Options struct {
	// Register adds orchestrators and activities to the registry.
	Register func(r *jetflow.Registry) error
	// Workers is how many workers to start. Defaults to 1; -1 starts none.
	Workers int
	// Worker is the workers' configuration.
	Worker worker.Config
	// Store is the store configuration. Its Partitions default to
	// $JETFLOW_TEST_PARTITIONS when that is set, so that a suite can be run
	// on a partitioned hub: JETFLOW_TEST_PARTITIONS=3 go test ./worker/.
	Store jetstream.Config
	// SyncInterval, when positive, fsyncs at that interval instead of on
	// every write.
	SyncInterval time.Duration
}

// New starts an engine; everything stops when the test ends.
func New(t testing.TB, opts Options) *Engine {
	t.Helper()
	if opts.Workers == 0 {
		opts.Workers = 1
	}
	if v := os.Getenv(PartitionsEnv); v != "" && opts.Store.Partitions == 0 {
		p, err := strconv.Atoi(v)
		require.NoError(t, err, "$%s", PartitionsEnv)
		opts.Store.Partitions = p
	}
	e := &Engine{t: t, Dir: t.TempDir(), Listen: "127.0.0.1:" + strconv.Itoa(freePort(t)), opts: opts}
	e.Registry = jetflow.NewRegistry()
	if opts.Register != nil {
		require.NoError(t, opts.Register(e.Registry))
	}
	e.startServer()
	e.connect()
	for i := 0; i < opts.Workers; i++ {
		e.StartWorker()
	}
	t.Cleanup(e.Close)
	return e
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (e *Engine) startServer() {
	s, err := embedded.Run(embedded.Config{Dir: e.Dir, Listen: e.Listen, SyncInterval: e.opts.SyncInterval})
	require.NoError(e.t, err)
	e.Server = s
}

func (e *Engine) connect() {
	e.Conn, e.Store = e.open()
	e.Storage = storage.Of(e.Store)
	e.Client = client.New(e.Store)
}

// open makes a connection with its store, as a process of its own would.
func (e *Engine) open() (*nats.Conn, *jetstream.Store) {
	nc, err := nats.Connect(e.Server.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(e.t, err)
	st, err := jetstream.Open(context.Background(), nc, e.opts.Store)
	require.NoError(e.t, err)
	return nc, st
}

// Logger logs through t.Log at Warn level and above.
func (e *Engine) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{e.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// StartWorker starts one more worker with the engine's registry, on a
// connection of its own (like a separate process).
func (e *Engine) StartWorker() *worker.Worker {
	e.t.Helper()
	return e.StartWorkerWith(e.opts.Worker)
}

// StartWorkerWith is StartWorker with a configuration of its own.
func (e *Engine) StartWorkerWith(cfg worker.Config) *worker.Worker {
	e.t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = e.Logger()
	}
	cfg.Name = "w" + strconv.Itoa(len(e.Workers))
	nc, st := e.open()
	w, err := worker.New(st, e.Registry, cfg)
	require.NoError(e.t, err)
	require.NoError(e.t, w.Start(context.Background()))
	e.Workers = append(e.Workers, w)
	e.conns = append(e.conns, nc)
	return w
}

// StopWorker stops worker i gracefully (it finishes the turns and
// activities in progress and hands back what it fetched) and closes its
// connection, as a process exiting on SIGTERM would.
func (e *Engine) StopWorker(ctx context.Context, i int) error {
	err := e.Workers[i].Stop(ctx)
	e.conns[i].Close()
	e.Workers = append(e.Workers[:i:i], e.Workers[i+1:]...)
	e.conns = append(e.conns[:i:i], e.conns[i+1:]...)
	return err
}

// StopWorkers stops every worker, cancelling their work, and closes their
// connections (as a crash would leave it: unacknowledged messages are
// redelivered).
func (e *Engine) StopWorkers() {
	for _, w := range e.Workers {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = w.StopAndCancel(ctx)
		cancel()
	}
	for _, nc := range e.conns {
		nc.Close()
	}
	e.Workers, e.conns = nil, nil
}

// RestartServer stops the workers, shuts the nats-server down, starts it
// again on the same store directory and reconnects. Workers are not
// restarted.
func (e *Engine) RestartServer() {
	e.t.Helper()
	e.StopWorkers()
	e.Client.Close()
	e.Conn.Close()
	e.Server.Shutdown()
	e.Server.WaitForShutdown()
	e.startServer()
	e.connect()
}

// Close stops everything.
func (e *Engine) Close() {
	e.StopWorkers()
	if e.Client != nil {
		e.Client.Close()
	}
	if e.Conn != nil {
		e.Conn.Close()
	}
	if e.Server != nil {
		e.Server.Shutdown()
		e.Server.WaitForShutdown()
	}
}

// Context returns a context that ends after d or with the test.
func (e *Engine) Context(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	e.t.Cleanup(cancel)
	return ctx
}

// Idle returns nil once no orchestrator or activity consumer of the hub
// has messages waiting or held by a worker, and otherwise an error that
// names the first busy one (for testkit.WaitForNoError).
func (e *Engine) Idle(ctx context.Context) error {
	bl, err := e.Storage.Backlog(ctx)
	if err != nil {
		return err
	}
	for _, b := range bl {
		if b.Pending > 0 || b.AckPending > 0 {
			return fmt.Errorf("%s: %d waiting, %d held", b.Consumer, b.Pending, b.AckPending)
		}
	}
	return nil
}
