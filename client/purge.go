package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/jetstream"
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
		if errors.Is(err, jetstream.ErrNotFound) {
			return fmt.Errorf("%w: %q", jetflow.ErrInstanceNotFound, id)
		}
		if err != nil {
			return err
		}
		if !e.Status.Finished() {
			return fmt.Errorf("%w: %q is %s; only a finished instance can be purged (terminate it first)",
				jetflow.ErrInstanceNotFinished, id, e.Status.RuntimeStatus)
		}
		err = c.store.PurgeInstance(ctx, id, e.Revision)
		if !errors.Is(err, jetstream.ErrConflict) || attempt == 2 {
			return err
		}
		// The status moved between the read and the purge (a late status
		// write, or a restart): look again.
	}
}
