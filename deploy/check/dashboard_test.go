package check

import (
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/jetflow/jetflow/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "write the dashboard JSON from dashboard.go")

const alertsFile = "../prometheus/alerts.yml"

// notCharted are the exported jetflow_ families that no panel shows, each
// with the reason. Empty today: every family is on some panel.
var notCharted = map[string]string{}

// dashboardTarget is a panel's query as the JSON file holds it.
type dashboardTarget struct {
	Panel   string
	Expr    string
	Instant bool
}

// readDashboard reads the committed dashboard and checks what file
// provisioning needs: no __inputs or ${DS_…} placeholders, every panel
// on the ${datasource} variable, and no legacy graph panels.
func readDashboard(t *testing.T) []dashboardTarget {
	t.Helper()
	raw, err := os.ReadFile(DashboardFile)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "__inputs")
	require.NotContains(t, string(raw), "${DS_")
	var d struct {
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Type, Name string
				Query      any
			}
		}
		Panels []struct {
			Type, Title string
			Datasource  *struct{ Type, UID string }
			Targets     []struct {
				Expr       string
				Instant    bool
				Datasource struct{ Type, UID string }
			}
		}
	}
	require.NoError(t, json.Unmarshal(raw, &d))
	require.NotEmpty(t, d.UID)
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Type+":"+v.Name)
	}
	require.Equal(t, []string{"datasource:datasource", "query:hub", "query:orchestrator", "query:activity"}, vars)
	var out []dashboardTarget
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		require.Contains(t, []string{"timeseries", "stat", "table", "bargauge"}, p.Type, "panel %q", p.Title)
		require.NotNil(t, p.Datasource, "panel %q", p.Title)
		require.Equal(t, "${datasource}", p.Datasource.UID, "panel %q", p.Title)
		require.NotEmpty(t, p.Targets, "panel %q", p.Title)
		for _, tg := range p.Targets {
			require.Equal(t, "${datasource}", tg.Datasource.UID, "panel %q", p.Title)
			out = append(out, dashboardTarget{Panel: p.Title, Expr: tg.Expr, Instant: tg.Instant})
		}
	}
	return out
}

// substitute replaces Grafana's variables with values PromQL accepts:
// the hub of jetflow dev, every orchestrator and activity, and fixed
// windows.
func substitute(expr, rateInterval, rng string) string {
	return strings.NewReplacer(
		"$__rate_interval", rateInterval, "$__range", rng, "$__interval", rateInterval,
		"$hub", "jetflow", "$orchestrator", ".*", "$activity", ".*",
	).Replace(expr)
}

// readAlerts returns the alert rules' names and expressions.
func readAlerts(t *testing.T) map[string]string {
	t.Helper()
	groups, errs := rulefmt.ParseFile(alertsFile, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.Default())
	require.Empty(t, errs)
	out := map[string]string{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Alert, "only alerting rules")
			require.NotZero(t, r.For, "%s: for", r.Alert)
			require.NotEmpty(t, r.Labels["severity"], "%s: severity", r.Alert)
			require.NotEmpty(t, r.Annotations["summary"], "%s: summary", r.Alert)
			require.NotEmpty(t, r.Annotations["description"], "%s: description", r.Alert)
			out[r.Alert] = r.Expr
		}
	}
	return out
}

// metricNames parses expr and returns the metric names it selects.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	require.NoError(t, err, "%s", expr)
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			require.NotEmpty(t, vs.Name, "a selector without a metric name in %s", expr)
			names = append(names, vs.Name)
		}
		return nil
	})
	return names
}

// recorder is a Registerer that keeps the names of the families it is
// given.
type recorder struct {
	prometheus.Registerer
	names map[string]bool
}

func (r *recorder) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		// Desc has no getter: its String is Desc{fqName: "name", ...}.
		s := d.String()
		s = s[strings.Index(s, `fqName: "`)+len(`fqName: "`):]
		r.names[s[:strings.Index(s, `"`)]] = true
	}
	return r.Registerer.Register(c)
}

// exportedFamilies are the names of the families of a process as
// cmd/jetflow builds it: metrics.NewRegistry, metrics.New and the hub
// collectors.
func exportedFamilies(t *testing.T) map[string]bool {
	t.Helper()
	// The hub collectors are only described, never collected: they have
	// no hub here.
	r := &recorder{Registerer: prometheus.NewRegistry(), names: map[string]bool{}}
	_, err := metrics.New(r)
	require.NoError(t, err)
	require.NoError(t, r.Register(metrics.NewBacklogCollector(nil, 0)))
	require.NoError(t, r.Register(metrics.NewInstancesCollector(nil, 0)))
	reg := metrics.NewRegistry()
	families, err := reg.Gather() // the Go and process collectors and build info
	require.NoError(t, err)
	for _, f := range families {
		r.names[f.GetName()] = true
	}
	return r.names
}

// family is the family a series name belongs to, or "".
func family(exported map[string]bool, name string) string {
	if exported[name] {
		return name
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && exported[base] {
			return base
		}
	}
	return ""
}

func TestDashboardIsGenerated(t *testing.T) {
	t.Parallel()
	want := Dashboard()
	if *update {
		require.NoError(t, os.WriteFile(DashboardFile, want, 0o644))
	}
	got, err := os.ReadFile(DashboardFile)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got), "the dashboard JSON is not what dashboard.go renders: go test -run TestDashboardIsGenerated -update")
}

func TestQueriesParseAndUseExportedFamilies(t *testing.T) {
	t.Parallel()
	exported := exportedFamilies(t)
	charted := map[string]bool{}
	check := func(where, expr string) {
		for _, n := range metricNames(t, expr) {
			f := family(exported, n)
			require.NotEmpty(t, f, "%s: %s is no family the engine exports", where, n)
			charted[f] = true
		}
	}
	for _, tg := range readDashboard(t) {
		check("panel "+tg.Panel, substitute(tg.Expr, "1m", "1h"))
	}
	for name, expr := range readAlerts(t) {
		check("alert "+name, expr)
	}
	var missing []string
	for f := range exported {
		if strings.HasPrefix(f, metrics.Namespace+"_") && !charted[f] {
			if _, ok := notCharted[f]; !ok {
				missing = append(missing, f)
			}
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "families on no panel: chart them or list them in notCharted with a reason")
	for f := range notCharted {
		require.True(t, exported[f], "notCharted lists %s, which is not exported", f)
		require.False(t, charted[f], "notCharted lists %s, which a panel shows", f)
	}
	require.True(t, slices.ContainsFunc(readDashboard(t), func(tg dashboardTarget) bool {
		return strings.Contains(tg.Expr, `jetflow_consumer_waiting_pulls{hub=~"$hub"}) == 0`)
	}), "the no-worker table")
}
