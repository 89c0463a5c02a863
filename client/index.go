package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/btree"
	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/storage"
)

// The instance index behind ListInstances: an ordered copy of the status
// bucket in memory, kept by a watch of the whole bucket (its current
// values, then every change, deletions and purges included). It is a
// B-tree keyed by instance id, so that a page is a range scan from the
// continuation point (or the id prefix), not a scan of the bucket: a KV
// bucket can only be listed whole, in no useful order, and reading 100,000
// statuses for every page would cost seconds.
//
// Each entry keeps what filters and paging need (id, created time,
// runtime status) and, when its JSON is small, the decoded status, so
// that a page costs no decoding; larger statuses are read from the bucket
// for the page that shows them.

// ErrClientClosed is returned by ListInstances after Close.
var ErrClientClosed = errors.New("client closed")

// maxInlineStatus is the largest status JSON, in bytes, whose status the
// index keeps; larger ones are read from the bucket when a page shows
// them.
const maxInlineStatus = 1024

// btreeDegree is the degree of the index's B-tree: nodes of up to 63
// entries, a few cache lines of ids to compare per level.
const btreeDegree = 32

// maxCatchUp bounds how long a list waits for the index to catch up with
// the bucket (the first list of a client waits for the whole bucket to be
// read).
const maxCatchUp = 30 * time.Second

// probeAfter is how long a list waits for the index before checking
// whether the messages it waits for still exist.
const probeAfter = 20 * time.Millisecond

// fetchConcurrency bounds the reads of large statuses for one page.
const fetchConcurrency = 16

// noTime is the created time of an entry whose status has none.
const noTime = math.MinInt64

// statusCode is a runtime status as an entry keeps it: its position in
// jetflow.RuntimeStatuses plus one (0 for a status this version does not
// know).
func statusCode(s jetflow.RuntimeStatus) uint8 {
	return uint8(slices.Index(jetflow.RuntimeStatuses, s) + 1)
}

// unixNanos returns t in Unix nanoseconds, clamped to the int64 range.
func unixNanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64+1)):
		return math.MinInt64 + 1
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// entry is one instance in the index.
type entry struct {
	id      string
	created int64           // CreatedTime in Unix nanoseconds; noTime when absent
	st      *jetflow.Status // the status, compacted (see compact); nil when its JSON is over maxInlineStatus bytes
	status  uint8           // statusCode of the runtime status
	name    string          // the orchestrator's name, shared (see compact), for InstanceCounts
}

func lessEntry(a, b entry) bool { return a.id < b.id }

// indexedFields are the fields of a status JSON that the index keeps of a
// large status.
type indexedFields struct {
	RuntimeStatus jetflow.RuntimeStatus `json:"runtimeStatus"`
	CreatedTime   jetflow.Time          `json:"createdTime"`
	Name          string                `json:"name"`
}

// maxInterned bounds the orchestrator names an index shares between its
// entries.
const maxInterned = 10000

// newEntry makes the entry of a stored status; false if it is not status
// JSON (such a value is left out, as the watches skip it). names holds the
// orchestrator names already seen, shared by the entries.
func newEntry(id string, value []byte, names map[string]string) (entry, bool) {
	if len(value) > maxInlineStatus {
		var f indexedFields
		if err := json.Unmarshal(value, &f); err != nil {
			return entry{}, false
		}
		return entry{id: strings.Clone(id), created: createdNanos(f.CreatedTime), status: statusCode(f.RuntimeStatus),
			name: intern(f.Name, names)}, true
	}
	st := new(jetflow.Status)
	if err := json.Unmarshal(value, st); err != nil {
		return entry{}, false
	}
	e := entry{id: st.InstanceID, created: createdNanos(st.CreatedTime), st: st, status: statusCode(st.RuntimeStatus)}
	if e.id != id { // the key is authoritative
		e.id = strings.Clone(id)
	}
	compact(st, e.status, names)
	e.name = st.Name
	return e, true
}

func createdNanos(t jetflow.Time) int64 {
	if t.IsZero() {
		return noTime
	}
	return unixNanos(t.Time)
}

// compact makes a decoded status take less memory: shared strings for
// the runtime status and orchestrator names, nil for null JSON values
// (statusOf gives them back).
func compact(st *jetflow.Status, code uint8, names map[string]string) {
	if code > 0 {
		st.RuntimeStatus = jetflow.RuntimeStatuses[code-1]
	}
	st.Name = intern(st.Name, names)
	for _, raw := range []*json.RawMessage{&st.Input, &st.CustomStatus, &st.Output} {
		if string(*raw) == "null" {
			*raw = nil
		}
	}
}

// intern returns the copy of name that names holds, adding it while
// names has room.
func intern(name string, names map[string]string) string {
	if n, ok := names[name]; ok {
		return n
	}
	if len(names) < maxInterned {
		names[name] = name
	}
	return name
}

// statusOf returns a copy of an entry's status that the caller may
// change, as GetStatus would return it: null JSON values are "null".
func statusOf(e *entry, omitInput bool) jetflow.Status {
	st := *e.st
	st.Input = rawCopy(st.Input)
	if omitInput {
		st.Input = nil
	}
	st.CustomStatus = rawCopy(st.CustomStatus)
	st.Output = rawCopy(st.Output)
	if p := st.ActivityProgress; p != nil {
		cp := *p
		cp.Progress = bytes.Clone(p.Progress)
		st.ActivityProgress = &cp
	}
	return st
}

func rawCopy(b json.RawMessage) json.RawMessage {
	if b == nil {
		return json.RawMessage("null")
	}
	return bytes.Clone(b)
}

// index is the instance index of one client.
type index struct {
	stop context.CancelFunc // ends the watch
	done chan struct{}      // closed when run returns

	mu        sync.RWMutex
	tree      *btree.BTreeG[entry]
	seq       uint64           // the highest revision applied
	confirmed uint64           // the bucket holds no message after seq up to this revision
	ready     bool             // the watch's initial values are all applied
	err       error            // why the index stopped, once it has
	changed   chan struct{}    // closed, and replaced, after each batch applied
	counts    map[countKey]int // instances by orchestrator and runtime status code, for InstanceCounts

	names map[string]string // orchestrator names, shared by the entries; used by run only
}

// startIndex starts an index fed by a watch of the status bucket.
func startIndex(store *storage.Store) (*index, error) {
	ctx, cancel := context.WithCancel(context.Background())
	feed, err := store.FollowStatuses(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("starting the instance index: %w", err)
	}
	x := newIndex(cancel)
	go x.run(feed)
	return x, nil
}

// newIndex returns an empty index; stop ends its feed.
func newIndex(stop context.CancelFunc) *index {
	return &index{
		stop:    stop,
		done:    make(chan struct{}),
		tree:    btree.NewG(btreeDegree, lessEntry),
		changed: make(chan struct{}),
		counts:  map[countKey]int{},
		names:   map[string]string{},
	}
}

// run applies the feed until it ends.
func (x *index) run(feed <-chan storage.StatusBatch) {
	defer close(x.done)
	for b := range feed {
		x.apply(b)
	}
	x.mu.Lock()
	x.err = errors.New("the instance index stopped: its watch of the status bucket ended")
	close(x.changed)
	x.changed = make(chan struct{})
	x.mu.Unlock()
}

// close stops the index and waits for it to end.
func (x *index) close() {
	x.stop()
	<-x.done
}

// alive reports whether the index still follows the bucket.
func (x *index) alive() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.err == nil
}

// apply applies one batch of the feed.
func (x *index) apply(b storage.StatusBatch) {
	type change struct {
		e   entry
		put bool
	}
	// Decode outside the lock: lists go on meanwhile.
	changes := make([]change, len(b.Records))
	for i, r := range b.Records {
		if !r.Deleted {
			if e, ok := newEntry(r.ID, r.Value, x.names); ok {
				changes[i] = change{e: e, put: true}
				continue
			}
		}
		changes[i].e.id = r.ID // removed, or no longer a status
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, c := range changes {
		var old entry
		var had bool
		if c.put {
			old, had = x.tree.ReplaceOrInsert(c.e)
			x.count(c.e, 1)
		} else {
			old, had = x.tree.Delete(entry{id: c.e.id})
		}
		if had {
			x.count(old, -1)
		}
	}
	x.seq = max(x.seq, b.Revision)
	if b.Current {
		x.ready = true
	}
	close(x.changed)
	x.changed = make(chan struct{})
}

// caughtUp reports whether the index holds every message of the bucket
// up to revision target, and returns a channel closed at its next change.
func (x *index) caughtUp(target uint64) (bool, <-chan struct{}, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.err != nil {
		return false, nil, x.err
	}
	return x.ready && (x.seq >= target || x.confirmed >= target), x.changed, nil
}

// position returns the highest revision applied, and whether the initial
// values are all in.
func (x *index) position() (uint64, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.seq, x.ready
}

// confirm records that the bucket holds no message after the applied ones
// up to revision target.
func (x *index) confirm(target uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.confirmed = max(x.confirmed, target)
}

// waitFor waits up to d for the index to catch up with revision target.
func (x *index) waitFor(ctx context.Context, target uint64, d time.Duration) (bool, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		ok, changed, err := x.caughtUp(target)
		if ok || err != nil {
			return ok, err
		}
		select {
		case <-changed:
		case <-timer.C:
			return false, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// catchUp waits until the index holds every write made to the status
// bucket before the call: the last message written (its revision read
// from the stream), or, when that message is gone (an expired purge
// marker, say) and no watch will deliver it, the last one that remains.
func (c *Client) catchUp(ctx context.Context, x *index) error {
	target, err := c.store.LastStatusRevision(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, maxCatchUp)
	defer cancel()
	for {
		ok, err := x.waitFor(ctx, target, probeAfter)
		if ok {
			return nil
		}
		if err != nil {
			seen, _ := x.position()
			return fmt.Errorf("waiting for the instance index to reach revision %d of the status bucket (it is at %d): %w", target, seen, err)
		}
		seen, ready := x.position()
		if !ready {
			continue // still reading the bucket's current values
		}
		next, found, err := c.store.NextStatusRevision(ctx, seen+1)
		if err != nil {
			return err
		}
		if !found || next > target {
			// What the index waits for is gone: it has everything.
			x.confirm(target)
			return nil
		}
	}
}

// page returns the entries of one page: up to q.top entries that match q,
// in id order, after q.after; more reports whether another matching entry
// follows them.
func (x *index) page(q *listQuery) (page []entry, more bool) {
	start := q.prefix
	if q.after != "" {
		// The smallest id greater than after.
		if next := q.after + "\x00"; next > start {
			start = next
		}
	}
	page = make([]entry, 0, min(q.top, 128))
	x.mu.RLock()
	defer x.mu.RUnlock()
	x.tree.AscendGreaterOrEqual(entry{id: start}, func(e entry) bool {
		if !strings.HasPrefix(e.id, q.prefix) {
			return false // past the prefix's range
		}
		if !q.match(e.status, e.created) {
			return true
		}
		if len(page) == q.top {
			more = true
			return false
		}
		page = append(page, e)
		return true
	})
	return page, more
}

// len returns the number of instances in the index.
func (x *index) len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.tree.Len()
}

// instanceIndex returns the client's index, starting it on first use, and
// again if its watch ended.
func (c *Client) instanceIndex() (*index, error) {
	l := &c.list
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClientClosed
	}
	if l.idx != nil && l.idx.alive() {
		return l.idx, nil
	}
	if l.idx != nil {
		l.idx.close()
		l.idx = nil
	}
	x, err := startIndex(c.store)
	if err != nil {
		return nil, err
	}
	l.idx = x
	return x, nil
}

// lister holds a client's instance index.
type lister struct {
	mu     sync.Mutex
	idx    *index
	closed bool
}

// close stops the index, if any, for good.
func (l *lister) close() {
	l.mu.Lock()
	x := l.idx
	l.idx, l.closed = nil, true
	l.mu.Unlock()
	if x != nil {
		x.close()
	}
}
