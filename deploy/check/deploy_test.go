package check

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// repoRoot is the engine's repository, from deploy/check.
const repoRoot = "../.."

// jetflowBin builds the jetflow binary once for every test of the
// package that needs it.
var jetflowBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "jetflow-check-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "jetflow")
	// In the engine's module, with its go.mod: this module needs none of
	// the CLI's dependencies.
	build := exec.Command("go", "build", "-o", bin, "github.com/jetflow/jetflow/cmd/jetflow")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building jetflow: %w: %s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := jetflowBin(); err == nil {
		_ = os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// checkCommandLine runs `jetflow --check ARGS` with only env in its
// environment (what the container gets) and returns its error output,
// or an error when the binary refuses the command line.
func checkCommandLine(t *testing.T, env map[string]string, args []string) error {
	t.Helper()
	bin, err := jetflowBin()
	require.NoError(t, err)
	cmd := exec.Command(bin, append([]string{"--check"}, args...)...)
	cmd.Env = []string{}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s (%w)", strings.TrimSpace(stderr.String()), err)
	}
	return nil
}
