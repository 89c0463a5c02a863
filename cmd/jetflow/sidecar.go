package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/jetflow/jetflow/sidecar"
	"github.com/jetflow/jetflow/worker"
	"github.com/spf13/cobra"
)

// sidecarOptions are the flags of the gRPC sidecar, in `jetflow sidecar`
// and `jetflow dev`.
type sidecarOptions struct {
	addr          string
	orchestrators []string
	activities    []string
	perStream     int
	// key is required on every call when set (sidecar.Config.Key).
	key string
}

func (o *sidecarOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.addr, "grpc", sidecar.DefaultAddress, "host:port of the Durable Task gRPC sidecar, for the Durable Task SDKs (port 0 picks a free one)")
	f.StringSliceVar(&o.orchestrators, "orchestrators", nil, "orchestrators served for SDK workers that announce no names (comma-separated; default: the names the SDKs announce)")
	f.StringSliceVar(&o.activities, "activities", nil, "activities served for SDK workers that announce no names (comma-separated)")
	f.IntVar(&o.perStream, "max-items-per-stream", 16, "work items of each kind (orchestration, activity) out to one SDK stream at once")
}

// validate checks the flags' values.
func (o *sidecarOptions) validate() error {
	if _, port, err := net.SplitHostPort(o.addr); err != nil || !validPort(port) {
		return fmt.Errorf("--grpc %q: want host:port (port 0 picks a free one)", o.addr)
	}
	for _, n := range o.orchestrators {
		if err := jetflow.ValidateName(n); err != nil {
			return fmt.Errorf("--orchestrators %q: %w", n, err)
		}
	}
	for _, n := range o.activities {
		if err := jetflow.ValidateName(n); err != nil {
			return fmt.Errorf("--activities %q: %w", n, err)
		}
	}
	if o.perStream < 1 {
		return fmt.Errorf("--max-items-per-stream %d: want at least 1", o.perStream)
	}
	return nil
}

// listen takes the sidecar's port, warning on stderr when it is beyond
// loopback. Its error is net.Listen's (see listenError).
func (o *sidecarOptions) listen(stderr io.Writer) (net.Listener, error) {
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, err
	}
	if !loopback(o.addr) && o.key == "" {
		fmt.Fprintf(stderr, "WARNING: the gRPC sidecar listens on %s, beyond loopback, without a key: anyone who reaches it can start, run and purge instances; set --api-key\n", o.addr)
	}
	return ln, nil
}

// start runs a sidecar on store, serving ln; stop stops it. announced,
// if not nil, is told the names SDK workers announce.
func (o *sidecarOptions) start(ctx context.Context, store *jetstream.Store, ln net.Listener, logger *slog.Logger, wcfg worker.Config,
	announced func(orchestrators, activities []string)) (stop func(), served <-chan error, err error) {
	s, err := sidecar.New(store, sidecar.Config{Logger: logger, Orchestrators: o.orchestrators, Activities: o.activities,
		MaxItemsPerStream: o.perStream, Worker: wcfg, Announced: announced, Key: o.key})
	if err != nil {
		return nil, nil, err
	}
	if err := s.Start(ctx); err != nil {
		return nil, nil, fmt.Errorf("starting the sidecar: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := s.Stop(sctx); err != nil {
			logger.Warn("stopping the gRPC sidecar", slog.Any("error", err))
		}
	}, done, nil
}

func newSidecarCmd(g *globalOptions) *cobra.Command {
	var so sidecarOptions
	var cfg worker.Config
	cmd := &cobra.Command{
		Use:   "sidecar",
		Short: "Serve the Durable Task gRPC protocol, so the official SDKs' workers and clients run on a hub",
		Long: `Sidecar serves the Durable Task sidecar protocol (TaskHubSidecarService) of a hub
on a running NATS (--nats), on --grpc: orchestrators and activities written
with Microsoft's Durable Task SDKs (durabletask-js, -python, -java, -dotnet)
connect to it as to any sidecar and run on jetflow, through the same commit
protocol as Go workers; their clients start, query, raise, terminate,
suspend, resume, restart, rewind and purge instances through it.

An SDK worker announces the names it serves with work-item filters; for SDKs
that do not, --orchestrators and --activities name them (and names nobody in
the hub serves are learnt as the SDK's clients start them or its
orchestrators call them). Run as many sidecars as you like: they share the
work like workers. SIGTERM or Ctrl-C ends the SDKs' streams with UNAVAILABLE
and hands back what they held.

With --api-key (or $JETFLOW_API_KEY) every call must carry the key in its
metadata, "authorization: Bearer KEY" (the SDKs' metadataGenerator option);
without it, whoever reaches --grpc may do everything.`,
		Args:    argsRange(0, 0),
		PreRunE: func(*cobra.Command, []string) error { return so.validate() },
	}
	o := addProcessFlags(cmd, g)
	so.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&so.key, "api-key", os.Getenv(apiKeyEnv), "key required in every call's metadata, as authorization: Bearer KEY (env "+apiKeyEnv+")")
	wo := addWorkerFlags(cmd, &cfg, "sidecar")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		ln, err := so.listen(cmd.ErrOrStderr())
		if err != nil {
			return listenError("--grpc", so.addr, err)
		}
		defer ln.Close()
		ctx := cmd.Context()
		nc, store, logger, err := o.open(ctx, "jetflow-sidecar", cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		defer nc.Close()
		stopMetrics, err := wo.apply(&cfg, store, logger)
		if err != nil {
			return err
		}
		defer stopMetrics()
		stop, served, err := so.start(ctx, store, ln, logger, cfg, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "jetflow sidecar: Durable Task gRPC on %s (hub %s on %s)\n", dialable(ln.Addr().String()), o.hub, redactURL(o.natsURL))
		var runErr error
		select {
		case <-ctx.Done():
		case err := <-served:
			runErr = fmt.Errorf("gRPC server: %w", err)
		}
		stop()
		return runErr
	}
	return cmd
}
