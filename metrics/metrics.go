// Package metrics exports what session stores do as Prometheus metrics,
// through github.com/prometheus/client_golang, in a package of its own so
// that the core and the stores do not depend on it.
//
// One Collector serves one store:
//
//	col := metrics.New(metrics.Options{})
//	opts := filestore.DefaultOptions()
//	opts.Events = col // retries, lock waits, quarantines, reaper passes
//	fs, err := filestore.Open(opts)
//	...
//	store := col.Instrument(fs) // operation counts and latencies
//	sessions, err := filesession.New(store, secret)
//	http.Handle("GET /metrics", col.Handler())
//
// The metrics, with the default namespace "filesession":
//
//	filesession_store_operations_total{op,result}         counter
//	filesession_store_operation_duration_seconds{op}      histogram
//	filesession_store_errors_total{op,kind}               counter
//	filesession_store_retries_total{op}                   counter
//	filesession_store_lock_wait_seconds                   histogram
//	filesession_store_lock_timeouts_total                 counter
//	filesession_store_quarantined_total                   counter
//	filesession_store_reaped_total                        counter
//	filesession_store_reap_passes_total{result}           counter
//	filesession_store_reap_duration_seconds               histogram
//	filesession_store_last_reap_timestamp_seconds         gauge
//	filesession_sessions                                  gauge
//
// op is load, create, save, touch, update, renew, delete, list or reap;
// result is ok, not_found or error; kind is one of corrupt, invalid_id,
// exists, lock_timeout, too_large, canceled, deadline_exceeded or other.
// See the README's Operations section for what each means and how to graph it.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/filesession/filesession"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure a Collector. The zero value is usable.
type Options struct {
	// Namespace prefixes every metric name. Default "filesession".
	Namespace string
	// ConstLabels are added to every metric, to tell several stores of one
	// process apart (for example {"store": "file"}). Default none.
	ConstLabels prometheus.Labels
	// Buckets are the upper bounds, in seconds, of the operation latency
	// histogram. Default DefaultBuckets.
	Buckets []float64
}

// DefaultBuckets are the latency buckets of store operations: from 50µs (a
// Touch of the file store is one system call) to a minute (a List or Reap
// pass over a big directory).
var DefaultBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
}

// lockBuckets are the buckets of lock waits: an uncontended lock takes a
// few microseconds; the file store gives up after 5s by default.
var lockBuckets = []float64{
	0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5,
}

// reapBuckets are the buckets of reaper pass durations.
var reapBuckets = []float64{0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900}

// Collector is a prometheus.Collector of one session store's metrics. It
// is also the store's filesession.StoreEvents (set it as the file store's
// Options.Events), and Instrument wraps the store so that every operation
// is counted and timed. A Collector is safe for concurrent use. Register it
// with a registry of your own, or serve Handler.
type Collector struct {
	ops          *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	errs         *prometheus.CounterVec
	retries      *prometheus.CounterVec
	lockWait     prometheus.Histogram
	lockTimeouts prometheus.Counter
	quarantined  prometheus.Counter
	reaped       prometheus.Counter
	reapPasses   *prometheus.CounterVec
	reapDuration prometheus.Histogram
	lastReap     prometheus.Gauge

	sessionsDesc *prometheus.Desc
	// sessions is the live-session estimate, valid once counted is set:
	// the sessions the last reap pass left, plus creates, minus deletes
	// since, through Instrument.
	sessions atomic.Int64
	counted  atomic.Bool
}

var _ filesession.StoreEvents = (*Collector)(nil)

// New returns a Collector with opts.
func New(opts Options) *Collector {
	ns := opts.Namespace
	if ns == "" {
		ns = "filesession"
	}
	buckets := opts.Buckets
	if len(buckets) == 0 {
		buckets = DefaultBuckets
	}
	cl := opts.ConstLabels
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "store", Name: name, Help: help, ConstLabels: cl}, labels)
	}
	c := &Collector{
		ops: counter("operations_total",
			"Store operations by operation and result (ok, not_found, error).", "op", "result"),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: "store", Name: "operation_duration_seconds",
			Help: "Latency of store operations.", ConstLabels: cl, Buckets: buckets}, []string{"op"}),
		errs: counter("errors_total",
			"Store operations that failed or found something wrong, by operation and kind of error.", "op", "kind"),
		retries: counter("retries_total",
			"Retries of operations that failed with a transient error, by operation.", "op"),
		lockWait: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: "store", Name: "lock_wait_seconds",
			Help: "Time taken to acquire a session's lock (near zero when uncontended).", ConstLabels: cl, Buckets: lockBuckets}),
		lockTimeouts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: "store", Name: "lock_timeouts_total",
			Help: "Waits for a session's lock that ran out of time or were cancelled.", ConstLabels: cl}),
		quarantined: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: "store", Name: "quarantined_total",
			Help: "Corrupt or unusable session records moved aside for inspection.", ConstLabels: cl}),
		reaped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: "store", Name: "reaped_total",
			Help: "Expired sessions removed by the reaper.", ConstLabels: cl}),
		reapPasses: counter("reap_passes_total",
			"Reaper passes, by result (ok, or error when some file could not be handled or the pass was cut short).", "result"),
		reapDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: "store", Name: "reap_duration_seconds",
			Help: "Duration of reaper passes.", ConstLabels: cl, Buckets: reapBuckets}),
		lastReap: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: "store", Name: "last_reap_timestamp_seconds",
			Help: "Unix time at which the last reaper pass ended.", ConstLabels: cl}),
		sessionsDesc: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "sessions"),
			"Sessions in the store: those the last reaper pass left, plus sessions created minus sessions deleted since "+
				"through this process. Expired sessions count until a pass removes them. Absent until a first pass.",
			nil, cl),
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.collectors() {
		m.Describe(ch)
	}
	ch <- c.sessionsDesc
}

// Collect implements prometheus.Collector. It does no I/O: every value is
// kept up to date as the store works.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.collectors() {
		m.Collect(ch)
	}
	if c.counted.Load() {
		ch <- prometheus.MustNewConstMetric(c.sessionsDesc, prometheus.GaugeValue, float64(max(0, c.sessions.Load())))
	}
}

func (c *Collector) collectors() []prometheus.Collector {
	return []prometheus.Collector{c.ops, c.duration, c.errs, c.retries, c.lockWait, c.lockTimeouts,
		c.quarantined, c.reaped, c.reapPasses, c.reapDuration, c.lastReap}
}

// Handler returns an HTTP handler that serves, in the Prometheus text
// format, a registry of its own holding this Collector and the standard Go
// runtime and process collectors. Call it once and mount the handler (say
// on GET /metrics); an application with a registry of its own registers the
// Collector there instead.
func (c *Collector) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// Retried implements filesession.StoreEvents.
func (c *Collector) Retried(op string, _ error) { c.retries.WithLabelValues(op).Inc() }

// LockWaited implements filesession.StoreEvents.
func (c *Collector) LockWaited(wait time.Duration, err error) {
	c.lockWait.Observe(wait.Seconds())
	if err != nil {
		c.lockTimeouts.Inc()
	}
}

// Quarantined implements filesession.StoreEvents.
func (c *Collector) Quarantined(error) { c.quarantined.Inc() }

// Reaped implements filesession.StoreEvents.
func (c *Collector) Reaped() { c.reaped.Inc() }

// ReapDone implements filesession.StoreEvents. A pass that ran to its end
// sets the session gauge; one cut short (cancelled, store closed) does not,
// as it did not see every session.
func (c *Collector) ReapDone(examined, removed int, took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	c.reapPasses.WithLabelValues(result).Inc()
	c.reapDuration.Observe(took.Seconds())
	c.lastReap.SetToCurrentTime()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	c.sessions.Store(int64(examined - removed))
	c.counted.Store(true)
}

// errorKind names the kind of a store error for the errors_total metric, or
// "" for none worth counting (nil, and a plain "not found").
func errorKind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, filesession.ErrCorrupt):
		return "corrupt"
	case errors.Is(err, filesession.ErrInvalidID):
		return "invalid_id"
	case errors.Is(err, filesession.ErrNotFound):
		return ""
	case errors.Is(err, filesession.ErrExists):
		return "exists"
	case errors.Is(err, filesession.ErrLockTimeout):
		return "lock_timeout"
	case errors.Is(err, filesession.ErrTooLarge):
		return "too_large"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	}
	return "other"
}

// result names the outcome of a store operation for operations_total.
func result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, filesession.ErrNotFound):
		return "not_found"
	}
	return "error"
}

// observe records one operation that started at start and ended with err.
func (c *Collector) observe(op string, start time.Time, err error) {
	c.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	c.ops.WithLabelValues(op, result(err)).Inc()
	if kind := errorKind(err); kind != "" {
		c.errs.WithLabelValues(op, kind).Inc()
	}
}
