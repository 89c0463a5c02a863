package testkit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// NPMCI installs the packages of dir's package-lock.json into
// dir/node_modules with `npm ci` (npm is the npm binary), unless the
// installation there was made from the same package.json and
// package-lock.json (a stamp file in node_modules records their hash), so
// that the registry is needed only the first time.
func NPMCI(t testing.TB, npm, dir string) {
	t.Helper()
	h := sha256.New()
	for _, name := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("reading %s: %v", name, err)
		}
		h.Write(b)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	stamp := filepath.Join(dir, "node_modules", ".jetflow-installed")
	if b, err := os.ReadFile(stamp); err == nil && string(b) == sum {
		return
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reading %s: %v", stamp, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v:\n%s", dir, err, out)
	}
	if err := os.WriteFile(stamp, []byte(sum), 0o644); err != nil {
		t.Fatalf("writing %s: %v", stamp, err)
	}
}
