package client

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/jetflow/jetflow"
)

// InstanceCount is how many instances of one orchestrator are in one
// runtime status.
type InstanceCount struct {
	// Orchestrator is the instances' orchestrator name.
	Orchestrator string
	// RuntimeStatus is their runtime status; empty for a status this
	// version does not know.
	RuntimeStatus jetflow.RuntimeStatus
	// Count is how many there are, at least 1.
	Count int
}

// InstanceCounts returns how many instances the hub holds, by
// orchestrator and runtime status, sorted by orchestrator and status: all
// of them, whichever processes run them, since they are counted from the
// status bucket (finished instances are there until purged). It reads the
// same in-memory index as ListInstances (started by the first call, kept
// until Close), and like a list it first waits until the index has caught
// up with the bucket, so an instance started before the call is counted.
//
// It returns when ctx ends, even while the index is still being started
// (its watch is set up apart from ctx, which only bounds this call).
func (c *Client) InstanceCounts(ctx context.Context) ([]InstanceCount, error) {
	type started struct {
		x   *index
		err error
	}
	ch := make(chan started, 1)
	go func() {
		x, err := c.instanceIndex()
		ch <- started{x, err}
	}()
	var x *index
	select {
	case s := <-ch:
		if s.err != nil {
			return nil, s.err
		}
		x = s.x
	case <-ctx.Done():
		return nil, fmt.Errorf("starting the instance index: %w", ctx.Err())
	}
	if err := c.catchUp(ctx, x); err != nil {
		return nil, err
	}
	return x.instanceCounts(), nil
}

// countKey is one cell of an index's counts.
type countKey struct {
	name   string
	status uint8 // statusCode
}

// count adds d to the count of e's orchestrator and runtime status.
// Called with x.mu held.
func (x *index) count(e entry, d int) {
	k := countKey{e.name, e.status}
	if n := x.counts[k] + d; n > 0 {
		x.counts[k] = n
	} else {
		delete(x.counts, k)
	}
}

// instanceCounts returns the index's counts, sorted.
func (x *index) instanceCounts() []InstanceCount {
	x.mu.RLock()
	out := make([]InstanceCount, 0, len(x.counts))
	for k, n := range x.counts {
		ic := InstanceCount{Orchestrator: k.name, Count: n}
		if k.status > 0 {
			ic.RuntimeStatus = jetflow.RuntimeStatuses[k.status-1]
		}
		out = append(out, ic)
	}
	x.mu.RUnlock()
	slices.SortFunc(out, func(a, b InstanceCount) int {
		return cmp.Or(cmp.Compare(a.Orchestrator, b.Orchestrator), cmp.Compare(a.RuntimeStatus, b.RuntimeStatus))
	})
	return out
}
