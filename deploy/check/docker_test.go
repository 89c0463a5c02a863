package check

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/stretchr/testify/require"
)

// commands returns the instructions of type T in a stage.
func commands[T instructions.Command](s instructions.Stage) []T {
	var out []T
	for _, c := range s.Commands {
		if v, ok := c.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// repoFile reads a file at the repository's root.
func repoFile(t *testing.T, name string) io.Reader {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, name))
	require.NoError(t, err)
	return bytes.NewReader(b)
}

// TestDockerfile parses the repository's Dockerfile with BuildKit's own
// parser (there is no docker here to build it) and checks the image's
// shape: a build stage that builds ./cmd/jetflow statically, and a small
// final stage that runs that binary as a non-root user.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	ast, err := parser.Parse(repoFile(t, "Dockerfile"))
	require.NoError(t, err)
	require.Empty(t, ast.Warnings, "BuildKit's parser warns")
	stages, _, err := instructions.Parse(ast.AST, nil)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(stages), 2, "multi-stage")

	build, final := stages[0], stages[len(stages)-1]
	require.Equal(t, "build", build.Name)
	require.True(t, strings.HasPrefix(build.BaseName, "golang:"), "the build stage has the Go toolchain: %s", build.BaseName)
	require.True(t, strings.HasPrefix(final.BaseName, "gcr.io/distroless/static") || final.BaseName == "scratch",
		"the final stage is small: %s", final.BaseName)

	// The go build line: static, trimmed, of the CLI, to the path the
	// final stage copies.
	var out string
	for _, r := range commands[*instructions.RunCommand](build) {
		line := strings.Join(r.CmdLine, " ")
		if !strings.Contains(line, "go build") {
			continue
		}
		require.Empty(t, out, "one go build")
		require.Contains(t, line, "CGO_ENABLED=0")
		require.Contains(t, line, "-trimpath")
		require.Regexp(t, `go build .*\./cmd/jetflow(\s|$)`, line)
		fields := strings.Fields(line)
		i := slices.Index(fields, "-o")
		require.Positive(t, i, "go build -o PATH: %s", line)
		out = fields[i+1]
	}
	require.NotEmpty(t, out, "the build stage runs go build")

	var binary string
	for _, c := range commands[*instructions.CopyCommand](final) {
		if slices.Contains(c.SourcePaths, out) {
			require.Equal(t, build.Name, c.From)
			binary = c.DestPath
		}
	}
	require.NotEmpty(t, binary, "the final stage copies %s from the build stage", out)

	entry := commands[*instructions.EntrypointCommand](final)
	require.Len(t, entry, 1)
	require.False(t, entry[0].PrependShell, "ENTRYPOINT in exec form (the final image has no shell)")
	require.Equal(t, []string{binary}, entry[0].CmdLine, "ENTRYPOINT is the jetflow binary")

	users := commands[*instructions.UserCommand](final)
	require.NotEmpty(t, users, "the final stage sets USER")
	user, group, _ := strings.Cut(users[len(users)-1].User, ":")
	uid, err := strconv.Atoi(user)
	require.NoError(t, err, "USER by number, so that Kubernetes's runAsNonRoot can check it: %q", user)
	require.Positive(t, uid, "USER is not root")
	if group != "" {
		gid, err := strconv.Atoi(group)
		require.NoError(t, err)
		require.Positive(t, gid, "the group is not root")
	}

	var ports []string
	for _, e := range commands[*instructions.ExposeCommand](final) {
		ports = append(ports, e.Ports...)
	}
	require.Contains(t, ports, "8080", "the HTTP API's port")
}

// TestDockerignore checks that .dockerignore keeps out of the build
// context what the image does not need (.git, dev data, binaries) and
// keeps every file the build of ./cmd/jetflow reads: go.mod, go.sum and
// each Go and embedded file of the engine's packages it imports.
func TestDockerignore(t *testing.T) {
	t.Parallel()
	patterns, err := ignorefile.ReadAll(repoFile(t, ".dockerignore"))
	require.NoError(t, err)
	pm, err := patternmatcher.New(patterns)
	require.NoError(t, err)
	excluded := func(path string) bool {
		ex, err := pm.MatchesOrParentMatches(filepath.ToSlash(path))
		require.NoError(t, err)
		return ex
	}

	for _, p := range []string{".git/HEAD", ".jetflow/jetstream/x", "samples/.jetflow/x", "jetflow",
		"cmd/jetflow/jetflow.test", "httpapi/testdata/dfclient/node_modules/x/index.js",
		"docs/dashboard.png", "deploy/grafana/dashboard.png"} {
		require.True(t, excluded(p), "%s is kept out of the build context", p)
	}

	list := exec.Command("go", "list", "-deps",
		"-f", `{{if .Module}}{{if eq .Module.Path "github.com/jetflow/jetflow"}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{range .EmbedFiles}} {{.}}{{end}}{{end}}{{end}}`,
		"./cmd/jetflow")
	list.Dir = repoRoot
	listed, err := list.Output()
	require.NoError(t, err, "go list: %s", listed)
	root, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	needed := []string{"go.mod", "go.sum"}
	for line := range strings.Lines(string(listed)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		dir, err := filepath.Rel(root, fields[0])
		require.NoError(t, err)
		for _, name := range fields[1:] {
			needed = append(needed, filepath.Join(dir, name))
		}
	}
	require.Greater(t, len(needed), 20, "go list found the CLI's files")
	for _, p := range needed {
		require.False(t, excluded(p), "%s is needed by the build but .dockerignore leaves it out", p)
	}
}
