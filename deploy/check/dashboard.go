package check

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
)

// DashboardFile is the dashboard's JSON, relative to this directory.
const DashboardFile = "../grafana/dashboards/jetflow.json"

// Panel is one panel of the dashboard.
type Panel struct {
	Title       string
	Description string
	// Type is timeseries, stat, table or bargauge.
	Type string
	// Unit is Grafana's unit id (s, percentunit, bytes, short, reqps, ...).
	Unit    string
	Targets []Target
	// Width is in grid units of 24; defaults to 8.
	Width int
}

// Target is one query of a panel.
type Target struct {
	Expr   string
	Legend string
	// Instant asks for the value at the end of the range only (tables,
	// stats and bar gauges of counts).
	Instant bool
}

// Row is a titled row of panels.
type Row struct {
	Title  string
	Panels []Panel
}

// Selectors of the template variables.
const (
	hub  = `hub=~"$hub"`
	orch = `orchestrator=~"$orchestrator"`
	act  = `activity=~"$activity"`
	open = `runtime_status=~"Pending|Running|Suspended"`
	ri   = `[$__rate_interval]`
)

func q(quantile, family, by, sel string) string {
	return "histogram_quantile(" + quantile + ", sum by (" + by + ") (rate(" + family + "_bucket{" + sel + "}" + ri + ")))"
}

func t(expr, legend string) Target { return Target{Expr: forHub(expr), Legend: legend} }

func instant(expr, legend string) Target {
	return Target{Expr: forHub(expr), Legend: legend, Instant: true}
}

// family is a jetflow family in a query, with the opening of its label
// matchers if it has them.
var familyRef = regexp.MustCompile(`\b(jetflow_[a-z_]+)(\{?)`)

// forHub adds the hub variable's matcher to every jetflow family of expr
// (the label metrics.ForHub puts on them), but for jetflow_build_info,
// which is the process's.
func forHub(expr string) string {
	return familyRef.ReplaceAllStringFunc(expr, func(m string) string {
		name, open := strings.CutSuffix(m, "{")
		switch {
		case name == "jetflow_build_info":
			return m
		case open:
			return name + "{" + hub + ","
		}
		return name + "{" + hub + "}"
	})
}

// Rows are the dashboard's rows, top to bottom.
var Rows = []Row{
	{Title: "Overview", Panels: []Panel{
		{Title: "Started / min", Type: "stat", Unit: "short", Width: 4,
			Description: "Executions begun per minute (new instances, restarts, continue-as-new).",
			Targets:     []Target{t(`sum(rate(jetflow_orchestrations_started_total{`+orch+`}`+ri+`)) * 60`, "started/min")}},
		{Title: "Completions by status / min", Type: "timeseries", Unit: "short", Width: 8,
			Description: "Executions ended per minute, by final status.",
			Targets:     []Target{t(`sum by (status) (rate(jetflow_orchestrations_completed_total{`+orch+`}`+ri+`)) * 60`, "{{status}}")}},
		{Title: "Failure ratio", Type: "stat", Unit: "percentunit", Width: 4,
			Description: "Failed executions over ended executions, in the dashboard's range.",
			Targets: []Target{instant(`(sum(increase(jetflow_orchestrations_completed_total{`+orch+`,status="Failed"}[$__range])) or vector(0))`+
				` / sum(increase(jetflow_orchestrations_completed_total{`+orch+`}[$__range]))`, "failed")}},
		{Title: "Open instances", Type: "stat", Unit: "short", Width: 4,
			Description: "Instances Pending, Running or Suspended in the hub's status bucket (read at scrape time; max over the processes that export it).",
			Targets:     []Target{t(`sum(max by (hub, orchestrator, runtime_status) (jetflow_instances{`+orch+`,`+open+`}))`, "open")}},
		{Title: "Poison messages (1h)", Type: "stat", Unit: "short", Width: 4,
			Description: "Messages given up after MaxDeliveries in the last hour: each failed an instance or an activity call.",
			Targets:     []Target{instant(`sum(increase(jetflow_poison_messages_total[1h])) or vector(0)`, "poison")}},
		{Title: "Open instances by orchestrator and status", Type: "timeseries", Unit: "short", Width: 8,
			Targets: []Target{t(`max by (hub, orchestrator, runtime_status) (jetflow_instances{`+orch+`,`+open+`})`, "{{orchestrator}} {{runtime_status}}")}},
		{Title: "Backlog", Type: "timeseries", Unit: "short", Width: 8,
			Description: "Messages in JetStream that no worker has taken yet, all consumers.",
			Targets:     []Target{t(`sum(max by (hub, kind, name) (jetflow_consumer_pending_messages))`, "pending")}},
		{Title: "Oldest backlog", Type: "stat", Unit: "s", Width: 8,
			Description: "Age of the oldest message not yet delivered, over all consumers: how far behind the workers are.",
			Targets:     []Target{t(`max(jetflow_consumer_backlog_age_seconds)`, "age")}},
	}},
	{Title: "Orchestrations", Panels: []Panel{
		{Title: "Started / s", Type: "timeseries", Unit: "ops",
			Targets: []Target{t(`sum by (orchestrator) (rate(jetflow_orchestrations_started_total{`+orch+`}`+ri+`))`, "{{orchestrator}}")}},
		{Title: "Completed / s", Type: "timeseries", Unit: "ops",
			Targets: []Target{t(`sum by (orchestrator, status) (rate(jetflow_orchestrations_completed_total{`+orch+`}`+ri+`))`, "{{orchestrator}} {{status}}")}},
		{Title: "Started and ended in range", Type: "bargauge", Unit: "short",
			Description: "Counts over the dashboard's range, not rates.",
			Targets: []Target{
				instant(`sum by (orchestrator) (increase(jetflow_orchestrations_started_total{`+orch+`}[$__range]))`, "{{orchestrator}} started"),
				instant(`sum by (orchestrator, status) (increase(jetflow_orchestrations_completed_total{`+orch+`}[$__range]))`, "{{orchestrator}} {{status}}"),
			}},
		{Title: "Duration of completed executions", Type: "timeseries", Unit: "s",
			Targets: []Target{
				t(q("0.5", "jetflow_orchestration_duration_seconds", "le", orch+`,status="Completed"`), "p50"),
				t(q("0.95", "jetflow_orchestration_duration_seconds", "le", orch+`,status="Completed"`), "p95"),
				t(q("0.99", "jetflow_orchestration_duration_seconds", "le", orch+`,status="Completed"`), "p99"),
			}},
		{Title: "Failures by reason in range", Type: "bargauge", Unit: "short",
			Description: "Failed executions by orchestrator and failure type (NonDeterminism, PoisonMessage, ActivityError, ...).",
			Targets:     []Target{instant(`sum by (orchestrator, reason) (increase(jetflow_orchestration_failures_total{`+orch+`}[$__range]))`, "{{orchestrator}} {{reason}}")}},
		{Title: "Custom status updates / s", Type: "timeseries", Unit: "ops",
			Targets: []Target{t(`sum by (orchestrator) (rate(jetflow_custom_status_updates_total{`+orch+`}`+ri+`))`, "{{orchestrator}}")}},
	}},
	{Title: "Turns", Panels: []Panel{
		{Title: "Turns / s by result", Type: "timeseries", Unit: "ops",
			Targets: []Target{t(`sum by (result) (rate(jetflow_turns_total{`+orch+`}`+ri+`))`, "{{result}}")}},
		{Title: "Fence conflicts / s", Type: "timeseries", Unit: "ops",
			Description: "Turns that lost the race to extend a history to another worker (retried after a reload).",
			Targets:     []Target{t(`sum by (orchestrator) (rate(jetflow_turns_total{`+orch+`,result="conflict"}`+ri+`))`, "{{orchestrator}}")}},
		{Title: "Turn duration p95", Type: "timeseries", Unit: "s",
			Targets: []Target{t(q("0.95", "jetflow_turn_duration_seconds", "orchestrator, le", orch), "{{orchestrator}}")}},
		{Title: "Turn schedule-to-start p95", Type: "timeseries", Unit: "s",
			Description: "From an inbox message being stored to the turn that takes it.",
			Targets:     []Target{t(q("0.95", "jetflow_turn_schedule_to_start_seconds", "orchestrator, le", orch), "{{orchestrator}}")}},
		{Title: "Events per committed chunk p95", Type: "timeseries", Unit: "short",
			Targets: []Target{t(q("0.95", "jetflow_turn_history_events", "orchestrator, le", orch), "{{orchestrator}}")}},
		{Title: "Sticky cache hit ratio", Type: "timeseries", Unit: "percentunit",
			Description: "Share of turns that found the instance's state in memory instead of reading its history.",
			Targets:     []Target{t(`sum(rate(jetflow_sticky_cache_lookups_total{result="hit"}`+ri+`)) / sum(rate(jetflow_sticky_cache_lookups_total`+ri+`))`, "hit ratio")}},
		{Title: "Turns that resumed a kept replay", Type: "timeseries", Unit: "percentunit",
			Description: "Share of turns whose executor continued the replay it kept from the instance's previous turn instead of replaying its history (only executions of 100+ events keep one; a low share for long executions means their messages move between workers). 1 - full/all, so that it is 0, not empty, before any turn resumes.",
			Targets:     []Target{t(`1 - sum by (orchestrator) (rate(jetflow_replays_total{`+orch+`,result="full"}`+ri+`)) / sum by (orchestrator) (rate(jetflow_replays_total{`+orch+`}`+ri+`))`, "{{orchestrator}}")}},
		{Title: "Sticky cache instances", Type: "timeseries", Unit: "short",
			Description: "Idle instances whose state the workers keep in memory, per process.",
			Targets:     []Target{t(`sum by (job, instance) (jetflow_sticky_cache_instances)`, "{{job}} {{instance}}")}},
		{Title: "Sticky cache memory", Type: "timeseries", Unit: "bytes",
			Description: "Estimated memory of the cached histories, per process (bounded by each worker's CacheBytes).",
			Targets:     []Target{t(`sum by (job, instance) (jetflow_sticky_cache_bytes)`, "{{job}} {{instance}}")}},
		{Title: "Orchestration slots", Type: "timeseries", Unit: "short",
			Targets: []Target{
				t(`sum(jetflow_orchestration_slots)`, "slots"),
				t(`sum(jetflow_orchestration_slots_used)`, "used"),
			}},
	}},
	{Title: "Activities", Panels: []Panel{
		{Title: "Executions / s by outcome", Type: "timeseries", Unit: "ops",
			Targets: []Target{t(`sum by (activity, outcome) (rate(jetflow_activity_executions_total{`+act+`}`+ri+`))`, "{{activity}} {{outcome}}")}},
		{Title: "Executions in range", Type: "bargauge", Unit: "short",
			Targets: []Target{instant(`sum by (activity, outcome) (increase(jetflow_activity_executions_total{`+act+`}[$__range]))`, "{{activity}} {{outcome}}")}},
		{Title: "Duration p95", Type: "timeseries", Unit: "s",
			Targets: []Target{t(q("0.95", "jetflow_activity_duration_seconds", "activity, le", act), "{{activity}}")}},
		{Title: "Schedule-to-start p95", Type: "timeseries", Unit: "s",
			Description: "From an activity task being stored to its execution starting: long waits mean too few slots.",
			Targets:     []Target{t(q("0.95", "jetflow_activity_schedule_to_start_seconds", "activity, le", act), "{{activity}}")}},
		{Title: "Retries / s", Type: "timeseries", Unit: "ops",
			Description: "Attempts a retry policy (WithRetry) scheduled again after a failed attempt.",
			Targets:     []Target{t(`sum by (activity) (rate(jetflow_activity_retries_total{`+act+`}`+ri+`))`, "{{activity}}")}},
		{Title: "Redeliveries / s", Type: "timeseries", Unit: "ops",
			Description: "Tasks started again after a worker crashed, hung or stopped during an earlier delivery.",
			Targets:     []Target{t(`sum by (activity) (rate(jetflow_activity_redeliveries_total{`+act+`}`+ri+`))`, "{{activity}}")}},
		{Title: "Activity slots", Type: "timeseries", Unit: "short",
			Targets: []Target{
				t(`sum(jetflow_activity_slots)`, "slots"),
				t(`sum(jetflow_activity_slots_used)`, "used"),
			}},
	}},
	{Title: "Backlog", Panels: []Panel{
		{Title: "Pending by consumer", Type: "timeseries", Unit: "short",
			Description: "Messages not yet delivered, per orchestrator and activity consumer.",
			Targets:     []Target{t(`max by (hub, kind, name) (jetflow_consumer_pending_messages)`, "{{kind}} {{name}}")}},
		{Title: "Backlog age by consumer", Type: "timeseries", Unit: "s",
			Targets: []Target{t(`max by (hub, kind, name) (jetflow_consumer_backlog_age_seconds)`, "{{kind}} {{name}}")}},
		{Title: "No worker serves it", Type: "table", Unit: "short",
			Description: "Consumers with a backlog and no pull request waiting: no running worker registers the name.",
			Targets: []Target{instant(`max by (hub, kind, name) (jetflow_consumer_pending_messages) > 0`+
				` and max by (hub, kind, name) (jetflow_consumer_waiting_pulls) == 0`, "{{kind}} {{name}}")}},
		{Title: "In progress (ack pending)", Type: "timeseries", Unit: "short",
			Targets: []Target{
				t(`max by (hub, kind, name) (jetflow_consumer_ack_pending_messages)`, "{{kind}} {{name}}"),
			}},
		{Title: "Redelivered, not yet acknowledged", Type: "timeseries", Unit: "short",
			Targets: []Target{t(`max by (hub, kind, name) (jetflow_consumer_redelivered_messages)`, "{{kind}} {{name}}")}},
		{Title: "Waiting pulls", Type: "timeseries", Unit: "short",
			Targets: []Target{t(`max by (hub, kind, name) (jetflow_consumer_waiting_pulls)`, "{{kind}} {{name}}")}},
		{Title: "Instances by status", Type: "table", Unit: "short", Width: 12,
			Description: "Every instance in the status bucket, finished ones included until purged.",
			Targets:     []Target{instant(`max by (hub, orchestrator, runtime_status) (jetflow_instances{`+orch+`})`, "{{orchestrator}} {{runtime_status}}")}},
		{Title: "Hub reads at scrape", Type: "timeseries", Unit: "s", Width: 12,
			Description: "Time the backlog and instances collectors take to read the hub, and their failed reads.",
			Targets: []Target{
				t(`max by (collector) (jetflow_scrape_duration_seconds)`, "{{collector}} duration"),
				t(`min by (collector) (jetflow_scrape_success)`, "{{collector}} success"),
				t(`sum by (collector) (rate(jetflow_scrape_errors_total`+ri+`))`, "{{collector}} errors/s"),
			}},
	}},
	{Title: "Timers", Panels: []Panel{
		{Title: "Timer lateness", Type: "timeseries", Unit: "s", Width: 12,
			Description: "Time from a durable timer's due time to its TimerFired message being stored.",
			Targets: []Target{
				t(q("0.5", "jetflow_timer_lateness_seconds", "le", orch), "p50"),
				t(q("0.95", "jetflow_timer_lateness_seconds", "le", orch), "p95"),
				t(q("0.99", "jetflow_timer_lateness_seconds", "le", orch), "p99"),
			}},
		{Title: "Timers fired / s", Type: "timeseries", Unit: "ops", Width: 12,
			Targets: []Target{t(`sum by (orchestrator) (rate(jetflow_timer_lateness_seconds_count{`+orch+`}`+ri+`))`, "{{orchestrator}}")}},
	}},
	{Title: "Storage", Panels: []Panel{
		{Title: "Operations / s", Type: "timeseries", Unit: "ops",
			Targets: []Target{t(`sum by (operation) (rate(jetflow_storage_operation_duration_seconds_count`+ri+`))`, "{{operation}}")}},
		{Title: "Operation duration p95", Type: "timeseries", Unit: "s",
			Targets: []Target{t(q("0.95", "jetflow_storage_operation_duration_seconds", "operation, le", ""), "{{operation}}")}},
		{Title: "Errors / s", Type: "timeseries", Unit: "ops",
			Description: "Failed storage operations by kind: conflict (a fence), unavailable (NATS), too_large, other.",
			Targets:     []Target{t(`sum by (operation, kind) (rate(jetflow_storage_errors_total`+ri+`))`, "{{operation}} {{kind}}")}},
	}},
	{Title: "HTTP", Panels: []Panel{
		{Title: "Requests / s", Type: "timeseries", Unit: "reqps",
			Targets: []Target{t(`sum by (route, code) (rate(jetflow_http_requests_total`+ri+`))`, "{{route}} {{code}}")}},
		{Title: "5xx ratio", Type: "timeseries", Unit: "percentunit",
			Targets: []Target{t(`(sum(rate(jetflow_http_requests_total{code=~"5.."}`+ri+`)) or vector(0)) / sum(rate(jetflow_http_requests_total`+ri+`))`, "5xx")}},
		{Title: "Duration p95 by route", Type: "timeseries", Unit: "s",
			Description: "For an event stream (watch), its whole life.",
			Targets:     []Target{t(q("0.95", "jetflow_http_request_duration_seconds", "route, le", ""), "{{route}}")}},
		{Title: "Live status watchers", Type: "timeseries", Unit: "short",
			Description: "Open SSE streams and Go client watches.",
			Targets:     []Target{t(`sum by (kind) (jetflow_status_watchers)`, "{{kind}}")}},
	}},
	{Title: "Go runtime", Panels: []Panel{
		{Title: "Goroutines", Type: "timeseries", Unit: "short",
			Targets: []Target{t(`go_goroutines and on (job, instance) jetflow_build_info`, "{{job}} {{instance}}")}},
		{Title: "Heap in use", Type: "timeseries", Unit: "bytes",
			Targets: []Target{t(`go_memstats_heap_inuse_bytes and on (job, instance) jetflow_build_info`, "{{job}} {{instance}}")}},
		{Title: "Resident memory", Type: "timeseries", Unit: "bytes",
			Targets: []Target{t(`process_resident_memory_bytes and on (job, instance) jetflow_build_info`, "{{job}} {{instance}}")}},
		{Title: "CPU", Type: "timeseries", Unit: "percentunit",
			Targets: []Target{t(`rate(process_cpu_seconds_total`+ri+`) and on (job, instance) jetflow_build_info`, "{{job}} {{instance}}")}},
		{Title: "GC pause (max)", Type: "timeseries", Unit: "s",
			Targets: []Target{t(`max by (job, instance) (go_gc_duration_seconds{quantile=~"1|1.0"}) and on (job, instance) jetflow_build_info`, "{{job}} {{instance}}")}},
		{Title: "Build", Type: "table", Unit: "short",
			Targets: []Target{instant(`max by (job, instance, version, revision, goversion) (jetflow_build_info)`, "{{version}}")}},
	}},
}

// Dashboard renders Rows as Grafana dashboard JSON (schema 39), with the
// datasource chosen by the ${datasource} variable so that file
// provisioning loads it as it is.
func Dashboard() []byte {
	ds := map[string]any{"type": "prometheus", "uid": "${datasource}"}
	var panels []any
	id, y := 1, 0
	for _, r := range Rows {
		panels = append(panels, map[string]any{
			"type": "row", "id": id, "title": r.Title, "collapsed": false,
			"gridPos": map[string]int{"h": 1, "w": 24, "x": 0, "y": y}, "panels": []any{},
		})
		id++
		y++
		x, rowH := 0, 0
		for _, p := range r.Panels {
			w := p.Width
			if w == 0 {
				w = 8
			}
			h := 8
			if p.Type == "stat" {
				h = 4
			}
			if x+w > 24 {
				x, y = 0, y+rowH
				rowH = 0
			}
			var targets []any
			format := "time_series"
			if p.Type == "table" {
				format = "table" // a column per label
			}
			for i, tg := range p.Targets {
				targets = append(targets, map[string]any{
					"datasource": ds, "refId": string(rune('A' + i)), "expr": tg.Expr, "legendFormat": tg.Legend,
					"instant": tg.Instant, "range": !tg.Instant, "editorMode": "code", "format": format,
				})
			}
			panel := map[string]any{
				"type": p.Type, "id": id, "title": p.Title, "description": p.Description, "datasource": ds,
				"gridPos":     map[string]int{"h": h, "w": w, "x": x, "y": y},
				"targets":     targets,
				"fieldConfig": map[string]any{"defaults": map[string]any{"unit": p.Unit}, "overrides": []any{}},
				"options":     panelOptions(p.Type),
			}
			panels = append(panels, panel)
			id++
			x += w
			rowH = max(rowH, h)
		}
		y += rowH
	}
	variable := func(name, label, query string) map[string]any {
		return map[string]any{
			"type": "query", "name": name, "label": label, "datasource": ds,
			"definition": query, "query": map[string]any{"query": query, "refId": name},
			"includeAll": true, "multi": true, "allValue": ".*", "refresh": 2, "sort": 1,
			"current": map[string]any{"text": "All", "value": "$__all"},
		}
	}
	d := map[string]any{
		"uid": "jetflow", "title": "jetflow", "tags": []string{"jetflow"},
		"description":   "jetflow engine: orchestrations, turns, activities, backlog, timers, storage, HTTP (deploy/grafana; generated by deploy/check)",
		"schemaVersion": 39, "version": 1, "editable": true, "graphTooltip": 1,
		"time": map[string]string{"from": "now-1h", "to": "now"}, "refresh": "30s",
		"annotations": map[string]any{"list": []any{}},
		"templating": map[string]any{"list": []any{
			map[string]any{"type": "datasource", "name": "datasource", "label": "Data source", "query": "prometheus",
				"current": map[string]any{}, "hide": 0},
			variable("hub", "Hub", "label_values(jetflow_activity_slots, hub)"),
			variable("orchestrator", "Orchestrator", `label_values(jetflow_orchestrations_started_total{`+hub+`}, orchestrator)`),
			variable("activity", "Activity", `label_values(jetflow_activity_executions_total{`+hub+`}, activity)`),
		}},
		"panels": panels,
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		panic(err) // maps of strings and numbers always encode
	}
	return b.Bytes()
}

func panelOptions(typ string) map[string]any {
	switch typ {
	case "stat":
		return map[string]any{"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"colorMode": "value", "graphMode": "area", "textMode": "auto"}
	case "bargauge":
		return map[string]any{"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"orientation": "horizontal", "displayMode": "basic", "showUnfilled": true}
	case "table":
		return map[string]any{"showHeader": true}
	}
	return map[string]any{"legend": map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true},
		"tooltip": map[string]any{"mode": "multi", "sort": "desc"}}
}
