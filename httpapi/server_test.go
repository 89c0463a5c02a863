package httpapi_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/httpapi"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/internal/testkit"
	"github.com/jetflow/jetflow/samples"
	"github.com/stretchr/testify/require"
)

// serverBundle is a testBundle whose server is the one httpapi.NewServer
// builds (what jetflow dev and jetflow server run), on a real listener.
type serverBundle struct {
	*testBundle
	// returned receives the path of each request whose handler returned.
	returned chan string
}

// serveWith starts the API of a fresh engine behind httpapi.NewServer.
// wrap, when set, wraps the listener (to shrink socket buffers).
func serveWith(t *testing.T, cfg httpapi.Config, scfg httpapi.ServerConfig, wrap func(net.Listener) net.Listener) *serverBundle {
	t.Helper()
	e := testengine.New(t, testengine.Options{Register: func(r *jetflow.Registry) error {
		return samples.Register(r, samples.Options{})
	}})
	cfg.Logger, scfg.Logger = e.Logger(), e.Logger()
	api := httpapi.New(e.Client, cfg)
	returned := make(chan string, 64)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.ServeHTTP(w, r)
		select {
		case returned <- r.URL.Path:
		default:
		}
	})
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = httpapi.NewServer(h, scfg)
	if wrap != nil {
		srv.Listener = wrap(srv.Listener)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return &serverBundle{testBundle: &testBundle{e: e, srv: srv}, returned: returned}
}

// dial opens a plain TCP connection to the server, closed at the end of
// the test.
func (b *serverBundle) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", b.srv.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestServerSlowBody sends a request body at one byte per 100 ms: the
// server must cut it off (408) once its ReadTimeout has passed, long
// before the body is complete, and start nothing.
func TestServerSlowBody(t *testing.T) {
	t.Parallel()
	b := serveWith(t, httpapi.Config{}, httpapi.ServerConfig{ReadTimeout: time.Second}, nil)
	conn := b.dial(t)
	body := `"` + strings.Repeat("s", 300) + `"` // 30 s at one byte per 100 ms
	_, err := fmt.Fprintf(conn, "POST %s/orchestrators/E1_HelloSequence/slow-1 HTTP/1.1\r\nHost: test\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", base, len(body))
	require.NoError(t, err)
	go func() { // the slow client; it stops when the connection closes
		for i := range len(body) {
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond) // the scenario: a client that sends one byte per 100 ms
		}
	}()

	require.NoError(t, conn.SetReadDeadline(time.Now().Add(15*time.Second)))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "the server neither answered nor closed the connection while the body trickled in")
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusRequestTimeout, resp.StatusCode, "body: %s", data)
	require.Contains(t, string(data), "request body")
	requireJSONError(t, b.do(t, http.MethodGet, statusPath("slow-1"), ""), http.StatusNotFound)
}

// TestServerIdleTimeout checks that a keep-alive connection left idle is
// closed by the server.
func TestServerIdleTimeout(t *testing.T) {
	t.Parallel()
	b := serveWith(t, httpapi.Config{}, httpapi.ServerConfig{IdleTimeout: 200 * time.Millisecond}, nil)
	conn := b.dial(t)
	_, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	_, err = io.ReadAll(resp.Body)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.False(t, resp.Close, "a keep-alive connection")

	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = br.ReadByte()
	require.ErrorIs(t, err, io.EOF, "the idle connection is still open")
}

// TestServerMaxHeaderBytes checks the header limit: 431 over it, by
// default at 64 KiB (Go's own default is 1 MiB).
func TestServerMaxHeaderBytes(t *testing.T) {
	t.Parallel()
	get := func(t *testing.T, b *serverBundle, headerBytes int) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, b.srv.URL+"/healthz", nil)
		require.NoError(t, err)
		req.Header.Set("X-Big", strings.Repeat("h", headerBytes))
		resp, err := b.srv.Client().Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Run("Default", func(t *testing.T) {
		t.Parallel()
		b := serveWith(t, httpapi.Config{}, httpapi.ServerConfig{}, nil)
		require.Equal(t, http.StatusOK, get(t, b, 32<<10))
		require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, get(t, b, 100<<10))
	})
	t.Run("Configured", func(t *testing.T) {
		t.Parallel()
		b := serveWith(t, httpapi.Config{}, httpapi.ServerConfig{MaxHeaderBytes: 4 << 10}, nil)
		require.Equal(t, http.StatusOK, get(t, b, 1<<10))
		require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, get(t, b, 16<<10))
	})
}

// TestWatchCap checks the cap on open watch streams: beyond it 503 with
// Retry-After, and a stream that ends gives its slot back.
func TestWatchCap(t *testing.T) {
	t.Parallel()
	require.Equal(t, 1000, httpapi.DefaultMaxWatchers)
	b := serveWith(t, httpapi.Config{MaxWatchers: 2}, httpapi.ServerConfig{}, nil)
	id := b.start(t, "E1_HelloSequence", "capped", "")

	s1, _ := b.watch(t, base+"/watch", nil, http.StatusOK)
	s1.must(t)
	s2, _ := b.watch(t, base+"/watch?instanceIdPrefix=cap", nil, http.StatusOK)
	s2.must(t)
	for _, path := range []string{base + "/watch", watchPath(id)} {
		_, r := b.watch(t, path, nil, http.StatusServiceUnavailable)
		requireJSONError(t, r, http.StatusServiceUnavailable, "watch streams", "2")
		secs, err := strconv.Atoi(r.header.Get("Retry-After"))
		require.NoError(t, err, "Retry-After %q", r.header.Get("Retry-After"))
		require.Positive(t, secs)
	}
	// Bad requests are still told what is wrong.
	_, r := b.watch(t, base+"/watch?runtimeStatus=Nope", nil, http.StatusBadRequest)
	requireJSONError(t, r, http.StatusBadRequest, "runtimeStatus")

	s1.cancel() // a watcher leaves: its slot is free again
	testkit.WaitFor(t, 10*time.Second, "the slot of the watcher that left to be freed", func() bool {
		s, r := b.openWatch(t, watchPath(id), nil)
		if r.code == http.StatusOK {
			s.must(t)
			return true
		}
		require.Equal(t, http.StatusServiceUnavailable, r.code, "body: %s", r.body)
		return false
	})
}

// smallBuffers makes the server's sockets send buffers small, so that a
// client that stops reading blocks the server's writes soon.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

// TestWatchStuckClientDropped opens a firehose that never reads: once the
// server's writes block for WatchWriteTimeout, the stream is dropped (its
// handler returns, its watch stops) and its slot is free.
func TestWatchStuckClientDropped(t *testing.T) {
	t.Parallel()
	b := serveWith(t, httpapi.Config{MaxWatchers: 1, WatchWriteTimeout: 200 * time.Millisecond},
		httpapi.ServerConfig{}, func(l net.Listener) net.Listener { return smallBuffers{l} })
	// 400 statuses of about 2 KB: far more than the socket buffers hold.
	outs := make([]storage.Outgoing, 400)
	for i := range outs {
		id := fmt.Sprintf("stuck-%03d", i)
		st := &jetflow.Status{Name: "Stuck", InstanceID: id, RuntimeStatus: jetflow.StatusRunning,
			Input: json.RawMessage(`"` + strings.Repeat("x", 2000) + `"`)}
		o, err := b.e.Storage.StatusWrite(id, st, 0)
		require.NoError(t, err)
		outs[i] = o
	}
	require.NoError(t, storage.FirstError(b.e.Storage.Publish(t.Context(), outs...)))

	conn := b.dial(t)
	require.NoError(t, conn.(*net.TCPConn).SetReadBuffer(4096))
	_, err := fmt.Fprintf(conn, "GET %s/watch HTTP/1.1\r\nHost: test\r\n\r\n", base)
	require.NoError(t, err)
	// ... and never read.

	path := testkit.Receive(t, b.returned, 20*time.Second, "the stream of a client that does not read is still open")
	require.Equal(t, base+"/watch", path)
	s, r := b.openWatch(t, base+"/watch?instanceIdPrefix=stuck-000", nil)
	require.Equal(t, http.StatusOK, r.code, "body: %s", r.body)
	require.Equal(t, "stuck-000", s.must(t).status(t).InstanceID)
}

// TestWatchOutlivesReadTimeout checks that a watch stream lasts longer
// than the server's ReadTimeout, with its keep-alive comments, and still
// delivers.
func TestWatchOutlivesReadTimeout(t *testing.T) {
	t.Parallel()
	const readTimeout = 300 * time.Millisecond
	b := serveWith(t, httpapi.Config{KeepAlive: 50 * time.Millisecond}, httpapi.ServerConfig{ReadTimeout: readTimeout}, nil)
	id := b.start(t, "SetStatusTest", "outlives-1", "")
	b.waitRunning(t, id)
	s, _ := b.watch(t, watchPath(id), nil, http.StatusOK)
	s.must(t)
	keepAlivesThenDone(t, b.testBundle, s, id, 4*readTimeout)
}

// TestStartWaitOutlivesReadTimeout checks that a start with ?timeout=
// may wait longer than the server's ReadTimeout: the timeout bounds the
// reading of the request, not the handler.
func TestStartWaitOutlivesReadTimeout(t *testing.T) {
	t.Parallel()
	const readTimeout = 300 * time.Millisecond
	b := serveWith(t, httpapi.Config{}, httpapi.ServerConfig{ReadTimeout: readTimeout}, nil)
	type answer struct {
		r   response
		err error
	}
	done := make(chan answer, 1)
	sent := time.Now()
	go func() {
		resp, err := b.srv.Client().Post(b.srv.URL+base+"/orchestrators/SetStatusTest/wait-1?timeout=30", "application/json", strings.NewReader(`"x"`))
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		done <- answer{r: response{code: resp.StatusCode, header: resp.Header, body: body}, err: err}
	}()
	b.waitRunning(t, "wait-1")
	<-time.After(time.Until(sent.Add(4 * readTimeout))) // the start waits past the ReadTimeout
	require.Equal(t, http.StatusAccepted, b.do(t, http.MethodPost, statusPath("wait-1")+"/raiseEvent/Done", "").code)
	a := testkit.Receive(t, done, 20*time.Second, "the start did not answer")
	require.NoError(t, a.err)
	require.Equal(t, http.StatusOK, a.r.code, "body: %s", a.r.body)
	var st jetflow.Status
	require.NoError(t, json.Unmarshal(a.r.body, &st))
	require.Equal(t, jetflow.StatusCompleted, st.RuntimeStatus)
}
