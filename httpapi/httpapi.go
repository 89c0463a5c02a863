// Package httpapi serves the Durable Functions–compatible HTTP API of a
// jetflow hub: start orchestrations, read their status, raise events and
// terminate them, under the base path /runtime/webhooks/durabletask, with
// the routes, status codes, headers and JSON field names of the Durable
// Functions built-in HTTP API, so existing clients and habits carry over.
//
// # Routes
//
//	POST /runtime/webhooks/durabletask/orchestrators/{name}[/{instanceId}][?timeout=SECONDS]
//	    Starts an instance; the optional JSON body is its input.
//	    202 with a Location header and the management URLs; with a timeout,
//	    200 and the final status if the instance finishes within it.
//	GET  /runtime/webhooks/durabletask/instances[/]?createdTimeFrom=…&createdTimeTo=…&runtimeStatus=…&instanceIdPrefix=…&showInput=…&top=…
//	    One page of the instances selected (all filters optional), in
//	    instance id order: 200 with a JSON array of status objects. When
//	    more pages follow, the x-ms-continuation-token response header
//	    holds the token to send as the same request header for the next.
//	GET  /runtime/webhooks/durabletask/instances/{instanceId}
//	    The status JSON: 202 while the instance runs, 200 once it finished.
//	POST /runtime/webhooks/durabletask/instances/{instanceId}/raiseEvent/{eventName}
//	    Sends an external event; the JSON body (empty: null) is its data.
//	POST /runtime/webhooks/durabletask/instances/{instanceId}/terminate?reason=…
//	    Terminates the instance; the reason becomes its output.
//	POST /runtime/webhooks/durabletask/instances/{instanceId}/suspend?reason=…
//	POST /runtime/webhooks/durabletask/instances/{instanceId}/resume?reason=…
//	    Suspends the instance (what reaches it is kept, nothing runs) or
//	    resumes it. 202; 404 unknown; 410 finished.
//	POST /runtime/webhooks/durabletask/instances/{instanceId}/restart[?restartWithNewInstanceId=false]
//	    Starts a new run of a finished instance with the same input (under a
//	    new id unless restartWithNewInstanceId=false): 202 with its URLs;
//	    404 unknown; 410 while it has not finished.
//	GET  /runtime/webhooks/durabletask/instances/{instanceId}/watch
//	    The instance's status as server-sent events, from its current value
//	    until its terminal status (see Watch streams).
//	GET  /runtime/webhooks/durabletask/watch?instanceIdPrefix=…&runtimeStatus=…
//	    The statuses of every instance whose id starts with instanceIdPrefix
//	    (all when absent), keeping the updates whose runtimeStatus is one of
//	    a comma-separated list (all when absent), as server-sent events,
//	    until the client leaves.
//	GET  /healthz
//	    200 "ok" once the API can take requests.
//
// With Config.APIKey set, every route but /healthz needs the key as the
// x-functions-key header or the code query parameter, else 401.
//
// Errors are JSON objects {"error": "<what is wrong>"}: 400 for bad input
// (unknown orchestrator, invalid JSON, invalid instance id or event name),
// 404 for an unknown instance or route, 405 for a wrong method, 408 for a
// body still arriving when the server's read timeout ends, 409 when an
// instance with the id is Pending or Running, 410 when the instance has
// finished, 413 for an oversize body, 503 (with Retry-After) when NATS
// does not answer in time or the connection is down, or when
// Config.MaxWatchers watch streams are open, 500 for anything unexpected.
//
// # Server limits
//
// NewServer is the HTTP server of jetflow dev and jetflow server: it
// bounds the reading of a request's headers (10 s) and of the whole
// request (30 s, so a body sent a byte at a time is cut off), closes
// keep-alive connections idle for 2 minutes, and refuses headers over
// 64 KiB (431). Handlers that wait (watch streams, starts with ?timeout=)
// are not bound by the read timeout once the body is read.
//
// # Watch streams
//
// The watch routes answer with Content-Type text/event-stream: one event
// per status change, the KV revision of the status as its id and the
// status JSON (the body of GET /instances/{instanceId}) on one data line:
//
//	event: status
//	id: 42
//	data: {"name":"E1_HelloSequence","instanceId":"hello-1","runtimeStatus":"Running",…}
//
// A purged instance gives an event "deleted" with data {"instanceId":"…"}.
// A comment (": keep-alive") goes out when nothing was sent for
// Config.KeepAlive, so that proxies keep the connection open. A client must
// take each write within Config.WatchWriteTimeout (30 s): one that stops
// reading is disconnected, and its watch ends. At most Config.MaxWatchers
// streams (1000) are open at once; beyond, a watch gets 503 with
// Retry-After.
//
// The stream of one instance starts with its current status and ends
// after its terminal status (Completed, Failed, Canceled, Terminated);
// an unknown instance gets 404 before any event. The firehose (/watch)
// starts with the current status of every selected instance and does not
// end by itself; an unknown runtimeStatus value gets 400.
//
// Both resume after a revision given in the Last-Event-ID header (an
// EventSource sends it when it reconnects) or the lastEventId query
// parameter: they then send every selected instance whose status changed
// after that revision, at its latest value, then each change. Nothing is
// missed and nothing is sent twice, but the status bucket keeps one value
// per instance, so values overwritten while the client was away are
// skipped (a terminal status, an instance's last value, never is).
// Resuming the stream of one instance after its terminal status answers
// 204 No Content, which tells an EventSource to stop reconnecting. A
// revision the hub's status bucket has not reached (what browsers send
// after the hub was restored from a backup or recreated) starts a fresh
// stream: the current values, then each change. An event id that is not a
// revision (a whole number below 2^64) gets 400.
package httpapi

import (
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jetflow/jetflow/client"
)

// BasePath is the path under which the API's routes live, as in Durable
// Functions.
const BasePath = "/runtime/webhooks/durabletask"

// DefaultMaxBodyBytes is the default request body limit: 1 MiB.
const DefaultMaxBodyBytes = 1 << 20

// Config configures the handler returned by New. The zero value is usable.
type Config struct {
	// BaseURL is the scheme, host and optional path prefix at which clients
	// reach the API, e.g. "https://jetflow.example.com"; the management URLs
	// in responses (statusQueryGetUri, Location, …) start with it. When
	// empty (the default), they are built from each request's Host header,
	// with scheme http (https when the request came over TLS).
	BaseURL string

	// Logger receives a record for every request that ends in a server error
	// (5xx) and for every recovered panic. Defaults to slog.Default().
	Logger *slog.Logger

	// MaxBodyBytes is the largest request body accepted; larger bodies get
	// 413. Defaults to DefaultMaxBodyBytes (1 MiB). Payloads are further
	// limited to client.MaxPayload bytes of JSON.
	MaxBodyBytes int64

	// KeepAlive is the interval of the comments sent on a watch stream
	// when no event was sent for that long. Defaults to DefaultKeepAlive
	// (15 seconds).
	KeepAlive time.Duration

	// Shutdown, when set, ends every open watch stream when it is closed.
	// Watch streams last until their client leaves, and
	// http.Server.Shutdown waits for them: close it from a function given
	// to the server's RegisterOnShutdown. Defaults to nil (streams end
	// only with their request).
	Shutdown <-chan struct{}

	// APIKey, when set, is required on every route but /healthz, as the
	// x-functions-key header or the code query parameter (as Durable
	// Functions' function keys); requests without it get 401. Compared in
	// constant time. Defaults to "" (no authentication).
	APIKey string

	// Ready, when set, is called by GET /healthz: a non-nil error makes it
	// answer 503 with the error's message (for example while the NATS
	// connection is down). When nil, /healthz answers 200 whenever the
	// handler runs.
	Ready func() error

	// MaxWatchers is the most watch streams open at once (each holds a KV
	// watch and, for the firehose, replays every status it selects); a
	// watch request beyond it gets 503 with a Retry-After header. Defaults
	// to DefaultMaxWatchers (1000); a negative value removes the cap.
	MaxWatchers int

	// WatchWriteTimeout bounds each write of a watch stream (an event or a
	// keep-alive comment): a client that does not take it in time (one that
	// stopped reading) is disconnected, which ends its stream and frees its
	// watch. Defaults to DefaultWatchWriteTimeout (30 seconds).
	WatchWriteTimeout time.Duration
}

// DefaultMaxWatchers is the default Config.MaxWatchers.
const DefaultMaxWatchers = 1000

// DefaultWatchWriteTimeout is the default Config.WatchWriteTimeout.
const DefaultWatchWriteTimeout = 30 * time.Second

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.MaxWatchers == 0 {
		c.MaxWatchers = DefaultMaxWatchers
	}
	if c.WatchWriteTimeout <= 0 {
		c.WatchWriteTimeout = DefaultWatchWriteTimeout
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	return c
}

// api holds the handler's dependencies.
type api struct {
	c   *client.Client
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
	// watchers holds a token per open watch stream: its capacity is
	// Config.MaxWatchers. Nil when there is no cap.
	watchers chan struct{}
}

// New returns the HTTP API of the hub behind c. The handler is safe for
// concurrent use and never panics: a panic in a request becomes a 500.
func New(c *client.Client, cfg Config) http.Handler {
	cfg = cfg.withDefaults()
	a := &api{c: c, cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	if cfg.MaxWatchers > 0 {
		a.watchers = make(chan struct{}, cfg.MaxWatchers)
	}
	a.mux.HandleFunc("POST "+BasePath+"/orchestrators/{name}", a.start)
	a.mux.HandleFunc("POST "+BasePath+"/orchestrators/{name}/{instanceId}", a.start)
	a.mux.HandleFunc("GET "+BasePath+"/instances", a.listInstances)
	a.mux.HandleFunc("GET "+BasePath+"/instances/{$}", a.listInstances)
	a.mux.HandleFunc("DELETE "+BasePath+"/instances", a.purgeMany)
	a.mux.HandleFunc("DELETE "+BasePath+"/instances/{$}", a.purgeMany)
	a.mux.HandleFunc("GET "+BasePath+"/instances/{instanceId}", a.status)
	a.mux.HandleFunc("DELETE "+BasePath+"/instances/{instanceId}", a.purge)
	a.mux.HandleFunc("POST "+BasePath+"/instances/{instanceId}/raiseEvent/{eventName}", a.raiseEvent)
	a.mux.HandleFunc("POST "+BasePath+"/instances/{instanceId}/terminate", a.control("terminating", c.Terminate))
	a.mux.HandleFunc("POST "+BasePath+"/instances/{instanceId}/suspend", a.control("suspending", c.Suspend))
	a.mux.HandleFunc("POST "+BasePath+"/instances/{instanceId}/resume", a.control("resuming", c.Resume))
	a.mux.HandleFunc("POST "+BasePath+"/instances/{instanceId}/restart", a.restart)
	a.mux.HandleFunc("POST "+BasePath+"/instances/{instanceId}/rewind", a.rewind)
	a.mux.HandleFunc("GET "+BasePath+"/instances/{instanceId}/watch", a.watchInstance)
	a.mux.HandleFunc("GET "+BasePath+"/watch", a.watchAll)
	a.mux.HandleFunc("GET /healthz", a.healthz)
	return http.HandlerFunc(a.serveHTTP)
}

// serveHTTP recovers panics and turns the mux's plain-text 404 and 405
// answers into JSON errors.
func (a *api) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &responseWriter{ResponseWriter: w}
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v)
		}
		a.log.ErrorContext(r.Context(), "panic serving request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("panic", v))
		if !rw.wroteHeader {
			writeError(rw, http.StatusInternalServerError, "internal error: the request caused a panic")
		}
	}()
	if !a.authorized(r) {
		writeError(rw, http.StatusUnauthorized, "missing or wrong API key: send it as the x-functions-key header or the code query parameter")
		return
	}
	if _, pattern := a.mux.Handler(r); pattern == "" {
		a.noRoute(rw, r)
		return
	}
	a.mux.ServeHTTP(rw, r)
}

// authorized reports whether r may be served: no API key is configured,
// the route is /healthz, or r carries the key.
func (a *api) authorized(r *http.Request) bool {
	if a.cfg.APIKey == "" || r.URL.Path == "/healthz" {
		return true
	}
	key := r.Header.Get("x-functions-key")
	if key == "" {
		key = r.URL.Query().Get("code")
	}
	return subtle.ConstantTimeCompare([]byte(key), []byte(a.cfg.APIKey)) == 1
}

// noRoute answers a request that matches no route: 405 (with Allow) when
// the path exists for other methods, 404 otherwise, both with JSON bodies.
func (a *api) noRoute(w http.ResponseWriter, r *http.Request) {
	h, _ := a.mux.Handler(r)
	probe := &probeWriter{header: http.Header{}}
	h.ServeHTTP(probe, r)
	if probe.status == http.StatusMethodNotAllowed {
		allow := probe.header.Get("Allow")
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+allow)
		return
	}
	writeError(w, http.StatusNotFound, "no route for "+r.Method+" "+r.URL.Path)
}

// responseWriter remembers whether the header was written, so that the
// panic handler does not write a second one.
type responseWriter struct {
	http.ResponseWriter
	wroteHeader bool
}

func (w *responseWriter) WriteHeader(code int) {
	w.wroteHeader = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// probeWriter records the answer of the mux's own 404 and 405 handlers.
type probeWriter struct {
	header http.Header
	status int
}

func (w *probeWriter) Header() http.Header { return w.header }

func (w *probeWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *probeWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(b), nil
}
