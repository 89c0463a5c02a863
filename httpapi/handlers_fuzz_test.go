package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/httpapi"
	"github.com/jetflow/jetflow/internal/testengine"
	"github.com/jetflow/jetflow/samples"
)

var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false, "rewrite the seed corpus in testdata/fuzz/FuzzHandlers")

// FuzzHandlers sends random requests (method, path, query, body and
// headers, "Name: value" a line) to the real handler over HTTP, on a real embedded
// engine holding a running, a completed and a failed instance. Whatever
// the request, the handler must not panic (a recovered panic is a 500) and
// must not answer 5xx (a 503 for an engine that does not answer in time
// aside; and the 500 that returnInternalServerErrorOnFailure asks for); a
// 4xx carries a message saying what is wrong.
//
// The seeds in testdata/fuzz/FuzzHandlers are written by
// go test -run TestWriteHandlersSeeds -write-fuzz-seeds.
func FuzzHandlers(f *testing.F) {
	e := testengine.New(f, testengine.Options{Register: func(r *jetflow.Registry) error {
		return errors.Join(
			samples.Register(r, samples.Options{}),
			r.AddOrchestrator("Fails", func(*jetflow.OrchestrationContext) (any, error) { return nil, errors.New("as asked") }),
			r.AddOrchestrator("Waits", func(ctx *jetflow.OrchestrationContext) (any, error) {
				for {
					if err := ctx.WaitForExternalEvent("Approval").Await(nil); err != nil {
						return nil, err
					}
				}
			}),
		)
	}})
	srv := httptest.NewServer(httpapi.New(e.Client, httpapi.Config{Logger: e.Logger(), KeepAlive: 50 * time.Millisecond}))
	f.Cleanup(srv.Close)
	ctx := e.Context(time.Minute)
	for _, inst := range []struct{ name, id string }{
		{"E1_HelloSequence", "fuzz-done"}, {"Fails", "fuzz-failed"}, {"Waits", "fuzz-running"},
	} {
		_, err := e.Client.StartOrchestration(ctx, inst.name, client.WithInstanceID(inst.id))
		require.NoError(f, err)
	}
	for _, id := range []string{"fuzz-done", "fuzz-failed"} {
		_, err := e.Client.WaitForCompletion(ctx, id)
		require.NoError(f, err)
	}
	hc := srv.Client()

	f.Fuzz(func(t *testing.T, method, path, query string, body []byte, headers string) {
		target := srv.URL + path
		if query != "" {
			target += "?" + query
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		if len(body) > 0 {
			req.Header.Set("Content-Type", "application/json")
		}
		for line := range strings.SplitSeq(headers, "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok {
				req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
			}
		}
		resp, err := hc.Do(req)
		if err != nil {
			// No answer within the timeout (a start asked to wait, a
			// stream), or a request the client refuses to send.
			return
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20)) // a stream ends with the timeout
		what := fmt.Sprintf("%s %s?%s (body %q, headers %q): %d %s", method, path, query, body, headers, resp.StatusCode, data)
		switch code := resp.StatusCode; {
		case code == http.StatusServiceUnavailable:
			require.NotEmpty(t, resp.Header.Get("Retry-After"), what)
		case code == http.StatusInternalServerError && failedStatus(data):
			// returnInternalServerErrorOnFailure=true on a failed instance
		case code >= 500:
			t.Fatalf("server error for %s", what)
		case code >= 400:
			require.NotEmpty(t, bytes.TrimSpace(data), "a %d without a message: %s", code, what)
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				var e struct {
					Error string `json:"error"`
				}
				require.NoError(t, json.Unmarshal(data, &e), what)
				require.NotEmpty(t, e.Error, "a %d without an error message: %s", code, what)
			}
		}
	})
}

// failedStatus reports whether data is the status of a failed instance.
func failedStatus(data []byte) bool {
	var st struct {
		RuntimeStatus string `json:"runtimeStatus"`
	}
	return json.Unmarshal(data, &st) == nil && st.RuntimeStatus == string(jetflow.StatusFailed)
}

// handlerSeeds are requests of every route, good and bad.
var handlerSeeds = []struct {
	method, path, query, body, headers string
}{
	{"POST", base + "/orchestrators/E1_HelloSequence", "", "", ""},
	{"POST", base + "/orchestrators/E1_HelloSequence/fuzz-1", "", `"input"`, ""},
	{"POST", base + "/orchestrators/E1_HelloSequence/fuzz-done", "", "", ""},
	{"POST", base + "/orchestrators/NoSuchOrchestrator", "", "", ""},
	{"POST", base + "/orchestrators/E1_HelloSequence", "timeout=abc", "", ""},
	{"POST", base + "/orchestrators/E1_HelloSequence", "timeout=1", "", ""},
	{"POST", base + "/orchestrators/E1_HelloSequence/a%2Fb", "", "", ""},
	{"POST", base + "/orchestrators/E1_HelloSequence/" + strings.Repeat("x", 101), "", "", ""},
	{"POST", base + "/orchestrators/E1_HelloSequence", "", `{"unterminated":`, ""},
	{"POST", base + "/orchestrators/E1_HelloSequence", "", strings.Repeat("[", 10000), ""},
	{"GET", base + "/instances/fuzz-done", "", "", ""},
	{"GET", base + "/instances/fuzz-failed", "returnInternalServerErrorOnFailure=true", "", ""},
	{"GET", base + "/instances/fuzz-running", "showHistory=true&showHistoryOutput=true&showInput=false", "", ""},
	{"GET", base + "/instances/fuzz-done", "showHistory=maybe", "", ""},
	{"GET", base + "/instances/no-such-instance", "", "", ""},
	{"GET", base + "/instances/%C3%A4%20%E2%9C%93", "", "", ""},
	{"GET", base + "/instances", "runtimeStatus=Running,Completed&top=2", "", ""},
	{"GET", base + "/instances", "top=1", "", "x-ms-continuation-token: not-a-token"},
	{"GET", base + "/instances", "top=99999999999999999999", "", "x-ms-continuation-token: ZnV6ei1kb25l"},
	{"POST", base + "/orchestrators/E1_HelloSequence", "", `"x"`, "Content-Type: text/plain\nContent-Length: 1"},
	{"GET", base + "/instances/fuzz-done", "code=key", "", "x-functions-key: key"},
	{"GET", base + "/instances/", "runtimeStatus=Bogus&top=-1", "", ""},
	{"GET", base + "/instances", "createdTimeFrom=yesterday&instanceIdPrefix=fuzz", "", ""},
	{"DELETE", base + "/instances/fuzz-1", "", "", ""},
	{"DELETE", base + "/instances/fuzz-running", "", "", ""},
	{"DELETE", base + "/instances", "runtimeStatus=Completed&createdTimeFrom=2026-01-01T00:00:00Z", "", ""},
	{"DELETE", base + "/instances/", "", "", ""},
	{"POST", base + "/instances/fuzz-running/raiseEvent/Approval", "", `true`, ""},
	{"POST", base + "/instances/fuzz-running/raiseEvent/Approval", "", `{`, ""},
	{"POST", base + "/instances/fuzz-done/raiseEvent/Approval", "", "", ""},
	{"POST", base + "/instances/fuzz-running/raiseEvent/a%2Eb%20c", "", "", ""},
	{"POST", base + "/instances/fuzz-running/suspend", "reason=fuzz", "", ""},
	{"POST", base + "/instances/fuzz-running/resume", "reason=fuzz", "", ""},
	{"POST", base + "/instances/fuzz-1/terminate", "reason=%E2%9C%93", "", ""},
	{"POST", base + "/instances/%2F/terminate", "", "", ""},
	{"POST", base + "/instances/fuzz-done/restart", "restartWithNewInstanceId=maybe", "", ""},
	{"POST", base + "/instances/fuzz-done/restart", "restartWithNewInstanceId=false", "", ""},
	{"POST", base + "/instances/fuzz-failed/rewind", "reason=again", "", ""},
	{"POST", base + "/instances/fuzz-done/rewind", "", "", ""},
	{"GET", base + "/instances/fuzz-done/watch", "", "", ""},
	{"GET", base + "/instances/fuzz-running/watch", "", "", "Last-Event-ID: 18446744073709551615"},
	{"GET", base + "/instances/fuzz-running/watch", "lastEventId=-1", "", ""},
	{"GET", base + "/instances/no-such-instance/watch", "", "", "Last-Event-ID: abc"},
	{"GET", base + "/watch", "runtimeStatus=Nope", "", ""},
	{"GET", base + "/watch", "instanceIdPrefix=fuzz&runtimeStatus=Completed", "", "Last-Event-ID: 1000000"},
	{"GET", "/healthz", "", "", ""},
	{"PUT", base + "/instances/fuzz-done", "", "", ""},
	{"PATCH", base + "/orchestrators/E1_HelloSequence", "", "", ""},
	{"GET", base + "/no/such/route", "", "", ""},
	{"GET", "/", "", "", ""},
}

// TestWriteHandlersSeeds writes the seed corpus of FuzzHandlers with
// -write-fuzz-seeds.
func TestWriteHandlersSeeds(t *testing.T) {
	t.Parallel()
	if !*writeFuzzSeeds {
		return
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzHandlers")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for i, s := range handlerSeeds {
		entry := fmt.Sprintf("go test fuzz v1\nstring(%q)\nstring(%q)\nstring(%q)\n[]byte(%q)\nstring(%q)\n",
			s.method, s.path, s.query, s.body, s.headers)
		name := fmt.Sprintf("seed-%02d-%s", i, strings.ToLower(s.method))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(entry), 0o644))
	}
}
