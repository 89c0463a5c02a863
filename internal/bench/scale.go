package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jetflow/jetflow/worker"
)

// ScaleWorkers are the worker counts the scale scenario runs.
var ScaleWorkers = []int{1, 2, 4}

// ScalePoint is the hello load run with one number of workers.
type ScalePoint struct {
	// Workers is how many workers ran.
	Workers int `json:"workers"`
	// Seconds is how long the run took, and OrchestrationsPerSecond its
	// rate.
	Seconds                 float64 `json:"seconds"`
	OrchestrationsPerSecond float64 `json:"orchestrationsPerSecond"`
	// Ratio is OrchestrationsPerSecond ÷ that of one worker.
	Ratio float64 `json:"ratio"`
	// P50 and P99 are the instances' end-to-end times, in milliseconds.
	P50 float64 `json:"p50Ms"`
	P99 float64 `json:"p99Ms"`
	// CPUSeconds is the CPU time (user and system) this process used
	// during the run: the workers and the client, and the server too when
	// it is embedded; CPUPerOrchestration is the same per orchestration,
	// in milliseconds, and CoresBusy CPUSeconds ÷ the run's seconds.
	CPUSeconds          float64 `json:"cpuSeconds"`
	CPUPerOrchestration float64 `json:"cpuMsPerOrchestration"`
	CoresBusy           float64 `json:"coresBusy"`
	// CPUShares splits this process's CPU time between the embedded
	// "server", the "engine" (workers, their connections, the activities),
	// the "bench" (the client making the load and watching it) and
	// "other" (the garbage collector's background work, the runtime),
	// from a CPU profile of the run whose samples carry a label saying
	// which goroutine took them. Nil when a CPU profile was being written
	// already (--cpuprofile).
	CPUShares map[string]float64 `json:"cpuShares,omitempty"`
	// MissesPerOrchestration is the turns that did not find their
	// instance in the worker's sticky cache and read its whole history,
	// per orchestration; CatchUpsPerOrchestration those that found it
	// behind other workers' commits and read only those;
	// ConflictsPerOrchestration the turns another worker's commit
	// overtook, which are done again. From the workers' counters
	// (worker.Stats: Loads, CatchUps, Conflicts).
	MissesPerOrchestration    float64 `json:"cacheMissesPerOrchestration"`
	CatchUpsPerOrchestration  float64 `json:"catchUpsPerOrchestration"`
	ConflictsPerOrchestration float64 `json:"conflictsPerOrchestration"`
}

// scale runs the hello load (Instances E1_HelloSequence at once, after a
// few alone to warm up) with 1, 2 and 4 workers in this process, each on
// a connection of its own: one hub, workers added between the runs (open
// starts the first).
func (e *env) scale(ctx context.Context) (*Result, error) {
	cfg := e.cfg
	r := &Result{Scenario: "scale", Instances: cfg.Instances, Workers: ScaleWorkers[len(ScaleWorkers)-1]}
	total := len(ScaleWorkers) * cfg.Instances
	for k, workers := range ScaleWorkers {
		if err := e.startWorkers(ctx, workers-len(e.workers), worker.Config{}); err != nil {
			return nil, err
		}
		pt, err := e.scalePoint(ctx, func(n int) { e.progress(k*cfg.Instances+n, total) })
		if err != nil {
			return nil, fmt.Errorf("%d workers: %w", workers, err)
		}
		if k == 0 {
			pt.Ratio = 1
		} else {
			pt.Ratio = pt.OrchestrationsPerSecond / r.Scale[0].OrchestrationsPerSecond
		}
		r.Scale = append(r.Scale, pt)
		r.Seconds += pt.Seconds
	}
	if e.server != nil {
		r.Notes = append(r.Notes, "scale: the server is embedded: CPU is the whole process's (workers, client and server), "+
			"cpuShares say how it splits; with --nats it is the workers' and client's only")
	} else {
		r.Notes = append(r.Notes, "scale: the hub's own workers, if any run, serve the load too: the worker counts are this process's")
	}
	if e.noSplit {
		r.Notes = append(r.Notes, "scale: a CPU profile was being written (--cpuprofile): the CPU split was not measured")
	}
	return r, nil
}

// scalePoint runs the hello load once with the workers running.
func (e *env) scalePoint(ctx context.Context, done func(int)) (ScalePoint, error) {
	for i := range 5 { // warm up: connections, consumers, caches
		if _, err := e.runAll(ctx, "E1_HelloSequence", nil, []string{fmt.Sprintf("%s%d", prefix("warm"), i)}); err != nil {
			return ScalePoint{}, err
		}
	}
	p := prefix("scale")
	ids := make([]string, e.cfg.Instances)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%d", p, i)
	}
	var (
		times      []time.Duration
		cpu0, cpu1 time.Duration
		cpuErr     error
		elapsed    time.Duration
	)
	before := e.tally()
	shares, profiled, err := cpuSplit(func() error {
		cpu0, cpuErr = cpuTime()
		start := time.Now()
		var err error
		if times, err = e.runAll(ctx, "E1_HelloSequence", done, ids); err != nil {
			return err
		}
		elapsed = time.Since(start)
		cpu1, err = cpuTime()
		cpuErr = errors.Join(cpuErr, err)
		return nil
	})
	if err != nil {
		return ScalePoint{}, err
	}
	after := e.tally()
	if !profiled {
		e.noSplit = true
	}
	n := float64(e.cfg.Instances)
	pt := ScalePoint{Workers: len(e.workers), Seconds: elapsed.Seconds(), OrchestrationsPerSecond: n / elapsed.Seconds(),
		P50: ms(quantile(times, 0.5)), P99: ms(quantile(times, 0.99)), CPUShares: shares,
		MissesPerOrchestration:    (after.misses - before.misses) / n,
		CatchUpsPerOrchestration:  (after.catchUps - before.catchUps) / n,
		ConflictsPerOrchestration: (after.conflicts - before.conflicts) / n}
	if cpuErr == nil { // else this system does not tell: no CPU figures
		cpu := (cpu1 - cpu0).Seconds()
		pt.CPUSeconds, pt.CPUPerOrchestration, pt.CoresBusy = cpu, 1000*cpu/n, cpu/elapsed.Seconds()
	}
	return pt, nil
}

// turnTally is what the workers' counters say so far.
type turnTally struct{ misses, catchUps, conflicts float64 }

// tally sums the whole loads, catch-ups and lost fences of the running
// workers (worker.Stats).
func (e *env) tally() turnTally {
	var t turnTally
	for _, w := range e.workers {
		s := w.Stats()
		t.misses += float64(s.Loads)
		t.catchUps += float64(s.CatchUps)
		t.conflicts += float64(s.Conflicts)
	}
	return t
}
