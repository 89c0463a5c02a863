package httpapi_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/jetflow/jetflow/httpapi"
	"github.com/jetflow/jetflow/internal/testkit"
)

// dfClientDir holds the Node.js side of TestDurableFunctionsJSClient: the
// durable-functions npm package, pinned by its package-lock.json, and
// conformance.mjs.
const dfClientDir = "testdata/dfclient"

// TestDurableFunctionsJSClient drives the DurableClient of the official
// durable-functions npm package (see testdata/dfclient/package.json),
// unchanged, against a real engine and HTTP server: start, status, list
// with filters and paging, events, terminate, suspend, resume, rewind,
// purge (one and by filter) and the check-status responses. It runs
// testdata/dfclient/conformance.mjs twice, each against an engine of its
// own:
//
//   - webhook: the client fills the management URL templates of its
//     binding data, which carry the API key as code=, as a Functions host
//     gives them;
//   - rpc: the binding data has an rpcBaseUrl, which the client then uses
//     for every call, as JavaScript apps on current Functions hosts do.
//
// Checks marked known in conformance.mjs (documented differences from
// Durable Functions) print KNOWN and do not fail the test; any other
// failing check does, with the script's output.
//
// It needs node and npm (skipped without them) and, the first time, the
// npm registry: `npm ci` installs the locked packages into
// testdata/dfclient/node_modules, reused while package-lock.json is
// unchanged.
func TestDurableFunctionsJSClient(t *testing.T) {
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		t.Skip("node and npm are needed to run the durable-functions client (testdata/dfclient): not on PATH")
	}
	testkit.NPMCI(t, npm, dfClientDir)

	for _, mode := range []string{"webhook", "rpc"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			var cfg httpapi.Config
			if mode == "webhook" {
				cfg.APIKey = "conformance-key"
			}
			b := setupWith(t, cfg) // a real engine and a server on 127.0.0.1

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "conformance.mjs", b.srv.URL+httpapi.BasePath, "--mode="+mode)
			cmd.Dir = dfClientDir
			cmd.Env = append(os.Environ(), "JETFLOW_API_KEY="+cfg.APIKey)
			cmd.WaitDelay = 5 * time.Second
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if ctx.Err() != nil {
				t.Fatalf("conformance.mjs --mode=%s did not finish in time:\n%s", mode, out.String())
			}
			if err != nil {
				t.Fatalf("conformance.mjs --mode=%s: %v:\n%s", mode, err, out.String())
			}
			t.Logf("conformance.mjs --mode=%s:\n%s", mode, out.String())
		})
	}
}
