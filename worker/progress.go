package worker

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/jetflow/jetflow"
)

// progressInterval is the least time between two progress writes of one
// activity: reports in between are coalesced, the last one wins.
const progressInterval = time.Second

// progressWriter turns an activity's SetProgress calls into status writes,
// at most one per progressInterval.
type progressWriter struct {
	w      *Worker
	id     string
	name   string // the activity's
	taskID int32
	mu     sync.Mutex
	last   time.Time
	next   *jetflow.ActivityProgress // the report waiting for its turn
	tmr    *time.Timer
	done   bool
}

func (p *progressWriter) report(progress json.RawMessage) error {
	r := jetflow.ActivityProgress{Name: p.name, TaskID: p.taskID, Progress: progress}
	p.mu.Lock()
	if p.done {
		p.mu.Unlock()
		return nil
	}
	if wait := progressInterval - time.Since(p.last); wait > 0 {
		p.next = &r
		if p.tmr == nil {
			p.tmr = time.AfterFunc(wait, p.flush)
		}
		p.mu.Unlock()
		return nil
	}
	p.last = time.Now()
	p.mu.Unlock()
	return p.write(r)
}

func (p *progressWriter) flush() {
	p.mu.Lock()
	r := p.next
	p.next, p.tmr = nil, nil
	if r == nil || p.done {
		p.mu.Unlock()
		return
	}
	p.last = time.Now()
	p.mu.Unlock()
	if err := p.write(*r); err != nil && p.w.ctx.Err() == nil {
		p.w.log.Warn("writing activity progress", slog.String("instance_id", p.id), slog.Any("error", err))
	}
}

func (p *progressWriter) write(r jetflow.ActivityProgress) error {
	ctx, cancel := context.WithTimeout(p.w.ctx, 10*time.Second)
	defer cancel()
	return p.w.store.SetProgress(ctx, p.id, r)
}

// stop drops a report still waiting: the activity has ended.
func (p *progressWriter) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = true
	if p.tmr != nil {
		p.tmr.Stop()
	}
	p.next, p.tmr = nil, nil
}
