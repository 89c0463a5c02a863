package worker

import (
	"errors"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/history"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/metrics"
)

// The worker's calls into Config.Metrics that need more than one line.
// Each returns at once when the worker has no metrics.

// observeBatch records, once per message, how long the messages of a
// batch waited from being stored to their first turn, and how late the
// timers among them fired.
func (w *Worker) observeBatch(batch []pending) {
	m := w.cfg.Metrics
	if m == nil {
		return
	}
	now := time.Now()
	for i := range batch {
		p := &batch[i]
		if p.observed {
			continue
		}
		p.observed = true
		stored := p.le.d.Stored()
		if stored.IsZero() {
			continue
		}
		m.TurnScheduleToStart(p.msg.Orchestrator, now.Sub(stored))
		if ev := &p.msg.Event; ev.Type == history.TimerFired && !ev.FireAt.IsZero() {
			m.TimerFired(p.msg.Orchestrator, stored.Sub(ev.FireAt))
		}
	}
}

// observeChunk records what a committed chunk holds: its size, the
// executions it began and ended, the retries it scheduled, and a change of
// custom status. begun is
// the execution in force before the chunk (nil for none).
func (w *Worker) observeChunk(begun *history.Event, chunk []history.Event, customChanged bool) {
	m := w.cfg.Metrics
	if m == nil {
		return
	}
	name := ""
	if begun != nil {
		name = begun.Name
	}
	for i := range chunk {
		ev := &chunk[i]
		switch ev.Type {
		case history.ExecutionStarted:
			begun, name = ev, ev.Name
			m.OrchestrationStarted(name)
		case history.ExecutionCompleted:
			var d time.Duration
			if begun != nil {
				d = ev.Time.Sub(begun.Time)
			}
			failure := ""
			if ev.Failure != nil {
				failure = ev.Failure.Type
			}
			m.OrchestrationCompleted(name, jetflow.RuntimeStatus(ev.Status.String()), failure, d)
		case history.TaskScheduled:
			if ev.Attempt > 1 {
				m.ActivityRetried(ev.Name)
			}
		}
	}
	m.ChunkCommitted(name, len(chunk))
	if customChanged {
		m.CustomStatusUpdated(name)
	}
}

// turnResult is the result label of a turn that ended with err and plan p.
func turnResult(p plan, err error) string {
	switch {
	case err == nil && p.chunk != nil:
		return metrics.TurnCommitted
	case err == nil:
		return metrics.TurnNoop
	case errors.Is(err, storage.ErrConflict):
		return metrics.TurnConflict
	}
	return metrics.TurnError
}

// dropCache empties the sticky cache of a stopped worker (it cannot be
// started again), so that jetflow_sticky_cache_instances counts only
// the caches of running workers.
func (w *Worker) dropCache() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.idle.Len() > 0 {
		inst := w.idle.Front().Value.(*instance)
		w.unpark(inst)
		delete(w.instances, inst.id)
	}
}
