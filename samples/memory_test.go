package samples_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/samples"
)

// BenchmarkWaitingInstancesMemory starts 10,000 SetStatusTest instances,
// which set their status and wait for an event, and reports the resident
// memory of this process (embedded nats-server, workers with their sticky
// cache, and client: what `jetflow dev` runs) once they all wait.
//
//	go test ./samples -run '^$' -bench WaitingInstancesMemory -benchtime 1x
func BenchmarkWaitingInstancesMemory(b *testing.B) {
	const n = 10000
	for i := 0; i < b.N; i++ {
		e := testengine.New(b, testengine.Options{
			SyncInterval: time.Minute, // memory does not depend on fsync; this only saves time
			Register:     func(r *jetflow.Registry) error { return samples.Register(r, samples.Options{}) },
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		updates, err := e.Storage.WatchStatuses(ctx, "", 0)
		if err != nil {
			b.Fatal(err)
		}
		waiting := make(chan struct{})
		go func() {
			seen := map[string]bool{}
			for u := range updates {
				if len(u.Status.CustomStatus) > 0 && !seen[u.Status.InstanceID] {
					seen[u.Status.InstanceID] = true
					if len(seen) == n {
						close(waiting)
						return
					}
				}
			}
		}()
		startMany(ctx, b, e, "SetStatusTest", n, func(j int) string { return fmt.Sprintf("mem-%d-%d", i, j) })
		select {
		case <-waiting:
		case <-ctx.Done():
			b.Fatal("instances did not all reach their wait")
		}
		cancel()
		runtime.GC()
		b.ReportMetric(rssMB(b), "MB-rss")
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "MB-heap")
		e.Close()
	}
}

// rssMB reads this process's resident set size from /proc.
func rssMB(b *testing.B) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status:", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}
