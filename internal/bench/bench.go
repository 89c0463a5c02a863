// Package bench runs the scenarios of `jetflow bench` against a hub: the
// engine's throughput and latency, and in the same run, on the same
// server and with the same durability, the raw JetStream write rate, so
// that a result is read as a ratio to what the machine allows (these
// machines are shared and noisy; a ratio is robust where a rate is not).
//
// Writes per orchestration are counted from the server's own figures:
// the messages stored in the hub's streams and buckets (every KV write is
// one) during the run, divided by the orchestrations run. The ceiling
// ratio is orchestrations/s × writes per orchestration ÷ raw writes/s.
//
// Scenarios:
//
//   - hello: E1_HelloSequence, one alone and then Instances at once;
//   - fanout: FanOutFanIn of 100 and of 1,000 activities;
//   - status-watch: custom status changes, from their commit to a Go
//     watcher and to a server-sent events client of the HTTP API;
//   - long-history: one instance running Steps sequential activities, the
//     step time at its start and at its end, with the sticky cache and
//     without it;
//   - waiting: Instances instances waiting for an event: the start rate,
//     the memory they hold, the completion rate once the events come;
//   - scale: the hello load with 1, 2 and 4 workers.
package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/jetflow/jetflow/jetstream/embedded"
	"github.com/jetflow/jetflow/samples"
	"github.com/jetflow/jetflow/worker"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Scenarios are the scenarios Run knows, in the order `--scenario all`
// runs them.
var Scenarios = []string{"hello", "fanout", "status-watch", "long-history", "waiting", "scale"}

// Config describes a run.
type Config struct {
	// Scenario is one of Scenarios.
	Scenario string
	// Instances is how many instances the hello and scale scenarios start
	// at once (defaults to 300) and how many the waiting scenario leaves
	// waiting (defaults to 10,000).
	Instances int
	// Changes is how many custom status changes the status-watch scenario
	// measures. Defaults to 200.
	Changes int
	// Steps is how many sequential activities the long-history scenario's
	// instance runs with the sticky cache on. Defaults to 5,000 (each step
	// costs more as the history grows: 10,000 take two minutes here).
	Steps int
	// UncachedSteps is how many it runs with the sticky cache off, where
	// every step replays the whole history (its cost grows with the
	// square of the count). Defaults to 1,000.
	UncachedSteps int
	// MonitorURL is the monitoring endpoint of the hub's nats-server
	// (e.g. http://127.0.0.1:8222), read for the server's memory (/varz)
	// when Connect is set; without it, the memory of a server that is not
	// embedded is not measured.
	MonitorURL string
	// Workers is how many workers run the samples, each on a connection
	// of its own as separate processes would. Defaults to 1; 0 with
	// NoWorkers runs none (the hub's own workers serve the samples). The
	// status-watch, long-history and scale scenarios need at least one
	// (their orchestrators are the bench's own); scale runs 1, 2 and 4
	// (ScaleWorkers) whatever it says.
	Workers int
	// NoWorkers runs no worker in this process.
	NoWorkers bool
	// Connect opens a connection to the hub's server (with the caller's
	// credentials and TLS). Nil runs an embedded nats-server in a
	// temporary directory for the run, fsyncing every write unless Sync
	// is set.
	Connect func(name string) (*nats.Conn, error)
	// Sync is the embedded server's fsync interval (0: every write).
	Sync time.Duration
	// Hub is the hub's configuration (its name, replicas).
	Hub jetstream.Config
	// Progress, when set, is told how many of the scenario's steps are
	// done and how many there are, as they finish.
	Progress func(done, total int)
}

// Result is what a scenario measured.
type Result struct {
	Scenario  string `json:"scenario"`
	Instances int    `json:"instances"`
	Workers   int    `json:"workers"`
	// Seconds is how long the measured part took.
	Seconds float64 `json:"seconds"`
	// OrchestrationsPerSecond and ActivitiesPerSecond are the engine's
	// rates over the measured part.
	OrchestrationsPerSecond float64 `json:"orchestrationsPerSecond"`
	ActivitiesPerSecond     float64 `json:"activitiesPerSecond"`
	// P50 and P99 are the end-to-end times of the instances (start call
	// to Completed status seen), in milliseconds.
	P50 float64 `json:"p50Ms"`
	P99 float64 `json:"p99Ms"`
	// Alone is the median end-to-end time of one instance running alone,
	// in milliseconds (hello only).
	Alone float64 `json:"aloneMs,omitempty"`
	// WritesPerOrchestration are the messages the hub stored per
	// orchestration (KV writes included).
	WritesPerOrchestration float64 `json:"writesPerOrchestration"`
	// PlainWritesPerOrchestration are the same for the same three calls
	// without the custom status E1_HelloSequence sets after each
	// (Durable Functions' E1_HelloSequence sets none; hello only).
	PlainWritesPerOrchestration float64 `json:"plainWritesPerOrchestration,omitempty"`
	// RawWritesPerSecond is the JetStream write rate of the same server
	// measured in the same run; CeilingRatio the share of it the engine
	// used.
	RawWritesPerSecond float64 `json:"rawWritesPerSecond"`
	CeilingRatio       float64 `json:"ceilingRatio"`
	// Cases are the sub-results of a scenario with several (fanout: 100
	// and 1,000 activities).
	Cases []Case `json:"cases,omitempty"`
	// StatusWatch, LongHistory, Waiting and Scale are the figures of the
	// scenario of that name.
	StatusWatch *StatusWatch `json:"statusWatch,omitempty"`
	LongHistory *LongHistory `json:"longHistory,omitempty"`
	Waiting     *Waiting     `json:"waiting,omitempty"`
	Scale       []ScalePoint `json:"scale,omitempty"`
	// Notes say what a figure means where it depends on the run (what
	// was not measured, and why).
	Notes []string `json:"notes,omitempty"`
}

// Case is one measurement of a scenario with several.
type Case struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// env is an open hub with its workers and client.
type env struct {
	cfg     Config
	server  *server.Server // the embedded one, if any
	dir     string         // its store
	conns   []*nats.Conn
	store   *jetstream.Store
	client  *client.Client
	workers []*worker.Worker
	// steps records when the long-history activities ran.
	steps stepClock
	// logs counts what the workers logged.
	logs logTally
	// noSplit is set when the scale scenario could not profile the CPU.
	noSplit bool
	// progressMu serialises Config.Progress, which activities call too.
	progressMu sync.Mutex
}

// Run runs cfg.Scenario and returns what it measured.
func Run(ctx context.Context, cfg Config) (r *Result, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.Scenario == "scale" {
		cfg.Workers = ScaleWorkers[0] // and more as it runs
	}
	// The bench's goroutines, the workers' and the embedded server's carry
	// labels saying which they are (see cpuSplit).
	onSide(ctx, sideBench, func(ctx context.Context) {
		var e *env
		if e, err = open(ctx, cfg); err != nil {
			return
		}
		defer e.close()
		r, err = e.run(ctx)
	})
	return r, err
}

// run runs the scenario and notes what the workers logged.
func (e *env) run(ctx context.Context) (r *Result, err error) {
	switch e.cfg.Scenario {
	case "fanout":
		r, err = e.fanout(ctx)
	case "status-watch":
		r, err = e.statusWatch(ctx)
	case "long-history":
		r, err = e.longHistory(ctx)
	case "waiting":
		r, err = e.waiting(ctx)
	case "scale":
		r, err = e.scale(ctx)
	default:
		r, err = e.hello(ctx)
	}
	if err != nil {
		return nil, err
	}
	if n, ok := e.logs.note(); ok {
		r.Notes = append(r.Notes, e.cfg.Scenario+": "+n)
	}
	return r, nil
}

// withDefaults checks cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Instances == 0 {
		cfg.Instances = 300
		if cfg.Scenario == "waiting" {
			cfg.Instances = 10000
		}
	}
	if cfg.Workers == 0 && !cfg.NoWorkers {
		cfg.Workers = 1
	}
	if cfg.Changes == 0 {
		cfg.Changes = 200
	}
	if cfg.Steps == 0 {
		cfg.Steps = 5000
	}
	if cfg.UncachedSteps == 0 {
		cfg.UncachedSteps = 1000
	}
	switch {
	case !slices.Contains(Scenarios, cfg.Scenario):
		return cfg, fmt.Errorf("%w: scenario %q: want one of %s", jetflow.ErrInvalidOption, cfg.Scenario, strings.Join(Scenarios, ", "))
	case cfg.Instances < 1:
		return cfg, fmt.Errorf("%w: instances %d: want at least 1", jetflow.ErrInvalidOption, cfg.Instances)
	case cfg.Workers < 0:
		return cfg, fmt.Errorf("%w: workers %d: want 0 or more", jetflow.ErrInvalidOption, cfg.Workers)
	case cfg.Changes < 1:
		return cfg, fmt.Errorf("%w: changes %d: want at least 1", jetflow.ErrInvalidOption, cfg.Changes)
	case cfg.Steps < 2 || cfg.UncachedSteps < 2:
		return cfg, fmt.Errorf("%w: steps %d and uncached steps %d: want at least 2 each", jetflow.ErrInvalidOption, cfg.Steps, cfg.UncachedSteps)
	case cfg.MonitorURL != "" && !strings.HasPrefix(cfg.MonitorURL, "http://") && !strings.HasPrefix(cfg.MonitorURL, "https://"):
		return cfg, fmt.Errorf("%w: monitor URL %q: want an http:// or https:// URL", jetflow.ErrInvalidOption, cfg.MonitorURL)
	}
	if cfg.NoWorkers || cfg.Workers == 0 {
		switch cfg.Scenario {
		case "status-watch", "long-history", "scale":
			// Their orchestrators are the bench's own, and long-history and
			// scale set the workers' configuration and count.
			return cfg, fmt.Errorf("%w: scenario %s runs its own workers: want at least one worker in this process", jetflow.ErrInvalidOption, cfg.Scenario)
		}
	}
	return cfg, nil
}

func open(ctx context.Context, cfg Config) (*env, error) {
	e := &env{cfg: cfg}
	if cfg.Connect == nil {
		if err := e.embed(); err != nil {
			return nil, err
		}
	}
	nc, err := e.cfg.Connect("jetflow-bench")
	if err != nil {
		return nil, err
	}
	e.conns = append(e.conns, nc)
	if e.store, err = jetstream.Open(ctx, nc, cfg.Hub); err != nil {
		e.close()
		return nil, err
	}
	e.client = client.New(e.store)
	if err := e.startWorkers(ctx, cfg.Workers, worker.Config{}); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

// startWorkers starts n workers of the samples and of the bench's own
// orchestrators, each on a connection of its own, with wcfg (its Name
// set for each).
func (e *env) startWorkers(ctx context.Context, n int, wcfg worker.Config) (err error) {
	onSide(ctx, sideEngine, func(ctx context.Context) { err = e.startLabelled(ctx, n, wcfg) })
	return err
}

// startLabelled is startWorkers with the goroutine labelled.
func (e *env) startLabelled(ctx context.Context, n int, wcfg worker.Config) error {
	for range n {
		i := len(e.workers)
		wc, err := e.cfg.Connect(fmt.Sprintf("jetflow-bench-worker-%d", i))
		if err != nil {
			return err
		}
		e.conns = append(e.conns, wc)
		ws, err := jetstream.Open(ctx, wc, e.cfg.Hub)
		if err != nil {
			return err
		}
		reg := jetflow.NewRegistry()
		if err := samples.Register(reg, samples.Options{}); err != nil {
			return err
		}
		if err := e.register(reg); err != nil {
			return err
		}
		wcfg.Name = fmt.Sprintf("bench-%d", i)
		wcfg.Logger = slog.New(&e.logs)
		w, err := worker.New(ws, reg, wcfg)
		if err != nil {
			return err
		}
		if err := w.Start(ctx); err != nil {
			return err
		}
		e.workers = append(e.workers, w)
	}
	return nil
}

// stopWorkers stops the workers running, all at once.
func (e *env) stopWorkers(ctx context.Context) error {
	errs := make([]error, len(e.workers))
	var wg sync.WaitGroup
	for i, w := range e.workers {
		wg.Go(func() { errs[i] = w.Stop(ctx) })
	}
	wg.Wait()
	e.workers = nil
	return errors.Join(errs...)
}

func (e *env) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = e.stopWorkers(ctx)
	if e.client != nil {
		e.client.Close()
	}
	for _, nc := range e.conns {
		nc.Close()
	}
	if e.server != nil {
		e.server.Shutdown()
		e.server.WaitForShutdown()
		_ = os.RemoveAll(e.dir)
	}
}

// embed runs the embedded server of a run without a hub of its own.
func (e *env) embed() error {
	dir, err := os.MkdirTemp("", "jetflow-bench-")
	if err != nil {
		return err
	}
	var srv *server.Server
	onSide(context.Background(), sideServer, func(context.Context) {
		srv, err = embedded.Run(embedded.Config{Dir: dir, Listen: "127.0.0.1:0", SyncInterval: e.cfg.Sync})
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	e.server, e.dir = srv, dir
	e.cfg.Connect = func(name string) (*nats.Conn, error) {
		return nats.Connect(srv.ClientURL(), nats.Name(name), nats.MaxReconnects(-1))
	}
	return nil
}

// progress reports done of total steps.
func (e *env) progress(done, total int) {
	if e.cfg.Progress != nil {
		e.progressMu.Lock()
		defer e.progressMu.Unlock()
		e.cfg.Progress(done, total)
	}
}

// stored is the number of messages the hub has stored so far.
func (e *env) stored(ctx context.Context) (uint64, error) {
	return storage.Of(e.store).StoredMessages(ctx)
}

// prefix makes the instance ids of one run unique.
func prefix(scenario string) string {
	return fmt.Sprintf("bench-%s-%s-", scenario, client.NewInstanceID()[:8])
}

// hello runs E1_HelloSequence: one instance alone (the median of 20),
// then Instances at once.
func (e *env) hello(ctx context.Context) (*Result, error) {
	const alone = 21 // the first warms up
	total := alone + e.cfg.Instances
	var single []time.Duration
	for i := range alone {
		d, err := e.runAll(ctx, "E1_HelloSequence", nil, []string{fmt.Sprintf("%s%d", prefix("alone"), i)})
		if err != nil {
			return nil, err
		}
		if i > 0 {
			single = append(single, d[0])
		}
		e.progress(i+1, total)
	}
	before, err := e.stored(ctx)
	if err != nil {
		return nil, err
	}
	p := prefix("hello")
	ids := make([]string, e.cfg.Instances)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%d", p, i)
	}
	start := time.Now()
	times, err := e.runAll(ctx, "E1_HelloSequence", func(n int) { e.progress(alone+n, total) }, ids)
	if err != nil {
		return nil, err
	}
	elapsed := time.Since(start)
	after, err := e.stored(ctx)
	if err != nil {
		return nil, err
	}
	raw, err := e.rawWrites(ctx)
	if err != nil {
		return nil, err
	}
	n := float64(e.cfg.Instances)
	r := &Result{
		Scenario: "hello", Instances: e.cfg.Instances, Workers: e.cfg.Workers,
		Seconds:                 elapsed.Seconds(),
		OrchestrationsPerSecond: n / elapsed.Seconds(),
		ActivitiesPerSecond:     3 * n / elapsed.Seconds(),
		Alone:                   ms(quantile(single, 0.5)),
		P50:                     ms(quantile(times, 0.5)),
		P99:                     ms(quantile(times, 0.99)),
		WritesPerOrchestration:  float64(after-before) / n,
		RawWritesPerSecond:      raw,
	}
	r.CeilingRatio = r.OrchestrationsPerSecond * r.WritesPerOrchestration / raw
	if r.PlainWritesPerOrchestration, err = e.plainWrites(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// plainWrites counts the writes per orchestration of a sequence of three
// activities that sets no custom status, 50 at once.
func (e *env) plainWrites(ctx context.Context) (float64, error) {
	const n = 50
	before, err := e.stored(ctx)
	if err != nil {
		return 0, err
	}
	p := prefix("plain")
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%d", p, i)
	}
	if _, err := e.runAll(ctx, sequence, nil, ids, client.WithInput(3)); err != nil {
		return 0, err
	}
	after, err := e.stored(ctx)
	if err != nil {
		return 0, err
	}
	return float64(after-before) / n, nil
}

// fanout runs FanOutFanIn of 100 and of 1,000 activities, one instance at
// a time.
func (e *env) fanout(ctx context.Context) (*Result, error) {
	r := &Result{Scenario: "fanout", Instances: 2, Workers: e.cfg.Workers}
	before, err := e.stored(ctx)
	if err != nil {
		return nil, err
	}
	var activities int
	start := time.Now()
	for i, n := range []int{100, 1000} {
		d, err := e.runAll(ctx, "FanOutFanIn", nil, []string{prefix("fanout")}, client.WithInput(n))
		if err != nil {
			return nil, err
		}
		r.Cases = append(r.Cases, Case{Name: fmt.Sprintf("fan-out of %d", n), Seconds: d[0].Seconds()})
		activities += n
		e.progress(i+1, 2)
	}
	elapsed := time.Since(start)
	after, err := e.stored(ctx)
	if err != nil {
		return nil, err
	}
	raw, err := e.rawWrites(ctx)
	if err != nil {
		return nil, err
	}
	r.Seconds = elapsed.Seconds()
	r.OrchestrationsPerSecond = 2 / elapsed.Seconds()
	r.ActivitiesPerSecond = float64(activities) / elapsed.Seconds()
	r.WritesPerOrchestration = float64(after-before) / 2
	r.RawWritesPerSecond = raw
	r.CeilingRatio = r.OrchestrationsPerSecond * r.WritesPerOrchestration / raw
	return r, nil
}

// runAll starts an instance of name for each id, 64 start calls at a
// time, and returns each one's time from its start call to its Completed
// status, in the order of ids; done, when set, is told how many have
// finished.
func (e *env) runAll(ctx context.Context, name string, done func(int), ids []string, opts ...client.StartOption) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	index := make(map[string]int, len(ids))
	for i, id := range ids {
		index[id] = i
	}
	// One watch of the hub sees every completion; it is running before
	// the first start.
	updates, err := e.client.WatchAll(ctx, client.WatchFilter{InstanceIDPrefix: commonPrefix(ids),
		RuntimeStatus: []jetflow.RuntimeStatus{jetflow.StatusCompleted, jetflow.StatusFailed, jetflow.StatusTerminated}}, 0)
	if err != nil {
		return nil, err
	}
	began := make([]time.Time, len(ids))
	times := make([]time.Duration, len(ids))
	var mu sync.Mutex
	startErr := make(chan error, 1)
	go func() {
		sem := make(chan struct{}, 64)
		var wg sync.WaitGroup
		for i, id := range ids {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				mu.Lock()
				began[i] = time.Now()
				mu.Unlock()
				if _, err := e.client.StartOrchestration(ctx, name, append([]client.StartOption{client.WithInstanceID(id)}, opts...)...); err != nil {
					select {
					case startErr <- fmt.Errorf("starting %s: %w", id, err):
					default:
					}
				}
			}()
		}
		wg.Wait()
	}()
	finished := 0
	for finished < len(ids) {
		select {
		case err := <-startErr:
			return nil, err
		case u, ok := <-updates:
			if !ok {
				return nil, fmt.Errorf("waiting for %d of %d instances: %w", len(ids)-finished, len(ids), errors.Join(ctx.Err(), errors.New("the watch ended")))
			}
			i, mine := index[u.InstanceID]
			if !mine || times[i] != 0 {
				continue
			}
			if u.RuntimeStatus != jetflow.StatusCompleted {
				return nil, fmt.Errorf("%s: %s: %s", u.InstanceID, u.RuntimeStatus, u.Output)
			}
			mu.Lock()
			times[i] = max(time.Since(began[i]), time.Nanosecond)
			mu.Unlock()
			finished++
			if done != nil {
				done(finished)
			}
		}
	}
	return times, nil
}

// rawWrites measures the JetStream write rate of the hub's server: 200-byte
// messages published by 64 goroutines over as many streams, made for it,
// as the hub writes to as it runs (its status bucket, and each partition's
// inbox, task and history streams), with the hub's replicas and storage,
// then deleted.
func (e *env) rawWrites(ctx context.Context) (float64, error) {
	js, err := natsjs.New(e.conns[0])
	if err != nil {
		return 0, err
	}
	const publishers, perPublisher = 64, 60
	streams := 1 + 3*storage.Of(e.store).Names().Partitions()
	replicas := max(e.cfg.Hub.Replicas, 1)
	st := natsjs.FileStorage
	if e.cfg.Hub.Memory {
		st = natsjs.MemoryStorage
	}
	name := func(i int) string { return fmt.Sprintf("JETFLOW_BENCH_REF%d", i) }
	defer func() {
		for i := range streams {
			_ = js.DeleteStream(context.WithoutCancel(ctx), name(i))
		}
	}()
	for i := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, natsjs.StreamConfig{Name: name(i), Subjects: []string{name(i) + ".>"},
			Replicas: replicas, Storage: st}); err != nil {
			return 0, fmt.Errorf("the reference streams: %w", err)
		}
	}
	payload := make([]byte, 200)
	errs := make(chan error, publishers)
	start := time.Now()
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			subj := name(p%streams) + ".x"
			for range perPublisher {
				if _, err := js.Publish(ctx, subj, payload); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("the reference writes: %w", err)
	}
	return float64(publishers*perPublisher) / elapsed.Seconds(), nil
}

// commonPrefix is the longest prefix of every id.
func commonPrefix(ids []string) string {
	p := ids[0]
	for _, id := range ids[1:] {
		for !strings.HasPrefix(id, p) {
			p = p[:len(p)-1]
		}
	}
	return p
}

// quantile returns the q-quantile of ds (nearest rank).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
