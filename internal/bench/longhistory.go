package bench

import (
	"context"
	"fmt"
	"math"

	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/worker"
)

// LongHistory is what the long-history scenario measured: one instance
// calling activities one after the other, with the workers' sticky cache
// (the history stays in memory between turns) and without it (every turn
// loads the history and replays the orchestrator from its start).
type LongHistory struct {
	Cached   Steps `json:"cached"`
	Uncached Steps `json:"uncached"`
}

// Steps is the step time of one long-history run: the time from one
// activity running to the next (its result stored, the turn that
// schedules the next call, the task delivered), taken inside the
// activity on this process's monotonic clock.
type Steps struct {
	// Activities is how many activities the instance called.
	Activities int `json:"activities"`
	// Events is how many history events the instance had at its end.
	Events int `json:"events"`
	// Seconds is how long the instance ran.
	Seconds float64 `json:"seconds"`
	// Window is how many steps each of Start and End is the median of.
	Window int `json:"window"`
	// Start is the median step time over the first Window steps, End over
	// the last Window, in milliseconds; Ratio is End ÷ Start.
	Start float64 `json:"startMs"`
	End   float64 `json:"endMs"`
	Ratio float64 `json:"ratio"`
}

// longHistory runs BenchSequence of Steps activities with the workers as
// configured, then of UncachedSteps with workers whose sticky cache is
// off.
func (e *env) longHistory(ctx context.Context) (*Result, error) {
	total := e.cfg.Steps + e.cfg.UncachedSteps
	cached, err := e.sequence(ctx, e.cfg.Steps, func(n int) { e.progress(n, total) })
	if err != nil {
		return nil, fmt.Errorf("with the sticky cache: %w", err)
	}
	if err := e.stopWorkers(ctx); err != nil {
		return nil, err
	}
	if err := e.startWorkers(ctx, e.cfg.Workers, worker.Config{CacheSize: -1}); err != nil {
		return nil, err
	}
	uncached, err := e.sequence(ctx, e.cfg.UncachedSteps, func(n int) { e.progress(e.cfg.Steps+n, total) })
	if err != nil {
		return nil, fmt.Errorf("without the sticky cache: %w", err)
	}
	return &Result{Scenario: "long-history", Instances: 2, Workers: e.cfg.Workers,
		Seconds:             cached.Seconds + uncached.Seconds,
		ActivitiesPerSecond: float64(total) / (cached.Seconds + uncached.Seconds),
		LongHistory:         &LongHistory{Cached: cached, Uncached: uncached}}, nil
}

// sequence runs one BenchSequence of n activities and measures its steps.
func (e *env) sequence(ctx context.Context, n int, done func(int)) (Steps, error) {
	e.steps.reset(n, done)
	defer e.steps.reset(0, nil)
	id := prefix("long")
	d, err := e.runAll(ctx, sequence, nil, []string{id}, client.WithInput(n))
	if err != nil {
		return Steps{}, err
	}
	chunks, err := storage.Of(e.store).LoadHistory(ctx, id)
	if err != nil {
		return Steps{}, err
	}
	events := 0
	for _, c := range chunks {
		events += len(c.Events)
	}
	gaps := e.steps.gaps()
	w := min(max(len(gaps)/10, 1), 100)
	s := Steps{Activities: n, Events: events, Seconds: d[0].Seconds(), Window: w,
		Start: ms(quantile(gaps[:w], 0.5)), End: ms(quantile(gaps[len(gaps)-w:], 0.5))}
	if s.Start <= 0 || s.End <= 0 || math.IsNaN(s.End/s.Start) {
		return s, fmt.Errorf("step times %v ms at the start and %v ms at the end: not measured", s.Start, s.End)
	}
	s.Ratio = s.End / s.Start
	return s, nil
}
