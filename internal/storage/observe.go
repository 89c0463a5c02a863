package storage

import (
	"context"
	"sync/atomic"
	"time"
)

// Storage operations: the operation label of the jetflow_storage_*
// metrics.
const (
	// OpHistoryLoad: reading an instance's history chunks.
	OpHistoryLoad = "history_load"
	// OpHistoryAppend: writing the next chunk (the fence).
	OpHistoryAppend = "history_append"
	// OpStatusRead: reading an instance's status.
	OpStatusRead = "status_read"
	// OpStatusPut: a compare-and-set write of a status.
	OpStatusPut = "status_put"
	// OpPublish: messages and writes sent together and awaited together (a
	// turn's actions and status, an activity's result, a start, an event).
	OpPublish = "publish"
	// OpPurge: removing acknowledged messages from the inbox and task
	// streams, or what is left of a purged instance.
	OpPurge = "purge"
)

// WatchGo is the kind of a status watch of a Go client (client.WatchStatus
// and WatchAll) that Observer.WatchStarted is told of.
const WatchGo = "go"

// Observer is told of each storage operation (which, how long it took, how
// it ended) and of each live status watch of a Go client; a
// *metrics.Engine is one.
type Observer interface {
	StorageOp(op string, d time.Duration, err error)
	// WatchStarted counts a watch of kind until the returned function is
	// called.
	WatchStarted(kind string) (ended func())
}

// observer holds the store's Observer, if any.
type observer struct{ o atomic.Pointer[Observer] }

// Observe makes the store tell o of every operation and watch from now on,
// unless it already tells another: a store serves a whole process (its
// workers, clients and HTTP API), and the first observer, the process's
// metrics, stays.
func (s *Store) Observe(o Observer) {
	if o != nil {
		s.observer.o.CompareAndSwap(nil, &o)
	}
}

// observe reports an operation begun at began that ended with err.
func (s *Store) observe(op string, began time.Time, err error) {
	if o := s.observer.o.Load(); o != nil {
		(*o).StorageOp(op, time.Since(began), err)
	}
}

// WatchStarted tells the observer of a watch of kind, unless ctx says that
// its caller counts it (WithWatchCounted), and returns what to call when
// it ends.
func (s *Store) WatchStarted(ctx context.Context, kind string) (ended func()) {
	o := s.observer.o.Load()
	if o == nil || ctx.Value(watchCountedKey{}) != nil {
		return func() {}
	}
	return (*o).WatchStarted(kind)
}

type watchCountedKey struct{}

// WithWatchCounted marks ctx as that of a watch its caller counts: the
// HTTP API counts its server-sent event streams as such, not as the Go
// watches under them.
func WithWatchCounted(ctx context.Context) context.Context {
	return context.WithValue(ctx, watchCountedKey{}, true)
}
