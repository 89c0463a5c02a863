package metrics

import (
	"net/http"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry holding the standard Go and process
// collectors (go_*, process_*) and jetflow_build_info, for the engine's
// families (New) and collectors to be added to.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		BuildInfo(),
	)
	return reg
}

// BuildInfo returns the collector of jetflow_build_info, a gauge of 1
// whose labels say what runs: the main module's version, the VCS revision
// it was built from and the Go version.
func BuildInfo() prometheus.Collector {
	version, revision := "(devel)", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace,
		Name:      "build_info",
		Help:      "A metric with a constant value of 1, labelled with the version, VCS revision and Go version jetflow was built with.",
		ConstLabels: prometheus.Labels{
			"version":   version,
			"revision":  revision,
			"goversion": runtime.Version(),
		},
	})
	g.Set(1)
	return g
}

// Handler serves the families of g in the Prometheus exposition formats
// (text, or OpenMetrics when asked for), for GET /metrics. A collector
// that fails (the hub is unreachable) does not fail the scrape: what the
// others gathered is served, and the failure is counted in
// jetflow_scrape_errors_total by the collector itself.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

// HubLabel is the label that ForHub puts on every family: which hub the
// process serves.
const HubLabel = "hub"

// ForHub returns reg with the label hub="<hub>" on everything registered
// through it, so that one Prometheus and one dashboard tell the hubs apart:
// register the Engine and the collectors of a hub's process through it
// (jetflow's own processes do).
func ForHub(reg prometheus.Registerer, hub string) prometheus.Registerer {
	return prometheus.WrapRegistererWith(prometheus.Labels{HubLabel: hub}, reg)
}
