package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/jetflow/jetflow/metrics"
)

// processMetrics builds the metrics of one process: the engine's own
// families, the backlog read from the hub's consumers at scrape time and,
// when c is set, the open instances by orchestrator and status (which
// reads the whole status bucket through c's index: dev and server export
// it, a worker does not).
func processMetrics(store *jetstream.Store, c *client.Client) (*metrics.Engine, http.Handler, error) {
	reg := metrics.NewRegistry()
	hub := metrics.ForHub(reg, store.Hub())
	m, err := metrics.New(hub)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	storage.Of(store).Observe(m) // the storage operations and Go watches of the whole process
	hub.MustRegister(metrics.NewBacklogCollector(store, 0))
	if c != nil {
		hub.MustRegister(metrics.NewInstancesCollector(c, 0))
	}
	return m, metrics.Handler(reg), nil
}

// serveMetrics serves GET /metrics on addr until the returned function is
// called.
func serveMetrics(addr string, h http.Handler, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, listenError("--metrics", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server", slog.Any("error", err))
		}
	}()
	logger.Info("metrics on", slog.String("url", "http://"+dialable(ln.Addr().String())+"/metrics"))
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}, nil
}
