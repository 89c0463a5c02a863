package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/jetflow/jetflow/samples"
	"github.com/jetflow/jetflow/worker"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

// processOptions are the flags of the long-running verbs on an external
// NATS: worker and server.
type processOptions struct {
	*clientOptions
	logLevel   string
	replicas   int
	partitions int
	// retention is the hub's retention to record (init's --retention); 0
	// keeps the hub's.
	retention time.Duration
}

func addProcessFlags(cmd *cobra.Command, g *globalOptions) *processOptions {
	o := &processOptions{clientOptions: addClientFlags(cmd, g)}
	cmd.Flags().StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	cmd.Flags().IntVar(&o.replicas, "replicas", 1, "replicas of the streams and buckets this process creates if the hub has none yet (3 on a cluster)")
	addPartitionsFlag(cmd, &o.partitions)
	return o
}

// addPartitionsFlag adds --partitions, the layout of a new hub
// (jetstream.Config.Partitions).
func addPartitionsFlag(cmd *cobra.Command, partitions *int) {
	cmd.Flags().IntVar(partitions, "partitions", 0, fmt.Sprintf("streams each of the inbox, the tasks and the history of a new hub is spread over "+
		"(1 to %d; 0: the hub's, or 1 for a new hub); a hub keeps its count, and another one is refused", storage.MaxPartitions))
}

// open connects (reconnecting without end), opens the hub and returns its
// dispatcher, with a logger on stderr.
func (o *processOptions) open(ctx context.Context, name string, stderr io.Writer) (*nats.Conn, *jetstream.Store, *slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, nil, nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	nc, err := o.dial(name, nats.MaxReconnects(-1), nats.ReconnectWait(time.Second))
	if err != nil {
		return nil, nil, nil, err
	}
	store, err := jetstream.Open(ctx, nc, jetstream.Config{Hub: o.hub, Replicas: o.replicas, Partitions: o.partitions, Retention: o.retention})
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("opening hub %q on %s: %w", o.hub, redactURL(o.natsURL), err)
	}
	return nc, store, logger, nil
}

// workerFlags are the flags of the processes that run a worker (worker,
// sidecar) besides its names: how much runs at once, the ack wait, metrics
// and purging.
type workerFlags struct {
	metricsAddr string
	noPurge     bool
}

// addWorkerFlags adds the workerFlags to cmd, filling cfg; what names the
// process in the flags' help ("worker", "sidecar").
func addWorkerFlags(cmd *cobra.Command, cfg *worker.Config, what string) *workerFlags {
	wf := &workerFlags{}
	f := cmd.Flags()
	f.IntVar(&cfg.OrchestrationConcurrency, "concurrency", 256, "instances whose turns run at once")
	f.IntVar(&cfg.ActivityConcurrency, "activity-concurrency", 64, "activities that run at once")
	f.DurationVar(&cfg.AckWait, "ack-wait", 30*time.Second, "how long a message may stay unacknowledged before another process gets it (what a crashed "+what+" held comes back after it)")
	f.StringVar(&wf.metricsAddr, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (host:port; default none)")
	f.BoolVar(&wf.noPurge, "no-purge", false, "leave the removal of acknowledged messages to other workers (for a NATS role without purge rights, e.g. a worker limited to some names)")
	return wf
}

// apply completes cfg with the flags, the logger and, with --metrics, the
// metrics served until stop is called.
func (wf *workerFlags) apply(cfg *worker.Config, store *jetstream.Store, logger *slog.Logger) (stop func(), err error) {
	cfg.Logger = logger
	if wf.noPurge {
		cfg.PurgeInterval = -1
	}
	if wf.metricsAddr == "" {
		return func() {}, nil
	}
	m, h, err := processMetrics(store, nil)
	if err != nil {
		return nil, err
	}
	stop, err = serveMetrics(wf.metricsAddr, h, logger)
	if err != nil {
		return nil, err
	}
	cfg.Metrics = m
	return stop, nil
}

func newWorkerCmd(g *globalOptions) *cobra.Command {
	var cfg worker.Config
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run workers for the samples against a running NATS",
		Long: `Worker runs the samples' orchestrations and activities against a hub on a
running NATS (--nats). Start as many as you like, on any machines: they share
the work, and what one was doing when it died is redelivered to the others.
SIGTERM or Ctrl-C stops it gracefully: it stops taking work, finishes what it
runs (up to 30 s) and hands back what it had fetched.

For your own orchestrations, write a main that registers them and runs
worker.New(...).Start (see the README).`,
		Args: argsRange(0, 0),
	}
	o := addProcessFlags(cmd, g)
	wo := addWorkerFlags(cmd, &cfg, "worker")
	f := cmd.Flags()
	f.StringSliceVar(&cfg.Orchestrators, "orchestrators", nil, "run only these orchestrators (comma-separated; default all)")
	f.StringSliceVar(&cfg.Activities, "activities", nil, "run only these activities (comma-separated; default all)")
	f.BoolVar(&cfg.NoOrchestrations, "no-orchestrations", false, "run activities only")
	f.BoolVar(&cfg.NoActivities, "no-activities", false, "run orchestrations only")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		nc, store, logger, err := o.open(ctx, "jetflow-worker", cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		defer nc.Close()
		reg := jetflow.NewRegistry()
		if err := samples.Register(reg, samples.Options{}); err != nil {
			return fmt.Errorf("registering the samples: %w", err)
		}
		stopMetrics, err := wo.apply(&cfg, store, logger)
		if err != nil {
			return err
		}
		defer stopMetrics()
		w, err := worker.New(store, reg, cfg)
		if err != nil {
			return err
		}
		if err := w.Start(ctx); err != nil {
			return fmt.Errorf("starting the worker: %w", err)
		}
		logger.Info("worker running", slog.String("nats", redactURL(o.natsURL)), slog.String("hub", o.hub))
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return w.Stop(sctx)
	}
	return cmd
}

func newServerCmd(g *globalOptions) *cobra.Command {
	var httpAddr string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the HTTP API (and the dispatcher) against a running NATS, without workers",
		Long: `Server serves the Durable Functions-compatible HTTP API of a hub on a running
NATS (--nats). It runs no orchestrations or activities: start workers with
"jetflow worker" or your own binary. SIGTERM or Ctrl-C stops it gracefully.

Its NATS user needs the "server" role of deploy/nats/roles.conf. The HTTP
API takes an admin key (--api-key) and scoped keys (--keys FILE, read again
on SIGHUP), TLS (--http-tls-cert/--http-tls-key; --tls-* are those of the
NATS connection) and cross-site rules (--public-url, --allowed-origins,
--allowed-hosts); see docs/SECURITY.md.`,
		Args: argsRange(0, 0),
	}
	o := addProcessFlags(cmd, g)
	cmd.Flags().StringVar(&httpAddr, "http", "127.0.0.1:8080", "host:port of the HTTP API (port 0 picks a free one)")
	apiOpts := addAPIFlags(cmd, "http-")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		api, err := apiOpts.prepare("http-", slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)))
		if err != nil {
			return err
		}
		if !loopback(httpAddr) && !api.authenticated() {
			fmt.Fprintf(cmd.ErrOrStderr(), "WARNING: the HTTP API listens on %s, beyond loopback, WITHOUT A KEY: anyone who reaches it can start, read and purge instances; set --api-key or --keys\n", httpAddr)
		}
		ln, err := net.Listen("tcp", httpAddr)
		if err != nil {
			return listenError("--http", httpAddr, err)
		}
		defer ln.Close()
		ctx := cmd.Context()
		nc, store, logger, err := o.open(ctx, "jetflow-server", cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		defer nc.Close()
		c := client.New(store)
		defer c.Close() // before the connection closes
		api.cfg.Logger = logger
		if api.cfg.Metrics, api.cfg.MetricsHandler, err = processMetrics(store, c); err != nil {
			return err
		}
		stop, served := api.start(ln, c, nc, logger)
		fmt.Fprintf(cmd.OutOrStdout(), "jetflow server: HTTP API on %s://%s (hub %s on %s)\n", api.scheme, dialable(ln.Addr().String()), o.hub, redactURL(o.natsURL))
		var runErr error
		select {
		case <-ctx.Done():
		case err := <-served:
			runErr = fmt.Errorf("HTTP server: %w", err)
		}
		stop()
		return runErr
	}
	return cmd
}
