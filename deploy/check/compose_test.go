package check

import (
	"context"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/jetflow/jetflow/worker"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/dns"
	"github.com/stretchr/testify/require"
)

// composeDir is the compose deployment, from deploy/check.
const composeDir = "../compose"

// loadCompose loads compose.yaml as `docker compose` would, with the
// variables of envFiles (and none from this process's environment),
// validating it against the compose specification's schema.
func loadCompose(t *testing.T, envFiles ...string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(composeDir, "compose.yaml")},
		cli.WithWorkingDirectory(composeDir),
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithResolvedPaths(true),
	)
	require.NoError(t, err)
	return opts.LoadProject(context.Background())
}

// jetflowServices are the services that run the jetflow image, by name.
func jetflowServices(t *testing.T, p *types.Project) map[string]types.ServiceConfig {
	t.Helper()
	root, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	out := map[string]types.ServiceConfig{}
	for name, s := range p.Services {
		if s.Build != nil {
			require.Equal(t, root, s.Build.Context, "%s builds the repository", name)
			require.Equal(t, "Dockerfile", s.Build.Dockerfile, name)
			require.Empty(t, s.Entrypoint, "%s keeps the image's entrypoint, jetflow", name)
			out[name] = s
		}
	}
	return out
}

// environment is a service's environment as its container gets it.
func environment(s types.ServiceConfig) map[string]string {
	env := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	return env
}

// flagValue returns the value of --name in a command line.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// TestCompose loads deploy/compose with compose-go (the compose
// specification's schema, interpolation, merge keys) and checks that every
// jetflow command line in it is one the binary accepts, and that the
// services are wired as deploy/README.md says.
func TestCompose(t *testing.T) {
	t.Parallel()
	p, err := loadCompose(t, filepath.Join(composeDir, ".env.example"))
	require.NoError(t, err)

	names := slices.Sorted(maps.Keys(p.Services))
	require.Equal(t, []string{"grafana", "init", "nats-1", "nats-2", "nats-3",
		"nats-exporter-1", "nats-exporter-2", "nats-exporter-3", "prometheus", "server", "worker"}, names)

	jf := jetflowServices(t, p)
	require.Len(t, jf, 3, "init, server and worker run the jetflow image")
	for name, s := range jf {
		t.Run("jetflow --check "+name, func(t *testing.T) {
			t.Parallel()
			env := environment(s)
			require.NoError(t, checkCommandLine(t, env, s.Command), "%s: %q", name, s.Command)
			// The check is real: the same line with a flag the verb does
			// not have is refused.
			err := checkCommandLine(t, env, append(slices.Clone(s.Command), "--no-such-flag"))
			require.ErrorContains(t, err, "unknown flag: --no-such-flag")
			if s.HealthCheck != nil {
				test := s.HealthCheck.Test
				require.Equal(t, []string{"CMD", "/jetflow"}, []string(test[:2]), "%s's health check runs jetflow", name)
				require.NoError(t, checkCommandLine(t, env, test[2:]), "%s's health check %q", name, test)
			}
			// Its role of deploy/nats/roles.conf, and replies under that
			// role's inbox prefix.
			role := map[string]string{"init": "admin", "server": "server", "worker": "worker"}[s.Command[0]]
			require.NotEmpty(t, role, "%s runs %s", name, s.Command[0])
			user, _ := flagValue(s.Command, "user")
			prefix, _ := flagValue(s.Command, "inbox-prefix")
			require.Equal(t, role, user, name)
			require.Equal(t, "_INBOX_"+role, prefix, name)
			_, onCommandLine := flagValue(s.Command, "password")
			require.False(t, onCommandLine, "%s: a password on the command line is in every process list", name)
			require.NotEmpty(t, env["JETFLOW_NATS_PASSWORD"], "%s: its role's password, from .env", name)
			urls := strings.Split(env["JETFLOW_NATS_URL"], ",")
			require.Len(t, urls, 3, "%s knows every NATS server", name)
			for _, u := range urls {
				_, ok := p.Services[strings.TrimSuffix(strings.TrimPrefix(u, "nats://"), ":4222")]
				require.True(t, ok, "%s: %s is not a compose service", name, u)
			}
		})
	}

	init := jf["init"]
	require.Equal(t, "init", init.Command[0])
	replicas, _ := flagValue(init.Command, "replicas")
	require.Equal(t, "3", replicas, "the hub is created with 3 replicas")
	require.Equal(t, "on-failure", init.Restart, "init retries until the cluster has a JetStream leader")

	srv := jf["server"]
	require.Equal(t, "server", srv.Command[0])
	httpAddr, _ := flagValue(srv.Command, "http")
	require.Equal(t, "0.0.0.0:8080", httpAddr)
	require.NotEmpty(t, environment(srv)["JETFLOW_API_KEY"], "the HTTP API beyond loopback has a key")
	require.NotNil(t, srv.HealthCheck)
	require.Equal(t, "http://127.0.0.1:8080/healthz", srv.HealthCheck.Test[len(srv.HealthCheck.Test)-1])

	w := jf["worker"]
	require.Equal(t, "worker", w.Command[0])
	metricsAddr, _ := flagValue(w.Command, "metrics")
	require.Equal(t, ":9464", metricsAddr)
	require.NotNil(t, w.Deploy)
	require.Equal(t, 2, *w.Deploy.Replicas)
	for _, s := range []types.ServiceConfig{srv, w} {
		require.NotNil(t, s.StopGracePeriod, s.Name)
		require.Greater(t, time.Duration(*s.StopGracePeriod), worker.StopTimeout,
			"%s: compose must not kill a process before it drained (worker.StopTimeout)", s.Name)
	}
	for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
		require.Equal(t, "service_healthy", init.DependsOn[n].Condition, "init waits for %s", n)
	}
	for _, s := range []types.ServiceConfig{srv, w} {
		require.Equal(t, "service_completed_successfully", s.DependsOn["init"].Condition, "%s waits for the hub", s.Name)
	}

	// Every file a service mounts is in the repository.
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				_, err := os.Stat(v.Source)
				require.NoError(t, err, "%s mounts %s", name, v.Source)
			}
		}
	}

	t.Run("prometheus", func(t *testing.T) { checkComposePrometheus(t, p, w) })
}

// checkComposePrometheus loads the Prometheus configuration the compose
// file mounts with Prometheus's own parser and checks that it loads the
// alert rules and scrapes every jetflow process and NATS exporter.
func checkComposePrometheus(t *testing.T, p *types.Project, w types.ServiceConfig) {
	prom := p.Services["prometheus"]
	mounts := map[string]string{}
	for _, v := range prom.Volumes {
		mounts[v.Target] = v.Source
	}
	src, err := os.ReadFile(mounts["/etc/prometheus/prometheus.yml"])
	require.NoError(t, err)
	cfg, err := config.Load(string(src), nil)
	require.NoError(t, err)
	alerts, err := filepath.Abs(alertsFile)
	require.NoError(t, err)
	require.Len(t, cfg.RuleFiles, 1)
	require.Equal(t, alerts, mounts[cfg.RuleFiles[0]], "the rule file is deploy/prometheus/alerts.yml")

	jobs := map[string]discovery.Configs{}
	for _, sc := range cfg.ScrapeConfigs {
		jobs[sc.JobName] = sc.ServiceDiscoveryConfigs
		if sc.JobName == "jetflow-server" {
			h := sc.HTTPClientConfig.HTTPHeaders.Headers["x-functions-key"]
			require.Len(t, h.Files, 1, "the server's /metrics needs the read key")
			secret := strings.TrimPrefix(h.Files[0], "/run/secrets/")
			require.True(t, slices.ContainsFunc(prom.Secrets, func(s types.ServiceSecretConfig) bool { return s.Source == secret }),
				"prometheus mounts the secret %s", secret)
			require.Contains(t, environment(p.Services["server"])["JETFLOW_KEYS"], `"scopes": ["read"]`)
		}
	}
	require.ElementsMatch(t, []string{"jetflow-server", "jetflow-worker", "nats"}, slices.Collect(maps.Keys(jobs)))

	targets := func(job string) []string {
		var out []string
		for _, c := range jobs[job] {
			sc, ok := c.(discovery.StaticConfig)
			require.True(t, ok, "%s: static targets", job)
			for _, g := range sc {
				for _, tg := range g.Targets {
					out = append(out, string(tg["__address__"]))
				}
			}
		}
		return out
	}
	require.Equal(t, []string{"server:8080"}, targets("jetflow-server"))
	var exporters []string
	for _, addr := range targets("nats") {
		host, port, err := net.SplitHostPort(addr)
		require.NoError(t, err)
		require.Equal(t, "7777", port, "prometheus-nats-exporter's port")
		exporters = append(exporters, host)
		exp, ok := p.Services[host]
		require.True(t, ok, "%s is a compose service", host)
		monitored := exp.Command[len(exp.Command)-1]
		require.Contains(t, monitored, ":8222", "%s reads a server's monitoring port", host)
	}
	require.ElementsMatch(t, []string{"nats-exporter-1", "nats-exporter-2", "nats-exporter-3"}, exporters)

	require.Len(t, jobs["jetflow-worker"], 1)
	d, ok := jobs["jetflow-worker"][0].(*dns.SDConfig)
	require.True(t, ok, "workers are found by DNS, whatever --scale says")
	require.Equal(t, []string{w.Name}, d.Names)
	metricsAddr, _ := flagValue(w.Command, "metrics")
	require.Equal(t, metricsAddr, ":"+strconv.Itoa(d.Port))
}

// TestComposeNeedsSecrets: without the .env file, compose refuses the
// project and names the missing secret.
func TestComposeNeedsSecrets(t *testing.T) {
	t.Parallel()
	_, err := loadCompose(t)
	require.ErrorContains(t, err, "set it in .env")
}

// TestComposeNATSConfig loads each NATS server's configuration as the
// compose file mounts it, with nats-server's own parser and the service's
// environment, and checks the durability settings jetflow relies on.
// Not parallel: nats-server reads the passwords from the environment.
func TestComposeNATSConfig(t *testing.T) {
	p, err := loadCompose(t, filepath.Join(composeDir, ".env.example"))
	require.NoError(t, err)
	for _, name := range []string{"nats-1", "nats-2", "nats-3"} {
		s := p.Services[name]
		require.Equal(t, []string{"-c", "/etc/nats/nats.conf"}, []string(s.Command))
		// The mounted files, at their paths in the container.
		root := t.TempDir()
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			b, err := os.ReadFile(v.Source)
			require.NoError(t, err)
			dst := filepath.Join(root, v.Target)
			require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
			require.NoError(t, os.WriteFile(dst, b, 0o644))
		}
		for k, v := range environment(s) {
			t.Setenv(k, v)
		}
		opts, err := server.ProcessConfigFile(filepath.Join(root, "etc/nats/nats.conf"))
		require.NoError(t, err, name)

		require.Equal(t, name, opts.ServerName)
		require.True(t, opts.JetStream, "%s: JetStream", name)
		require.True(t, opts.SyncAlways, "%s: sync_interval: always (fsync before every acknowledgement)", name)
		require.Equal(t, "/data/jetstream", opts.StoreDir, "%s: file storage on its volume", name)
		require.GreaterOrEqual(t, int(opts.MaxPayload), jetstream.MinServerPayload, "%s: max_payload", name)
		require.Equal(t, 8222, opts.HTTPPort, "%s: monitoring for the exporter", name)
		require.Equal(t, "jetflow", opts.Cluster.Name)
		var peers []string
		for _, r := range opts.Routes {
			peers = append(peers, r.Hostname())
		}
		require.ElementsMatch(t, []string{"nats-1", "nats-2", "nats-3"}, peers, "%s routes to every node", name)

		users := map[string]string{}
		for _, u := range opts.Users {
			users[u.Username] = u.Password
			require.NotNil(t, u.Permissions, "%s: user %s has a role", name, u.Username)
		}
		require.Equal(t, map[string]string{
			"admin": "change-me-admin", "server": "change-me-server", "worker": "change-me-worker",
			"worker_hello": "change-me-worker-hello", "sidecar": "change-me-sidecar", "watcher": "change-me-watcher",
			"watcher_one": "change-me-watcher-one",
		}, users, "%s: the roles of deploy/nats/roles.conf, passwords from the environment", name)
	}
}
