// Command chaosworker is the worker of the chaos suite's randomized test:
// what `jetflow worker` runs (the samples, with the same worker defaults:
// 256 instances and 64 activities at once, the 30 s ack wait), plus the
// orchestrations the samples lack (chaos.Register), with every activity
// run recorded in a file the test reads (--runs).
//
//	chaosworker --nats URL[,URL…] --runs FILE [--replicas 3]
//
// SIGTERM or SIGINT stops it gracefully, as `jetflow worker`.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/chaos"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/jetflow/jetflow/worker"
	"github.com/nats-io/nats.go"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaosworker:", err)
		os.Exit(1)
	}
}

func run() error {
	urls := flag.String("nats", nats.DefaultURL, "NATS URLs, comma-separated")
	runs := flag.String("runs", "", "append a line for every activity run to this file")
	replicas := flag.Int("replicas", 1, "replicas of the streams and buckets if the hub has none yet")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	var rec *chaos.RunLog
	if *runs != "" {
		var err error
		if rec, err = chaos.OpenRunLog(*runs); err != nil {
			return err
		}
	}
	reg := jetflow.NewRegistry()
	if err := chaos.Register(reg, rec); err != nil {
		return err
	}
	// As `jetflow worker` connects: reconnect without end, a second apart.
	// The connection's name carries the pid, so that the chaos tests'
	// tracer can tell the workers apart in the server's /connz.
	nc, err := nats.Connect(*urls, nats.Name(fmt.Sprintf("jetflow-chaosworker-%d", os.Getpid())), nats.Timeout(5*time.Second),
		nats.MaxReconnects(-1), nats.ReconnectWait(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	store, err := jetstream.Open(ctx, nc, jetstream.Config{Replicas: *replicas})
	if err != nil {
		return fmt.Errorf("opening the hub: %w", err)
	}
	w, err := worker.New(store, reg, worker.Config{Logger: logger})
	if err != nil {
		return err
	}
	if err := w.Start(ctx); err != nil {
		return fmt.Errorf("starting the worker: %w", err)
	}
	logger.Info("worker running", slog.String("nats", *urls), slog.Int("pid", os.Getpid()))
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = w.Stop(sctx)
	logger.Info("worker stopped", slog.Any("error", err))
	return err
}
