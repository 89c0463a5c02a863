package metrics

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/jetflow/jetflow"
	"github.com/jetflow/jetflow/client"
	"github.com/jetflow/jetflow/internal/storage"
	"github.com/jetflow/jetflow/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultScrapeTimeout bounds the reads of a collector at scrape time
// when its constructor is given 0.
const DefaultScrapeTimeout = 5 * time.Second

// scrapeStats are the families every scrape-time collector reports about
// itself, told apart by a constant collector label.
type scrapeStats struct {
	errors   atomic.Uint64
	errDesc  *prometheus.Desc
	durDesc  *prometheus.Desc
	lastDesc *prometheus.Desc
}

func newScrapeStats(collector string) *scrapeStats {
	cl := prometheus.Labels{"collector": collector}
	return &scrapeStats{
		errDesc: prometheus.NewDesc(Namespace+"_scrape_errors_total",
			"Scrapes in which a collector could not read all it reads from the hub (it served what it read).", nil, cl),
		durDesc: prometheus.NewDesc(Namespace+"_scrape_duration_seconds",
			"How long a collector took to read the hub in this scrape.", nil, cl),
		lastDesc: prometheus.NewDesc(Namespace+"_scrape_success",
			"Whether a collector read all it reads from the hub in this scrape (1) or not (0).", nil, cl),
	}
}

func (s *scrapeStats) describe(ch chan<- *prometheus.Desc) {
	ch <- s.errDesc
	ch <- s.durDesc
	ch <- s.lastDesc
}

func (s *scrapeStats) collect(ch chan<- prometheus.Metric, began time.Time, err error) {
	ok := 1.0
	if err != nil {
		s.errors.Add(1)
		ok = 0
	}
	ch <- prometheus.MustNewConstMetric(s.errDesc, prometheus.CounterValue, float64(s.errors.Load()))
	ch <- prometheus.MustNewConstMetric(s.durDesc, prometheus.GaugeValue, time.Since(began).Seconds())
	ch <- prometheus.MustNewConstMetric(s.lastDesc, prometheus.GaugeValue, ok)
}

// BacklogCollector reports, at each scrape, the backlog of every
// orchestrator and activity consumer of the hub as the server counts it
// (read from the consumers' info): the families jetflow_consumer_*, labelled
// with kind (orchestrator or activity) and name. A consumer with pending
// messages and no waiting pulls has no worker serving it.
type BacklogCollector struct {
	store   *storage.Store
	timeout time.Duration
	stats   *scrapeStats

	pending, ackPending, redelivered, waiting, age *prometheus.Desc
}

// NewBacklogCollector returns the backlog collector of the hub behind
// store; each scrape reads it within timeout (DefaultScrapeTimeout when
// 0).
func NewBacklogCollector(store *jetstream.Store, timeout time.Duration) *BacklogCollector {
	if timeout <= 0 {
		timeout = DefaultScrapeTimeout
	}
	labels := []string{"kind", "name"}
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(Namespace+"_consumer_"+name, help, labels, nil)
	}
	return &BacklogCollector{
		store:   storage.Of(store),
		timeout: timeout,
		stats:   newScrapeStats("backlog"),
		pending: desc("pending_messages",
			"Messages waiting in the stream that the consumer has not delivered yet (the backlog), by kind and orchestrator or activity name."),
		ackPending: desc("ack_pending_messages",
			"Messages delivered to workers and not yet acknowledged (work in progress)."),
		redelivered: desc("redelivered_messages",
			"Messages delivered more than once and not yet acknowledged."),
		waiting: desc("waiting_pulls",
			"Pull requests waiting on the consumer: 0 with a backlog means that no worker serves the name."),
		age: desc("backlog_age_seconds",
			"Time since the oldest message not yet delivered was stored; 0 without a backlog."),
	}
}

// Describe sends the descriptors of the collector's families.
func (c *BacklogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pending, c.ackPending, c.redelivered, c.waiting, c.age} {
		ch <- d
	}
	c.stats.describe(ch)
}

// Collect reads the backlog and sends it; a failed read is counted in
// jetflow_scrape_errors_total{collector="backlog"}.
func (c *BacklogCollector) Collect(ch chan<- prometheus.Metric) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	backlog, err := c.store.Backlog(ctx)
	now := c.store.Now()
	for _, b := range backlog {
		age := 0.0
		if !b.OldestStored.IsZero() {
			age = max(now.Sub(b.OldestStored), 0).Seconds()
		}
		for _, v := range []struct {
			d *prometheus.Desc
			v float64
		}{{c.pending, float64(b.Pending)}, {c.ackPending, float64(b.AckPending)}, {c.redelivered, float64(b.Redelivered)},
			{c.waiting, float64(b.WaitingPulls)}, {c.age, age}} {
			ch <- prometheus.MustNewConstMetric(v.d, prometheus.GaugeValue, v.v, b.Kind, b.Name)
		}
	}
	c.stats.collect(ch, began, err)
}

// InstancesCollector reports, at each scrape, how many instances the hub
// holds by orchestrator and runtime status (jetflow_instances), from the
// status bucket (client.Client.InstanceCounts), so that it is right
// whichever processes run them. Open instances are those Pending, Running
// or Suspended; finished ones count until purged. Each orchestrator with
// instances has a series for every runtime status, 0 included.
type InstancesCollector struct {
	client  *client.Client
	timeout time.Duration
	stats   *scrapeStats
	desc    *prometheus.Desc
}

// NewInstancesCollector returns the instances collector reading through
// c (whose in-memory index of the status bucket it starts, as a list
// would); each scrape waits at most timeout (DefaultScrapeTimeout when 0)
// for the index to catch up.
func NewInstancesCollector(c *client.Client, timeout time.Duration) *InstancesCollector {
	if timeout <= 0 {
		timeout = DefaultScrapeTimeout
	}
	return &InstancesCollector{
		client:  c,
		timeout: timeout,
		stats:   newScrapeStats("instances"),
		desc: prometheus.NewDesc(Namespace+"_instances",
			"Instances in the hub's status bucket, by orchestrator and runtime status (open: Pending, Running, Suspended).",
			[]string{"orchestrator", "runtime_status"}, nil),
	}
}

// Describe sends the descriptors of the collector's families.
func (c *InstancesCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	c.stats.describe(ch)
}

// Collect reads the counts and sends them; a failed read is counted in
// jetflow_scrape_errors_total{collector="instances"}.
func (c *InstancesCollector) Collect(ch chan<- prometheus.Metric) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	counts, err := c.client.InstanceCounts(ctx)
	byName := map[string]map[jetflow.RuntimeStatus]int{}
	for _, ic := range counts {
		if byName[ic.Orchestrator] == nil {
			byName[ic.Orchestrator] = map[jetflow.RuntimeStatus]int{}
		}
		status := ic.RuntimeStatus
		if status == "" {
			status = "Unknown"
		}
		byName[ic.Orchestrator][status] += ic.Count
	}
	for name, statuses := range byName {
		for _, s := range jetflow.RuntimeStatuses {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(statuses[s]), name, string(s))
		}
		if n, ok := statuses["Unknown"]; ok {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), name, "Unknown")
		}
	}
	c.stats.collect(ch, began, err)
}
