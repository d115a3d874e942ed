//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// The device nobody answers for, and the one the device dashboard is checked with (a DL/T 645
// meter that answers but reports an error word for one identifier at every poll).
const (
	obsSite       = "plant-e2e"
	obsDeadDevice = "pv-inverter-2"
	obsShowDevice = "billing-meter-3"
)

// Metric names the rules or dashboards use that the edge default does not produce: the tdigest
// processor's gauge outputs (demo.yaml turns them on; config.yaml emits the Summary).
var obsNotInEdgeDefault = map[string]bool{
	"iiot_device_poll_duration_p50_seconds": true,
	"iiot_device_poll_duration_p99_seconds": true,
}

// Dashboard panels that may be empty with live simulators.
var obsMayBeEmpty = map[string]bool{
	"otelcol-iiot-device/Alerts for this device": true, // no alert need be pending for the chosen device
}

// The device dashboard is checked with one device of each protocol: the README's Modbus meter (several
// counters that differ only by name), the OPC UA PLC and the DL/T 645 meter with an error word.
var obsDashboardDevices = []string{"incomer-meter", "line-plc-1", obsShowDevice}

// TestObservability runs the edge default configuration (distributions/otelcol-iiot/config.yaml,
// with this test's device files and registry) against the Modbus, DL/T 645 and OPC UA simulators
// plus a Modbus device where nothing listens, into a real Prometheus that evaluates the
// distribution's rules every second. Every recording rule yields series with the values the live
// devices imply; the dead device's IIoTDeviceDown and IIoTDeviceBreakerOpen alerts are pending or
// firing and no live device's are; every rule evaluates without error; every metric name the rules
// and dashboards use is one the collector produces; and every dashboard query, with its template
// variables resolved the way Grafana resolves them, evaluates and returns data.
func TestObservability(t *testing.T) {
	start := time.Now()
	root := repoRoot(t)
	dist := filepath.Join(root, "distributions", "otelcol-iiot")
	rulesFile := filepath.Join(dist, "prometheus", "otelcol-iiot.rules.yml")
	rules := loadRuleFile(t, rulesFile)

	dltAddr := startDLT645Sim(t)
	modbusPort := startModbusSim(t) // SDM630 at unit 1, DTSU666 at unit 3
	opcuaPort := startOPCUASimulator(t)
	deadPort := freePort(t)
	prom := startPrometheusWithRules(t, time.Second, rulesFile)
	t.Logf("simulators and Prometheus up after %s", time.Since(start).Round(time.Millisecond))

	confDir := t.TempDir()
	profiles := filepath.Join(dist, "profiles")
	renderTree(t, confDir, "observability/confdir", vars{"Profiles": profiles, "ModbusPort": modbusPort, "DeadPort": deadPort,
		"DLT645Addr": dltAddr, "OPCUAPort": opcuaPort, "ShowDevice": obsShowDevice, "DeadDevice": obsDeadDevice})
	telemetryPort := freePort(t)
	// the edge default, verbatim
	startCollectorFiles(t, map[string]string{
		"OTELCOL_IIOT_CONFIG_DIR":            confDir,
		"OTELCOL_IIOT_STORAGE_DIR":           t.TempDir(),
		"OTELCOL_IIOT_HEALTH_CHECK_ENDPOINT": "127.0.0.1:" + strconv.Itoa(freePort(t)),
		"OTELCOL_IIOT_TELEMETRY_PORT":        strconv.Itoa(telemetryPort),
		"OTELCOL_IIOT_SITE":                  obsSite,
		"OTELCOL_IIOT_REMOTE_WRITE_URL":      prom.RemoteWriteURL(),
		"OTELCOL_IIOT_OTLP_LISTEN":           "127.0.0.1:" + strconv.Itoa(freePort(t)),
		// traces are not this test's subject: their disk-backed queue retries against a closed port
		"OTELCOL_IIOT_TRACES_ENDPOINT": "127.0.0.1:" + strconv.Itoa(freePort(t)),
	}, filepath.Join(dist, "config.yaml"))

	const wait = 60 * time.Second
	devices := map[string]float64{ // device -> up
		"incomer-meter": 1, "feeder-meter": 1, "billing-meter-1": 1, obsShowDevice: 1, "line-plc-1": 1, obsDeadDevice: 0,
	}
	tenants := map[string]string{
		"incomer-meter": "grid-operator", "feeder-meter": "site-operator", "billing-meter-1": "grid-operator",
		obsShowDevice: "grid-operator", "line-plc-1": "site-operator", obsDeadDevice: "pv-owner",
	}

	t.Run("recording_rules", func(t *testing.T) {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			// every recording rule yields at least one series
			for _, r := range rules {
				if r.Record != "" {
					assert.NotEmpty(c, queryC(c, prom, r.Record), "recording rule %s yields no series", r.Record)
				}
			}
			// per device: up as the simulators imply, with tenant, site and protocol labels
			up := queryC(c, prom, "device:iiot_device_up:max")
			got := map[string]float64{}
			for _, s := range up {
				got[s.Labels["device_id"]] = s.Value
				assert.Equal(c, obsSite, s.Labels["site"], "%v", s.Labels)
				assert.Equal(c, tenants[s.Labels["device_id"]], s.Labels["tenant_id"], "%v", s.Labels)
				assert.NotEmpty(c, s.Labels["device_protocol"], "%v", s.Labels)
				assert.Equal(c, s.Labels["site"]+"/"+s.Labels["device_id"], s.Labels["instance"], "%v", s.Labels)
				assert.Equal(c, s.Labels["device_protocol"], s.Labels["job"], "%v", s.Labels)
			}
			assert.Equal(c, devices, got, "device:iiot_device_up:max by device")

			// fleet counts: the dead inverter is pv-owner's only device
			wantValue(c, prom, `site_protocol:iiot_devices:count{tenant_id="pv-owner",device_protocol="modbus"}`, 1)
			wantValue(c, prom, `site_protocol:iiot_devices_down:count{tenant_id="pv-owner",device_protocol="modbus"}`, 1)
			wantValue(c, prom, `site_protocol:iiot_breakers_open:count{tenant_id="pv-owner",device_protocol="modbus"}`, 1)
			wantValue(c, prom, `site_protocol:iiot_devices_up:count{tenant_id="grid-operator",device_protocol="dlt645"}`, 2)
			wantValue(c, prom, `site_protocol:iiot_devices_down:count{tenant_id="grid-operator",device_protocol="dlt645"}`, 0)
			wantValue(c, prom, `site:iiot_devices:count{tenant_id="site-operator"}`, 2)
			wantValue(c, prom, `site:iiot_device_up:avg{tenant_id="pv-owner"}`, 0)
			wantValue(c, prom, `site:iiot_device_up:avg{tenant_id="grid-operator"}`, 1)

			// the dead device sends no requests; each of its attempts is a failed connection
			wantValue(c, prom, fmt.Sprintf(`device:iiot_device_requests:rate5m{device_id=%q}`, obsDeadDevice), 0)
			wantValue(c, prom, fmt.Sprintf(`device_error_type:iiot_device_poll_errors_per_attempt:ratio_rate5m{device_id=%q,error_type="connection"}`, obsDeadDevice), 1)
			// the meter with an error word: exceptions on some, not all, of its requests
			if s := queryC(c, prom, fmt.Sprintf(`device_error_type:iiot_device_poll_errors_per_attempt:ratio_rate5m{device_id=%q,error_type="exception"}`, obsShowDevice)); assert.Len(c, s, 1) {
				assert.True(c, s[0].Value > 0 && s[0].Value < 1, "exception ratio of %s: %v", obsShowDevice, s[0].Value)
			}
			if s := queryC(c, prom, fmt.Sprintf(`device:iiot_device_requests:rate5m{device_id=%q}`, obsShowDevice)); assert.Len(c, s, 1) {
				assert.Greater(c, s[0].Value, 0.0)
			}

			// readings: every live device has some, the dead one none
			for dev, u := range devices {
				s := queryC(c, prom, fmt.Sprintf(`device:iiot_device_readings:count{device_id=%q}`, dev))
				if u == 1 {
					if assert.Len(c, s, 1, "readings of %s", dev) {
						assert.GreaterOrEqual(c, s[0].Value, 2.0, "readings of %s", dev)
					}
				} else {
					assert.Empty(c, s, "readings of the dead %s", dev)
				}
			}

			// tdigest P99/P50 per tenant, site, protocol and device_group (the edge default's group_by)
			for _, g := range [][3]string{{"grid-operator", "dlt645", "billing"}, {"grid-operator", "modbus", "meters"},
				{"site-operator", "modbus", "meters"}, {"site-operator", "opcua", "plc"}} {
				sel := fmt.Sprintf(`{tenant_id=%q,site=%q,device_protocol=%q,device_group=%q}`, g[0], obsSite, g[1], g[2])
				p50, p99 := queryC(c, prom, "digest:iiot_device_poll_duration_seconds:p50"+sel), queryC(c, prom, "digest:iiot_device_poll_duration_seconds:p99"+sel)
				if assert.Len(c, p50, 1, "p50 %s", sel) && assert.Len(c, p99, 1, "p99 %s", sel) {
					assert.True(c, p50[0].Value > 0 && p50[0].Value <= p99[0].Value && p99[0].Value < 2, "%s: p50 %v, p99 %v", sel, p50[0].Value, p99[0].Value)
				}
			}

			// freshness: samples arrive every few seconds (polls every 2 s, batches every 5 s)
			for _, s := range queryC(c, prom, "site:iiot_last_sample_age:seconds") {
				assert.Less(c, s.Value, 30.0, "%v", s.Labels)
			}
		}, wait, time.Second)
		t.Logf("recording rules checked after %s", time.Since(start).Round(time.Millisecond))
		for _, q := range []string{"digest:iiot_device_poll_duration_seconds:p99", "device_error_type:iiot_device_poll_errors_per_attempt:ratio_rate5m",
			"device:iiot_device_readings:count"} {
			for _, s := range prom.Query(t, q) {
				t.Logf("%s{%s} %.4g", q, s.Labels["device_id"]+s.Labels["device_protocol"]+"/"+s.Labels["device_group"]+" "+s.Labels["error_type"], s.Value)
			}
		}
	})

	// The device receivers hand their data over through obsreport like any collector receiver: the
	// standard accepted/refused counters exist on the collector's own metrics endpoint.
	t.Run("receiver_self_telemetry", func(t *testing.T) {
		own := fmt.Sprintf("http://127.0.0.1:%d/metrics", telemetryPort)
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			for _, recv := range []string{"modbus", "dlt645", "opcua"} {
				sel := fmt.Sprintf(`receiver="%s"`, recv)
				for _, name := range []string{"otelcol_receiver_accepted_metric_points", "otelcol_receiver_accepted_spans"} {
					n, err := scrapeSum(own, name, sel)
					if assert.NoError(c, err) {
						assert.Positive(c, n, "%s{%s}", name, sel)
					}
				}
				lines, err := scrapeLines(own, "otelcol_receiver_refused_metric_points")
				if assert.NoError(c, err) {
					assert.True(c, slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, sel) }),
						"otelcol_receiver_refused_metric_points{%s} missing: %v", sel, lines)
				}
			}
		}, wait, time.Second)
	})

	// Lean series (the exporter's promote_resource_attributes): a reading carries the labels people
	// query by and its own attributes; the device's address and the like are on target_info only.
	t.Run("lean_labels", func(t *testing.T) {
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			up := queryC(c, prom, fmt.Sprintf(`iiot_device_up{device_id=%q}`, obsDeadDevice))
			if assert.Len(c, up, 1) {
				var names []string
				for k := range up[0].Labels {
					names = append(names, k)
				}
				assert.ElementsMatch(c, []string{"__name__", "tenant_id", "site", "device_id", "device_group", "device_protocol", "job", "instance"}, names)
			}
			ti := queryC(c, prom, fmt.Sprintf(`target_info{job="modbus", instance=%q}`, obsSite+"/"+obsDeadDevice))
			if assert.Len(c, ti, 1) {
				assert.Equal(c, "tcp://127.0.0.1:"+strconv.Itoa(deadPort)+"/1", ti[0].Labels["device_address"])
			}
			// the join the docs and dashboards use
			j := queryC(c, prom, fmt.Sprintf(`iiot_device_up{device_id=%q} * on (job, instance) group_left (device_address) target_info`, obsDeadDevice))
			if assert.Len(c, j, 1) {
				assert.Equal(c, "tcp://127.0.0.1:"+strconv.Itoa(deadPort)+"/1", j[0].Labels["device_address"])
			}
			// readings keep their own attributes
			assert.NotEmpty(c, queryC(c, prom, `{__name__=~".+", device_id="incomer-meter", phase!=""}`))
		}, wait, time.Second)

		// The electrical vocabulary: a Modbus and a DL/T 645 meter's imported energy are one metric with
		// the same labels (the DL/T 645 meter's tariff besides), in Wh.
		base := []string{"__name__", "tenant_id", "site", "device_id", "device_group", "device_protocol", "job", "instance"}
		for dev, own := range map[string][]string{
			"incomer-meter": {"direction", "phase"},
			obsShowDevice:   {"direction", "phase", "tariff"},
		} {
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				s := queryC(c, prom, fmt.Sprintf(`electrical_energy_active_watt_hours_total{device_id=%q, direction="import", phase="total", tariff=~"total|"}`, dev))
				if assert.Len(c, s, 1, dev) {
					var names []string
					for k := range s[0].Labels {
						names = append(names, k)
					}
					assert.ElementsMatch(c, append(slices.Clone(base), own...), names, dev)
					t.Logf("%s: %d labels on electrical_energy_active_watt_hours_total (with __name__): %v", dev, len(names), names)
				}
			}, wait, time.Second)
		}
	})

	t.Run("alerts", func(t *testing.T) {
		for _, name := range []string{"IIoTDeviceDown", "IIoTDeviceBreakerOpen"} {
			require.EventuallyWithT(t, func(c *assert.CollectT) {
				s := queryC(c, prom, fmt.Sprintf(`ALERTS{alertname=%q,alertstate=~"pending|firing"}`, name))
				if assert.Len(c, s, 1, "%s alerts", name) {
					l := s[0].Labels
					assert.Equal(c, obsDeadDevice, l["device_id"])
					assert.Equal(c, "pv-owner", l["tenant_id"])
					assert.Equal(c, obsSite, l["site"])
					assert.Equal(c, "modbus", l["device_protocol"])
					assert.Equal(c, "inverters", l["device_group"])
					assert.Equal(c, "modbus", l["job"])
					assert.Equal(c, obsSite+"/"+obsDeadDevice, l["instance"])
					assert.Equal(c, "warning", l["severity"])
				}
			}, wait, time.Second)
		}
		// every rule was evaluated without error (Prometheus loaded all of them)
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			got := ruleHealth(c, prom)
			assert.Len(c, got, len(rules), "rules loaded")
			for _, r := range rules {
				name := r.Record + r.Alert
				assert.Equal(c, "ok", got[name], "rule %s", name)
			}
		}, wait, time.Second)
		t.Logf("alerts checked after %s", time.Since(start).Round(time.Millisecond))
	})

	t.Run("metric_names", func(t *testing.T) {
		recorded := map[string]bool{}
		var exprs []string
		for _, r := range rules {
			recorded[r.Record] = r.Record != ""
			exprs = append(exprs, r.Expr)
		}
		for _, d := range loadDashboards(t, filepath.Join(dist, "dashboards")) {
			for _, p := range d.panels {
				for _, e := range p.exprs {
					exprs = append(exprs, substituteVars(e, obsPlaceholderVars))
				}
			}
		}
		names := map[string]bool{}
		for _, e := range exprs {
			for _, n := range metricNames(t, e) {
				names[n] = true
			}
		}
		var sorted []string
		for n := range names {
			sorted = append(sorted, n)
		}
		sort.Strings(sorted)
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			for _, n := range sorted {
				switch {
				case strings.Contains(n, ":"):
					assert.True(c, recorded[n], "%s is used but no rule records it", n)
				case n == "ALERTS" || obsNotInEdgeDefault[n]:
				default:
					assert.NotEmpty(c, queryC(c, prom, fmt.Sprintf(`count({__name__=%q})`, n)), "the collector produces no %s", n)
				}
			}
		}, wait, time.Second)
		t.Logf("%d metric names used by rules and dashboards: %s", len(sorted), strings.Join(sorted, " "))
	})

	t.Run("dashboards", func(t *testing.T) {
		for _, d := range loadDashboards(t, filepath.Join(dist, "dashboards")) {
			for _, show := range obsDashboardDevices {
				t.Run(d.uid+"/"+show, func(t *testing.T) {
					var vars map[string]string
					require.EventuallyWithT(t, func(c *assert.CollectT) {
						vars = resolveVars(c, prom, d, show)
					}, wait, time.Second)
					t.Logf("template variables: %v", vars)
					require.EventuallyWithT(t, func(c *assert.CollectT) {
						for _, p := range d.panels {
							var n int
							for _, e := range p.exprs {
								q := substituteVars(e, panelVars(t, vars, p.interval))
								if !assert.False(c, unresolvedVarRe.MatchString(q), "panel %q: unresolved variable in %s", p.title, q) {
									continue
								}
								s, err := prom.QueryE(q)
								if assert.NoError(c, err, "panel %q", p.title) {
									n += len(s)
								}
							}
							if !obsMayBeEmpty[d.uid+"/"+p.title] {
								assert.NotZero(c, n, "panel %q returns no data", p.title)
							}
						}
					}, wait, time.Second)
				})
			}
		}
		t.Logf("dashboards checked after %s", time.Since(start).Round(time.Millisecond))
	})

	// Checked last, after many evaluations: no live device is reported down, cut off or failing, and
	// no site silent or slow (a live device missing one poll on a loaded machine is pending for a
	// moment: a rule that misfires keeps its alert).
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, q := range []string{
			fmt.Sprintf(`ALERTS{alertname=~"IIoTDeviceDown|IIoTDeviceBreakerOpen",device_id!=%q}`, obsDeadDevice),
			`ALERTS{alertname=~"IIoTDevicePollErrorRatioHigh|IIoTDeviceFlapping|IIoTDeviceReadingsStale",device_id=~"incomer-meter|feeder-meter|billing-meter-1"}`,
			`ALERTS{alertname=~"IIoTManyDevicesDown|IIoTSiteNoData|IIoTProtocolNoData|IIoTSiteDataDelayed|IIoTPollLatencyP99High"}`,
		} {
			assert.Empty(c, queryC(c, prom, q), q)
		}
	}, wait, time.Second)
	t.Logf("done after %s", time.Since(start).Round(time.Millisecond))
}

// startOPCUASimulator runs cmd/opcuasim (security None) on a free port and returns the port.
func startOPCUASimulator(t *testing.T) int {
	t.Helper()
	return startToolOnFreePort(t, "opcuasim", func(addr string) []string { return []string{"-listen", addr} })
}

type ruleDef struct {
	Record string `yaml:"record"`
	Alert  string `yaml:"alert"`
	Expr   string `yaml:"expr"`
}

func loadRuleFile(t *testing.T, path string) []ruleDef {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var f struct {
		Groups []struct {
			Rules []ruleDef `yaml:"rules"`
		} `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &f))
	var out []ruleDef
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	require.NotEmpty(t, out)
	return out
}

// queryC runs an instant query, recording an error in c.
func queryC(c *assert.CollectT, p *prometheus, promql string) []sample {
	s, err := p.QueryE(promql)
	assert.NoError(c, err)
	return s
}

// wantValue asserts that promql returns exactly one sample equal to want.
func wantValue(c *assert.CollectT, p *prometheus, promql string, want float64) {
	s := queryC(c, p, promql)
	if assert.Len(c, s, 1, promql) {
		assert.Equal(c, want, s[0].Value, promql)
	}
}

// ruleHealth returns the health of every rule Prometheus evaluated at least once, by rule name.
func ruleHealth(c *assert.CollectT, p *prometheus) map[string]string {
	resp, err := http.Get(p.URL() + "/api/v1/rules")
	if !assert.NoError(c, err) {
		return nil
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name           string    `json:"name"`
					Health         string    `json:"health"`
					LastError      string    `json:"lastError"`
					LastEvaluation time.Time `json:"lastEvaluation"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if !assert.NoError(c, json.NewDecoder(resp.Body).Decode(&body)) {
		return nil
	}
	out := map[string]string{}
	for _, g := range body.Data.Groups {
		for _, r := range g.Rules {
			assert.Empty(c, r.LastError, "rule %s", r.Name)
			if !r.LastEvaluation.IsZero() && r.LastEvaluation.Year() > 1 {
				out[r.Name] = r.Health
			}
		}
	}
	return out
}

// metricNames returns the metric names of the vector selectors in a PromQL expression.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	require.NoError(t, err, "parse %s", expr)
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		if vs.Name != "" {
			out = append(out, vs.Name)
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == "__name__" && m.Type == labels.MatchEqual {
				out = append(out, m.Value)
			}
		}
		return nil
	})
	return out
}

// ---- Grafana dashboards -------------------------------------------------------------------------

type dashboardDef struct {
	uid    string
	vars   []dashboardVar
	panels []panelDef
}

type dashboardVar struct {
	name, typ, query string
	multi            bool
}

type panelDef struct {
	title string
	exprs []string
	// interval is the panel's min interval (Grafana's "interval"), e.g. "2m" where a query takes the
	// rate of a health counter that arrives once a poll.health_interval
	interval string
}

// loadDashboards reads every dashboard of dir and checks what Grafana (10/11) needs to import it
// anywhere: a prometheus datasource variable that every panel and query uses, unique panel ids,
// grid positions, tenant and site variables.
func loadDashboards(t *testing.T, dir string) []dashboardDef {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 2)
	var out []dashboardDef
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var d struct {
			UID           string `json:"uid"`
			Title         string `json:"title"`
			SchemaVersion int    `json:"schemaVersion"`
			Templating    struct {
				List []struct {
					Name  string `json:"name"`
					Type  string `json:"type"`
					Query any    `json:"query"`
					Multi bool   `json:"multi"`
				} `json:"list"`
			} `json:"templating"`
			Panels []json.RawMessage `json:"panels"`
		}
		require.NoError(t, json.Unmarshal(raw, &d), f)
		require.NotEmpty(t, d.UID, f)
		require.NotEmpty(t, d.Title, f)
		require.GreaterOrEqual(t, d.SchemaVersion, 36, "%s: Grafana 10/11 schema", f)
		def := dashboardDef{uid: d.UID}
		names := map[string]bool{}
		for _, v := range d.Templating.List {
			q, _ := v.Query.(string)
			if m, ok := v.Query.(map[string]any); ok {
				q, _ = m["query"].(string)
			}
			def.vars = append(def.vars, dashboardVar{name: v.Name, typ: v.Type, query: q, multi: v.Multi})
			names[v.Name] = true
		}
		require.NotEmpty(t, def.vars, f)
		require.Equal(t, dashboardVar{name: "datasource", typ: "datasource", query: "prometheus"}, def.vars[0], "%s: first variable", f)
		require.True(t, names["tenant"] && names["site"], "%s: tenant and site variables", f)

		ids := map[int]bool{}
		var walk func(raw []json.RawMessage)
		walk = func(raw []json.RawMessage) {
			for _, r := range raw {
				var p struct {
					ID         int    `json:"id"`
					Type       string `json:"type"`
					Title      string `json:"title"`
					Datasource *struct {
						Type string `json:"type"`
						UID  string `json:"uid"`
					} `json:"datasource"`
					GridPos  *struct{ H, W int } `json:"gridPos"`
					Interval string              `json:"interval"`
					Targets  []struct {
						Expr       string `json:"expr"`
						Datasource struct {
							Type string `json:"type"`
							UID  string `json:"uid"`
						} `json:"datasource"`
					} `json:"targets"`
					Panels []json.RawMessage `json:"panels"`
				}
				require.NoError(t, json.Unmarshal(r, &p), f)
				require.False(t, ids[p.ID], "%s: panel id %d twice", f, p.ID)
				ids[p.ID] = true
				require.NotNil(t, p.GridPos, "%s: panel %q has no gridPos", f, p.Title)
				require.NotEmpty(t, p.Title, "%s: panel %d has no title", f, p.ID)
				if p.Type == "row" {
					walk(p.Panels)
					continue
				}
				require.NotNil(t, p.Datasource, "%s: panel %q", f, p.Title)
				require.Equal(t, "${datasource}", p.Datasource.UID, "%s: panel %q", f, p.Title)
				require.NotEmpty(t, p.Targets, "%s: panel %q", f, p.Title)
				pd := panelDef{title: p.Title, interval: p.Interval}
				for _, tg := range p.Targets {
					require.Equal(t, "prometheus", tg.Datasource.Type, "%s: panel %q", f, p.Title)
					require.Equal(t, "${datasource}", tg.Datasource.UID, "%s: panel %q", f, p.Title)
					require.NotEmpty(t, tg.Expr, "%s: panel %q", f, p.Title)
					pd.exprs = append(pd.exprs, tg.Expr)
				}
				def.panels = append(def.panels, pd)
			}
		}
		walk(d.Panels)
		out = append(out, def)
	}
	return out
}

// Grafana's built-in variables, as Grafana would set them for a short time range.
var obsBuiltinVars = map[string]string{"__rate_interval": "1m", "__interval": "15s", "__range": "5m"}

// obsPlaceholderVars make any dashboard query parseable (for collecting metric names).
var obsPlaceholderVars = map[string]string{"tenant": ".*", "site": ".*", "protocol": ".*", "device": "x"}

var grafanaVarRe = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)`)

// panelVars returns vars with Grafana's $__interval and $__rate_interval for a panel with a min
// interval: $__interval is at least the min interval, and $__rate_interval is $__interval plus the
// scrape interval (Grafana's default, 15s), at least four scrape intervals.
func panelVars(t testing.TB, vars map[string]string, minInterval string) map[string]string {
	if minInterval == "" {
		return vars
	}
	d, err := time.ParseDuration(minInterval)
	require.NoError(t, err, "panel interval %q", minInterval)
	const scrape = 15 * time.Second
	interval := max(d, scrape)
	out := maps.Clone(vars)
	out["__interval"] = fmt.Sprintf("%ds", int(interval.Seconds()))
	out["__rate_interval"] = fmt.Sprintf("%ds", int(max(interval+scrape, 4*scrape).Seconds()))
	return out
}

// substituteVars replaces $name, ${name} and [[name]] by their values (built-ins included, a panel's
// own from vars first); unknown names stay.
func substituteVars(expr string, vars map[string]string) string {
	return grafanaVarRe.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVarRe.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		if v, ok := vars[name]; ok {
			return v
		}
		if v, ok := obsBuiltinVars[name]; ok {
			return v
		}
		return m
	})
}

// unresolvedVarRe finds a Grafana variable left in a query ($1 in label_replace is PromQL's, not one).
var unresolvedVarRe = regexp.MustCompile(`\$\{?[A-Za-z_]`)

var labelValuesRe = regexp.MustCompile(`^\s*label_values\((.+),\s*(\w+)\s*\)\s*$`)

// resolveVars runs the dashboard's query variables in order, each with the values of those before
// it, as Grafana does: a multi-value variable takes all its values (the regex Grafana builds when
// all are selected), a single-value one the device the test looks at.
func resolveVars(c *assert.CollectT, p *prometheus, d dashboardDef, show string) map[string]string {
	vars := map[string]string{}
	for _, v := range d.vars {
		if v.typ != "query" {
			continue
		}
		m := labelValuesRe.FindStringSubmatch(substituteVars(v.query, vars))
		if !assert.NotNil(c, m, "variable %s: %q is not label_values(selector, label)", v.name, v.query) {
			return vars
		}
		var values []string
		for _, s := range queryC(c, p, fmt.Sprintf("group by (%s) (%s)", m[2], m[1])) {
			if s.Labels[m[2]] != "" {
				values = append(values, regexp.QuoteMeta(s.Labels[m[2]]))
			}
		}
		sort.Strings(values)
		if !assert.NotEmpty(c, values, "variable %s has no values", v.name) {
			return vars
		}
		switch {
		case v.multi && len(values) > 1:
			vars[v.name] = "(" + strings.Join(values, "|") + ")"
		case v.multi:
			vars[v.name] = values[0]
		default:
			assert.Contains(c, values, show, "variable %s", v.name)
			vars[v.name] = show
		}
	}
	assert.Contains(c, vars["site"], obsSite)
	return vars
}
