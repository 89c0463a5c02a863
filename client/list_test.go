package client_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/jetstream"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// putStatuses writes statuses straight to the status bucket (as new keys),
// a thousand at a time, the way a worker writes a new status.
func putStatuses(t testing.TB, store *storage.Store, sts []jetflow.Status) {
	t.Helper()
	for len(sts) > 0 {
		batch := sts[:min(len(sts), 1000)]
		sts = sts[len(batch):]
		outs := make([]storage.Outgoing, len(batch))
		for i := range batch {
			o, err := store.StatusWrite(batch[i].InstanceID, &batch[i], 0)
			require.NoError(t, err)
			outs[i] = o
		}
		require.NoError(t, storage.FirstError(store.Publish(t.Context(), outs...)))
	}
}

// listPages lists every page of q, checking that each page but the last
// is full and has a continuation token.
func listPages(t *testing.T, c *client.Client, q client.Query) [][]jetflow.Status {
	t.Helper()
	top := q.Top
	if top == 0 {
		top = client.DefaultPageSize
	}
	var pages [][]jetflow.Status
	for {
		p, err := c.ListInstances(t.Context(), q)
		require.NoError(t, err)
		pages = append(pages, p.Instances)
		if p.ContinuationToken == "" {
			return pages
		}
		require.Len(t, p.Instances, top, "page %d is not the last: it is full", len(pages))
		require.Less(t, len(pages), 10000, "no end to the pages")
		q.ContinuationToken = p.ContinuationToken
	}
}

func instanceIDs(sts []jetflow.Status) []string {
	out := make([]string, len(sts))
	for i, st := range sts {
		out[i] = st.InstanceID
	}
	return out
}

var listBase = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// listFixture is a set of statuses of every runtime status, in three id
// families, created a minute apart.
func listFixture() []jetflow.Status {
	statuses := []jetflow.RuntimeStatus{
		jetflow.StatusPending, jetflow.StatusRunning, jetflow.StatusCompleted, jetflow.StatusContinuedAsNew,
		jetflow.StatusFailed, jetflow.StatusCanceled, jetflow.StatusTerminated, jetflow.StatusSuspended,
	}
	families := []string{"alpha-", "beta-", "gamma.", "é-"}
	var out []jetflow.Status
	for i := range 70 {
		id := fmt.Sprintf("%s%02d", families[i%len(families)], i)
		out = append(out, jetflow.Status{
			Name: "Fixture", InstanceID: id, RuntimeStatus: statuses[i%len(statuses)],
			Input:           json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)),
			CreatedTime:     jetflow.Time{Time: listBase.Add(time.Duration(i) * time.Minute)},
			LastUpdatedTime: jetflow.Time{Time: listBase.Add(time.Duration(i) * time.Minute)},
		})
	}
	// Ids that are prefixes of others.
	for _, id := range []string{"alpha", "alph", "alpha-"} {
		out = append(out, jetflow.Status{Name: "Fixture", InstanceID: id, RuntimeStatus: jetflow.StatusCompleted,
			CreatedTime: jetflow.Time{Time: listBase}, LastUpdatedTime: jetflow.Time{Time: listBase}})
	}
	return out
}

// selected filters the fixture the slow way: what a query must return,
// in id order.
func selected(all []jetflow.Status, q client.Query) []string {
	var out []string
	for _, st := range all {
		switch {
		case !strings.HasPrefix(st.InstanceID, q.InstanceIDPrefix):
		case len(q.RuntimeStatus) > 0 && !slices.Contains(q.RuntimeStatus, st.RuntimeStatus):
		case !q.CreatedTimeFrom.IsZero() && st.CreatedTime.Before(q.CreatedTimeFrom):
		case !q.CreatedTimeTo.IsZero() && st.CreatedTime.After(q.CreatedTimeTo):
		default:
			out = append(out, st.InstanceID)
		}
	}
	slices.Sort(out)
	return out
}

func TestListInstances(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Workers: -1})
	all := listFixture()
	putStatuses(t, e.Storage, all)
	c := e.Client

	for _, tt := range []struct {
		name string
		q    client.Query
		want int // how many the query selects, as a check of the fixture
	}{
		{name: "everything", q: client.Query{}, want: 73},
		{name: "prefix", q: client.Query{InstanceIDPrefix: "alpha-"}, want: 19},
		{name: "prefix that is an id", q: client.Query{InstanceIDPrefix: "alpha"}, want: 20},
		{name: "prefix of another encoding", q: client.Query{InstanceIDPrefix: "é"}, want: 17},
		{name: "prefix with a dot", q: client.Query{InstanceIDPrefix: "gamma."}, want: 17},
		{name: "prefix of nothing", q: client.Query{InstanceIDPrefix: "zzz"}, want: 0},
		{name: "one status", q: client.Query{RuntimeStatus: []jetflow.RuntimeStatus{jetflow.StatusFailed}}, want: 9},
		{name: "two statuses", q: client.Query{RuntimeStatus: []jetflow.RuntimeStatus{jetflow.StatusCompleted, jetflow.StatusRunning}}, want: 21},
		{name: "created from", q: client.Query{CreatedTimeFrom: listBase.Add(60 * time.Minute)}, want: 10},
		{name: "created to", q: client.Query{CreatedTimeTo: listBase.Add(9 * time.Minute)}, want: 13},
		{name: "created range", q: client.Query{CreatedTimeFrom: listBase.Add(10 * time.Minute), CreatedTimeTo: listBase.Add(19*time.Minute + 30*time.Second)}, want: 10},
		{
			name: "everything combined",
			q: client.Query{
				InstanceIDPrefix: "beta-", RuntimeStatus: []jetflow.RuntimeStatus{jetflow.StatusRunning, jetflow.StatusCompleted, jetflow.StatusFailed},
				CreatedTimeFrom: listBase.Add(5 * time.Minute), CreatedTimeTo: listBase.Add(50 * time.Minute),
			},
			want: 6,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := selected(all, tt.q)
			require.Len(t, want, tt.want)
			for _, top := range []int{0, 1, 4, client.MaxPageSize} {
				q := tt.q
				q.Top = top
				var got []string
				for _, page := range listPages(t, c, q) {
					got = append(got, instanceIDs(page)...)
				}
				if want == nil {
					want = []string{}
				}
				if got == nil {
					got = []string{}
				}
				require.Equal(t, want, got, "top %d: every selected instance once, in id order", top)
			}
			var iterated []string
			for st, err := range c.ListAll(t.Context(), client.Query{InstanceIDPrefix: tt.q.InstanceIDPrefix,
				RuntimeStatus: tt.q.RuntimeStatus, CreatedTimeFrom: tt.q.CreatedTimeFrom, CreatedTimeTo: tt.q.CreatedTimeTo, Top: 3}) {
				require.NoError(t, err)
				iterated = append(iterated, st.InstanceID)
			}
			require.Equal(t, len(want), len(iterated))
			if len(want) > 0 {
				require.Equal(t, want, iterated, "ListAll")
			}
		})
	}

	t.Run("statuses as stored", func(t *testing.T) {
		t.Parallel()
		p, err := c.ListInstances(t.Context(), client.Query{InstanceIDPrefix: "beta-05"})
		require.NoError(t, err)
		require.Len(t, p.Instances, 1)
		require.Empty(t, p.ContinuationToken)
		want := all[5]
		require.Equal(t, "beta-05", want.InstanceID)
		got, err := json.Marshal(p.Instances[0])
		require.NoError(t, err)
		wantJSON, err := json.Marshal(want)
		require.NoError(t, err)
		require.JSONEq(t, string(wantJSON), string(got))
		require.JSONEq(t, `{"n":5}`, string(p.Instances[0].Input))
	})

	t.Run("omit input", func(t *testing.T) {
		t.Parallel()
		p, err := c.ListInstances(t.Context(), client.Query{InstanceIDPrefix: "beta-", OmitInput: true})
		require.NoError(t, err)
		require.NotEmpty(t, p.Instances)
		for _, st := range p.Instances {
			require.Nil(t, st.Input, "%s", st.InstanceID)
			require.NotEmpty(t, st.Name)
		}
	})

	t.Run("bad queries", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			name      string
			q         client.Query
			withError error
			contains  string
		}{
			{name: "negative top", q: client.Query{Top: -1}, withError: jetflow.ErrInvalidOption, contains: "top -1"},
			{name: "top over the maximum", q: client.Query{Top: client.MaxPageSize + 1}, withError: jetflow.ErrInvalidOption, contains: "top 1001"},
			{name: "unknown status", q: client.Query{RuntimeStatus: []jetflow.RuntimeStatus{"Sleeping"}}, withError: jetflow.ErrInvalidOption, contains: "Sleeping"},
			{name: "prefix no id has", q: client.Query{InstanceIDPrefix: "a/b"}, withError: jetflow.ErrInvalidInstanceID, contains: "prefix"},
			{name: "token not base64", q: client.Query{ContinuationToken: "not a token!"}, withError: client.ErrInvalidContinuationToken, contains: `"not a token!"`},
			{name: "token of another version", q: client.Query{ContinuationToken: "AmFscGhh"}, withError: client.ErrInvalidContinuationToken, contains: "AmFscGhh"},
			{name: "token too short", q: client.Query{ContinuationToken: "AQ"}, withError: jetflow.ErrInvalidOption, contains: "continuation token"},
		} {
			_, err := c.ListInstances(t.Context(), tt.q)
			require.ErrorIs(t, err, tt.withError, tt.name)
			require.ErrorContains(t, err, tt.contains, tt.name)
		}
	})
}

// TestListLargeStatus lists statuses over the size the index keeps: they
// are read from the bucket for the page.
func TestListLargeStatus(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Workers: -1})
	big := json.RawMessage(`"` + strings.Repeat("x", 3000) + `"`)
	var sts []jetflow.Status
	for i := range 40 {
		st := jetflow.Status{Name: "Big", InstanceID: fmt.Sprintf("big-%02d", i), RuntimeStatus: jetflow.StatusRunning,
			CreatedTime: jetflow.Time{Time: listBase}, LastUpdatedTime: jetflow.Time{Time: listBase}}
		if i%2 == 0 {
			st.Input = big
		}
		sts = append(sts, st)
	}
	putStatuses(t, e.Storage, sts)
	var got []jetflow.Status
	for _, page := range listPages(t, e.Client, client.Query{Top: 7}) {
		got = append(got, page...)
	}
	require.Len(t, got, 40)
	for i, st := range got {
		require.Equal(t, sts[i].InstanceID, st.InstanceID)
		want := string(sts[i].Input)
		if want == "" {
			want = "null"
		}
		require.Equal(t, want, string(st.Input))
	}
	p, err := e.Client.ListInstances(t.Context(), client.Query{OmitInput: true, InstanceIDPrefix: "big-0"})
	require.NoError(t, err)
	require.Len(t, p.Instances, 10)
	for _, st := range p.Instances {
		require.Nil(t, st.Input)
	}
}

// TestListReadYourWrites lists right after starts, changes and purges: a
// list sees every write that completed before it was called.
func TestListReadYourWrites(t *testing.T) {
	t.Parallel()
	e := newEngine(t)
	ctx := e.Context(60 * time.Second)
	c := e.Client
	list := func(q client.Query) []string {
		t.Helper()
		p, err := c.ListInstances(ctx, q)
		require.NoError(t, err)
		return instanceIDs(p.Instances)
	}
	require.Empty(t, list(client.Query{}), "the index starts on an empty bucket")

	for i := range 20 {
		id, err := c.StartOrchestration(ctx, "SetStatusTest", client.WithInstanceID(fmt.Sprintf("ryw-%02d", i)))
		require.NoError(t, err)
		require.Equal(t, []string{id}, list(client.Query{InstanceIDPrefix: id}), "listed right after its start")
	}
	require.Len(t, list(client.Query{InstanceIDPrefix: "ryw-"}), 20)

	// A change of status is seen at once by the status filter.
	require.NoError(t, c.Terminate(ctx, "ryw-03", "enough"))
	_, err := c.WaitForCompletion(ctx, "ryw-03")
	require.NoError(t, err)
	terminated := client.Query{RuntimeStatus: []jetflow.RuntimeStatus{jetflow.StatusTerminated}}
	require.Equal(t, []string{"ryw-03"}, list(terminated))

	// A purge is seen at once too.
	require.NoError(t, c.PurgeInstance(ctx, "ryw-03"))
	require.Empty(t, list(terminated))
	require.Empty(t, list(client.Query{InstanceIDPrefix: "ryw-03"}))
	require.Len(t, list(client.Query{InstanceIDPrefix: "ryw-"}), 19)

	// A client of its own (as another process) sees the same.
	other := client.New(e.Store)
	t.Cleanup(other.Close)
	p, err := other.ListInstances(ctx, client.Query{InstanceIDPrefix: "ryw-", Top: client.MaxPageSize})
	require.NoError(t, err)
	require.Len(t, p.Instances, 19)
}

// TestListDeletes removes statuses every way the bucket allows: each is
// gone from the next list.
func TestListDeletes(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Workers: -1})
	ctx := e.Context(60 * time.Second)
	var sts []jetflow.Status
	for i := range 10 {
		sts = append(sts, jetflow.Status{Name: "D", InstanceID: fmt.Sprintf("del-%d", i), RuntimeStatus: jetflow.StatusCompleted,
			CreatedTime: jetflow.Time{Time: listBase}, LastUpdatedTime: jetflow.Time{Time: listBase}})
	}
	putStatuses(t, e.Storage, sts)
	c := e.Client
	ids := func() []string {
		t.Helper()
		p, err := c.ListInstances(ctx, client.Query{})
		require.NoError(t, err)
		return instanceIDs(p.Instances)
	}
	require.Len(t, ids(), 10)

	// The purge of an instance (a purge marker with a TTL).
	require.NoError(t, c.PurgeInstance(ctx, "del-1"))
	require.NotContains(t, ids(), "del-1")

	// A purge without a TTL.
	se, err := e.Storage.GetStatus(ctx, "del-2")
	require.NoError(t, err)
	require.NoError(t, e.Storage.DeleteStatus(ctx, "del-2", se.Revision))
	require.NotContains(t, ids(), "del-2")

	// A KV delete (a delete marker), as `nats kv del` makes.
	js, err := natsjs.New(e.Conn)
	require.NoError(t, err)
	kv, err := js.KeyValue(ctx, e.Storage.Names().StatusBucket())
	require.NoError(t, err)
	require.NoError(t, kv.Delete(ctx, e.Storage.Names().StatusKey("del-3")))
	require.NotContains(t, ids(), "del-3")

	// A value that is not a status is left out, like the watches do.
	_, err = kv.Put(ctx, e.Storage.Names().StatusKey("del-4"), []byte("not JSON"))
	require.NoError(t, err)
	require.Equal(t, []string{"del-0", "del-5", "del-6", "del-7", "del-8", "del-9"}, ids())

	// And written again, it is back.
	_, err = e.Storage.PutStatus(ctx, "del-2", &sts[2], 0)
	require.NoError(t, err)
	require.Equal(t, []string{"del-0", "del-2", "del-5", "del-6", "del-7", "del-8", "del-9"}, ids())
}

// TestListAfterPurgeMarkerExpired starts an index on a bucket whose last
// message, a purge marker, has expired: no watch delivers it, and a list
// must not wait for it.
func TestListAfterPurgeMarkerExpired(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Workers: -1, Store: jetstream.Config{PurgeMarkerTTL: time.Second}})
	ctx := e.Context(60 * time.Second)
	putStatuses(t, e.Storage, []jetflow.Status{
		{Name: "P", InstanceID: "keep", RuntimeStatus: jetflow.StatusCompleted, CreatedTime: jetflow.Time{Time: listBase}},
		{Name: "P", InstanceID: "purge", RuntimeStatus: jetflow.StatusCompleted, CreatedTime: jetflow.Time{Time: listBase}},
	})
	require.NoError(t, e.Client.PurgeInstance(ctx, "purge"))
	last, err := e.Storage.LastStatusRevision(ctx)
	require.NoError(t, err)
	testkit.WaitFor(t, 20*time.Second, "the purge marker to expire", func() bool {
		_, found, err := e.Storage.NextStatusRevision(ctx, last)
		require.NoError(t, err)
		return !found
	})
	now, err := e.Storage.LastStatusRevision(ctx)
	require.NoError(t, err)
	require.Equal(t, last, now, "the bucket's last revision is a message that is gone")

	c := client.New(e.Store)
	t.Cleanup(c.Close)
	for range 3 {
		start := time.Now()
		p, err := c.ListInstances(ctx, client.Query{})
		require.NoError(t, err)
		require.Equal(t, []string{"keep"}, instanceIDs(p.Instances))
		require.Less(t, time.Since(start), 10*time.Second, "the list does not wait for the expired marker")
	}
}

// TestListTenThousand pages through 10,500 instances. Their statuses are
// written through the store, with the server's fsync every second, since
// starting that many real instances would take minutes on a shared
// machine; the index only sees the status bucket either way.
func TestListTenThousand(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Workers: -1, SyncInterval: time.Second})
	const n = 10500
	sts := make([]jetflow.Status, n)
	for i := range sts {
		sts[i] = jetflow.Status{Name: "Many", InstanceID: fmt.Sprintf("many-%05d", (i*7919)%n), RuntimeStatus: jetflow.StatusCompleted,
			Input: json.RawMessage(`"Tokyo"`), CreatedTime: jetflow.Time{Time: listBase}, LastUpdatedTime: jetflow.Time{Time: listBase}}
	}
	putStatuses(t, e.Storage, sts)

	for _, top := range []int{0, client.MaxPageSize} {
		pages := listPages(t, e.Client, client.Query{Top: top})
		wantPages := n / client.DefaultPageSize
		if top > 0 {
			wantPages = (n + top - 1) / top
		}
		require.Len(t, pages, wantPages, "top %d", top)
		var got []string
		for _, p := range pages {
			got = append(got, instanceIDs(p)...)
		}
		require.Len(t, got, n, "no gaps")
		for i, id := range got {
			require.Equal(t, fmt.Sprintf("many-%05d", i), id, "in order, no duplicates")
		}
	}
}

func TestListClose(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Workers: -1})
	c := client.New(e.Store)
	c.Close() // before any list: nothing to stop
	_, err := c.ListInstances(t.Context(), client.Query{})
	require.ErrorIs(t, err, client.ErrClientClosed)

	c = client.New(e.Store)
	_, err = c.ListInstances(t.Context(), client.Query{})
	require.NoError(t, err)
	c.Close()
	c.Close()
	_, err = c.ListInstances(t.Context(), client.Query{})
	require.ErrorIs(t, err, client.ErrClientClosed)
	_, err = c.GetStatus(t.Context(), "x")
	require.ErrorIs(t, err, jetflow.ErrInstanceNotFound, "the other methods still work")
}
