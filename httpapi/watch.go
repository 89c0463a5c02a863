package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/metrics"
)

// DefaultKeepAlive is the default interval of the comments sent on idle
// watch streams.
const DefaultKeepAlive = 15 * time.Second

// watchRetryAfter is the Retry-After, in seconds, of a watch refused
// because Config.MaxWatchers streams are open.
const watchRetryAfter = "5"

// takeWatchSlot takes one of the Config.MaxWatchers slots of watch streams
// for the caller to release when its stream ends, or, when all are taken,
// answers 503 with Retry-After and returns false.
func (a *api) takeWatchSlot(w http.ResponseWriter) (release func(), ok bool) {
	if a.watchers == nil {
		return func() {}, true
	}
	select {
	case a.watchers <- struct{}{}:
		return func() { <-a.watchers }, true
	default:
		w.Header().Set("Retry-After", watchRetryAfter)
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf(
			"too many watch streams: this server serves at most %d at once; retry later", a.cfg.MaxWatchers))
		return nil, false
	}
}

// watchInstance handles GET /instances/{instanceId}/watch: the instance's
// status as server-sent events, from its current value (or after the
// Last-Event-ID revision) until its terminal status.
func (a *api) watchInstance(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("instanceId")
	after, release, ok := a.beginWatch(w, r)
	if !ok {
		return
	}
	defer release()
	// A revision the hub has not reached (a browser's from before the hub
	// was restored or recreated) resumes as a fresh stream.
	after, err := a.c.ResumeRevision(r.Context(), after)
	if err != nil {
		a.writeClientError(w, r, err)
		return
	}
	cur, err := a.c.GetStatusWithRevision(r.Context(), id)
	if err != nil {
		a.writeClientError(w, r, err)
		return
	}
	if after > 0 && cur.Finished() && cur.Revision <= after {
		// The client has seen the terminal status and nothing follows it.
		// 204 is what tells an EventSource to stop reconnecting.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	updates, err := a.c.WatchStatus(storage.WithWatchCounted(ctx), id, after) // counted as an SSE stream
	if err != nil {
		a.writeClientError(w, r, err)
		return
	}
	a.stream(ctx, w, r, updates)
}

// watchAll handles GET /watch?instanceIdPrefix=…&runtimeStatus=…: the
// statuses of many instances as server-sent events, until the client
// leaves.
func (a *api) watchAll(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	statuses, err := parseRuntimeStatuses(q["runtimeStatus"])
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	after, release, ok := a.beginWatch(w, r)
	if !ok {
		return
	}
	defer release()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	f := client.WatchFilter{InstanceIDPrefix: q.Get("instanceIdPrefix"), RuntimeStatus: statuses}
	updates, err := a.c.WatchAll(storage.WithWatchCounted(ctx), f, after)
	if err != nil {
		a.writeClientError(w, r, err)
		return
	}
	a.stream(ctx, w, r, updates)
}

// beginWatch reads the revision a watch resumes after (lastEventID) and
// takes a watcher slot; on false it has answered the request.
func (a *api) beginWatch(w http.ResponseWriter, r *http.Request) (after uint64, release func(), ok bool) {
	if after, ok = lastEventID(w, r); !ok {
		return 0, nil, false
	}
	release, ok = a.takeWatchSlot(w)
	return after, release, ok
}

// lastEventID reads the revision to resume after: the Last-Event-ID header
// (which an EventSource sends when it reconnects), else the lastEventId
// query parameter, else 0 (from the current values). A value that is not a
// revision is answered with 400 and false.
func lastEventID(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	v, what := r.Header.Get("Last-Event-ID"), "Last-Event-ID header"
	if v == "" {
		v, what = r.URL.Query().Get("lastEventId"), "lastEventId"
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, true
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s %q is not an event id (a status revision: a whole number)", what, v))
		return 0, false
	}
	return n, true
}

// parseRuntimeStatuses reads runtimeStatus query values: comma-separated
// runtime status names, in any case.
func parseRuntimeStatuses(values []string) ([]jetflow.RuntimeStatus, error) {
	out, err := jetflow.ParseRuntimeStatuses(strings.Join(values, ","))
	if err != nil {
		return nil, fmt.Errorf("runtimeStatus: %w", err)
	}
	return out, nil
}

// stream writes updates as server-sent events until the channel closes,
// the client leaves (ctx ends) or the server shuts down: one "status"
// event per update (a "deleted" event for a deletion), with the revision
// as its id; a keep-alive comment when nothing was sent for a while.
//
// A stream outlives the server's read and write timeouts, but each of its
// writes must be taken by the client within Config.WatchWriteTimeout: a
// client that stops reading is dropped, which ends its watch.
func (a *api) stream(ctx context.Context, w http.ResponseWriter, r *http.Request, updates <-chan client.Update) {
	defer a.cfg.Metrics.WatchStarted(metrics.WatchSSE)()
	rc := http.NewResponseController(w)
	// No read deadline: the request is read, and the server's ReadTimeout
	// must not end the stream (net/http lifts it once the body is read;
	// this says so for any server).
	if err := rc.SetReadDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		a.log.WarnContext(ctx, "clearing the read deadline of a watch stream", slog.Any("error", err))
	}
	deadlines := true
	// writeDeadline bounds the next write; it replaces any server
	// WriteTimeout, which would cut the stream.
	writeDeadline := func() {
		if !deadlines {
			return
		}
		if err := rc.SetWriteDeadline(time.Now().Add(a.cfg.WatchWriteTimeout)); err != nil {
			deadlines = false
			a.log.WarnContext(ctx, "watch stream without write deadlines: a client that stops reading is not dropped",
				slog.String("path", r.URL.Path), slog.Any("error", err))
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // no proxy buffering (nginx)
	writeDeadline()
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		if !errors.Is(err, http.ErrNotSupported) {
			return
		}
		a.log.WarnContext(ctx, "watch stream cannot be flushed; events are delayed",
			slog.String("path", r.URL.Path), slog.Any("error", err))
	}

	keepAlive := time.NewTicker(a.cfg.KeepAlive)
	defer keepAlive.Stop()
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.cfg.Shutdown:
			return
		case <-keepAlive.C:
			writeDeadline()
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case u, ok := <-updates:
			if !ok {
				return
			}
			var err error
			if buf, err = appendEvent(buf[:0], u); err != nil {
				a.log.ErrorContext(ctx, "encoding a watch event", slog.String("instance_id", u.InstanceID), slog.Any("error", err))
				continue
			}
			writeDeadline()
			if _, err := w.Write(buf); err != nil {
				return
			}
			keepAlive.Reset(a.cfg.KeepAlive)
			if len(updates) > 0 {
				continue // more to write: flush once they are out
			}
		}
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return
		}
	}
}

// appendEvent appends the server-sent event of one update to b:
//
//	event: status
//	id: <revision>
//	data: <status JSON on one line>
//
// or, for a deletion, "event: deleted" with data {"instanceId":"…"}.
func appendEvent(b []byte, u client.Update) ([]byte, error) {
	var data []byte
	var err error
	event := "status"
	if u.Deleted {
		event = "deleted"
		data, err = json.Marshal(struct {
			InstanceID string `json:"instanceId"`
		}{u.InstanceID})
	} else {
		data, err = json.Marshal(u.Status)
	}
	if err != nil {
		return b, err
	}
	if bytes.ContainsAny(data, "\r\n") {
		// A line break in an event's data would split it: JSON has them
		// only as whitespace, which compacting removes.
		var c bytes.Buffer
		if err := json.Compact(&c, data); err != nil {
			return b, err
		}
		data = c.Bytes()
	}
	b = append(b, "event: "...)
	b = append(b, event...)
	b = append(b, "\nid: "...)
	b = strconv.AppendUint(b, u.Revision, 10)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	b = append(b, "\n\n"...)
	return b, nil
}
