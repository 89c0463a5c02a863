// Package check holds the tests of the monitoring files under deploy/:
// the Grafana dashboard and the Prometheus alert rules parse with
// Prometheus's own PromQL parser and use only metric families the engine
// exports, and a real Prometheus scraping a real `jetflow dev` answers
// every panel's query. It is a module of its own so that the engine's
// go.mod does not carry Prometheus's dependencies.
package check
