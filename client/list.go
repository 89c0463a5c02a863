package client

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"iter"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/internal/storage"
)

// Page sizes of ListInstances.
const (
	// DefaultPageSize is the page size when Query.Top is 0, as in Durable
	// Functions.
	DefaultPageSize = 100
	// MaxPageSize is the largest Query.Top accepted.
	MaxPageSize = 1000
)

// ErrInvalidContinuationToken is returned by ListInstances for a
// continuation token it did not give out. It wraps jetflow.ErrInvalidOption.
var ErrInvalidContinuationToken = fmt.Errorf("%w: continuation token", jetflow.ErrInvalidOption)

// Query selects the instances ListInstances returns. The zero value
// selects every instance, DefaultPageSize at a time.
type Query struct {
	// CreatedTimeFrom keeps the instances created at or after it. Zero: no
	// lower bound. Status times have a resolution of one second.
	CreatedTimeFrom time.Time
	// CreatedTimeTo keeps the instances created at or before it. Zero: no
	// upper bound.
	CreatedTimeTo time.Time
	// RuntimeStatus keeps the instances whose runtime status is one of
	// these. Empty: any status.
	RuntimeStatus []jetflow.RuntimeStatus
	// InstanceIDPrefix keeps the instances whose id starts with it
	// (case-sensitive). Empty: every instance.
	InstanceIDPrefix string
	// Top is the page size: at most this many instances per page. 0 means
	// DefaultPageSize (100); at most MaxPageSize (1000).
	Top int
	// ContinuationToken continues a listing after the page that returned
	// it (Page.ContinuationToken). Empty: from the start.
	ContinuationToken string
	// OmitInput leaves every status's input out (null), as the HTTP API's
	// showInput=false does. By default inputs are shown.
	OmitInput bool
}

// Page is one page of ListInstances.
type Page struct {
	// Instances are the statuses of the page's instances, in instance id
	// order (byte-wise).
	Instances []jetflow.Status
	// ContinuationToken, when not empty, fetches the next page (as
	// Query.ContinuationToken); it is empty on the last page.
	ContinuationToken string
}

// listQuery is a checked Query.
type listQuery struct {
	from, to  int64  // created time bounds, Unix nanoseconds, inclusive
	bounded   bool   // from or to is set
	statuses  uint16 // bit 1<<statusCode per status kept; 0: any
	prefix    string
	after     string // the last id of the previous page
	top       int
	omitInput bool
}

// compile checks q and returns what the index needs.
func (q Query) compile() (*listQuery, error) {
	lq := &listQuery{from: math.MinInt64, to: math.MaxInt64, prefix: q.InstanceIDPrefix, top: q.Top, omitInput: q.OmitInput}
	switch {
	case q.Top == 0:
		lq.top = DefaultPageSize
	case q.Top < 0 || q.Top > MaxPageSize:
		return nil, fmt.Errorf("%w: top %d: want 1 to %d (0 for %d)", jetflow.ErrInvalidOption, q.Top, MaxPageSize, DefaultPageSize)
	}
	if !q.CreatedTimeFrom.IsZero() {
		lq.from, lq.bounded = unixNanos(q.CreatedTimeFrom), true
	}
	if !q.CreatedTimeTo.IsZero() {
		lq.to, lq.bounded = unixNanos(q.CreatedTimeTo), true
	}
	for _, s := range q.RuntimeStatus {
		code := statusCode(s)
		if code == 0 {
			return nil, fmt.Errorf("%w: unknown runtime status %q", jetflow.ErrInvalidOption, s)
		}
		lq.statuses |= 1 << code
	}
	if q.InstanceIDPrefix != "" {
		if err := jetflow.ValidateInstanceID(q.InstanceIDPrefix); err != nil {
			return nil, fmt.Errorf("instance id prefix: %w", err)
		}
	}
	if q.ContinuationToken != "" {
		id, err := decodeContinuation(q.ContinuationToken)
		if err != nil {
			return nil, err
		}
		lq.after = id
	}
	return lq, nil
}

// match reports whether an instance with this status and created time
// (statusCode, Unix nanoseconds or noTime) is selected. The prefix is
// checked by the index's range scan.
func (q *listQuery) match(status uint8, created int64) bool {
	if q.statuses != 0 && q.statuses&(1<<status) == 0 {
		return false
	}
	if q.bounded && (created == noTime || created < q.from || created > q.to) {
		return false
	}
	return true
}

// matchStatus is match for a status read from the bucket.
func (q *listQuery) matchStatus(st *jetflow.Status) bool {
	created := int64(noTime)
	if !st.CreatedTime.IsZero() {
		created = unixNanos(st.CreatedTime.Time)
	}
	return strings.HasPrefix(st.InstanceID, q.prefix) && q.match(statusCode(st.RuntimeStatus), created)
}

// continuationVersion is the first byte of a continuation token.
const continuationVersion = 1

// encodeContinuation returns the token that continues after id: URL-safe
// base64 of a version byte and the id.
func encodeContinuation(id string) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte{continuationVersion}, id...))
}

// decodeContinuation returns the id a token continues after.
func decodeContinuation(token string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(b) < 2 || b[0] != continuationVersion || jetflow.ValidateInstanceID(string(b[1:])) != nil {
		return "", fmt.Errorf("%w %q is not one that ListInstances gave out", ErrInvalidContinuationToken, token)
	}
	return string(b[1:]), nil
}

// ListInstances returns one page of the instances q selects, in instance
// id order, with the token of the next page. It fails with
// jetflow.ErrInvalidOption for a bad Top, an unknown runtime status or a
// continuation token it did not give out (ErrInvalidContinuationToken),
// and jetflow.ErrInvalidInstanceID for a prefix no id could have.
//
// It reads an index of the hub's instances that the client keeps in
// memory, fed by a watch of the status bucket: the first call starts it
// and waits until it has read the whole bucket, and Close stops it. A
// page costs a range scan of the index, whatever the number of instances.
// Every call first waits until the index has caught up with the bucket
// (a read of the bucket's last revision), so a list sees every start,
// change and purge that completed before it was called. Pages follow each
// other by instance id: an instance is never listed twice, and one that
// exists throughout the listing and stays selected is never missed.
func (c *Client) ListInstances(ctx context.Context, q Query) (*Page, error) {
	lq, err := q.compile()
	if err != nil {
		return nil, err
	}
	x, err := c.instanceIndex()
	if err != nil {
		return nil, err
	}
	if err := c.catchUp(ctx, x); err != nil {
		return nil, fmt.Errorf("listing instances: %w", err)
	}
	entries, more := x.page(lq)
	sts, err := c.statuses(ctx, entries, lq)
	if err != nil {
		return nil, fmt.Errorf("listing instances: %w", err)
	}
	p := &Page{Instances: sts}
	if more {
		p.ContinuationToken = encodeContinuation(entries[len(entries)-1].id)
	}
	return p, nil
}

// statuses returns the statuses of a page's entries, reading those the
// index does not keep from the bucket (concurrently). One removed, or
// changed so that q no longer selects it, since the index was read is
// left out.
func (c *Client) statuses(ctx context.Context, entries []entry, q *listQuery) ([]jetflow.Status, error) {
	out := make([]jetflow.Status, len(entries))
	keep := make([]bool, len(entries))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		fetchErr error
	)
	sem := make(chan struct{}, fetchConcurrency)
	for i := range entries {
		e := &entries[i]
		if e.st != nil {
			out[i], keep[i] = statusOf(e, q.omitInput), true
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			se, err := c.store.GetStatus(ctx, e.id)
			switch {
			case errors.Is(err, storage.ErrNotFound):
			case err != nil:
				mu.Lock()
				if fetchErr == nil {
					fetchErr = err
				}
				mu.Unlock()
			case q.matchStatus(&se.Status):
				out[i], keep[i] = se.Status, true
				if q.omitInput {
					out[i].Input = nil
				}
			}
		}()
	}
	wg.Wait()
	if fetchErr != nil {
		return nil, fetchErr
	}
	sts := out[:0]
	for i := range out {
		if keep[i] {
			sts = append(sts, out[i])
		}
	}
	return sts, nil
}

// ListAll iterates over every instance q selects, page after page (Top
// instances per call of ListInstances), from q.ContinuationToken on. An
// error ends the iteration; it is yielded with a zero status. Instances
// may be changed or purged while iterating (the next page continues after
// the last id seen).
func (c *Client) ListAll(ctx context.Context, q Query) iter.Seq2[jetflow.Status, error] {
	return func(yield func(jetflow.Status, error) bool) {
		for {
			p, err := c.ListInstances(ctx, q)
			if err != nil {
				yield(jetflow.Status{}, err)
				return
			}
			for _, st := range p.Instances {
				if !yield(st, nil) {
					return
				}
			}
			if p.ContinuationToken == "" {
				return
			}
			q.ContinuationToken = p.ContinuationToken
		}
	}
}
