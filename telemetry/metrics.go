package telemetry

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/decnet/ttp/dispatch"
	"github.com/decnet/ttp/host"
)

// Collector exports the Dispatcher's and the plugins' counters to Prometheus. It reads the
// atomics the hot path already keeps at scrape time, so metrics cost nothing per event.
type Collector struct {
	d *dispatch.Dispatcher
	h *host.Host

	events, evaluated, tags, errors, stripped, disabled, duplicates, unknown, payloadTypes          *prometheus.Desc
	calls, failures, timeouts, stalls, quarantines, skipped, oversized, quarantined, rules, slowest *prometheus.Desc
	instances                                                                                       *prometheus.Desc
	rejected, orphans                                                                               *prometheus.Desc
}

// NewCollector returns a collector over d and h (h may be nil when no plugins run).
func NewCollector(d *dispatch.Dispatcher, h *host.Host) *Collector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("ttp_"+name, help, labels, nil)
	}
	return &Collector{
		d: d, h: h,
		events:       desc("events_total", "Upstream events evaluated."),
		evaluated:    desc("evaluated_events_total", "Events evaluated after session fan-out."),
		tags:         desc("tags_total", "Tags produced (before storage)."),
		errors:       desc("handler_errors_total", "Handler calls that failed; their tags for that event are lost."),
		stripped:     desc("evidence_stripped_total", "Evidence keys stripped because the rule's evidence_fields do not list them."),
		disabled:     desc("disabled_drafts_total", "Drafts dropped because their rule is disabled."),
		duplicates:   desc("duplicate_drafts_total", "Drafts folded into an earlier draft of the same tag_uuid for the event (a producer repeating itself)."),
		unknown:      desc("unknown_kind_events_total", "Events of a source kind this version does not know."),
		payloadTypes: desc("payload_type_errors_total", "Events with a documented payload field of another JSON type (abi/EVENTS.md); rules read it as absent."),
		calls:        desc("plugin_calls_total", "Plugin calls made.", "plugin"),
		failures:     desc("plugin_failures_total", "Plugin calls that trapped, timed out, exceeded a cap or replied undecodably.", "plugin"),
		timeouts:     desc("plugin_timeouts_total", "Plugin calls that exceeded their deadline, and so did their retry on a fresh instance: counted as failures.", "plugin"),
		stalls:       desc("plugin_stalls_total", "Plugin calls that exceeded their deadline but whose retry on a fresh instance, under a budget of its own CPU time, succeeded: the host was slow, not the plugin. Their tags are kept; not failures.", "plugin"),
		quarantines:  desc("plugin_quarantines_total", "Times the plugin was quarantined.", "plugin"),
		skipped:      desc("plugin_skipped_total", "Calls not made because the plugin was quarantined.", "plugin"),
		oversized:    desc("plugin_oversized_total", "Calls not made because the event's record was over the ABI's 1 MiB limit.", "plugin"),
		quarantined:  desc("plugin_quarantined", "1 while the plugin is quarantined.", "plugin"),
		rules:        desc("plugin_rules", "Rules the plugin owns (0: loaded but idle).", "plugin"),
		slowest:      desc("plugin_slowest_call_seconds", "Longest plugin call observed.", "plugin"),
		instances:    desc("plugin_instances", "Instances the plugin holds now (0: loaded, none made yet: no event of its kinds since the last idle timeout).", "plugin"),
		rejected:     desc("rejections_total", "Plugins and rule definitions rejected at load (the previous version stayed live).", "kind"),
		orphans:      desc("rules_without_plugin", "Plugin-owned rules that no loaded plugin claims: they tag nothing.", "kind"),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.events, c.evaluated, c.tags, c.errors, c.stripped, c.disabled, c.duplicates, c.unknown, c.payloadTypes,
		c.calls, c.failures, c.timeouts, c.stalls, c.quarantines, c.skipped, c.oversized, c.quarantined, c.rules, c.slowest, c.instances, c.rejected, c.orphans} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v *atomic.Int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v.Load()), labels...)
	}
	s := &c.d.Stats
	counter(c.events, &s.Events)
	counter(c.evaluated, &s.Evaluated)
	counter(c.tags, &s.Tags)
	counter(c.errors, &s.HandlerErrors)
	counter(c.stripped, &s.EvidenceStripped)
	counter(c.disabled, &s.Disabled)
	counter(c.duplicates, &s.Duplicates)
	counter(c.unknown, &s.UnknownKinds)
	counter(c.payloadTypes, &s.PayloadTypes)
	if c.h == nil {
		return
	}
	plugins, rulesRejected := c.h.Rejections()
	ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(plugins), "plugin")
	ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(rulesRejected), "rule")
	for kind, ids := range c.h.RulesWithoutPlugin() {
		ch <- prometheus.MustNewConstMetric(c.orphans, prometheus.GaugeValue, float64(len(ids)), kind)
	}
	// One series per producer: the host refuses a second module of a name, and should two
	// ever carry one label the first is kept, so a scrape never fails as a whole.
	seen := make(map[string]bool, 8)
	for _, p := range c.h.Plugins() {
		if seen[p.Producer] {
			continue
		}
		seen[p.Producer] = true
		h := p.Health
		counter(c.calls, &h.Calls, p.Producer)
		counter(c.failures, &h.Failures, p.Producer)
		counter(c.timeouts, &h.Timeouts, p.Producer)
		counter(c.stalls, &h.Stalls, p.Producer)
		counter(c.quarantines, &h.Quarantines, p.Producer)
		counter(c.skipped, &h.Skipped, p.Producer)
		counter(c.oversized, &h.Oversized, p.Producer)
		q := 0.0
		if p.Quarantined {
			q = 1
		}
		ch <- prometheus.MustNewConstMetric(c.quarantined, prometheus.GaugeValue, q, p.Producer)
		ch <- prometheus.MustNewConstMetric(c.rules, prometheus.GaugeValue, float64(p.Rules), p.Producer)
		ch <- prometheus.MustNewConstMetric(c.slowest, prometheus.GaugeValue, h.Slowest().Seconds(), p.Producer)
		ch <- prometheus.MustNewConstMetric(c.instances, prometheus.GaugeValue, float64(p.Instances), p.Producer)
	}
}
