package bench

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jetflow/jetflow"
)

// The bench's own orchestrators and activity, registered on its workers
// beside the samples.
const (
	// statusLoop waits for the event next, sets its custom status to 1,
	// waits again, sets it to 2, … up to its input, then waits once more
	// and completes: each change is a turn of its own, started by an
	// event, that writes a Running status.
	statusLoop = "BenchStatusLoop"
	// sequence calls step with 0, 1, … up to its input (excluded), one
	// after the other.
	sequence = "BenchSequence"
	// step records when it runs (see stepClock).
	step = "BenchStep"
	// next is the event statusLoop waits for.
	next = "Next"
)

// register adds the bench's orchestrators and activity to reg.
func (e *env) register(reg *jetflow.Registry) error {
	if err := reg.AddOrchestrator(statusLoop, func(ctx *jetflow.OrchestrationContext) (any, error) {
		var n int
		if err := ctx.GetInput(&n); err != nil {
			return nil, err
		}
		for i := 1; i <= n; i++ {
			if err := ctx.WaitForExternalEvent(next).Await(nil); err != nil {
				return nil, err
			}
			if err := ctx.SetCustomStatus(i); err != nil {
				return nil, err
			}
		}
		return n, ctx.WaitForExternalEvent(next).Await(nil)
	}); err != nil {
		return err
	}
	if err := reg.AddOrchestrator(sequence, func(ctx *jetflow.OrchestrationContext) (any, error) {
		var n int
		if err := ctx.GetInput(&n); err != nil {
			return nil, err
		}
		for i := range n {
			if err := ctx.CallActivity(step, i).Await(nil); err != nil {
				return nil, err
			}
		}
		return n, nil
	}); err != nil {
		return err
	}
	return reg.AddActivity(step, func(ctx *jetflow.ActivityContext) (any, error) {
		var i int
		if err := ctx.GetInput(&i); err != nil {
			return nil, err
		}
		e.steps.record(i)
		return nil, nil
	})
}

// stepClock records, on this process's monotonic clock, when each step of
// a sequence first ran (an activity runs at least once: a rerun keeps the
// first time), and calls a function with the count so far.
type stepClock struct {
	mu     sync.Mutex
	times  []time.Time
	count  int
	onStep func(count int)
}

// reset makes the clock record n steps, telling onStep of each.
func (c *stepClock) reset(n int, onStep func(int)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.times, c.count, c.onStep = make([]time.Time, n), 0, onStep
}

func (c *stepClock) record(i int) {
	now := time.Now()
	c.mu.Lock()
	if i < 0 || i >= len(c.times) || !c.times[i].IsZero() {
		c.mu.Unlock()
		return
	}
	c.times[i] = now
	c.count++
	count, onStep := c.count, c.onStep
	c.mu.Unlock()
	if onStep != nil {
		onStep(count)
	}
}

// gaps returns the time from each step to the next.
func (c *stepClock) gaps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]time.Duration, 0, len(c.times))
	for i := 1; i < len(c.times); i++ {
		out = append(out, c.times[i].Sub(c.times[i-1]))
	}
	return out
}

// logTally is the workers' log handler: it counts the records at Warn and
// above, keeping the first few, so that the bench's output stays its
// figures and what the engine complained of is reported with them (see
// Result.Notes).
type logTally struct {
	mu    sync.Mutex
	count int
	first []string
}

// logsKept is how many records a logTally keeps.
const logsKept = 3

func (t *logTally) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (t *logTally) Handle(_ context.Context, r slog.Record) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.count++
	if len(t.first) < logsKept {
		var b strings.Builder
		b.WriteString(r.Level.String() + " " + r.Message)
		r.Attrs(func(a slog.Attr) bool {
			b.WriteString(" " + a.String())
			return true
		})
		t.first = append(t.first, b.String())
	}
	return nil
}

func (t *logTally) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &attrsHandler{t: t, attrs: attrs}
}

func (t *logTally) WithGroup(string) slog.Handler { return t }

// note says what was logged, if anything.
func (t *logTally) note() (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.count == 0 {
		return "", false
	}
	return fmt.Sprintf("the workers logged %d warnings or errors; the first: %s", t.count, strings.Join(t.first, "; ")), true
}

// attrsHandler is a logTally with attributes added (slog.Logger.With).
type attrsHandler struct {
	t     *logTally
	attrs []slog.Attr
}

func (h *attrsHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.t.Enabled(ctx, l) }

func (h *attrsHandler) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(h.attrs...)
	return h.t.Handle(ctx, r)
}

func (h *attrsHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &attrsHandler{t: h.t, attrs: append(slices.Clip(h.attrs), attrs...)}
}

func (h *attrsHandler) WithGroup(string) slog.Handler { return h }
