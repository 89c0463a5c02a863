//go:build chaos

package chaos_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// bin holds the paths of the binaries TestMain builds.
var bin struct {
	natsServer  string
	jetflow     string
	chaosWorker string
}

// TestMain builds nats-server (from the module's own nats-server/v2
// dependency), jetflow and the randomized test's chaosworker once for the
// whole run, into a temporary directory.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "jetflow-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin.natsServer = filepath.Join(dir, "nats-server")
	bin.jetflow = filepath.Join(dir, "jetflow")
	bin.chaosWorker = filepath.Join(dir, "chaosworker")
	for _, b := range []struct{ out, pkg string }{
		{bin.natsServer, "github.com/nats-io/nats-server/v2"},
		{bin.jetflow, "./cmd/jetflow"},
		{bin.chaosWorker, "./chaos/chaosworker"},
	} {
		if err := build(b.out, b.pkg); err != nil {
			fmt.Fprintln(os.Stderr, "chaos:", err)
			return 1
		}
	}
	return m.Run()
}

// build compiles a main package of the module (whose root is the parent
// directory: tests run in their package's directory).
func build(out, pkg string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("finding the go tool to build %s: %w", pkg, err)
	}
	start := time.Now()
	cmd := exec.Command(goTool, "build", "-o", out, pkg)
	cmd.Dir = ".."
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	fmt.Fprintf(os.Stderr, "chaos: built %s in %s\n", pkg, time.Since(start).Round(100*time.Millisecond))
	return nil
}
