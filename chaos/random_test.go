//go:build chaos

package chaos_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/chaos"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/samples"
	"github.com/stretchr/testify/require"
)

// The randomized test: a mixed load runs while a seeded schedule of
// faults hits the workers and the nats-server; then a checker reads back
// every instance. See docs/RELIABILITY.md.
//
//	go test -tags chaos -run Chaos/Random ./chaos/
//	JETFLOW_CHAOS_SEED=N             replays the schedule of seed N
//	JETFLOW_CHAOS_DURATION=30m       the fault period (default 60s; give
//	                                 go test a -timeout to match)
//	JETFLOW_CHAOS_RATE=8             instances started per second
//	JETFLOW_CHAOS_AVOID=purge,…      leaves a part of the load out (see
//	                                 randomLoad.avoid)
//	JETFLOW_CHAOS_TRACE=1            traces the messages of failed instances
//
// A seed fixes the schedule of faults (which process, when, for how long)
// and the load (which instances, when, what is done to them); the
// interleavings of processes are the machine's, so a replay meets the same
// faults at the same moments but not necessarily the same bug.

// randomBound is how long, after the faults stop, every instance has to
// finish. What a killed or frozen worker held comes back after the ack
// wait; the minute on top is for the rest of the load.
const randomBound = ackWait + 60*time.Second

func testRandom(t *testing.T) {
	seed := envUint(t, "JETFLOW_CHAOS_SEED", uint64(time.Now().UnixNano())%1_000_000)
	dur := envDuration(t, "JETFLOW_CHAOS_DURATION", 60*time.Second)
	rate := envUint(t, "JETFLOW_CHAOS_RATE", 8)
	// Odd seeds run on a hub of three partitions, even ones on one.
	partitions := 1 + 2*int(seed%2)
	t.Logf("seed %d (replay with JETFLOW_CHAOS_SEED=%d), faults for %s, %d starts/s, %d partitions", seed, seed, dur, rate, partitions)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("FAILED with seed %d: replay with JETFLOW_CHAOS_SEED=%d JETFLOW_CHAOS_DURATION=%s", seed, seed, dur)
		}
	})

	began := time.Now()
	logs := newLogDir(t)
	ns := startNATS(t, logs, 1)
	h := openHub(t, ns.URLs(), 1, partitions)
	runsPath := filepath.Join(t.TempDir(), "runs.jsonl")
	// Three chaos workers run everything (the samples and the chaos
	// orchestrations, recording each activity run); a `jetflow worker`
	// shares the samples' orchestrations with them, and runs no
	// activities, so that every activity run is recorded.
	var pool []*poolWorker
	for i := 1; i <= 3; i++ {
		pool = append(pool, startPoolWorker(t, logs, fmt.Sprintf("chaos-%d", i), bin.chaosWorker, "--nats", ns.URLs(), "--runs", runsPath))
	}
	pool = append(pool, startPoolWorker(t, logs, "jetflow-1", bin.jetflow, "worker", "--nats", ns.URLs(), "--no-activities", "--log-level", "info"))
	for _, name := range []string{"E1_HelloSequence", "FanOutFanIn", "CityRecommender", "Delay", "SetStatusTest",
		chaos.ParentName, chaos.CounterName, chaos.AccumulatorName} {
		h.waitRegistered(t, name)
	}

	obs := watchStatuses(t, h, "rnd-")
	ld := newRandomLoad(h, obs, seed)
	for _, a := range strings.Split(os.Getenv("JETFLOW_CHAOS_AVOID"), ",") {
		switch a = strings.TrimSpace(a); a {
		case "":
		case "overtake", "suspend", "purge", "continue":
			ld.avoid[a] = true
			t.Logf("JETFLOW_CHAOS_AVOID: leaving %q out of the load", a)
		default:
			t.Fatalf("JETFLOW_CHAOS_AVOID=%s: want some of overtake, suspend, purge, continue", a)
		}
	}
	ld.trace = startTracer(t, ns, h.store.Names().Hub())
	plan := planFaults(rand.New(rand.NewPCG(seed, 1)), dur, len(pool))
	fs := &faults{t: t, ns: ns, pool: pool, began: time.Now()}
	t.Logf("up at %s; %d faults planned: %s", time.Since(began).Round(time.Millisecond), len(plan), summarize(plan))

	// The load and the faults, for dur.
	loadCtx, stopLoad := context.WithTimeout(context.Background(), dur)
	defer stopLoad()
	// Scripts keep going after the faults stop (retrying what failed,
	// waiting for their instances) until the bound.
	scriptCtx, cancelScripts := context.WithCancel(context.Background())
	defer cancelScripts()
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		ld.run(loadCtx, scriptCtx, time.Second/time.Duration(rate))
	}()
	fs.run(loadCtx, plan)
	healedAt := time.Now()
	t.Logf("faults over at %s: %s; %d instances started (%d with their children)", time.Since(began).Round(time.Millisecond),
		fs.summary(), ld.started(), ld.count())
	<-loadDone

	// Every instance must finish within the bound after the faults stop.
	deadline := healedAt.Add(randomBound)
	if !ld.waitScripts(deadline) {
		fs.log(t)
		ld.report(t, deadline)
		t.Fatalf("instances not finished %s after the faults stopped (seed %d)", randomBound, seed)
	}
	cancelScripts()
	last := ld.lastFinished()
	if last.parent != nil {
		last.startedAt = last.parent.startedAt
	}
	t.Logf("every instance finished by %s after the faults stopped (at %s); the last, %s (%s), started at %s",
		last.finishedAt.Sub(healedAt).Round(time.Millisecond), time.Since(began).Round(time.Millisecond),
		last.id, last.kind, last.startedAt.Sub(fs.began).Round(time.Millisecond))
	if last.finishedAt.Sub(healedAt) > ackWait {
		// Within the bound, but more than what one lost lease costs: show
		// where its time went.
		ld.dump(t, last.id)
	}

	// The checks that read everything back.
	var failed []string
	fail := func(format string, args ...any) {
		failed = append(failed, fmt.Sprintf(format, args...))
	}
	ld.checkInstances(t, fail)
	obs.stop()
	if n := obs.ended(); n > 0 {
		// WatchAll promises updates until its context ends; its channel
		// closes when the server restarts (nats.go's ordered consumer
		// gives up). Not a lost update (the watch resumes after the last
		// revision it saw, and the check below sees every revision once),
		// but callers must know: reported, not failed.
		t.Logf("note: the status watch (client.WatchAll) ended %d times before its context did, at %s; resumed after the last revision each time",
			n, obs.endTimes(fs.began))
	}
	obs.checkMonotonic(ld, fail)
	checkRuns(t, runsPath, ld, fs, fail)
	for _, w := range pool {
		if !w.running() {
			fail("worker %s is not running at the end (it exited on its own: see its log)", w.name)
		}
		if w.logContains("panic:") {
			fail("worker %s panicked (see its log)", w.name)
		}
	}
	if len(failed) == 0 {
		checkStreams(t, h, fail)
	}
	if len(failed) > 0 {
		fs.log(t)
		for i, f := range failed {
			if i == 40 {
				t.Logf("... and %d more", len(failed)-40)
				break
			}
			t.Log(f)
		}
		t.Fatalf("%d checks failed (seed %d)", len(failed), seed)
	}
	fs.log(t)
	t.Logf("checked %d instances (%d purged), %d status updates, %d activity runs; passed at %s",
		ld.count(), ld.purgedCount(), obs.updates(), ld.runs, time.Since(began).Round(time.Millisecond))
}

func envUint(t *testing.T, name string, def uint64) uint64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseUint(v, 10, 64)
	require.NoError(t, err, "%s", name)
	return n
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, "%s", name)
	return d
}

// --- The workers and the faults ---

// poolWorker is a worker process that faults kill, freeze and restart.
type poolWorker struct {
	*proc
	path string
	args []string
	// inTrouble is held by the fault that has the worker down or frozen,
	// until it is back: one fault at a time per process.
	inTrouble sync.Mutex
}

func startPoolWorker(t *testing.T, logs *logDir, name, path string, args ...string) *poolWorker {
	t.Helper()
	w := &poolWorker{proc: &proc{name: name, log: logs.path(name)}, path: path, args: args}
	t.Cleanup(w.kill)
	require.NoError(t, w.restart(30*time.Second))
	return w
}

// restart starts the worker and waits until it takes work; a start that
// fails (the server is down: the worker cannot open the hub and exits) is
// tried again until timeout.
func (w *poolWorker) restart(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n := w.logCount("worker running")
		if err := w.startErr(w.path, w.args...); err != nil {
			return err
		}
		for w.running() && w.logCount("worker running") == n && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if w.running() && w.logCount("worker running") > n {
			return nil
		}
		w.kill()
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("worker %s did not start within %s", w.name, timeout)
}

// fault kinds.
const (
	faultKill   = "kill"   // kill -9 a worker, restart it later
	faultStop   = "stop"   // SIGSTOP a worker, SIGCONT it later
	faultTerm   = "term"   // SIGTERM a worker (graceful stop), restart it later
	faultServer = "server" // kill -9 the nats-server, restart it later
)

// plannedFault is one fault of the seeded schedule.
type plannedFault struct {
	At     time.Duration // after the load begins
	Kind   string
	Worker int           // index in the pool; -1 for the server
	For    time.Duration // how long the process stays down or frozen
}

// planFaults draws the schedule of faults for a period of dur: a fault
// every 1–5 s; at most two workers in trouble at once, one server fault
// at a time (and 5 s of calm after it). Frozen workers stay frozen up to
// 45 s, beyond the ack wait, so that their leases run out.
func planFaults(rng *rand.Rand, dur time.Duration, workers int) []plannedFault {
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo)+1)) }
	var plan []plannedFault
	busy := make([]time.Duration, workers) // until when each worker is in trouble
	var serverBusy time.Duration
	for at := between(2*time.Second, 4*time.Second); at < dur; at += between(time.Second, 5*time.Second) {
		r := rng.Float64()
		if r < 0.2 {
			if at < serverBusy {
				continue
			}
			f := plannedFault{At: at, Kind: faultServer, Worker: -1, For: between(500*time.Millisecond, 3*time.Second)}
			serverBusy = at + f.For + 5*time.Second
			plan = append(plan, f)
			continue
		}
		var free []int
		inTrouble := 0
		for i, until := range busy {
			if at < until {
				inTrouble++
			} else {
				free = append(free, i)
			}
		}
		if inTrouble >= 2 || len(free) == 0 {
			continue
		}
		f := plannedFault{At: at, Worker: free[rng.IntN(len(free))]}
		switch {
		case r < 0.55:
			f.Kind, f.For = faultKill, between(0, 3*time.Second)
		case r < 0.85:
			f.Kind, f.For = faultStop, between(time.Second, 45*time.Second)
		default:
			f.Kind, f.For = faultTerm, between(0, 2*time.Second)
		}
		busy[f.Worker] = at + f.For + 3*time.Second
		plan = append(plan, f)
	}
	return plan
}

func summarize(plan []plannedFault) string {
	n := map[string]int{}
	for _, f := range plan {
		n[f.Kind]++
	}
	return fmt.Sprintf("%d worker kills, %d freezes, %d graceful stops, %d server restarts",
		n[faultKill], n[faultStop], n[faultTerm], n[faultServer])
}

// faultEvent is a fault as it happened.
type faultEvent struct {
	plannedFault
	target     string
	pid        int // the worker's process, or 0 for the server
	start, end time.Time
	err        error
	skipped    bool // its process was still in trouble from the fault before
}

// faults carries out a schedule.
type faults struct {
	t     *testing.T
	ns    *natsCluster
	pool  []*poolWorker
	began time.Time
	// serverInTrouble is inTrouble for the nats-server.
	serverInTrouble sync.Mutex

	mu     sync.Mutex
	events []*faultEvent
}

// run carries out the plan until ctx ends; then it heals at once what is
// still down or frozen, and returns when everything runs again.
func (fs *faults) run(ctx context.Context, plan []plannedFault) {
	var wg sync.WaitGroup
	for _, f := range plan {
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(fs.began.Add(f.At))):
		}
		if ctx.Err() != nil {
			break
		}
		ev := &faultEvent{plannedFault: f, start: time.Now()}
		fs.mu.Lock()
		fs.events = append(fs.events, ev)
		fs.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev.err = fs.do(ctx, ev)
			ev.end = time.Now()
			if ev.err != nil {
				fs.t.Errorf("fault %s of %s at %s: %v", ev.Kind, ev.target, ev.At, ev.err)
			}
		}()
	}
	<-ctx.Done()
	wg.Wait()
}

// do carries out one fault and heals it after its time, or when ctx ends.
func (fs *faults) do(ctx context.Context, ev *faultEvent) error {
	wait := func() {
		select {
		case <-ctx.Done():
		case <-time.After(ev.For):
		}
	}
	// The plan keeps faults on one process apart by the time each should
	// take, but a restart can take longer (the server is down, say): a
	// fault that comes while its process is still in trouble from the one
	// before is skipped (it would signal a process that is gone, or start
	// a second one).
	trouble := &fs.serverInTrouble
	if ev.Kind != faultServer {
		trouble = &fs.pool[ev.Worker].inTrouble
	}
	if !trouble.TryLock() {
		ev.skipped = true
		fs.t.Logf("fault %s of worker %d at %s skipped: its process is still down or frozen from the one before", ev.Kind, ev.Worker, ev.At)
		return nil
	}
	defer trouble.Unlock()
	if ev.Kind == faultServer {
		nd := fs.ns.nodes[0]
		ev.target = "nats-" + nd.name
		nd.p.kill()
		wait()
		return fs.ns.restartErr(nd)
	}
	w := fs.pool[ev.Worker]
	ev.target, ev.pid = w.name, w.pid()
	switch ev.Kind {
	case faultKill:
		w.kill()
	case faultTerm:
		if err := w.signalErr(syscall.SIGTERM); err != nil {
			return err
		}
		select { // a graceful stop finishes within the worker's 30 s
		case <-w.exited():
		case <-time.After(40 * time.Second):
			return fmt.Errorf("worker %s (pid %d) not stopped 40 s after SIGTERM", w.name, ev.pid)
		}
	case faultStop:
		if err := w.signalErr(syscall.SIGSTOP); err != nil {
			return err
		}
		wait()
		return w.signalErr(syscall.SIGCONT)
	}
	wait()
	return w.restart(2 * time.Minute)
}

// summary counts the faults that happened.
func (fs *faults) summary() string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var plan []plannedFault
	skipped := 0
	for _, ev := range fs.events {
		if ev.skipped {
			skipped++
			continue
		}
		plan = append(plan, ev.plannedFault)
	}
	if skipped > 0 {
		return fmt.Sprintf("%s (%d skipped)", summarize(plan), skipped)
	}
	return summarize(plan)
}

// log prints the faults, relative to the start of the load.
func (fs *faults) log(t *testing.T) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var b strings.Builder
	for _, ev := range fs.events {
		if ev.skipped {
			fmt.Fprintf(&b, "\n  %7.3fs          %-6s worker %d: skipped", ev.start.Sub(fs.began).Seconds(), ev.Kind, ev.Worker)
			continue
		}
		fmt.Fprintf(&b, "\n  %7.3fs–%7.3fs %-6s %s", ev.start.Sub(fs.began).Seconds(), ev.end.Sub(fs.began).Seconds(), ev.Kind, ev.target)
		if ev.pid != 0 {
			fmt.Fprintf(&b, " (pid %d)", ev.pid)
		}
	}
	t.Logf("faults (from the start of the load at %s):%s", fs.began.Format("15:04:05.000"), b.String())
}

// explains reports whether a fault explains that an activity which began
// in process first at from ran again in process second at to:
//   - the server restarted in between (an ack or a result was lost with
//     it);
//   - first was killed in between, or frozen long enough for its lease to
//     run out (a lease is extended every third of the ack wait, so half of
//     it is enough): the task went to another worker;
//   - second was frozen that long and woke up in between, or up to an ack
//     wait before from: it held a delivery of the task whose lease ran out
//     meanwhile (the task went to first), and ran it on waking.
//
// A graceful stop explains nothing: it lets running activities finish and
// hands back only what has not begun.
func (fs *faults) explains(first, second int, from, to time.Time) string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, ev := range fs.events {
		if ev.skipped {
			continue
		}
		end := ev.end
		if end.IsZero() {
			end = time.Now()
		}
		at := ev.start.Sub(fs.began).Round(time.Millisecond)
		long := ev.Kind == faultStop && end.Sub(ev.start) >= ackWait/2
		overlaps := !ev.start.After(to) && !end.Before(from)
		switch {
		case ev.Kind == faultServer && overlaps:
			return fmt.Sprintf("server restart at %s", at)
		case ev.pid == first && ev.Kind == faultKill && overlaps:
			return fmt.Sprintf("kill of its first worker at %s", at)
		case ev.pid == first && long && overlaps:
			return fmt.Sprintf("freeze of its first worker at %s for %s", at, end.Sub(ev.start).Round(time.Millisecond))
		case ev.pid == second && long && !end.After(to) && !end.Before(from.Add(-ackWait)):
			return fmt.Sprintf("freeze of its second worker at %s for %s", at, end.Sub(ev.start).Round(time.Millisecond))
		}
	}
	return ""
}

// --- The load ---

// rinst is one instance of the randomized load and what the test did to
// it.
type rinst struct {
	id, name string
	input    any
	kind     string
	// want is the output a Completed instance must have (JSON); nil when
	// it depends on what happened (an event raised again after a failed
	// call).
	want json.RawMessage
	// hist is what its history must hold.
	hist histWant
	// draws are its seeded choices (what its script does, and when).
	draws draws
	// children are the sub-orchestrations it starts.
	children []*rinst
	parent   *rinst

	mu           sync.Mutex
	acked        bool // the start was acknowledged (or answered "exists" after a failed call)
	startedAt    time.Time
	startFails   int
	events       []*sentEvent
	terminate    string // the reason, once a terminate was sent (acknowledged or not)
	suspends     int
	purged       bool
	finished     *jetflow.Status
	finishedAt   time.Time
	verified     bool
	problems     []string
	calls        []string // activity calls in history (chaos.CallKey)
	results      []string // those with a result
	exec         string   // its first execution id (for the tracer)
	scriptDone   chan struct{}
	scriptFailed string
}

// sentEvent is an external event the test raised.
type sentEvent struct {
	name  string
	data  any
	calls int  // RaiseEvent calls made for it
	acked bool // one of them returned success
}

func (in *rinst) problem(format string, args ...any) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.problems = append(in.problems, fmt.Sprintf(in.id+": "+format, args...))
}

// randomLoad starts instances and acts on them.
type randomLoad struct {
	// avoid holds the parts of the load left out (JETFLOW_CHAOS_AVOID,
	// comma-separated), to look at one engine bug apart from the others:
	// "overtake", nothing is sent to an instance before it is seen past
	// Pending; "suspend", no suspend and resume; "purge", no purges;
	// "continue", no ChaosCounter or ChaosAccumulator (continue-as-new).
	avoid map[string]bool
	h     *hub
	obs   *statusWatch
	trace *tracer // nil unless JETFLOW_CHAOS_TRACE is set

	seed uint64

	mu    sync.Mutex
	insts map[string]*rinst
	order []*rinst
	n     int
	runs  int
}

func newRandomLoad(h *hub, obs *statusWatch, seed uint64) *randomLoad {
	return &randomLoad{h: h, obs: obs, seed: seed, insts: map[string]*rinst{}, avoid: map[string]bool{}}
}

// draws is a seeded source of one instance's choices: each instance has
// its own, derived from the seed and its number, so that what is done to
// it does not depend on how the scripts of others interleave.
type draws struct{ rng *rand.Rand }

func newDraws(seed uint64, i int) draws { return draws{rand.New(rand.NewPCG(seed, 1000+uint64(i)))} }

func (d draws) intn(n int) int { return d.rng.IntN(n) }

func (d draws) chance(p float64) bool { return d.rng.Float64() < p }

func (d draws) millis(lo, hi int) time.Duration {
	return time.Duration(lo+d.intn(hi-lo+1)) * time.Millisecond
}

// run starts an instance every interval until ctx ends; each runs its
// script (scriptCtx ends them).
func (ld *randomLoad) run(ctx, scriptCtx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		in, script := ld.next()
		go func() {
			defer close(in.scriptDone)
			if err := script(scriptCtx, in); err != nil {
				in.mu.Lock()
				in.scriptFailed = err.Error()
				in.mu.Unlock()
			}
		}()
	}
}

// next draws the next instance and its script.
func (ld *randomLoad) next() (*rinst, func(context.Context, *rinst) error) {
	ld.mu.Lock()
	i := ld.n
	ld.n++
	ld.mu.Unlock()
	id := fmt.Sprintf("rnd-%05d", i)
	d := newDraws(ld.seed, i)
	r := d.intn(100)
	if r >= 66 && r < 86 && ld.avoid["continue"] {
		r -= 66 // the same draws, other kinds
	}
	var in *rinst
	script := ld.simple
	switch {
	case r < 22:
		in = &rinst{name: "E1_HelloSequence", kind: "hello", want: raw(`["Hello Tokyo!","Hello Seattle!","Hello London!"]`), hist: histWant{acts: 3}}
	case r < 34:
		n := 5 + d.intn(16)
		in = &rinst{name: "FanOutFanIn", kind: "fanout", input: n, want: rawf("%d", samples.SumOfSquares(n)), hist: histWant{acts: n}}
	case r < 46:
		city := fmt.Sprintf("city-%d", i)
		in = &rinst{name: "CityRecommender", kind: "city", input: 1 + i%3, want: rawf("%q", city)}
		in.events = []*sentEvent{{name: "CitySelected", data: city}}
		script = ld.withEvents
	case r < 56:
		secs := 1 + d.intn(5)
		in = &rinst{name: "Delay", kind: "delay", input: secs, want: rawf("%d", secs), hist: histWant{timers: 1}}
	case r < 66:
		in = &rinst{name: chaos.ParentName, kind: "parent", want: mustJSON(chaos.WantParent()), hist: histWant{acts: 1, subs: 3}}
		in.children = []*rinst{
			{id: id + ":0", name: "E1_HelloSequence", kind: "hello", want: raw(`["Hello Tokyo!","Hello Seattle!","Hello London!"]`), hist: histWant{acts: 3}},
			{id: id + ":1", name: "FanOutFanIn", kind: "fanout", input: chaos.ParentFanOut, want: rawf("%d", samples.SumOfSquares(chaos.ParentFanOut)), hist: histWant{acts: chaos.ParentFanOut}},
			{id: id + ":2", name: "Delay", kind: "delay", input: chaos.ParentDelay, want: rawf("%d", chaos.ParentDelay), hist: histWant{timers: 1}},
		}
	case r < 76:
		until := 2 + d.intn(5)
		in = &rinst{name: chaos.CounterName, kind: "counter", input: chaos.CounterState{Until: until}, want: rawf("%d", until),
			hist: histWant{acts: until + 1, timers: (until + 1) / 2, executions: until + 1}}
	case r < 86:
		k := 2 + d.intn(4)
		in = &rinst{name: chaos.AccumulatorName, kind: "accumulator", input: chaos.AccumulatorState{Want: k}, want: rawf("%d", 1<<k-1),
			hist: histWant{executions: k}}
		for j := range k {
			in.events = append(in.events, &sentEvent{name: chaos.AddEvent, data: 1 << j})
		}
		script = ld.withEvents
	default:
		in = &rinst{name: "SetStatusTest", kind: "setstatus", want: raw("null")}
		in.events = []*sentEvent{{name: "Done", data: nil}}
		script = ld.setStatus
	}
	in.id, in.draws = id, d
	in.scriptDone = make(chan struct{})
	ld.mu.Lock()
	ld.add(in)
	for _, c := range in.children {
		c.parent = in
		c.scriptDone = make(chan struct{})
		close(c.scriptDone)
		ld.add(c)
	}
	ld.mu.Unlock()
	return in, script
}

func (ld *randomLoad) add(in *rinst) {
	ld.insts[in.id] = in
	ld.order = append(ld.order, in)
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func rawf(format string, args ...any) json.RawMessage { return raw(fmt.Sprintf(format, args...)) }

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// call makes one client call until it succeeds or done says its error is
// an answer, retrying a failed one (a server down, a timeout) every
// 200 ms until ctx ends. It returns the number of failed calls and the
// last error.
func call(ctx context.Context, f func(context.Context) error, done func(error) bool) (fails int, err error) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = f(cctx)
		cancel()
		if err == nil || done(err) {
			return fails, err
		}
		fails++
		select {
		case <-ctx.Done():
			return fails, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func never(error) bool { return false }

// start starts the instance, retrying failed calls under one request id
// (the instance's), so that a retry of a call that was stored answers
// with its run; "exists" is an answer, and a wrong one.
func (ld *randomLoad) start(ctx context.Context, in *rinst) error {
	fails, err := call(ctx, func(ctx context.Context) error {
		_, err := ld.h.client.StartOrchestration(ctx, in.name, client.WithInstanceID(in.id), client.WithInput(in.input), client.WithRequestID(in.id))
		return err
	}, func(err error) bool { return errors.Is(err, jetflow.ErrInstanceExists) })
	in.mu.Lock()
	in.startFails, in.startedAt = fails, time.Now()
	in.mu.Unlock()
	switch {
	case err == nil:
		in.mu.Lock()
		in.acked = true
		in.mu.Unlock()
		return nil
	default:
		return fmt.Errorf("starting: %w", err)
	}
}

// raise raises one event, retrying failed calls; "finished" is an answer
// (the instance was terminated, say).
func (ld *randomLoad) raise(ctx context.Context, in *rinst, ev *sentEvent) error {
	_, err := call(ctx, func(ctx context.Context) error {
		in.mu.Lock()
		ev.calls++
		in.mu.Unlock()
		return ld.h.client.RaiseEvent(ctx, in.id, ev.name, ev.data)
	}, func(err error) bool { return errors.Is(err, jetflow.ErrInstanceFinished) })
	if err == nil {
		in.mu.Lock()
		ev.acked = true
		in.mu.Unlock()
		return nil
	}
	if errors.Is(err, jetflow.ErrInstanceFinished) {
		return nil
	}
	return fmt.Errorf("raising %s: %w", ev.name, err)
}

// control sends a terminate, suspend or resume, retrying failed calls;
// "finished" is an answer.
func (ld *randomLoad) control(ctx context.Context, in *rinst, what string) error {
	reason := fmt.Sprintf("%s by the chaos test", what)
	if what == "terminate" {
		in.mu.Lock()
		in.terminate = reason
		in.mu.Unlock()
	}
	_, err := call(ctx, func(ctx context.Context) error {
		switch what {
		case "terminate":
			return ld.h.client.Terminate(ctx, in.id, reason)
		case "suspend":
			return ld.h.client.Suspend(ctx, in.id, reason)
		default:
			return ld.h.client.Resume(ctx, in.id, reason)
		}
	}, func(err error) bool { return errors.Is(err, jetflow.ErrInstanceFinished) })
	if err != nil && !errors.Is(err, jetflow.ErrInstanceFinished) {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// waitStarted waits, with JETFLOW_CHAOS_AVOID=overtake, until the
// instance is seen past Pending, so that nothing sent to it overtakes its
// start.
func (ld *randomLoad) waitStarted(ctx context.Context, in *rinst) {
	if !ld.avoid["overtake"] {
		return
	}
	for n := 0; ctx.Err() == nil; n++ {
		if ld.obs.pastPending(in.id) {
			return
		}
		if n%25 == 24 { // every 5 s, read it too
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if u, err := ld.h.client.GetStatusWithRevision(rctx, in.id); err == nil {
				ld.obs.record(in.id, u.Revision, &u.Status, false, "read")
			}
			cancel()
		}
		sleep(ctx, 200*time.Millisecond)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// simple: start; sometimes terminate it a little later; wait for the end,
// check, sometimes purge.
func (ld *randomLoad) simple(ctx context.Context, in *rinst) error {
	terminate := in.kind != "parent" && in.draws.chance(0.1)
	pause := in.draws.millis(0, 2000)
	if err := ld.start(ctx, in); err != nil {
		return err
	}
	if terminate {
		sleep(ctx, pause)
		ld.waitStarted(ctx, in)
		if err := ld.control(ctx, in, "terminate"); err != nil {
			return err
		}
	}
	return ld.finish(ctx, in)
}

// withEvents: start, raise the instance's events a little later (a few
// hundred ms apart: some arrive together), wait for the end.
func (ld *randomLoad) withEvents(ctx context.Context, in *rinst) error {
	pause := in.draws.millis(0, 2000)
	gaps := make([]time.Duration, len(in.events))
	for i := range gaps {
		gaps[i] = in.draws.millis(0, 300)
	}
	if err := ld.start(ctx, in); err != nil {
		return err
	}
	sleep(ctx, pause)
	ld.waitStarted(ctx, in)
	for i, ev := range in.events {
		sleep(ctx, gaps[i])
		if err := ld.raise(ctx, in, ev); err != nil {
			return err
		}
	}
	return ld.finish(ctx, in)
}

// setStatus: SetStatusTest waits for Done: raise it, terminate the
// instance instead, or suspend and resume it before raising Done.
func (ld *randomLoad) setStatus(ctx context.Context, in *rinst) error {
	choice := in.draws.intn(3)
	pause, held := in.draws.millis(0, 3000), in.draws.millis(500, 3000)
	if choice == 1 && ld.avoid["suspend"] {
		choice = 2
	}
	if err := ld.start(ctx, in); err != nil {
		return err
	}
	sleep(ctx, pause)
	ld.waitStarted(ctx, in)
	switch choice {
	case 0:
		if err := ld.control(ctx, in, "terminate"); err != nil {
			return err
		}
	case 1:
		in.mu.Lock()
		in.suspends++
		in.mu.Unlock()
		if err := ld.control(ctx, in, "suspend"); err != nil {
			return err
		}
		sleep(ctx, held)
		if err := ld.control(ctx, in, "resume"); err != nil {
			return err
		}
		fallthrough
	default:
		if err := ld.raise(ctx, in, in.events[0]); err != nil {
			return err
		}
	}
	return ld.finish(ctx, in)
}

// finish waits until the instance (and its children) finished, checks
// them, and purges some.
func (ld *randomLoad) finish(ctx context.Context, in *rinst) error {
	for _, x := range append([]*rinst{in}, in.children...) {
		st, err := ld.obs.waitFinished(ctx, ld.h, x.id)
		if err != nil {
			return fmt.Errorf("waiting for %s to finish: %w", x.id, err)
		}
		x.mu.Lock()
		x.finished, x.finishedAt = st, time.Now()
		x.mu.Unlock()
	}
	for _, x := range append([]*rinst{in}, in.children...) {
		if err := ld.verify(ctx, x); err != nil {
			return err
		}
	}
	if len(in.children) > 0 || !in.draws.chance(0.2) || ld.avoid["purge"] {
		return nil
	}
	in.mu.Lock()
	clean := len(in.problems) == 0
	in.mu.Unlock()
	if !clean {
		return nil // keep it for the report
	}
	fails, err := call(ctx, func(ctx context.Context) error {
		return ld.h.client.PurgeInstance(ctx, in.id)
	}, func(err error) bool { return errors.Is(err, jetflow.ErrInstanceNotFound) })
	switch {
	case err == nil, errors.Is(err, jetflow.ErrInstanceNotFound) && fails > 0:
		in.mu.Lock()
		in.purged = true
		in.mu.Unlock()
		return nil
	default:
		return fmt.Errorf("purging: %w", err)
	}
}

// verify reads the instance's status and history back and checks them.
func (ld *randomLoad) verify(ctx context.Context, in *rinst) error {
	var u *client.StatusEntry
	if _, err := call(ctx, func(ctx context.Context) (err error) {
		u, err = ld.h.client.GetStatusWithRevision(ctx, in.id)
		return err
	}, func(err error) bool { return errors.Is(err, jetflow.ErrInstanceNotFound) }); err != nil {
		in.problem("reading the status: %v", err)
		return nil
	}
	ld.obs.record(in.id, u.Revision, &u.Status, false, "read")
	var chunks []storage.Chunk
	if _, err := call(ctx, func(ctx context.Context) (err error) {
		chunks, err = ld.h.store.LoadHistory(ctx, in.id)
		return err
	}, never); err != nil {
		in.problem("reading the history: %v", err)
		return nil
	}
	in.mu.Lock()
	terminate, want := in.terminate, in.want
	w := in.hist
	w.events = map[string]int{}
	var required []string
	retried := false
	for _, ev := range in.events {
		key := eventKey(ev.name, ev.data)
		w.events[key] += ev.calls
		if ev.acked {
			required = append(required, key)
		}
		if ev.calls > 1 {
			retried = true
		}
	}
	in.mu.Unlock()
	st := u.Status
	switch st.RuntimeStatus {
	case jetflow.StatusCompleted:
		w.final, w.required = "Completed", required
		if in.kind == "accumulator" && retried {
			want = nil // an event raised again may be there twice
		}
		if want != nil && !jsonEqual(st.Output, string(want)) {
			in.problem("Completed with output %s, want %s", st.Output, want)
		}
	case jetflow.StatusTerminated:
		w.final = "Terminated"
		if terminate == "" {
			in.problem("Terminated, but the test did not terminate it (output %s)", st.Output)
		} else if !jsonEqual(st.Output, strconv.Quote(terminate)) {
			in.problem("Terminated with output %s, want %q", st.Output, terminate)
		}
	default:
		in.problem("finished %s: %s", st.RuntimeStatus, st.Output)
		return nil
	}
	w.terminated = terminate != ""
	in.mu.Lock()
	w.suspended = in.suspends > 0
	in.mu.Unlock()
	calls, results, err := checkExecutions(in.id, chunks, w)
	if err != nil {
		in.problem("history: %v", err)
	}
	in.mu.Lock()
	in.calls, in.results, in.verified = calls, results, true
	for _, c := range chunks {
		for _, e := range c.Events {
			if e.Type == history.ExecutionStarted && in.exec == "" {
				in.exec = e.ExecutionID
			}
		}
	}
	in.mu.Unlock()
	return nil
}

// started and count are how many instances the load started, and with
// their sub-orchestrations.
func (ld *randomLoad) started() int {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return ld.n
}

func (ld *randomLoad) count() int {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return len(ld.order)
}

func (ld *randomLoad) all() []*rinst {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	return slices.Clone(ld.order)
}

func (ld *randomLoad) purgedCount() int {
	n := 0
	for _, in := range ld.all() {
		in.mu.Lock()
		if in.purged {
			n++
		}
		in.mu.Unlock()
	}
	return n
}

// waitScripts waits until every script has ended, or until deadline.
func (ld *randomLoad) waitScripts(deadline time.Time) bool {
	for _, in := range ld.all() {
		select {
		case <-in.scriptDone:
		case <-time.After(time.Until(deadline)):
			return false
		}
	}
	return true
}

// lastFinished is the instance seen finished last.
func (ld *randomLoad) lastFinished() *rinst {
	var last *rinst
	for _, in := range ld.all() {
		in.mu.Lock()
		if last == nil || in.finishedAt.After(last.finishedAt) {
			last = in
		}
		in.mu.Unlock()
	}
	return last
}

// report logs the instances that did not finish by the deadline.
func (ld *randomLoad) report(t *testing.T, deadline time.Time) {
	var left []*rinst
	for _, in := range ld.all() {
		in.mu.Lock()
		if in.finished == nil {
			left = append(left, in)
		}
		in.mu.Unlock()
	}
	kinds := map[string]int{}
	for _, in := range left {
		kinds[in.kind]++
	}
	t.Logf("%d instances unfinished at the deadline, by kind: %v", len(left), kinds)
	for i, in := range left {
		if i == 4 {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := ld.h.client.GetStatus(ctx, in.id)
		cancel()
		in.mu.Lock()
		t.Logf("%s (%s): acked %v after %d failed starts, terminate %q, script error %q, status %+v (%v)",
			in.id, in.kind, in.acked, in.startFails, in.terminate, in.scriptFailed, st, err)
		in.mu.Unlock()
		ld.dump(t, in.id)
	}
	ld.h.dumpConsumers(t)
}

// dump logs an instance's history and, when tracing, where its messages
// went.
func (ld *randomLoad) dump(t *testing.T, id string) {
	if exec := ld.h.dumpHistory(t, id); exec != "" {
		ld.trace.dump(t, exec, storage.EncodeToken(id))
	}
}

// checkInstances reports every problem the scripts found, and checks
// that purged instances are gone.
func (ld *randomLoad) checkInstances(t *testing.T, fail func(string, ...any)) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dumped := 0
	for _, in := range ld.all() {
		in.mu.Lock()
		problems := slices.Clone(in.problems)
		scriptFailed, verified, purged, acked := in.scriptFailed, in.verified, in.purged, in.acked
		in.mu.Unlock()
		if scriptFailed != "" {
			fail("%s (%s): %s", in.id, in.kind, scriptFailed)
		}
		if !acked && in.parent == nil {
			fail("%s (%s): the start was never acknowledged", in.id, in.kind)
		}
		if !verified && scriptFailed == "" {
			fail("%s (%s): never checked", in.id, in.kind)
		}
		for _, p := range problems {
			fail("%s", p)
		}
		if len(problems) > 0 && dumped < 3 {
			dumped++
			ld.dump(t, in.id)
		}
		if purged {
			if _, err := ld.h.client.GetStatus(ctx, in.id); !errors.Is(err, jetflow.ErrInstanceNotFound) {
				fail("%s: purged, but reading its status answers %v", in.id, err)
			}
			if chunks, err := ld.h.store.LoadHistory(ctx, in.id); err != nil || len(chunks) > 0 {
				fail("%s: purged, but %d history chunks are left (%v)", in.id, len(chunks), err)
				if dumped < 3 {
					dumped++
					in.mu.Lock()
					exec := in.exec
					in.mu.Unlock()
					ld.h.dumpHistory(t, in.id)
					ld.trace.dump(t, exec, storage.EncodeToken(in.id))
				}
			}
		}
	}
}

// --- Status watch ---

// statusWatch follows every status of the load with the Go client's
// WatchAll, resuming after the last revision seen when the watch ends (a
// server restart), and keeps every value it saw, to check that no
// instance's status goes backwards.
type statusWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	seen     map[string][]observed
	finished map[string]*jetflow.Status
	wake     map[string]chan struct{}
	lastRev  uint64
	endings  []time.Time // when the watch ended before its context
	n        int
}

// observed is one status value seen, by the watch or a read.
type observed struct {
	rev     uint64
	status  jetflow.RuntimeStatus
	custom  json.RawMessage
	output  json.RawMessage
	deleted bool
	src     string
}

func watchStatuses(t *testing.T, h *hub, prefix string) *statusWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &statusWatch{cancel: cancel, done: make(chan struct{}), seen: map[string][]observed{},
		finished: map[string]*jetflow.Status{}, wake: map[string]chan struct{}{}}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			w.mu.Lock()
			from := w.lastRev
			w.mu.Unlock()
			ch, err := h.client.WatchAll(ctx, client.WatchFilter{InstanceIDPrefix: prefix}, from)
			if err != nil {
				sleep(ctx, 200*time.Millisecond)
				continue
			}
			for u := range ch {
				w.mu.Lock()
				if u.Revision > w.lastRev {
					w.lastRev = u.Revision
				}
				w.n++
				w.mu.Unlock()
				w.record(u.InstanceID, u.Revision, &u.Status, u.Deleted, "watch")
			}
			w.mu.Lock()
			if ctx.Err() == nil {
				w.endings = append(w.endings, time.Now())
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *statusWatch) stop() {
	w.cancel()
	<-w.done
}

// ended is how many times the watch ended before its context.
func (w *statusWatch) ended() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.endings)
}

// endTimes lists when the watch ended, relative to began.
func (w *statusWatch) endTimes(began time.Time) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var s []string
	for _, at := range w.endings {
		s = append(s, at.Sub(began).Round(time.Millisecond).String())
	}
	return strings.Join(s, ", ")
}

// pastPending reports whether the instance was seen in another status
// than Pending.
func (w *statusWatch) pastPending(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, o := range w.seen[id] {
		if !o.deleted && o.status != jetflow.StatusPending {
			return true
		}
	}
	return false
}

func (w *statusWatch) updates() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// record keeps a status value seen; a terminal one wakes waitFinished.
func (w *statusWatch) record(id string, rev uint64, st *jetflow.Status, deleted bool, src string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	o := observed{rev: rev, deleted: deleted, src: src}
	if !deleted {
		o.status, o.custom, o.output = st.RuntimeStatus, st.CustomStatus, st.Output
	}
	w.seen[id] = append(w.seen[id], o)
	if !deleted && st.Finished() && w.finished[id] == nil {
		c := *st
		w.finished[id] = &c
		if ch := w.wake[id]; ch != nil {
			close(ch)
			delete(w.wake, id)
		}
	}
}

// waitFinished returns the instance's terminal status, from the watch, or
// from a read every 5 s (in case the watch missed it: that is reported by
// the monotonic check, which sees the read).
func (w *statusWatch) waitFinished(ctx context.Context, h *hub, id string) (*jetflow.Status, error) {
	for {
		w.mu.Lock()
		st := w.finished[id]
		ch := w.wake[id]
		if st == nil && ch == nil {
			ch = make(chan struct{})
			w.wake[id] = ch
		}
		w.mu.Unlock()
		if st != nil {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ch:
		case <-time.After(5 * time.Second):
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			u, err := h.client.GetStatusWithRevision(rctx, id)
			cancel()
			if err == nil {
				w.record(id, u.Revision, &u.Status, false, "read")
			}
		}
	}
}

// progress orders the status values of an instance: its phase (Pending,
// then running, suspended or continued as new, then finished), then, while
// it runs, how far its custom status says it got.
func progress(name string, o observed) (phase, step int) {
	switch {
	case o.deleted:
		return 3, 0
	case o.status == jetflow.StatusPending:
		return 0, 0
	case o.status.IsTerminal():
		return 2, 0
	}
	var v any
	_ = json.Unmarshal(o.custom, &v)
	switch name {
	case "E1_HelloSequence":
		switch v {
		case "Tokyo":
			return 1, 1
		case "Seattle":
			return 1, 2
		case "London":
			return 1, 3
		}
	case chaos.CounterName, chaos.AccumulatorName:
		if f, ok := v.(float64); ok {
			return 1, int(f)
		}
	}
	return 1, 0
}

// checkMonotonic checks, for every instance, the values seen in revision
// order: the phase and the progress never go back, a terminal status never
// changes (and is deleted only by a purge), and one revision is one value.
func (w *statusWatch) checkMonotonic(ld *randomLoad, fail func(string, ...any)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, seen := range w.seen {
		in := ld.insts[id]
		if in == nil {
			fail("%s: a status of an instance the test did not start", id)
			continue
		}
		sort := slices.Clone(seen)
		slices.SortStableFunc(sort, func(a, b observed) int {
			switch {
			case a.rev < b.rev:
				return -1
			case a.rev > b.rev:
				return 1
			}
			return 0
		})
		for i := 1; i < len(sort); i++ {
			a, b := sort[i-1], sort[i]
			if a.rev == b.rev {
				if a.status != b.status || a.deleted != b.deleted || !bytesEqualJSON(a.output, b.output) {
					fail("%s: revision %d seen as %s (%s) and as %s (%s)", id, a.rev, a.status, a.src, b.status, b.src)
				}
				continue
			}
			pa, sa := progress(in.name, a)
			pb, sb := progress(in.name, b)
			switch {
			case pb < pa || pb == pa && sb < sa:
				fail("%s: status went backwards: %s %s (rev %d, %s) then %s %s (rev %d, %s)", id,
					a.status, a.custom, a.rev, a.src, b.status, b.custom, b.rev, b.src)
			case pa == 2 && pb == 2 && (a.status != b.status || !bytesEqualJSON(a.output, b.output)):
				fail("%s: a finished status changed: %s %s (rev %d) then %s %s (rev %d)", id, a.status, a.output, a.rev, b.status, b.output, b.rev)
			case pb == 3 && !in.purged:
				fail("%s: status deleted (rev %d), but the test did not purge it", id, b.rev)
			}
		}
	}
}

func bytesEqualJSON(a, b json.RawMessage) bool {
	if len(a) == 0 {
		a = raw("null")
	}
	if len(b) == 0 {
		b = raw("null")
	}
	return jsonEqual(a, string(b))
}

// --- Activity runs ---

// checkRuns reads the runs every worker recorded and checks them against
// the histories: every completed activity call ran; no run is for a call
// that is not in a history; a call that ran more than once did so because
// its worker was killed or frozen, or the server restarted, after the run
// before it began.
func checkRuns(t *testing.T, path string, ld *randomLoad, fs *faults, fail func(string, ...any)) {
	b, err := os.ReadFile(path)
	if err != nil {
		fail("reading the activity runs: %v", err)
		return
	}
	runs := map[string][]chaos.Run{}
	n := 0
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		var r chaos.Run
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			fail("run log line %q: %v", line, err)
			continue
		}
		runs[r.RunKey()] = append(runs[r.RunKey()], r)
		n++
	}
	ld.runs = n
	calls := map[string]bool{}
	for _, in := range ld.all() {
		in.mu.Lock()
		for _, c := range in.calls {
			calls[c] = true
		}
		for _, c := range in.results {
			if len(runs[c]) == 0 {
				fail("%s: activity call %q has a result in history but never ran", in.id, c)
			}
		}
		in.mu.Unlock()
	}
	explained := map[string]int{}
	reruns := 0
	for key, rs := range runs {
		if !calls[key] {
			fail("activity %s of %s (task %d, input %s) ran (%d times) but is not in its instance's history", rs[0].Name, rs[0].Instance, rs[0].Task, rs[0].Input, len(rs))
			continue
		}
		slices.SortFunc(rs, func(a, b chaos.Run) int { return int(a.At - b.At) })
		for i := 1; i < len(rs); i++ {
			reruns++
			from, to := time.Unix(0, rs[i-1].At), time.Unix(0, rs[i].At)
			why := fs.explains(rs[i-1].PID, rs[i].PID, from, to)
			if why == "" {
				fail("activity %s of %s (task %d, input %s) ran again at %s in pid %d, %s after its run in pid %d, with no crash, freeze or server restart in between",
					rs[i].Name, rs[i].Instance, rs[i].Task, rs[i].Input, to.Sub(fs.began).Round(time.Millisecond), rs[i].PID, to.Sub(from).Round(time.Millisecond), rs[i-1].PID)
				continue
			}
			cause, _, _ := strings.Cut(why, " at ")
			explained[cause]++
		}
	}
	t.Logf("%d activity runs of %d calls; %d ran again, explained by: %v", n, len(runs), reruns, explained)
}

// --- Streams ---

// checkStreams checks, once the load is over, that the inbox and task
// streams hold nothing but what is outstanding: once every consumer has
// nothing pending or unacknowledged, the janitors (every 5 s) must empty
// the task stream, and leave in the inbox stream only timers that are not
// due yet.
func checkStreams(t *testing.T, h *hub, fail func(string, ...any)) {
	idleBy := time.Now().Add(30 * time.Second)
	var last string
	for {
		out, msgs, timers, err := h.outstanding()
		if err == nil && out == 0 && msgs[kindTask] == 0 && msgs[kindInbox] == timers {
			t.Logf("streams hold only what is outstanding: %d not due timers", timers)
			return
		}
		last = fmt.Sprintf("%d messages pending or unacknowledged, streams %v, %d timers not due (%v)", out, msgs, timers, err)
		if time.Now().After(idleBy) {
			h.dumpConsumers(t)
			fail("30 s after the load, the streams still hold more than what is outstanding: %s", last)
			return
		}
		time.Sleep(time.Second)
	}
}

// outstanding returns the messages the consumers of the inbox and task
// streams have pending or unacknowledged, the message count of each kind
// of stream (kindInbox, kindTask: the sum over the partitions), and the
// timers in the inbox streams that are not due yet.
func (h *hub) outstanding() (out uint64, msgs map[string]uint64, timers uint64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := natsJS(h)
	if err != nil {
		return 0, nil, 0, err
	}
	msgs = map[string]uint64{}
	names := h.store.Names()
	for _, q := range h.queueStreams() {
		name, kind := q.name, q.kind
		st, err := js.Stream(ctx, name)
		if err != nil {
			return 0, nil, 0, err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return 0, nil, 0, err
		}
		msgs[kind] += info.State.Msgs
		l := st.ListConsumers(ctx)
		for ci := range l.Info() {
			out += ci.NumPending + uint64(ci.NumAckPending)
		}
		if err := l.Err(); err != nil {
			return 0, nil, 0, err
		}
		if kind != kindInbox {
			continue
		}
		// Timers are message schedules in the inbox stream, one subject
		// each; one that is due must have fired (and left).
		info, err = st.Info(ctx, natsjsSubjects(names.Hub()+".timer.>"))
		if err != nil {
			return 0, nil, 0, err
		}
		for subj := range info.State.Subjects {
			m, err := st.GetLastMsgForSubject(ctx, subj)
			if err != nil {
				return 0, nil, 0, err
			}
			at, perr := scheduleTime(m.Header.Get("Nats-Schedule"))
			if perr != nil || time.Until(at) < -5*time.Second {
				return 0, nil, 0, fmt.Errorf("timer %s (schedule %q) is overdue", subj, m.Header.Get("Nats-Schedule"))
			}
			timers++
		}
	}
	return out, msgs, timers, nil
}

// scheduleTime reads the time of an "@at <RFC 3339>" message schedule.
func scheduleTime(s string) (time.Time, error) {
	at, ok := strings.CutPrefix(s, "@at ")
	if !ok {
		return time.Time{}, fmt.Errorf("schedule %q is not @at", s)
	}
	return time.Parse(time.RFC3339Nano, at)
}
