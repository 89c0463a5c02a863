package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/storage"
)

// Waiting is what the waiting scenario measured: Instances instances of
// SetStatusTest, which set their custom status and wait for the event
// Done, their start, the memory they hold while they wait, and their
// completion once the events are raised.
type Waiting struct {
	// StartsPerSecond is the rate of start calls (64 at a time) until the
	// last one returned.
	StartsPerSecond float64 `json:"startsPerSecond"`
	// WaitingPerSecond is the rate from the first start call until every
	// instance's waiting status was seen.
	WaitingPerSecond float64 `json:"waitingPerSecond"`
	// RaisesPerSecond is the rate of raise-event calls (64 at a time), and
	// CompletedPerSecond the rate from the first one until every
	// instance's Completed status was seen.
	RaisesPerSecond    float64 `json:"raisesPerSecond"`
	CompletedPerSecond float64 `json:"completedPerSecond"`
	// RSSMB is this process's resident memory and HeapMB its Go heap in
	// use, after a garbage collection, once every instance waits; the
	// Baseline figures are the same before the first start, and the per
	// instance ones the growth between them divided by the instances.
	// This process holds the workers (their sticky cache), the client and
	// the scenario's own watch; on the embedded server, the server too.
	RSSMB             float64 `json:"rssMB"`
	HeapMB            float64 `json:"heapMB"`
	BaselineRSSMB     float64 `json:"baselineRssMB"`
	BaselineHeapMB    float64 `json:"baselineHeapMB"`
	RSSPerInstanceKB  float64 `json:"rssPerInstanceKB"`
	HeapPerInstanceKB float64 `json:"heapPerInstanceKB"`
	// ServerMemMB is the nats-server's resident memory once every
	// instance waits, when it is a process of its own whose monitoring
	// endpoint was given (Config.MonitorURL: its /varz mem), with the
	// same baseline and growth per instance as this process's;
	// ServerMemoryMeasured says how it was measured, or why it was not.
	ServerMemMB          float64 `json:"serverMemMB,omitempty"`
	BaselineServerMemMB  float64 `json:"baselineServerMemMB,omitempty"`
	ServerPerInstanceKB  float64 `json:"serverPerInstanceKB,omitempty"`
	ServerMemoryMeasured string  `json:"serverMemoryMeasured"`
	// WaitingBytesPerInstance is the growth of what the hub's streams and
	// buckets hold (Store.StoredBytes), from before the first start to
	// when every instance waits, per instance: its status, its history,
	// and what of its start message the janitor has not removed yet.
	// FinishedBytesPerInstance is the same once every instance has
	// completed (with no retention, a finished instance stays until it is
	// purged). The disk a server needs is about these times the instances.
	WaitingBytesPerInstance  float64 `json:"waitingBytesPerInstance"`
	FinishedBytesPerInstance float64 `json:"finishedBytesPerInstance"`
}

// waiting starts Instances SetStatusTest instances, measures memory once
// all wait, then raises Done to each and waits for them to complete.
func (e *env) waiting(ctx context.Context) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	n := e.cfg.Instances
	p := prefix("waiting")
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%d", p, i)
	}
	total := 2 * n
	w := &Waiting{}
	before := memNow()
	serverBefore, how, err := e.serverMem(ctx)
	if err != nil {
		return nil, err
	}
	w.ServerMemoryMeasured = how
	stored := storage.Of(e.store)
	bytesBefore, err := stored.StoredBytes(ctx)
	if err != nil {
		return nil, err
	}
	perInstance := func() (float64, error) {
		b, err := stored.StoredBytes(ctx)
		return (float64(b) - float64(bytesBefore)) / float64(n), err
	}

	updates, err := e.client.WatchAll(ctx, client.WatchFilter{InstanceIDPrefix: p}, 0)
	if err != nil {
		return nil, err
	}
	// The watch marks each instance waiting (its custom status set) and
	// then completed; it is running before the first start.
	var mu sync.Mutex
	state := make(map[string]jetflow.RuntimeStatus, n)
	var waitingN, completedN int
	allWaiting, allCompleted := make(chan struct{}), make(chan struct{})
	watchErr := make(chan error, 1)
	go func() {
		for u := range updates {
			mu.Lock()
			prev := state[u.InstanceID]
			switch {
			case u.RuntimeStatus == jetflow.StatusRunning && len(u.CustomStatus) > 0 && string(u.CustomStatus) != "null" && prev == "":
				state[u.InstanceID] = jetflow.StatusRunning
				waitingN++
				e.progress(waitingN+completedN, total)
				if waitingN == n {
					close(allWaiting)
				}
			case u.RuntimeStatus == jetflow.StatusCompleted && prev == jetflow.StatusRunning:
				state[u.InstanceID] = jetflow.StatusCompleted
				completedN++
				e.progress(waitingN+completedN, total)
				if completedN == n {
					close(allCompleted)
				}
			case u.Finished() && u.RuntimeStatus != jetflow.StatusCompleted:
				select {
				case watchErr <- fmt.Errorf("%s: %s: %s", u.InstanceID, u.RuntimeStatus, u.Output):
				default:
				}
			}
			mu.Unlock()
		}
		select {
		case watchErr <- fmt.Errorf("the watch ended: %w", errors.Join(ctx.Err(), errors.New("closed"))):
		default:
		}
	}()
	await := func(done <-chan struct{}, what string) error {
		select {
		case <-done:
			return nil
		case err := <-watchErr:
			return err
		case <-ctx.Done():
			mu.Lock()
			defer mu.Unlock()
			return fmt.Errorf("%s: %d waiting, %d completed of %d: %w", what, waitingN, completedN, n, ctx.Err())
		}
	}

	start := time.Now()
	if err := many(ctx, ids, func(id string) error {
		_, err := e.client.StartOrchestration(ctx, "SetStatusTest", client.WithInstanceID(id))
		return err
	}); err != nil {
		return nil, err
	}
	w.StartsPerSecond = float64(n) / time.Since(start).Seconds()
	if err := await(allWaiting, "waiting for the instances to wait"); err != nil {
		return nil, err
	}
	w.WaitingPerSecond = float64(n) / time.Since(start).Seconds()

	if w.WaitingBytesPerInstance, err = perInstance(); err != nil {
		return nil, err
	}
	after := memNow()
	serverAfter, _, err := e.serverMem(ctx)
	if err != nil {
		return nil, err
	}
	w.RSSMB, w.HeapMB = mb(after.rss), mb(after.heap)
	w.BaselineRSSMB, w.BaselineHeapMB = mb(before.rss), mb(before.heap)
	w.RSSPerInstanceKB = perInstanceKB(before.rss, after.rss, n)
	w.HeapPerInstanceKB = perInstanceKB(before.heap, after.heap, n)
	if serverAfter > 0 {
		w.ServerMemMB, w.BaselineServerMemMB = mb(serverAfter), mb(serverBefore)
		w.ServerPerInstanceKB = perInstanceKB(serverBefore, serverAfter, n)
	}

	raised := time.Now()
	if err := many(ctx, ids, func(id string) error { return e.client.RaiseEvent(ctx, id, "Done", nil) }); err != nil {
		return nil, err
	}
	w.RaisesPerSecond = float64(n) / time.Since(raised).Seconds()
	if err := await(allCompleted, "waiting for the instances to complete"); err != nil {
		return nil, err
	}
	w.CompletedPerSecond = float64(n) / time.Since(raised).Seconds()
	if w.FinishedBytesPerInstance, err = perInstance(); err != nil {
		return nil, err
	}
	r := &Result{Scenario: "waiting", Instances: n, Workers: e.cfg.Workers, Seconds: time.Since(start).Seconds(), Waiting: w}
	if w.RSSMB == 0 {
		r.Notes = append(r.Notes, "waiting: this system has no /proc/self/status: resident memory not measured")
	}
	r.Notes = append(r.Notes, "waiting: server memory "+how)
	return r, nil
}

// many calls f for each id, 64 at a time, and returns the first error.
func many(ctx context.Context, ids []string, f func(id string) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, id := range ids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(id); err != nil {
				cancel(fmt.Errorf("%s: %w", id, err))
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}

// mem is this process's memory after a garbage collection.
type mem struct{ rss, heap uint64 }

func memNow() mem {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return mem{rss: rss(), heap: ms.HeapInuse}
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

// perInstanceKB is the growth from before to after (negative if memory
// was given back) per instance, in KiB.
func perInstanceKB(before, after uint64, n int) float64 {
	return (float64(after) - float64(before)) / 1024 / float64(n)
}

// rss reads this process's resident set size from /proc (0 where there
// is none).
func rss() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// serverMem returns the nats-server's resident memory when it can be
// told apart from this process's (a server of its own whose monitoring
// endpoint is given) and says how it was measured.
func (e *env) serverMem(ctx context.Context) (uint64, string, error) {
	switch {
	case e.server != nil:
		return 0, "is part of the process's (the server is embedded)", nil
	case e.cfg.MonitorURL == "":
		return 0, "not measured (no monitoring URL given)", nil
	}
	u := strings.TrimRight(e.cfg.MonitorURL, "/") + "/varz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("the server's memory: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, "", fmt.Errorf("the server's memory: GET %s: %s", u, resp.Status)
	}
	var v struct {
		Mem uint64 `json:"mem"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return 0, "", fmt.Errorf("the server's memory: GET %s: %w", u, err)
	}
	return v.Mem, "from " + u + " (mem: the server process's resident memory)", nil
}
