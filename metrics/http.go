package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Watch kinds (the kind label of jetflow_status_watchers).
const (
	// WatchSSE: an HTTP API server-sent event stream.
	WatchSSE = "sse"
	// WatchGo: a Go client's WatchStatus or WatchAll.
	WatchGo = "go"
)

// httpFamilies are the families of the HTTP server and of live watches,
// part of an Engine.
type httpFamilies struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	watchers *prometheus.GaugeVec
}

func newHTTPFamilies() httpFamilies {
	return httpFamilies{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "http_requests_total",
			Help: "HTTP requests answered, by route (the ServeMux pattern; \"unmatched\" for none), method and status code."},
			[]string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route and method (for an event stream: its whole life).",
			Buckets: LatencyBuckets}, []string{"route", "method"}),
		watchers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "status_watchers",
			Help: "Live status watches (KV watches of the status bucket), by kind (sse, go)."}, []string{"kind"}),
	}
}

func (f httpFamilies) collectors() []prometheus.Collector {
	return []prometheus.Collector{f.requests, f.duration, f.watchers}
}

// methods are the methods that are their own method label; any other
// is "other".
var methods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// Middleware counts and times the requests that next answers, by route:
// the pattern of the http.ServeMux that served the request (read from
// Request.Pattern once next returns), so next must be that mux, or a
// handler that passes the mux the same *http.Request (not a copy made
// with WithContext). Requests that match no pattern are "unmatched". The
// response writer it passes on keeps Flush and Unwrap, so streams and
// http.ResponseController work through it. A nil Engine returns next.
func (m *Engine) Middleware(next http.Handler) http.Handler {
	if m == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() { m.ObserveRequest(r.Pattern, r.Method, sw.code, time.Since(began)) }()
		next.ServeHTTP(sw, r)
	})
}

// ObserveRequest counts and times one HTTP request answered with code
// (0 is taken as 200) after d, for a server that knows the pattern that
// served it (route; "" counts as "unmatched") but cannot use Middleware:
// one that hands its mux a copy of the request (r.WithContext), on which
// the mux sets Pattern, calls this with the pattern from
// ServeMux.Handler. Methods other than the standard ones count as
// "other".
func (m *Engine) ObserveRequest(route, method string, code int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	if !methods[method] {
		method = "other"
	}
	if code == 0 {
		code = http.StatusOK
	}
	m.http.requests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.http.duration.WithLabelValues(route, method).Observe(seconds(d))
}

// statusWriter records the status code of a response.
type statusWriter struct {
	http.ResponseWriter
	mu   sync.Mutex
	code int
}

func (w *statusWriter) setCode(code int) {
	w.mu.Lock()
	if w.code == 0 {
		w.code = code
	}
	w.mu.Unlock()
}

// WriteHeader records the code and passes it on.
func (w *statusWriter) WriteHeader(code int) {
	if code >= 200 { // 1xx are informational: the final code follows
		w.setCode(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write passes b on; a response written without WriteHeader is a 200.
func (w *statusWriter) Write(b []byte) (int, error) {
	w.setCode(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// Flush passes a flush on, if the writer below can.
func (w *statusWriter) Flush() {
	w.setCode(http.StatusOK)
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the writer below.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// WatchStarted counts a live status watch of kind (WatchSSE, WatchGo)
// until the returned function is called (once, when the watch ends). A
// nil Engine returns a function that does nothing.
func (m *Engine) WatchStarted(kind string) (ended func()) {
	if m == nil {
		return func() {}
	}
	g := m.http.watchers.WithLabelValues(kind)
	g.Inc()
	var once sync.Once
	return func() { once.Do(g.Dec) }
}
