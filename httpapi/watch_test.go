package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/httpapi"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/samples"
	"github.com/stretchr/testify/require"
)

// sseEvent is one dispatched server-sent event, or a comment line.
type sseEvent struct {
	event, id, data string
	comment         string // set for a comment line (": …"), which is not an event
}

// status decodes the event's data.
func (e sseEvent) status(t *testing.T) jetflow.Status {
	t.Helper()
	var st jetflow.Status
	require.NoError(t, json.Unmarshal([]byte(e.data), &st), "data: %s", e.data)
	return st
}

func (e sseEvent) revision(t *testing.T) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(e.id, 10, 64)
	require.NoError(t, err, "id %q", e.id)
	return n
}

// sseStream is a watch request in progress, read by a plain HTTP client
// and parsed as the EventSource specification says.
type sseStream struct {
	resp   *http.Response
	events chan sseEvent // closed at the end of the stream
	cancel context.CancelFunc
}

// watch opens path (relative to the server) with the given request
// headers, and checks that it answers with code. With 200 it returns the
// stream being read; otherwise the response, body read.
func (b *testBundle) watch(t *testing.T, path string, header map[string]string, code int) (*sseStream, response) {
	t.Helper()
	s, r := b.openWatch(t, path, header)
	require.Equal(t, code, r.code, "body: %s", r.body)
	return s, r
}

// openWatch opens path (relative to the server) with the given request
// headers. With 200 it returns the stream being read (until the end of
// the test or its cancel); otherwise the response, body read.
func (b *testBundle) openWatch(t *testing.T, path string, header map[string]string) (*sseStream, response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.srv.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := b.srv.Client().Do(req)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		defer cancel()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return nil, response{code: resp.StatusCode, header: resp.Header, body: body}
	}
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	require.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
	s := &sseStream{resp: resp, events: make(chan sseEvent, 64), cancel: cancel}
	go s.read(t)
	return s, response{code: resp.StatusCode, header: resp.Header}
}

func (s *sseStream) read(t *testing.T) {
	defer close(s.events)
	defer s.resp.Body.Close()
	sc := bufio.NewScanner(s.resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	var ev sseEvent
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if data != nil {
				ev.data = strings.Join(data, "\n")
				if ev.event == "" {
					ev.event = "message"
				}
				s.events <- ev
			}
			ev, data = sseEvent{}, nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			s.events <- sseEvent{comment: strings.TrimSpace(line[1:])}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.event = value
		case "id":
			ev.id = value
		case "data":
			data = append(data, value)
		default:
			t.Errorf("unexpected field in line %q", line)
		}
	}
}

// next returns the next event, skipping comments; ok is false at the end
// of the stream.
func (s *sseStream) next(t *testing.T) (sseEvent, bool) {
	t.Helper()
	for {
		e, ok := testkit.Next(t, s.events, 20*time.Second, "no event")
		if !ok || e.comment == "" {
			return e, ok
		}
	}
}

// must returns the next event, failing at the end of the stream.
func (s *sseStream) must(t *testing.T) sseEvent {
	t.Helper()
	e, ok := s.next(t)
	require.True(t, ok, "the stream ended")
	require.Equal(t, "status", e.event)
	return e
}

// rest reads events until the stream ends.
func (s *sseStream) rest(t *testing.T) []sseEvent {
	t.Helper()
	var out []sseEvent
	for {
		e, ok := s.next(t)
		if !ok {
			return out
		}
		out = append(out, e)
	}
}

// quiet checks that no event (comments aside) arrives for a moment and
// that the stream stays open.
func (s *sseStream) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case e, ok := <-s.events:
			require.True(t, ok, "the stream ended")
			require.NotEmpty(t, e.comment, "unexpected event %+v", e)
		case <-timeout:
			return
		}
	}
}

func watchPath(id string) string { return statusPath(id) + "/watch" }

func customStatuses(t *testing.T, evs []sseEvent) []string {
	var out []string
	for _, e := range evs {
		s := string(e.status(t).CustomStatus)
		if len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

func TestWatchInstance(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return samples.Register(r, samples.Options{})
	}})
	// No worker runs until the watch is open, so that it sees every
	// status. (The stopped worker has registered the samples.)
	require.NoError(t, e.StopWorker(e.Context(10*time.Second), 0))
	srv := httptest.NewServer(httpapi.New(e.Client, httpapi.Config{Logger: e.Logger()}))
	t.Cleanup(srv.Close)
	b := &testBundle{e: e, srv: srv}

	id := b.start(t, "E1_HelloSequence", "hello-sse", "")
	s, _ := b.watch(t, watchPath(id), nil, http.StatusOK)
	first := s.must(t)
	require.Equal(t, jetflow.StatusPending, first.status(t).RuntimeStatus, "the current value first")
	e.StartWorker()
	evs := append([]sseEvent{first}, s.rest(t)...) // the stream ends by itself

	for i, ev := range evs {
		require.Equal(t, "status", ev.event)
		st := ev.status(t)
		require.Equal(t, id, st.InstanceID)
		if i > 0 {
			require.Greater(t, ev.revision(t), evs[i-1].revision(t))
		}
		require.Equal(t, i == len(evs)-1, st.Finished(), "only the last event is terminal")
	}
	require.Equal(t, []string{"null", `"Tokyo"`, `"Seattle"`, `"London"`}, customStatuses(t, evs))
	final := evs[len(evs)-1]
	require.Equal(t, jetflow.StatusCompleted, final.status(t).RuntimeStatus)
	// The data is the body of GET /instances/{id}, on one line.
	r := b.do(t, http.MethodGet, statusPath(id), "")
	require.Equal(t, http.StatusOK, r.code)
	require.Equal(t, string(r.body), final.data)

	var seattle sseEvent
	for _, ev := range evs {
		if string(ev.status(t).CustomStatus) == `"Seattle"` {
			seattle = ev
			break
		}
	}
	require.NotEmpty(t, seattle.id)

	t.Run("ResumeAfterSeattle", func(t *testing.T) {
		t.Parallel()
		for _, how := range []struct {
			path   string
			header map[string]string
		}{
			{watchPath(id), map[string]string{"Last-Event-ID": seattle.id}},
			{watchPath(id) + "?lastEventId=" + seattle.id, nil},
			// The header, which an EventSource sends on reconnecting, wins.
			{watchPath(id) + "?lastEventId=1", map[string]string{"Last-Event-ID": seattle.id}},
		} {
			s, _ := b.watch(t, how.path, how.header, http.StatusOK)
			got := s.rest(t)
			var later []sseEvent
			for _, ev := range evs {
				if ev.revision(t) > seattle.revision(t) {
					later = append(later, ev)
				}
			}
			require.Equal(t, later, got, "exactly the events after Seattle")
		}
	})

	t.Run("AfterCompletion", func(t *testing.T) {
		t.Parallel()
		s, _ := b.watch(t, watchPath(id), nil, http.StatusOK)
		require.Equal(t, []sseEvent{final}, s.rest(t), "the terminal status, then the end")
		// Coming back after the terminal status: 204, which tells an
		// EventSource to stop reconnecting.
		_, r := b.watch(t, watchPath(id), map[string]string{"Last-Event-ID": final.id}, http.StatusNoContent)
		require.Empty(t, r.body)
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		_, r := b.watch(t, watchPath("no-such-instance"), nil, http.StatusNotFound)
		requireJSONError(t, r, http.StatusNotFound, "no-such-instance")
		_, r = b.watch(t, base+"/instances/a%23b/watch", nil, http.StatusBadRequest)
		requireJSONError(t, r, http.StatusBadRequest, "invalid instance id")
		_, r = b.watch(t, watchPath(id), map[string]string{"Last-Event-ID": "abc"}, http.StatusBadRequest)
		requireJSONError(t, r, http.StatusBadRequest, "Last-Event-ID", "abc")
		_, r = b.watch(t, watchPath(id)+"?lastEventId=-1", nil, http.StatusBadRequest)
		requireJSONError(t, r, http.StatusBadRequest, "lastEventId", "-1")
		r = b.do(t, http.MethodPost, watchPath(id), "")
		requireJSONError(t, r, http.StatusMethodNotAllowed)
	})
}

// TestWatchResumeBeyondLastRevision resumes streams after revisions the
// hub's status bucket has not reached (what every reconnecting browser
// sends once a hub is restored from a backup or recreated): they answer as
// fresh streams, the current values then each change, never with silence.
// Event ids that are no revision get 400.
func TestWatchResumeBeyondLastRevision(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.start(t, "E1_HelloSequence", "beyond-1", "")
	b.waitFinished(t, id)
	s, _ := b.watch(t, watchPath(id), nil, http.StatusOK)
	final := s.rest(t)
	require.Len(t, final, 1)
	require.Equal(t, jetflow.StatusCompleted, final[0].status(t).RuntimeStatus)

	for _, rev := range []string{"1000000", "18446744073709551615"} {
		s, _ := b.watch(t, watchPath(id), map[string]string{"Last-Event-ID": rev}, http.StatusOK)
		require.Equal(t, final, s.rest(t), "Last-Event-ID %s: the terminal status, then the end", rev)
		s, _ = b.watch(t, base+"/watch?instanceIdPrefix=beyond-&lastEventId="+rev, nil, http.StatusOK)
		require.Equal(t, final[0], s.must(t), "lastEventId %s: the current values", rev)
		s.quiet(t, 300*time.Millisecond)
	}
	// The changes that follow come on the same stream.
	fh, _ := b.watch(t, base+"/watch?instanceIdPrefix=beyond-", map[string]string{"Last-Event-ID": "1000000"}, http.StatusOK)
	require.Equal(t, final[0], fh.must(t))
	b.start(t, "E1_HelloSequence", "beyond-2", "")
	for {
		st := fh.must(t).status(t)
		require.Equal(t, "beyond-2", st.InstanceID)
		if st.Finished() {
			break
		}
	}

	for _, bad := range []string{"18446744073709551616", "99999999999999999999999", "abc", "-1", "1.5"} {
		_, r := b.watch(t, watchPath(id), map[string]string{"Last-Event-ID": bad}, http.StatusBadRequest)
		requireJSONError(t, r, http.StatusBadRequest, "Last-Event-ID", bad)
		require.NotContains(t, strings.TrimSpace(string(r.body)), "\n")
		_, r = b.watch(t, base+"/watch?lastEventId="+bad, nil, http.StatusBadRequest)
		requireJSONError(t, r, http.StatusBadRequest, "lastEventId", bad)
	}
}

func TestWatchResumeWhileRunning(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.start(t, "CityRecommender", "city-sse", "2")

	s, _ := b.watch(t, watchPath(id), nil, http.StatusOK)
	var seen sseEvent
	for {
		seen = s.must(t)
		if cs := string(seen.status(t).CustomStatus); cs != "null" && cs != "" {
			break
		}
	}
	s.cancel() // the client goes away
	for range s.events {
	}

	s, _ = b.watch(t, watchPath(id), map[string]string{"Last-Event-ID": seen.id}, http.StatusOK)
	s.quiet(t, 300*time.Millisecond) // nothing repeated
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, statusPath(id)+"/raiseEvent/CitySelected", `"London"`).code)
	evs := s.rest(t)
	require.NotEmpty(t, evs)
	for _, ev := range evs {
		require.Greater(t, ev.revision(t), seen.revision(t))
	}
	last := evs[len(evs)-1].status(t)
	require.Equal(t, jetflow.StatusCompleted, last.RuntimeStatus)
	require.Equal(t, `"London"`, string(last.Output))
}

func TestWatchFirehose(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const path = base + "/watch?instanceIdPrefix=hose-a-&runtimeStatus=Completed"
	s, _ := b.watch(t, path, nil, http.StatusOK)
	// Every update of the prefix, whatever its status.
	all, _ := b.watch(t, base+"/watch?instanceIdPrefix=hose-a-", nil, http.StatusOK)

	for _, id := range []string{"hose-a-1", "hose-b-1", "hose-a-2", "hose-a"} {
		b.start(t, "E1_HelloSequence", id, "")
	}
	got := map[string]sseEvent{}
	for len(got) < 2 {
		ev := s.must(t)
		st := ev.status(t)
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
		require.True(t, strings.HasPrefix(st.InstanceID, "hose-a-"), st.InstanceID)
		require.NotContains(t, got, st.InstanceID)
		got[st.InstanceID] = ev
	}
	s.quiet(t, 300*time.Millisecond) // and the stream does not end by itself

	finished := 0
	var last uint64
	for finished < 2 {
		ev := all.must(t)
		st := ev.status(t)
		require.Contains(t, []string{"hose-a-1", "hose-a-2"}, st.InstanceID)
		require.Greater(t, ev.revision(t), last)
		last = ev.revision(t)
		if st.Finished() {
			finished++
			require.Equal(t, got[st.InstanceID], ev)
		}
	}
	all.quiet(t, 300*time.Millisecond)

	// Resuming after the first Completed event gives the second only.
	first, second := got["hose-a-1"], got["hose-a-2"]
	if first.revision(t) > second.revision(t) {
		first, second = second, first
	}
	resumed, _ := b.watch(t, path, map[string]string{"Last-Event-ID": first.id}, http.StatusOK)
	require.Equal(t, second, resumed.must(t))
	resumed.quiet(t, 300*time.Millisecond)

	// Several runtimeStatus values, in any case, in one or more parameters.
	several, _ := b.watch(t, base+"/watch?instanceIdPrefix=hose-&runtimeStatus=running,%20Completed&runtimeStatus=Failed", nil, http.StatusOK)
	n := 0
	for n < 3 {
		st := several.must(t).status(t)
		require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus, "current values: all finished")
		n++
	}

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		_, r := b.watch(t, base+"/watch?runtimeStatus=Running,Runing", nil, http.StatusBadRequest)
		requireJSONError(t, r, http.StatusBadRequest, `"Runing"`, "runtimeStatus")
		_, r = b.watch(t, base+"/watch?instanceIdPrefix=a/b", nil, http.StatusBadRequest)
		requireJSONError(t, r, http.StatusBadRequest, "prefix", "invalid instance id")
		_, r = b.watch(t, base+"/watch?lastEventId=x", nil, http.StatusBadRequest)
		requireJSONError(t, r, http.StatusBadRequest, "lastEventId")
	})
}

// TestWatchLongStream checks that keep-alive comments flow and that a
// server WriteTimeout does not cut a stream.
func TestWatchLongStream(t *testing.T) {
	t.Parallel()
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return samples.Register(r, samples.Options{})
	}})
	srv := httptest.NewUnstartedServer(httpapi.New(e.Client, httpapi.Config{Logger: e.Logger(), KeepAlive: 50 * time.Millisecond}))
	srv.Config.WriteTimeout = 300 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	b := &testBundle{e: e, srv: srv}

	id := b.start(t, "SetStatusTest", "long-1", "")
	b.waitRunning(t, id)
	s, _ := b.watch(t, watchPath(id), nil, http.StatusOK)
	s.must(t)
	keepAlivesThenDone(t, b, s, id, time.Second) // over three times the WriteTimeout
}

// keepAlivesThenDone checks that an open watch of instance id gets only
// keep-alive comments (more than five) for d, then raises the event that
// ends the instance and checks that its last status arrives.
func keepAlivesThenDone(t *testing.T, b *testBundle, s *sseStream, id string, d time.Duration) {
	t.Helper()
	comments := 0
	deadline := time.After(d)
	for waiting := true; waiting; {
		select {
		case ev, ok := <-s.events:
			require.True(t, ok, "the stream ended")
			require.Equal(t, "keep-alive", ev.comment, "unexpected event %+v", ev)
			comments++
		case <-deadline:
			waiting = false
		}
	}
	require.Greater(t, comments, 5)
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, statusPath(id)+"/raiseEvent/Done", "").code)
	evs := s.rest(t)
	require.Equal(t, jetflow.StatusCompleted, evs[len(evs)-1].status(t).RuntimeStatus)
}

// TestWatchDisconnect is not parallel: it counts goroutines. A client
// that leaves, or a server shutdown, ends the stream's handler and its
// watches.
func TestWatchDisconnect(t *testing.T) {
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return samples.Register(r, samples.Options{})
	}})
	shutdown := make(chan struct{})
	h := httpapi.New(e.Client, httpapi.Config{Logger: e.Logger(), Shutdown: shutdown})
	returned := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if strings.HasSuffix(r.URL.Path, "watch") {
			returned <- r.URL.Path
		}
	}))
	t.Cleanup(srv.Close)
	b := &testBundle{e: e, srv: srv}
	id := b.start(t, "CityRecommender", "leaving", "1")
	b.waitRunning(t, id)

	handlerReturns := func(t *testing.T) {
		t.Helper()
		testkit.Receive(t, returned, 2*time.Second, "the handler is still running")
	}
	for _, path := range []string{watchPath(id), base + "/watch", base + "/watch?instanceIdPrefix=leav&runtimeStatus=Completed"} {
		s, _ := b.watch(t, path, nil, http.StatusOK)
		if !strings.Contains(path, "Completed") {
			s.must(t)
		}
		s.cancel()
		handlerReturns(t)
	}
	waitNoWatchGoroutines(t)

	// Closing Config.Shutdown ends the open streams.
	s1, _ := b.watch(t, watchPath(id), nil, http.StatusOK)
	s1.must(t)
	s2, _ := b.watch(t, base+"/watch", nil, http.StatusOK)
	s2.must(t)
	close(shutdown)
	handlerReturns(t)
	handlerReturns(t)
	s1.rest(t)
	s2.rest(t)
	waitNoWatchGoroutines(t)
}

// waitNoWatchGoroutines waits until no watch goroutine is left.
func waitNoWatchGoroutines(t *testing.T) {
	t.Helper()
	testkit.WaitForNoError(t, 5*time.Second, "the watch goroutines to end", func() error {
		if n := watchGoroutines(); n > 0 {
			return fmt.Errorf("%d left", n)
		}
		return nil
	})
}

// watchGoroutines counts the goroutines of watch streams and the watches
// under them.
func watchGoroutines() int {
	return testkit.Goroutines(func(g string) bool {
		for _, fn := range []string{"httpapi.(*api).stream", "client.(*Client).WatchStatus.func", "client.(*Client).WatchAll.func",
			"storage.(*Store).watchStatus.func", "storage.(*Store).follow.func", "(*kvs).WatchFiltered.func"} {
			if strings.Contains(g, fn) {
				return true
			}
		}
		return false
	})
}
