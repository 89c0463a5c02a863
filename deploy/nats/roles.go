// Package nats holds the NATS configuration that jetflow ships, for the
// binary to print: the least-privilege roles of roles.conf, which
// `jetflow nats-roles` derives the roles of other hubs from.
package nats

import _ "embed"

// RolesConf is roles.conf: the NATS authorization of each jetflow
// process's role for the hub "jetflow" of one partition.
//
//go:embed roles.conf
var RolesConf string
