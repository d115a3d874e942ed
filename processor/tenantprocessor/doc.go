// Package tenantprocessor labels telemetry for multi-tenant gateways: tenant, site, region, env and
// device group from ordered rules and a registry file, required attributes, a label schema,
// per-tenant series budgets, and job/instance mapping.
//
//go:generate ../../.tools/mdatagen metadata.yaml
package tenantprocessor // import "github.com/otelcol-iiot/otelcol-iiot/processor/tenantprocessor"
