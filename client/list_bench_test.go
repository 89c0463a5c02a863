package client_test

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/stretchr/testify/require"
)

// BenchmarkListPage measures one page of ListInstances over 100,000
// instances (ns/op), and reports the index's build time (index-build-s:
// the first list of a client, which reads the whole bucket) and its
// memory per instance (index-B/instance: the live heap of an index fed
// the same statuses, over the instance count; the log line also gives the
// growth of the whole process's heap, which includes the embedded
// server's caches). The statuses are written through the
// store, with the server's fsync every second: starting 100,000 real
// instances would take far longer, and the index only sees the bucket.
//
//	go test ./client -run '^$' -bench ListPage -benchtime 2000x
func BenchmarkListPage(b *testing.B) {
	const n = 100_000
	e := testengine.New(b, testengine.Options{Workers: -1, SyncInterval: time.Second})
	statuses := []jetflow.RuntimeStatus{jetflow.StatusCompleted, jetflow.StatusRunning, jetflow.StatusPending, jetflow.StatusFailed}
	sts := make([]jetflow.Status, n)
	for i := range sts {
		// 90% Completed, 8% Running, 1% Pending, 1% Failed.
		s := statuses[0]
		switch i % 100 {
		case 1, 2, 3, 4, 5, 6, 7, 8:
			s = statuses[1]
		case 9:
			s = statuses[2]
		case 10:
			s = statuses[3]
		}
		created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second)
		sts[i] = jetflow.Status{
			Name: "E1_HelloSequence", InstanceID: fmt.Sprintf("%016x%016x", uint64(i)*0x9E3779B97F4A7C15, uint64(i)), RuntimeStatus: s,
			Input: json.RawMessage(`{"city":"Tokyo","attempt":1}`), CustomStatus: json.RawMessage(`"London"`),
			Output:      json.RawMessage(`["Hello Tokyo!","Hello Seattle!","Hello London!"]`),
			CreatedTime: jetflow.Time{Time: created}, LastUpdatedTime: jetflow.Time{Time: created.Add(time.Second)},
		}
	}
	putStatuses(b, e.Storage, sts)

	// The index alone, fed the same statuses as its watch would feed it.
	var batch storage.StatusBatch
	var size int
	for i := range sts {
		raw, err := json.Marshal(sts[i])
		require.NoError(b, err)
		size += len(raw)
		batch.Records = append(batch.Records, storage.StatusRecord{ID: sts[i].InstanceID, Revision: uint64(i + 1), Value: raw})
	}
	batch.Revision, batch.Current = n, true
	indexBytes := client.IndexHeapPerInstance([]storage.StatusBatch{batch})
	batch, sts = storage.StatusBatch{}, nil

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := client.New(e.Store)
	b.Cleanup(c.Close)
	start := time.Now()
	_, err := c.ListInstances(b.Context(), client.Query{})
	require.NoError(b, err)
	build := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	heapPerInstance := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	b.Logf("%d statuses of %d bytes of JSON on average: index built in %s; %.0f bytes per instance in the index, %.0f of heap per instance in this process (with the embedded server's caches)",
		n, size/n, build, indexBytes, heapPerInstance)

	for _, bm := range []struct {
		name string
		q    client.Query
	}{
		{"all", client.Query{}},
		{"prefix", client.Query{InstanceIDPrefix: "a"}},
		{"top1000", client.Query{Top: client.MaxPageSize}},
		{"status-1pct", client.Query{RuntimeStatus: []jetflow.RuntimeStatus{jetflow.StatusFailed}}},
		{"created-range", client.Query{CreatedTimeFrom: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC), CreatedTimeTo: time.Date(2025, 1, 1, 13, 0, 0, 0, time.UTC)}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			q := bm.q
			for b.Loop() {
				p, err := c.ListInstances(b.Context(), q)
				if err != nil {
					b.Fatal(err)
				}
				q.ContinuationToken = p.ContinuationToken // the next page; from the start after the last
			}
			b.ReportMetric(build.Seconds(), "index-build-s")
			b.ReportMetric(indexBytes, "index-B/instance")
		})
	}
}
