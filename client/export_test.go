package client

import (
	"runtime"

	"github.com/jetflow/jetflow/internal/storage"
)

// IndexHeapPerInstance builds an instance index from batches, as its
// watch would feed it, and returns the live heap it holds, in bytes per
// instance: the index alone, without the NATS server or connection.
func IndexHeapPerInstance(batches []storage.StatusBatch) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	x := newIndex(func() {})
	for _, b := range batches {
		x.apply(b)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	n := x.len()
	runtime.KeepAlive(x)
	runtime.KeepAlive(batches) // alive before, so alive after: not counted
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
}
