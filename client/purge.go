package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/storage"
)

// PurgeInstance removes a finished instance: its status, its history and
// any messages still waiting for it. The id can then be used again. It
// fails with jetflow.ErrInstanceNotFound, or jetflow.ErrInstanceNotFinished
// while the instance is Pending, Running or Suspended (terminate it first).
func (c *Client) PurgeInstance(ctx context.Context, id string) error {
	if err := jetflow.ValidateInstanceID(id); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		e, err := c.store.GetStatus(ctx, id)
		if err != nil {
			return err
		}
		if !e.Status.Finished() {
			return fmt.Errorf("%w: %q is %s; only a finished instance can be purged (terminate it first)",
				jetflow.ErrInstanceNotFinished, id, e.Status.RuntimeStatus)
		}
		err = c.store.PurgeInstance(ctx, id, e.Revision)
		if !errors.Is(err, storage.ErrConflict) || attempt == 2 {
			return err
		}
		// The status moved between the read and the purge (a late status
		// write, or a restart): look again.
	}
}

// PurgeInstances purges the finished instances (Completed, Failed,
// Terminated, Canceled) that q selects (its paging fields are ignored) and
// returns how many it purged; instances that have not finished are left
// alone, as are those that change while being purged. Durable Functions
// requires a lower bound on the creation time for this call; so does the
// HTTP API, but not this method.
func (c *Client) PurgeInstances(ctx context.Context, q Query) (int, error) {
	q.Top, q.ContinuationToken, q.OmitInput = MaxPageSize, "", true
	n := 0
	for st, err := range c.ListAll(ctx, q) {
		if err != nil {
			return n, err
		}
		if !st.Finished() {
			continue
		}
		err := c.PurgeInstance(ctx, st.InstanceID)
		switch {
		case err == nil:
			n++
		case errors.Is(err, jetflow.ErrInstanceNotFound), errors.Is(err, jetflow.ErrInstanceNotFinished):
			// purged or restarted meanwhile
		default:
			return n, err
		}
	}
	return n, nil
}
