package metrics

import (
	"errors"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/prometheus/client_golang/prometheus"
)

// Storage error kinds (the kind label of jetflow_storage_errors_total).
const (
	// ErrKindConflict: a compare-and-set lost (storage.ErrConflict).
	ErrKindConflict = "conflict"
	// ErrKindUnavailable: the server could not be reached or did not
	// answer in time (jetflow.ErrUnavailable).
	ErrKindUnavailable = "unavailable"
	// ErrKindTooLarge: a message over the server's max_payload.
	ErrKindTooLarge = "too_large"
	// ErrKindOther: any other error.
	ErrKindOther = "other"
)

// storageFamilies are the storage families, part of an Engine.
type storageFamilies struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

func newStorageFamilies() storageFamilies {
	return storageFamilies{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "storage_operation_duration_seconds",
			Help:    "Time of the storage operations of this process (its workers, clients and HTTP API), by operation (history_load, history_append, status_read, status_put, publish, purge).",
			Buckets: LatencyBuckets}, []string{"operation"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "storage_errors_total",
			Help: "Storage operations of this process that failed, by operation and kind (conflict, unavailable, too_large, other)."},
			[]string{"operation", "kind"}),
	}
}

func (f storageFamilies) collectors() []prometheus.Collector {
	return []prometheus.Collector{f.duration, f.errors}
}

// ErrorKind is the kind label of a storage error.
func ErrorKind(err error) string {
	switch {
	case errors.Is(err, storage.ErrConflict):
		return ErrKindConflict
	case errors.Is(err, jetflow.ErrUnavailable):
		return ErrKindUnavailable
	case errors.Is(err, storage.ErrTooLarge):
		return ErrKindTooLarge
	}
	return ErrKindOther
}

// StorageOp records a storage operation of d that ended with err. A read
// that found nothing (storage.ErrNotFound) is not an error.
func (m *Engine) StorageOp(op string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.storage.duration.WithLabelValues(op).Observe(seconds(d))
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		m.storage.errors.WithLabelValues(op, ErrorKind(err)).Inc()
	}
}
