// Package workerhook lets engine packages build a worker on an executor
// other than the Go one (the gRPC sidecar's, whose orchestrators and
// activities live in SDK processes), with names given at run time, without
// package worker exporting that plumbing. Package worker installs the
// constructor at init, as package jetstream installs storage.Of.
//
// This package is internal: its API may change between releases.
package workerhook

import (
	"context"
	"errors"

	"github.com/jetflow/jetflow/internal/executor"
	"github.com/jetflow/jetflow/jetstream"
)

// Worker is a worker on a non-Go executor.
type Worker interface {
	// Start registers the worker's names and starts consuming; see
	// worker.Worker.Start.
	Start(ctx context.Context) error
	// Stop stops the worker gracefully; see worker.Worker.Stop.
	Stop(ctx context.Context) error
	// StopAndCancel stops the worker and cancels its work in progress.
	StopAndCancel(ctx context.Context) error
	// Serve adds orchestrator and activity names while the worker runs:
	// each new name is registered in the hub's registry and gets its
	// consumer; names already served are skipped.
	Serve(ctx context.Context, orchestrators, activities []string) error
	// Unserve stops consuming names (see Yield); what their consumers had
	// fetched is still handled by the worker.
	Unserve(orchestrators, activities []string)
}

var (
	newWorker func(store *jetstream.Store, x executor.Executor, cfg any) (Worker, error)
	yield     func(w any, orchestrators, activities []string) ([]string, []string, error)
)

// SetYield installs Yield's implementation; package worker calls it once,
// at init.
func SetYield(f func(w any, orchestrators, activities []string) ([]string, []string, error)) {
	yield = f
}

// Yield makes w, a *worker.Worker, stop consuming those of orchestrators
// and activities it consumes, and returns them: jetflow dev gives the
// names of its Go samples up to an SDK worker that announces the same
// names, so that one implementation runs each. What the worker had fetched
// for them it still runs.
func Yield(w any, orchestrators, activities []string) (orchs, acts []string, err error) {
	if yield == nil {
		return nil, nil, errors.New("workerhook: package worker is not linked in")
	}
	return yield(w, orchestrators, activities)
}

// Set installs the constructor; package worker calls it once, at init.
func Set(f func(store *jetstream.Store, x executor.Executor, cfg any) (Worker, error)) { newWorker = f }

// New returns a worker of the hub behind store whose turns and activities
// run on x. cfg is a worker.Config: its Orchestrators and Activities are
// the names served from the start (none is checked against a registry;
// more can be added with Serve), and its other fields mean what they mean
// for worker.New.
func New(store *jetstream.Store, x executor.Executor, cfg any) (Worker, error) {
	if newWorker == nil {
		return nil, errors.New("workerhook: package worker is not linked in")
	}
	if x == nil {
		return nil, errors.New("workerhook: a nil executor")
	}
	return newWorker(store, x, cfg)
}
