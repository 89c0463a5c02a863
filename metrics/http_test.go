package metrics_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jetflow/jetflow/metrics"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/require"
)

// TestMiddleware serves a mux through the middleware, over real HTTP:
// requests are counted by the mux's pattern (never the path, which holds
// ids), and a stream still flushes through it.
func TestMiddleware(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /instances/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") == "gone" {
			http.Error(w, "gone", http.StatusGone)
			return
		}
		_, _ = io.WriteString(w, "{}")
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		ended := m.WatchStarted(metrics.WatchSSE)
		defer ended()
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: 1\n\n")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Error(err) // not require: this is the handler's goroutine
		}
		<-r.Context().Done()
	})
	mux.Handle("GET /metrics", metrics.Handler(reg))
	srv := httptest.NewServer(m.Middleware(mux))
	t.Cleanup(srv.Close)

	for _, path := range []string{"/instances/a", "/instances/b", "/instances/gone", "/nothing"} {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
	}
	stream, err := http.Get(srv.URL + "/stream")
	require.NoError(t, err)
	line, err := bufio.NewReader(stream.Body).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "data: 1\n", line, "flushed through the middleware")

	s := get(t, srv.URL+"/metrics")
	route := "GET /instances/{id}"
	require.Equal(t, 2.0, s.v(t, "jetflow_http_requests_total", "route", route, "method", "GET", "code", "200"))
	require.Equal(t, 1.0, s.v(t, "jetflow_http_requests_total", "route", route, "method", "GET", "code", "410"))
	require.Equal(t, 1.0, s.v(t, "jetflow_http_requests_total", "route", "unmatched", "method", "GET", "code", "404"))
	require.Equal(t, 3.0, s.v(t, "jetflow_http_request_duration_seconds", "route", route, "method", "GET"))
	require.Equal(t, 1.0, s.v(t, "jetflow_status_watchers", "kind", metrics.WatchSSE))
	require.Equal(t, 0.0, s.v(t, "jetflow_status_watchers", "kind", metrics.WatchGo))
	problems, err := promlint.New(bytes.NewReader(s.raw)).Lint()
	require.NoError(t, err)
	require.Empty(t, problems, "promlint: %s", describe(problems))

	stream.Body.Close()
	var nilEngine *metrics.Engine
	require.NotNil(t, nilEngine.Middleware(mux))
	nilEngine.WatchStarted(metrics.WatchGo)()
	nilEngine.ObserveRequest("GET /x", "GET", 200, time.Second)
}

// TestObserveRequest checks the labels of a request a server reports
// itself.
func TestObserveRequest(t *testing.T) {
	t.Parallel()
	reg := metrics.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	m.ObserveRequest("", "BREW", 0, time.Millisecond)
	m.ObserveRequest("POST /orchestrators/{name}", http.MethodPost, http.StatusAccepted, time.Millisecond)
	srv := httptest.NewServer(metrics.Handler(reg))
	t.Cleanup(srv.Close)
	s := get(t, srv.URL)
	require.Equal(t, 1.0, s.v(t, "jetflow_http_requests_total", "route", "unmatched", "method", "other", "code", "200"))
	require.Equal(t, 1.0, s.v(t, "jetflow_http_requests_total", "route", "POST /orchestrators/{name}", "method", "POST", "code", "202"))
}
