package worker

import (
	"context"
	"time"
)

// An orchestration that continues as new (an eternal monitor loop) would
// keep every earlier execution's chunks, and a worker every message id
// they consumed, for ever. Its worker trims them instead, after a turn,
// when it can prove that nothing needs them any more:
//
//   - only chunks before the one that began the current execution go
//     (replay reads the current execution alone, and so do the clients);
//   - they were committed more than the hub's duplicate window ago: a
//     message id stays deduplicated after it is applied at least as long
//     as the server deduplicates a repeated publish of it;
//   - none of the messages they consumed is still stored in the inbox, so
//     none can be delivered again (acknowledged messages are removed by
//     PurgeAcked; a redelivered one would find its id gone).
//
// Trims are batched: the oldest chunk must be twice the window old, so an
// instance trims at most once a window.

// trimmable returns how many of st's oldest chunks may be trimmed at now,
// before the checks that need the server: those before the current
// execution's first chunk, committed more than window before now.
func (st *state) trimmable(now time.Time, window time.Duration) int {
	if len(st.marks) == 0 || st.marks[0].n >= st.startChunk || now.Sub(st.marks[0].at) < 2*window {
		return 0
	}
	k := 0
	for k < len(st.marks) && st.marks[k].n < st.startChunk && now.Sub(st.marks[k].at) >= window {
		k++
	}
	return k
}

// dropChunks forgets st's k oldest chunks, trimmed from storage, and the
// message ids they consumed.
func (st *state) dropChunks(k int) {
	last := st.marks[k-1].n
	for id, n := range st.applied {
		if n <= last {
			delete(st.applied, id)
			st.bytes -= int64(len(id)) + appliedOverhead
		}
	}
	st.marks = append(st.marks[:0:0], st.marks[k:]...)
	st.bytes -= int64(k) * markOverhead
}

// trim removes the chunks of an instance's earlier executions that
// trimmable allows, once the inbox holds none of the messages they
// consumed. It is safe to run on a stale state: it only removes chunks
// before a revision the state read, and a chunk, once superseded by a
// later execution's, is never needed again.
func (w *Worker) trim(ctx context.Context, id string, st *state) error {
	k := st.trimmable(w.store.Now(), w.store.Config().DuplicateWindow)
	if k == 0 {
		return nil
	}
	last := st.marks[k-1].n
	ids, complete, err := w.store.InboxMessageIDs(ctx, id)
	if err != nil || !complete {
		return err
	}
	for _, m := range ids {
		if n, ok := st.appliedIn(m); ok && n <= last {
			return nil // it may come back: its chunk must stay
		}
	}
	if err := w.store.TrimHistory(ctx, id, st.marks[k].rev); err != nil {
		return err
	}
	st.dropChunks(k)
	w.trims.Add(1)
	return nil
}
