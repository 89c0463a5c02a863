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
//	POST /runtime/webhooks/durabletask/instances/{instanceId}/rewind?reason=…
//	    Runs a Failed instance again from before its failures: 202; 404
//	    unknown; 410 unless it is Failed (errors in plain text here).
//	DELETE /runtime/webhooks/durabletask/instances/{instanceId}
//	    Purges a finished instance (status, history, waiting messages): 200
//	    with {"instancesDeleted":1}; 404 unknown or not finished.
//	DELETE /runtime/webhooks/durabletask/instances[/]?createdTimeFrom=…[&createdTimeTo=…][&runtimeStatus=…]
//	    Purges every finished instance selected: 200 with instancesDeleted;
//	    404 when none; 400 without createdTimeFrom.
//	GET  /runtime/webhooks/durabletask/instances/{instanceId}/watch
//	    The instance's status as server-sent events, from its current value
//	    until its terminal status (see Watch streams).
//	GET  /runtime/webhooks/durabletask/watch?instanceIdPrefix=…&runtimeStatus=…
//	    The statuses of every instance whose id starts with instanceIdPrefix
//	    (all when absent), keeping the updates whose runtimeStatus is one of
//	    a comma-separated list (all when absent), as server-sent events,
//	    until the client leaves.
//	GET  /runtime/webhooks/durabletask/instances/{instanceId}/tasks
//	    The work of the instance's current execution (client.Tasks): each
//	    activity attempt, timer and sub-orchestration with its state, times
//	    (to the millisecond), attempt, due time and instance id, the events
//	    received, and the parent. What showHistory leaves out: pending work,
//	    attempts, sub-orchestration ids. 404 unknown.
//	GET  /runtime/webhooks/durabletask/whoami
//	    The request's key: {"name", "scopes", "keyRequired"}, so that a
//	    client offers only what the key may do. Any valid key may ask.
//	GET  /healthz
//	    200 "ok" once the API can take requests.
//	GET  /ui/ (and / redirecting to it)
//	    The status page (package ui), when Config.UI is set.
//
// With Config.APIKey or Config.Keys set, every route but /healthz and the
// status page's files needs a key as the x-functions-key header or the
// code query parameter (not the query with Config.NoQueryKey): 401
// without one, 403 with a key that lacks the scope the route needs (the
// message names it). Config.APIKey has every scope; the keys of
// Config.Keys have theirs (see Key): read for the GET routes (whoami needs
// none), start[:NAME] to start, raise[:NAME] to raise events, admin for
// everything else. A start authenticated with ?code=
// answers with management URLs that carry the same code, as Durable
// Functions' do; a key sent as a header is never echoed.
//
// # Cross-site requests
//
// The API refuses what a web page could make a browser send to it (see
// the rules in security.go): a Host that is not the server's (421, DNS
// rebinding), a state-changing request from a foreign Origin (403, unless
// in Config.AllowedOrigins, which also get CORS headers), and POST bodies
// that are not JSON (415). Management URLs come from Config.BaseURL or the
// address the connection was accepted on, never from the Host header.
//
// Errors are JSON objects {"error": "<what is wrong>"}: 400 for bad input
// (unknown orchestrator, invalid JSON or UTF-8, invalid instance id or event name),
// 401 and 403 for a missing key or scope, 415 for a body that is not JSON,
// 421 for a Host header that does not name the server,
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
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/metrics"
)

// BasePath is the path under which the API's routes live, as in Durable
// Functions.
const BasePath = "/runtime/webhooks/durabletask"

// DefaultMaxBodyBytes is the default request body limit: 1 MiB.
const DefaultMaxBodyBytes = 1 << 20

// Config configures the handler returned by New. The zero value is usable.
type Config struct {
	// AllowedHosts are the host names (a port is ignored) that requests may
	// carry in their Host header besides IP addresses, names without a dot
	// (localhost, a container's service name), names under .localhost and
	// the host of BaseURL; "*" allows any (behind a proxy that checks it).
	// Other names get 421: a page that rebinds its own DNS name to the
	// server's address cannot read it. Defaults to none.
	AllowedHosts []string

	// AllowedOrigins are the origins (scheme://host[:port]) of the web
	// pages that may call state-changing routes (POST, DELETE) and read
	// answers across origins (CORS); "*" allows any. A state-changing
	// request with another Origin header gets 403; requests without one
	// (from clients that are not browsers) are not affected. Defaults to
	// none: only the server's own origin.
	AllowedOrigins []string

	// BaseURL is the scheme, host and optional path prefix at which clients
	// reach the API, e.g. "https://jetflow.example.com"; the management URLs
	// in responses (statusQueryGetUri, Location, …) start with it, and its
	// host is accepted in Host headers. When empty (the default), they are
	// built from the address the request's connection was accepted on
	// (never from the Host header), with scheme http (https over TLS).
	BaseURL string

	// Keys, when set, holds scoped API keys (see Key), checked like APIKey
	// (which, when set too, keeps every scope). Replace them with Set while
	// the server runs. A non-nil keyring requires a key on every route but
	// /healthz even while it holds none. Defaults to nil.
	Keys *Keyring

	// NoQueryKey refuses keys sent as the code query parameter (401): they
	// end up in proxy logs and browser histories. Durable Functions clients
	// that follow management URLs with ?code= then need the header.
	// Defaults to false.
	NoQueryKey bool

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

	// Metrics, when set, counts the requests by route, method and code,
	// with their duration, and the open watch streams. Defaults to nil
	// (none).
	Metrics *metrics.Engine

	// MetricsHandler, when set, is served at GET /metrics (Prometheus's
	// text format: metrics.Handler), behind the read scope when keys are
	// configured (a Prometheus scrape sends it as params: {code: [KEY]}).
	// Defaults to nil (no such route).
	MetricsHandler http.Handler

	// UI, when set, is the status page (package ui's Handler), served at
	// GET /ui/ with / redirecting to it. Its files are served without a
	// key even when keys are configured: they hold no data (the page asks
	// for the key and sends it on every API call it makes), and a browser
	// cannot send a key with the request that opens a page. Defaults to
	// nil (no page).
	UI http.Handler

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

// Validate reports what is wrong with the configuration: a BaseURL that
// is not an http(s) URL, or an allowed origin that is not an origin. New
// answers every request with 500 and that error when it fails.
func (c Config) Validate() error {
	c = c.withDefaults()
	if _, err := newHostPolicy(c.BaseURL, c.AllowedHosts); err != nil {
		return err
	}
	_, err := newOriginPolicy(c.BaseURL, c.AllowedOrigins)
	return err
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

	hosts   hostPolicy
	origins originPolicy
	// admin holds Config.APIKey, when set.
	admin []keyEntry
}

// principalKey is the context key of the request's principal.
type principalKey struct{}

// queryCodeKey is the context key of the key a request authenticated with
// as ?code= (echoed into the management URLs it gets).
type queryCodeKey struct{}

// New returns the HTTP API of the hub behind c. The handler is safe for
// concurrent use and never panics: a panic in a request becomes a 500.
func New(c *client.Client, cfg Config) http.Handler {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		cfg.Logger.Error("HTTP API misconfigured: every request gets 500", slog.Any("error", err))
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusInternalServerError, "the HTTP API is misconfigured: "+err.Error())
		})
	}
	a := &api{c: c, cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	a.hosts, _ = newHostPolicy(cfg.BaseURL, cfg.AllowedHosts)
	a.origins, _ = newOriginPolicy(cfg.BaseURL, cfg.AllowedOrigins)
	if cfg.APIKey != "" {
		a.admin = []keyEntry{{sum: sha256.Sum256([]byte(cfg.APIKey)), p: &principal{name: "admin", admin: true, scopes: []string{ScopeAdmin}}}}
	}
	if cfg.MaxWatchers > 0 {
		a.watchers = make(chan struct{}, cfg.MaxWatchers)
	}
	read, admin := a.needRead, a.needAdmin
	a.mux.HandleFunc("POST "+BasePath+"/orchestrators/{name}", a.needStart(a.start))
	a.mux.HandleFunc("POST "+BasePath+"/orchestrators/{name}/{instanceId}", a.needStart(a.start))
	a.mux.HandleFunc("GET "+BasePath+"/instances", read(a.listInstances))
	a.mux.HandleFunc("GET "+BasePath+"/instances/{$}", read(a.listInstances))
	a.mux.HandleFunc("DELETE "+BasePath+"/instances", admin(a.purgeMany))
	a.mux.HandleFunc("DELETE "+BasePath+"/instances/{$}", admin(a.purgeMany))
	a.mux.HandleFunc("GET "+BasePath+"/instances/{instanceId}", read(a.status))
	a.mux.HandleFunc("DELETE "+BasePath+"/instances/{instanceId}", admin(a.purge))
	a.mux.HandleFunc("POST "+BasePath+"/instances/{instanceId}/raiseEvent/{eventName}", a.needRaise(a.raiseEvent))
	a.mux.HandleFunc("POST "+BasePath+"/instances/{instanceId}/terminate", admin(a.control("terminating", func(ctx context.Context, id string, reason any) error {
		return c.Terminate(ctx, id, reason)
	})))
	a.mux.HandleFunc("POST "+BasePath+"/instances/{instanceId}/suspend", admin(a.control("suspending", c.Suspend)))
	a.mux.HandleFunc("POST "+BasePath+"/instances/{instanceId}/resume", admin(a.control("resuming", c.Resume)))
	a.mux.HandleFunc("POST "+BasePath+"/instances/{instanceId}/restart", admin(a.restart))
	a.mux.HandleFunc("POST "+BasePath+"/instances/{instanceId}/rewind", admin(a.rewind))
	a.mux.HandleFunc("GET "+BasePath+"/instances/{instanceId}/watch", read(a.watchInstance))
	a.mux.HandleFunc("GET "+BasePath+"/watch", read(a.watchAll))
	a.mux.HandleFunc("GET "+BasePath+"/instances/{instanceId}/tasks", read(a.tasks))
	a.mux.HandleFunc("GET "+BasePath+"/whoami", a.whoami)
	a.mux.HandleFunc("GET /healthz", a.healthz)
	if h := cfg.UI; h != nil {
		a.mux.Handle("GET "+UIPath, h)
		a.mux.Handle("GET /{$}", http.RedirectHandler(UIPath, http.StatusFound))
	}
	if h := cfg.MetricsHandler; h != nil {
		a.mux.HandleFunc("GET /metrics", read(h.ServeHTTP))
	}
	return http.HandlerFunc(a.serveHTTP)
}

// serveHTTP recovers panics and turns the mux's plain-text 404 and 405
// answers into JSON errors.
func (a *api) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &responseWriter{ResponseWriter: w}
	_, pattern := a.mux.Handler(r) // "" for no route
	if m := a.cfg.Metrics; m != nil {
		began := time.Now()
		defer func() { m.ObserveRequest(pattern, r.Method, rw.code, time.Since(began)) }()
	}
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
	if !a.guard(rw, r) {
		return
	}
	p, queryKey, err := a.authenticate(r)
	if err != nil {
		writeError(rw, http.StatusUnauthorized, err.Error())
		return
	}
	ctx := context.WithValue(r.Context(), principalKey{}, p)
	if queryKey != "" {
		ctx = context.WithValue(ctx, queryCodeKey{}, queryKey)
	}
	r = r.WithContext(ctx)
	if pattern == "" {
		a.noRoute(rw, r)
		return
	}
	a.mux.ServeHTTP(rw, r)
}

// authEnabled reports whether requests need a key.
func (a *api) authEnabled() bool { return a.cfg.APIKey != "" || a.cfg.Keys != nil }

// authenticate returns the principal of r's key (everyone when no key is
// configured, on /healthz and on the status page's files), and the key
// when it came as ?code=; an error for a missing or unknown key, or a key
// in the query string where those are refused.
func (a *api) authenticate(r *http.Request) (p *principal, queryKey string, err error) {
	if !a.authEnabled() || r.URL.Path == "/healthz" || a.public(r) {
		return everyone, "", nil
	}
	key := r.Header.Get("x-functions-key")
	fromQuery := false
	if key == "" {
		q := r.URL.Query()
		if q.Has("code") && a.cfg.NoQueryKey {
			return nil, "", errQueryKey
		}
		key, fromQuery = q.Get("code"), true
	}
	if key == "" {
		return nil, "", errNoKey
	}
	if p = a.cfg.Keys.lookup(key, a.admin); p == nil {
		return nil, "", errNoKey
	}
	if fromQuery {
		queryKey = key
	}
	return p, queryKey, nil
}

// principalOf returns the principal serveHTTP stored in r's context.
func principalOf(r *http.Request) *principal {
	if p, ok := r.Context().Value(principalKey{}).(*principal); ok {
		return p
	}
	return everyone
}

// forbidden answers 403 for a key that lacks scope.
func forbidden(w http.ResponseWriter, r *http.Request, p *principal, scope string) {
	writeError(w, http.StatusForbidden, fmt.Sprintf("the API key %q lacks the scope %q that %s %s needs", p.name, scope, r.Method, r.URL.Path))
}

// needRead wraps a handler of a route that reads (scope read).
func (a *api) needRead(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p := principalOf(r); !p.canRead() {
			forbidden(w, r, p, ScopeRead)
			return
		}
		h(w, r)
	}
}

// needAdmin wraps a handler of a route that only admin keys may call.
func (a *api) needAdmin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p := principalOf(r); !p.admin {
			forbidden(w, r, p, ScopeAdmin)
			return
		}
		h(w, r)
	}
}

// needStart wraps the start handler: scope start or start:NAME.
func (a *api) needStart(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if p, name := principalOf(r), r.PathValue("name"); !p.canStart(name) {
			forbidden(w, r, p, ScopeStart+":"+name)
			return
		}
		h(w, r)
	}
}

// needRaise wraps the raise handler: scope raise, or raise:NAME for an
// instance of orchestrator NAME (read from its status).
func (a *api) needRaise(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := principalOf(r)
		switch {
		case p.admin || p.raiseAll:
		case !p.canRaiseSome():
			forbidden(w, r, p, ScopeRaise)
			return
		default:
			st, err := a.c.GetStatus(r.Context(), r.PathValue("instanceId"))
			if err != nil {
				a.writeClientError(w, r, err)
				return
			}
			if !p.canRaise(st.Name) {
				forbidden(w, r, p, ScopeRaise+":"+st.Name)
				return
			}
		}
		h(w, r)
	}
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
	code        int // the status code sent; 0 before
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 {
		w.wroteHeader, w.code = true, code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.wroteHeader, w.code = true, http.StatusOK
	}
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
