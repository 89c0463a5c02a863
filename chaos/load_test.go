//go:build chaos

package chaos_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/jetflow/jetflow/samples"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// stockMaxPayload is a stock nats-server's max_payload (1 MB).
const stockMaxPayload = 1 << 20

// hub is the test process's own view of the engine, as an application
// would have it: a connection, the store, a dispatcher and a client.
type hub struct {
	nc     *nats.Conn
	store  *storage.Store // the engine's storage of the hub
	client *client.Client
}

// openHub connects to urls and opens the hub, creating its streams and
// buckets with the given replicas and partitions if they do not exist yet.
func openHub(t *testing.T, urls string, replicas, partitions int) *hub {
	t.Helper()
	nc, err := nats.Connect(urls, nats.Name("chaos-test"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	require.NoError(t, err)
	// The servers run with a stock nats-server's message limit, as
	// production does: a larger one hides oversize writes.
	require.EqualValues(t, stockMaxPayload, nc.MaxPayload(), "the nats-server's max_payload is not the stock 1 MB")
	var store *jetstream.Store
	// Right after a cluster forms, stream creation may fail until the
	// JetStream meta group has settled.
	testkit.WaitFor(t, 60*time.Second, "the hub to open", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		store, err = jetstream.Open(ctx, nc, jetstream.Config{Replicas: replicas, Partitions: partitions, Timeout: 5 * time.Second})
		if err != nil {
			t.Logf("opening the hub: %v", err)
		}
		return err == nil
	})
	h := &hub{nc: nc, store: storage.Of(store), client: client.New(store)}
	t.Cleanup(func() {
		h.client.Close()
		nc.Close()
	})
	return h
}

// waitRegistered waits until a worker has registered orchestrator name
// (a start is refused before).
func (h *hub) waitRegistered(t *testing.T, name string) {
	t.Helper()
	testkit.WaitFor(t, 30*time.Second, name+" to be registered", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ok, err := h.store.IsRegistered(ctx, storage.KindOrchestrator, name)
		return err == nil && ok
	})
}

// spec is one instance of a workload and what it must end with.
type spec struct {
	ID    string
	Name  string
	Input any
	// Want is the expected output (JSON).
	Want string
	// Event, when set, is the external event the instance waits for (the
	// test raises it with raiseAll).
	Event *event
	// Activities is how many activity calls the instance makes.
	Activities int
	// Timers is how many timers the instance creates.
	Timers int
}

type event struct {
	Name string
	Data string
	// Retried is set when a RaiseEvent call failed and was made again:
	// the event may then be in history twice (a failed call may have been
	// stored), each with its own message id.
	Retried bool
}

func helloSpec(id string) spec {
	return spec{ID: id, Name: "E1_HelloSequence", Want: `["Hello Tokyo!","Hello Seattle!","Hello London!"]`, Activities: 3}
}

func fanOutSpec(id string, n int) spec {
	return spec{ID: id, Name: "FanOutFanIn", Input: n, Want: fmt.Sprint(samples.SumOfSquares(n)), Activities: n}
}

func citySpec(id string, i int) spec {
	city := fmt.Sprintf("city-%d", i)
	return spec{ID: id, Name: "CityRecommender", Input: 1 + i%3, Want: fmt.Sprintf("%q", city), Event: &event{Name: "CitySelected", Data: city}}
}

func delaySpec(id string, seconds int) spec {
	return spec{ID: id, Name: "Delay", Input: seconds, Want: fmt.Sprint(seconds), Timers: 1}
}

// mixed returns n instances: every fourth one a fan-out of 20 activities,
// the others HelloSequence.
func mixed(prefix string, n int) []spec {
	specs := make([]spec, n)
	for i := range specs {
		id := fmt.Sprintf("%s-%04d", prefix, i)
		if i%4 == 3 {
			specs[i] = fanOutSpec(id, 20)
		} else {
			specs[i] = helloSpec(id)
		}
	}
	return specs
}

// startAll starts the instances, parallel at a time, and fails the test
// on any error.
func (h *hub) startAll(t *testing.T, specs []spec, parallel int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errs := make(chan error, len(specs))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for _, s := range specs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := h.client.StartOrchestration(ctx, s.Name, client.WithInstanceID(s.ID), client.WithInput(s.Input), client.WithRequestID(s.ID)); err != nil {
				errs <- fmt.Errorf("starting %s: %w", s.ID, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// tracker polls the statuses of instances until they are finished.
type tracker struct {
	h        *hub
	trace    *tracer // nil unless JETFLOW_CHAOS_TRACE is set
	mu       sync.Mutex
	specs    map[string]spec
	finished map[string]*jetflow.Status
	errors   atomic.Int64 // failed reads (a server down, say)
}

func newTracker(h *hub) *tracker {
	return &tracker{h: h, specs: map[string]spec{}, finished: map[string]*jetflow.Status{}}
}

// add makes the tracker follow more instances.
func (tr *tracker) add(specs ...spec) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, s := range specs {
		tr.specs[s.ID] = s
	}
}

// counts returns how many instances are finished and followed.
func (tr *tracker) counts() (finished, total int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return len(tr.finished), len(tr.specs)
}

// poll reads the status of every unfinished instance once, 8 at a time.
func (tr *tracker) poll(ctx context.Context) {
	tr.mu.Lock()
	var ids []string
	for id := range tr.specs {
		if tr.finished[id] == nil {
			ids = append(ids, id)
		}
	}
	tr.mu.Unlock()
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			st, err := tr.h.client.GetStatus(rctx, id)
			if err != nil {
				tr.errors.Add(1)
				return
			}
			if st.Finished() {
				tr.mu.Lock()
				tr.finished[id] = st
				tr.mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// run polls every interval until ctx ends.
func (tr *tracker) run(ctx context.Context, interval time.Duration) {
	for ctx.Err() == nil {
		tr.poll(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(interval):
		}
	}
}

// follow polls in the background until the test ends.
func (tr *tracker) follow(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tr.run(ctx, 500*time.Millisecond)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// waitFinished waits until at least n followed instances are finished.
func (tr *tracker) waitFinished(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	testkit.WaitFor(t, timeout, fmt.Sprintf("%d instances to finish", n), func() bool {
		f, _ := tr.counts()
		return f >= n
	})
}

// waitAll waits until every followed instance is finished, logging
// progress, and fails with the unfinished ones after timeout.
func (tr *tracker) waitAll(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	next := time.Now().Add(10 * time.Second)
	for {
		f, total := tr.counts()
		if f == total {
			return
		}
		if time.Now().After(deadline) {
			tr.mu.Lock()
			var left []string
			for id := range tr.specs {
				if tr.finished[id] == nil {
					left = append(left, id)
				}
			}
			tr.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for i, id := range left {
				if i == 3 {
					break
				}
				st, err := tr.h.client.GetStatus(ctx, id)
				if err != nil {
					t.Logf("%s: %v", id, err)
				} else {
					b, _ := json.Marshal(st)
					t.Logf("%s: %s", id, b)
				}
				if exec := tr.h.dumpHistory(t, id); exec != "" {
					tr.trace.dump(t, exec, storage.EncodeToken(id))
				}
			}
			tr.h.dumpConsumers(t)
			t.Fatalf("%d of %d instances unfinished after %s, e.g. %v", total-f, total, timeout, left[:min(5, len(left))])
		}
		if time.Now().After(next) {
			t.Logf("%d/%d finished", f, total)
			next = next.Add(10 * time.Second)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// verifyAll checks every followed instance: Completed with its expected
// output, and a sound history (see checkHistory).
func (tr *tracker) verifyAll(t *testing.T) {
	t.Helper()
	tr.mu.Lock()
	specs := make([]spec, 0, len(tr.specs))
	for _, s := range tr.specs {
		specs = append(specs, s)
	}
	finished := make(map[string]*jetflow.Status, len(tr.finished))
	for id, st := range tr.finished {
		finished[id] = st
	}
	tr.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var (
		mu     sync.Mutex
		errs   []string
		failed []string
	)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, s := range specs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := verify(ctx, tr.h, s, finished[s.ID])
			if err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				failed = append(failed, s.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		for i, id := range failed {
			if i == 2 {
				break
			}
			if exec := tr.h.dumpHistory(t, id); exec != "" {
				tr.trace.dump(t, exec, storage.EncodeToken(id))
			}
		}
		for i, e := range errs {
			if i == 20 {
				t.Logf("... and %d more", len(errs)-20)
				break
			}
			t.Log(e)
		}
		t.Fatalf("%d of %d instances failed verification", len(errs), len(specs))
	}
	t.Logf("verified %d instances: Completed, right output, sound history", len(specs))
}

// verify checks one instance: its status and its history.
func verify(ctx context.Context, h *hub, s spec, st *jetflow.Status) error {
	if st == nil {
		return fmt.Errorf("%s: never seen finished", s.ID)
	}
	if st.RuntimeStatus != jetflow.StatusCompleted {
		return fmt.Errorf("%s: %s, output %s", s.ID, st.RuntimeStatus, st.Output)
	}
	if !jsonEqual(st.Output, s.Want) {
		return fmt.Errorf("%s: output %s, want %s", s.ID, st.Output, s.Want)
	}
	chunks, err := h.store.LoadHistory(ctx, s.ID)
	if err != nil {
		return fmt.Errorf("%s: %w", s.ID, err)
	}
	if err := checkHistory(chunks, s); err != nil {
		return fmt.Errorf("%s: %w", s.ID, err)
	}
	return nil
}

func jsonEqual(a json.RawMessage, b string) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return bytes.Equal(xb, yb)
}

// checkHistory checks the history of a completed single-execution
// instance: it is sound (testkit.CheckChunks: chunks numbered 1, 2, 3…
// without gap, no message id applied twice, every scheduling event with a
// unique id, no completion without its scheduling event or of another
// kind, none twice, no timer fired before its time), and
//   - it has one execution, and ends with its ExecutionCompleted
//     (Completed); nothing was rewound;
//   - every scheduling event has exactly one completion, and no activity
//     failed;
//   - Square's results are its inputs squared;
//   - s.Activities activity calls and s.Timers timers were made, and the
//     expected event was raised exactly once.
func checkHistory(chunks []storage.Chunk, s spec) error {
	events, err := testkit.CheckChunks(chunks)
	if err != nil {
		return err
	}
	last := events[len(events)-1]
	if last.Type != history.ExecutionCompleted || last.Status != history.StatusCompleted {
		return fmt.Errorf("last event is %s %s", last.Type, last.Status)
	}
	scheduled := map[int32]*history.Event{}
	completed := map[int32]int{}
	starts, raised := 0, 0
	for i := range events {
		e := &events[i]
		switch {
		case e.Type == history.ExecutionStarted:
			if starts++; starts > 1 {
				return fmt.Errorf("second ExecutionStarted at event %d", i)
			}
		case e.Type == history.ExecutionRewound:
			return fmt.Errorf("event %d (%s): the test rewinds nothing", i, e.Describe())
		case e.IsScheduling():
			scheduled[e.ID] = e
		case e.IsCompletion():
			sch := scheduled[e.TaskID]
			completed[e.TaskID]++
			if e.Type == history.TaskFailed {
				return fmt.Errorf("%s failed: %v", sch.Describe(), e.Failure)
			}
			if sch.Name == "Square" {
				var x, sq int
				if json.Unmarshal(sch.Input, &x) != nil || json.Unmarshal(e.Result, &sq) != nil || sq != x*x {
					return fmt.Errorf("%s: input %s, result %s", sch.Describe(), sch.Input, e.Result)
				}
			}
		case e.Type == history.EventRaised:
			raised++
			if s.Event == nil || !strings.EqualFold(e.Name, s.Event.Name) {
				return fmt.Errorf("unexpected event %s", e.Describe())
			}
		}
	}
	activities, timers := 0, 0
	for id, sch := range scheduled {
		if completed[id] != 1 {
			return fmt.Errorf("%s has %d results", sch.Describe(), completed[id])
		}
		switch sch.Type {
		case history.TaskScheduled:
			activities++
		case history.TimerCreated:
			timers++
		}
	}
	if activities != s.Activities || timers != s.Timers {
		return fmt.Errorf("%d activity calls and %d timers, want %d and %d", activities, timers, s.Activities, s.Timers)
	}
	if s.Event != nil && (raised == 0 || raised > 1 && !s.Event.Retried) {
		return fmt.Errorf("event %s raised %d times in history, want once", s.Event.Name, raised)
	}
	return nil
}

// streamLeader returns the server name of the leader of a stream.
func (h *hub) streamLeader(t *testing.T, stream string) string {
	t.Helper()
	js, err := natsjs.New(h.nc)
	require.NoError(t, err)
	var leader string
	testkit.WaitFor(t, 30*time.Second, "a leader of "+stream, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, stream)
		if err != nil {
			return false
		}
		info, err := st.Info(ctx)
		if err != nil || info.Cluster == nil {
			return false
		}
		leader = info.Cluster.Leader
		return leader != ""
	})
	return leader
}

// starter starts instances one after the other, every interval, until
// stopped: the load that runs through a fault. A start that returned
// success is followed by the tracker (it must complete). One that failed
// has an unknown outcome (it may have been stored): it is kept, and
// retried once the fault is over (retryStarts), as the client's
// ErrOutcomeUnknown asks.
type starter struct {
	h        *hub
	tr       *tracker
	mk       func(i int) spec
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu      sync.Mutex
	acked   int
	failed  []spec
	lastErr error
}

// startContinuously starts mk(0), mk(1)… every interval until halted (at
// the latest when the test ends).
func startContinuously(t *testing.T, h *hub, tr *tracker, interval time.Duration, mk func(i int) spec) *starter {
	s := &starter{h: h, tr: tr, mk: mk, stop: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() {
		s.stopOnce.Do(func() { close(s.stop) })
		<-s.done
	})
	go func() {
		defer close(s.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			sp := mk(i)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := h.client.StartOrchestration(ctx, sp.Name, client.WithInstanceID(sp.ID), client.WithInput(sp.Input), client.WithRequestID(sp.ID))
			cancel()
			s.mu.Lock()
			if err == nil {
				s.acked++
				tr.add(sp)
			} else {
				s.failed = append(s.failed, sp)
				s.lastErr = err
			}
			s.mu.Unlock()
		}
	}()
	return s
}

// count returns how many starts have succeeded so far.
func (s *starter) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

// halt stops the starter and returns how many starts succeeded and the
// instances whose start failed.
func (s *starter) halt(t *testing.T) (acked int, failed []spec) {
	t.Helper()
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failed) > 0 {
		t.Logf("%d starts failed during the fault (last error: %v)", len(s.failed), s.lastErr)
	}
	return s.acked, s.failed
}

// retryStarts starts again, with the same id, input and request id, each
// instance whose start failed, until the call succeeds (the retry of a
// call that was stored answers with the run it made, even a finished
// one), and makes the tracker follow it: every one of them must then
// have run once, as if the first call had succeeded.
func (h *hub) retryStarts(t *testing.T, tr *tracker, failed []spec) {
	t.Helper()
	for _, sp := range failed {
		var err error
		for attempt := 0; attempt < 60; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = h.client.StartOrchestration(ctx, sp.Name, client.WithInstanceID(sp.ID), client.WithInput(sp.Input), client.WithRequestID(sp.ID))
			cancel()
			if err == nil || errors.Is(err, jetflow.ErrInstanceExists) {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil {
			t.Fatalf("starting %s again after a failed start: %v", sp.ID, err)
		}
		tr.add(sp)
	}
	if len(failed) > 0 {
		t.Logf("%d instances whose start call failed were retried", len(failed))
	}
}

// raiseAll raises the event of each spec in the background, retrying a
// failed call (after a fault) until it succeeds, or for a minute. The
// returned channel is closed when every event has been raised (or the
// test ends).
func (h *hub) raiseAll(t *testing.T, specs []spec) <-chan struct{} {
	done := make(chan struct{})
	stop, cancelAll := context.WithCancel(context.Background())
	t.Cleanup(func() { cancelAll(); <-done })
	go func() {
		defer close(done)
		for _, s := range specs {
			for attempt := 0; ; attempt++ {
				if stop.Err() != nil {
					return
				}
				ctx, cancel := context.WithTimeout(stop, 5*time.Second)
				err := h.client.RaiseEvent(ctx, s.ID, s.Event.Name, s.Event.Data)
				cancel()
				if err == nil || attempt > 0 && errors.Is(err, jetflow.ErrInstanceFinished) {
					// Finished after an attempt whose outcome was unknown
					// (a timeout): that attempt raised the event, which
					// the instance waited for (the checker verifies it was
					// applied once).
					break
				}
				s.Event.Retried = true
				if attempt == 300 {
					t.Logf("raising %s to %s: gave up after %d attempts: %v", s.Event.Name, s.ID, attempt+1, err)
					return // the test fails: the instance never completes
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}()
	return done
}

// dumpHistory logs an instance's history, one line per event, and
// returns its execution id.
func (h *hub) dumpHistory(t *testing.T, id string) (exec string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	chunks, err := h.store.LoadHistory(ctx, id)
	if err != nil {
		t.Logf("history of %s: %v", id, err)
		return ""
	}
	if len(chunks) == 0 {
		h.dumpHistoryKeys(t, id)
	}
	var b strings.Builder
	n := 0
	for _, c := range chunks {
		for _, e := range c.Events {
			fmt.Fprintf(&b, "\n  #%d chunk %d (rev %d) %s %s", n, c.Number, c.Revision, e.Time.Format("15:04:05.000"), e.Describe())
			if e.IsCompletion() {
				fmt.Fprintf(&b, " task %d", e.TaskID)
			}
			if e.MsgID != "" {
				fmt.Fprintf(&b, " msg %s", e.MsgID)
			}
			if e.Type == history.ExecutionStarted {
				exec = e.ExecutionID
			}
			n++
		}
	}
	t.Logf("history of %s:%s", id, b.String())
	return exec
}

// dumpConsumers logs the state of the hub's consumers.
func (h *hub) dumpConsumers(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := natsjs.New(h.nc)
	if err != nil {
		return
	}
	for _, q := range h.queueStreams() {
		name := q.name
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Logf("stream %s: %v", name, err)
			continue
		}
		info, err := st.Info(ctx)
		if err == nil {
			t.Logf("stream %s: %d messages, first %d last %d, cluster %+v", name, info.State.Msgs, info.State.FirstSeq, info.State.LastSeq, info.Cluster)
		}
		l := st.ListConsumers(ctx)
		for ci := range l.Info() {
			t.Logf("  consumer %s: pending %d, ack pending %d, redelivered %d, waiting %d, delivered %d, ack floor %d",
				ci.Name, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting, ci.Delivered.Stream, ci.AckFloor.Stream)
		}
	}
}

// dumpHistoryKeys logs what the history stream holds for an instance,
// read without the KV watch that LoadHistory uses.
func (h *hub) dumpHistoryKeys(t *testing.T, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := natsjs.New(h.nc)
	if err != nil {
		return
	}
	p := h.store.Names().Partition(id)
	name := "KV_" + h.store.Names().HistoryBucket(p)
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Logf("stream %s: %v", name, err)
		return
	}
	filter := h.store.Names().HistorySubjects(id)
	info, err := st.Info(ctx, natsjs.WithSubjectFilter(filter))
	if err != nil {
		t.Logf("stream %s info: %v", name, err)
		return
	}
	t.Logf("stream %s: %d messages, last %d, leader %s; subjects %s: %v", name, info.State.Msgs, info.State.LastSeq, info.Cluster.Leader, filter, info.State.Subjects)
	for n := uint32(1); n <= 5; n++ {
		key := h.store.Names().HistorySubject(id, n)
		m, err := st.GetLastMsgForSubject(ctx, key)
		if err != nil {
			t.Logf("  %s: %v", key, err)
			continue
		}
		t.Logf("  %s: seq %d, %d bytes, at %s", key, m.Sequence, len(m.Data), m.Time.Format("15:04:05.000"))
	}
	for i := 0; i < 3; i++ {
		chunks, err := h.store.LoadHistory(ctx, id)
		t.Logf("  LoadHistory again: %d chunks, %v", len(chunks), err)
	}
}

// The two kinds of queue streams.
const (
	kindInbox = "inbox"
	kindTask  = "tasks"
)

// queueStream is one of the hub's inbox and task streams.
type queueStream struct{ name, kind string }

// queueStreams are the hub's inbox and task streams, of every partition.
func (h *hub) queueStreams() []queueStream {
	n := h.store.Names()
	var out []queueStream
	for p := range n.Partitions() {
		out = append(out, queueStream{n.InboxStream(p), kindInbox}, queueStream{n.TaskStream(p), kindTask})
	}
	return out
}

// waitIdle waits until every consumer of the hub's inbox and task streams
// has delivered and seen acknowledged everything: no worker holds or owes
// anything.
func (h *hub) waitIdle(t *testing.T, timeout time.Duration) {
	t.Helper()
	js, err := natsjs.New(h.nc)
	require.NoError(t, err)
	testkit.WaitFor(t, timeout, "the consumers to be idle", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, q := range h.queueStreams() {
			st, err := js.Stream(ctx, q.name)
			if err != nil {
				return false
			}
			l := st.ListConsumers(ctx)
			for ci := range l.Info() {
				if ci.NumPending > 0 || ci.NumAckPending > 0 {
					return false
				}
			}
			if l.Err() != nil {
				return false
			}
		}
		return true
	})
}
