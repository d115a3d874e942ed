// Package tenantremotewriteexporter sends metrics by Prometheus remote-write, one durable
// (optionally disk-backed) sending queue per tenant, reusing the contrib remote-write
// exporter for encoding and sending.
//
//go:generate ../../.tools/mdatagen metadata.yaml
package tenantremotewriteexporter // import "github.com/otelcol-iiot/otelcol-iiot/exporter/tenantremotewriteexporter"
