package worker

import (
	"context"
	"fmt"
	"slices"

	"github.com/jetflow/jetflow/internal/executor"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/workerhook"
	"github.com/jetflow/jetflow/jetstream"
)

func init() {
	workerhook.SetYield(func(w any, orchestrators, activities []string) ([]string, []string, error) {
		ww, ok := w.(*Worker)
		if !ok {
			return nil, nil, fmt.Errorf("workerhook: want a *worker.Worker, got %T", w)
		}
		o, a := ww.yield(orchestrators, activities)
		return o, a, nil
	})
	workerhook.Set(func(store *jetstream.Store, x executor.Executor, cfg any) (workerhook.Worker, error) {
		c, ok := cfg.(Config)
		if !ok {
			return nil, fmt.Errorf("workerhook: want a worker.Config, got %T", cfg)
		}
		w, err := newWorker(store, nil, x, c)
		if err != nil {
			return nil, err
		}
		return remote{w}, nil
	})
}

// remote is a worker without a registry, as workerhook hands it out.
type remote struct{ *Worker }

// Serve adds names while the worker runs (see workerhook.Worker).
func (r remote) Serve(ctx context.Context, orchestrators, activities []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return fmt.Errorf("worker not started")
	}
	if r.stopping() {
		return fmt.Errorf("worker stopping")
	}
	return r.serve(ctx, compact(orchestrators), compact(activities))
}

// Unserve stops consuming names (see workerhook.Worker).
func (r remote) Unserve(orchestrators, activities []string) {
	if r.stopping() {
		return // Stop drains every consumer
	}
	r.yield(orchestrators, activities)
}

// names returns the orchestrators and activities the worker starts with:
// those of Config the registry has (all of them by default), or, for a
// worker without a registry, those of Config.
func (w *Worker) names() (orchs, acts []string, err error) {
	if w.reg == nil {
		orchs, acts = compact(w.cfg.Orchestrators), compact(w.cfg.Activities)
	} else {
		if orchs, err = selectNames("orchestrator", w.reg.OrchestratorNames(), w.cfg.Orchestrators); err != nil {
			return nil, nil, err
		}
		if acts, err = selectNames("activity", w.reg.ActivityNames(), w.cfg.Activities); err != nil {
			return nil, nil, err
		}
	}
	if w.cfg.NoOrchestrations {
		orchs = nil
	}
	if w.cfg.NoActivities {
		acts = nil
	}
	return orchs, acts, nil
}

// serve registers the names not served yet and starts their consumers.
// Called with w.mu held.
func (w *Worker) serve(ctx context.Context, orchs, acts []string) error {
	orchs = slices.DeleteFunc(slices.Clone(orchs), func(n string) bool { return w.serving[storage.KindOrchestrator][n] != nil })
	acts = slices.DeleteFunc(slices.Clone(acts), func(n string) bool { return w.serving[storage.KindActivity][n] != nil })
	if len(orchs)+len(acts) == 0 {
		return nil
	}
	if err := w.store.Register(ctx, storage.KindOrchestrator, orchs, w.cfg.Name); err != nil {
		return err
	}
	if err := w.store.Register(ctx, storage.KindActivity, acts, w.cfg.Name); err != nil {
		return err
	}
	ccfg := storage.ConsumeConfig{MaxAckPending: w.cfg.MaxAckPending, AckWait: w.cfg.AckWait, Logger: w.log}
	for _, name := range orchs {
		c, err := w.store.ConsumeInbox(ctx, name, ccfg, w.onMessage)
		if err != nil {
			return err
		}
		w.consumers = append(w.consumers, c)
		w.serving[storage.KindOrchestrator][name] = c
	}
	for _, name := range acts {
		acfg := ccfg
		acfg.Buffer = min(1000, 2*w.cfg.ActivityConcurrency)
		c, err := w.store.ConsumeActivity(ctx, name, acfg, w.actSem, w.onTask)
		if err != nil {
			return err
		}
		w.consumers = append(w.consumers, c)
		w.serving[storage.KindActivity][name] = c
	}
	w.cfg.Metrics.Serving(orchs, acts)
	return nil
}

// yield stops consuming the names of this worker's among orchestrators
// and activities, and returns them. What their consumers had fetched is
// still handled here.
func (w *Worker) yield(orchestrators, activities []string) (orchs, acts []string) {
	w.mu.Lock()
	var stop []storage.Consumer
	take := func(kind string, names []string) []string {
		var out []string
		for _, n := range compact(names) {
			if c := w.serving[kind][n]; c != nil {
				stop = append(stop, c)
				delete(w.serving[kind], n)
				out = append(out, n)
			}
		}
		return out
	}
	orchs, acts = take(storage.KindOrchestrator, orchestrators), take(storage.KindActivity, activities)
	w.consumers = slices.DeleteFunc(w.consumers, func(c storage.Consumer) bool { return slices.Contains(stop, c) })
	w.mu.Unlock()
	for _, c := range stop {
		c.Drain()
	}
	return orchs, acts
}

// compact returns names sorted, without repeats or empty names.
func compact(names []string) []string {
	out := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == "" })
	return slices.Compact(slices.Sorted(slices.Values(out)))
}
