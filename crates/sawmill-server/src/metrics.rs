//! Prometheus metrics of the server, served at `/metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Every metric the server exports, grouped by the stage that moves it.
pub struct Metrics {
    registry: Registry,
    pub ingest: IngestMetrics,
    pub wal: WalMetrics,
    pub index: IndexMetrics,
    pub search: SearchMetrics,
    pub archive: ArchiveMetrics,
    pub alerts: AlertMetrics,
    pub audit_events: IntCounterVec,
    pub disk_free_bytes: IntGauge,
}

/// The ingest pipeline and the protocols in front of it.
pub struct IngestMetrics {
    pub requests: IntCounterVec,
    pub events: IntCounterVec,
    pub bytes: IntCounterVec,
    pub seconds: Histogram,
    pub rejected_requests: IntCounterVec,
    pub redacted_events: IntCounterVec,
    pub firehose_bad_records: IntCounter,
}

pub struct WalMetrics {
    pub fsync_seconds: Histogram,
    pub disk_bytes: IntGauge,
    pub segments: IntGauge,
    pub durable_seq: IntGauge,
}

pub struct IndexMetrics {
    pub searchable_seq: IntGauge,
    pub lag_events: IntGauge,
    pub docs: IntGauge,
    pub commit_seconds: Histogram,
    pub skipped_events: IntCounterVec,
    pub errors: IntCounter,
}

pub struct SearchMetrics {
    pub seconds: HistogramVec,
    pub requests: IntCounterVec,
}

pub struct ArchiveMetrics {
    pub objects: IntCounter,
    pub events: IntCounter,
    pub bytes: IntCounterVec,
    pub errors: IntCounter,
    pub catch_ups: IntCounter,
    pub backlog_events: IntGauge,
    pub backlog_seconds: IntGauge,
}

pub struct AlertMetrics {
    pub rules: IntGauge,
    pub firing: IntGauge,
    pub notifications: IntCounter,
    pub deliveries: IntCounter,
    pub delivery_failures: IntCounter,
    pub outbox_pending: IntGauge,
    pub lag_events: IntGauge,
}

fn latency_buckets() -> Vec<f64> {
    vec![
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ]
}

/// Creates metrics and registers them.
struct Registrar<'a>(&'a Registry);

type Made<T> = Result<T, prometheus::Error>;

impl Registrar<'_> {
    fn add<M: prometheus::core::Collector + Clone + 'static>(&self, metric: M) -> Made<M> {
        self.0.register(Box::new(metric.clone()))?;
        Ok(metric)
    }

    fn counter(&self, name: &str, help: &str) -> Made<IntCounter> {
        self.add(IntCounter::new(name, help)?)
    }

    fn counters(&self, name: &str, help: &str, labels: &[&str]) -> Made<IntCounterVec> {
        self.add(IntCounterVec::new(Opts::new(name, help), labels)?)
    }

    fn gauge(&self, name: &str, help: &str) -> Made<IntGauge> {
        self.add(IntGauge::new(name, help)?)
    }

    fn histogram(&self, name: &str, help: &str) -> Made<Histogram> {
        let opts = HistogramOpts::new(name, help).buckets(latency_buckets());
        self.add(Histogram::with_opts(opts)?)
    }

    fn histograms(&self, name: &str, help: &str, labels: &[&str]) -> Made<HistogramVec> {
        let opts = HistogramOpts::new(name, help).buckets(latency_buckets());
        self.add(HistogramVec::new(opts, labels)?)
    }
}

impl IngestMetrics {
    fn new(r: &Registrar) -> Made<IngestMetrics> {
        Ok(IngestMetrics {
            requests: r.counters(
                "sawmill_ingest_requests_total",
                "Ingest requests by HTTP status",
                &["status"],
            )?,
            events: r.counters(
                "sawmill_ingest_events_total",
                "Ingested events by outcome (accepted, rejected)",
                &["outcome"],
            )?,
            bytes: r.counters(
                "sawmill_ingest_bytes_total",
                "Ingest body bytes as received and after decompression",
                &["stage"],
            )?,
            seconds: r.histogram(
                "sawmill_ingest_seconds",
                "Ingest request latency, body read to durable acknowledgment",
            )?,
            rejected_requests: r.counters(
                "sawmill_rejected_requests_total",
                "Requests refused as a whole, by reason",
                &["reason"],
            )?,
            redacted_events: r.counters(
                "sawmill_redacted_events_total",
                "Events in which ingest redaction replaced something, by tenant",
                &["tenant"],
            )?,
            firehose_bad_records: r.counter(
                "sawmill_firehose_bad_records_total",
                "Firehose records that could not be decoded (each became an event saying why)",
            )?,
        })
    }
}

impl WalMetrics {
    fn new(r: &Registrar) -> Made<WalMetrics> {
        Ok(WalMetrics {
            fsync_seconds: r.histogram(
                "sawmill_wal_fsync_seconds",
                "WAL group-commit fsync latency",
            )?,
            disk_bytes: r.gauge("sawmill_wal_disk_bytes", "Bytes of WAL segments on disk")?,
            segments: r.gauge("sawmill_wal_segments", "WAL segments on disk")?,
            durable_seq: r.gauge(
                "sawmill_wal_durable_seq",
                "Sequence number below which every event is durable",
            )?,
        })
    }
}

impl IndexMetrics {
    fn new(r: &Registrar) -> Made<IndexMetrics> {
        Ok(IndexMetrics {
            searchable_seq: r.gauge(
                "sawmill_index_searchable_seq",
                "Sequence number below which every event is searchable",
            )?,
            lag_events: r.gauge(
                "sawmill_index_lag_events",
                "Events acknowledged but not yet searchable",
            )?,
            docs: r.gauge("sawmill_index_docs", "Searchable events in the hot index")?,
            commit_seconds: r.histogram("sawmill_index_commit_seconds", "Index commit latency")?,
            skipped_events: r.counters(
                "sawmill_index_skipped_events_total",
                "Events not indexed, by reason (retention: older than hot_retention)",
                &["reason"],
            )?,
            errors: r.counter(
                "sawmill_index_errors_total",
                "Indexing failures (the indexer retries from the WAL)",
            )?,
        })
    }
}

impl SearchMetrics {
    fn new(r: &Registrar) -> Made<SearchMetrics> {
        Ok(SearchMetrics {
            seconds: r.histograms(
                "sawmill_search_seconds",
                "Search latency by endpoint",
                &["endpoint"],
            )?,
            requests: r.counters(
                "sawmill_search_requests_total",
                "Search API requests by endpoint and HTTP status",
                &["endpoint", "status"],
            )?,
        })
    }
}

impl ArchiveMetrics {
    fn new(r: &Registrar) -> Made<ArchiveMetrics> {
        Ok(ArchiveMetrics {
            objects: r.counter("sawmill_archive_objects_total", "Archive objects written")?,
            events: r.counter(
                "sawmill_archive_events_total",
                "Events written to the archive",
            )?,
            bytes: r.counters(
                "sawmill_archive_bytes_total",
                "Archived bytes, uncompressed (raw) and as stored (compressed)",
                &["kind"],
            )?,
            errors: r.counter(
                "sawmill_archive_write_errors_total",
                "Failed archive writes (each is retried)",
            )?,
            catch_ups: r.counter(
                "sawmill_archive_catch_ups_total",
                "Times archiving fell behind by more than the catch-up lag and ran at normal priority",
            )?,
            backlog_events: r.gauge(
                "sawmill_archive_backlog_events",
                "Acknowledged events not yet archived",
            )?,
            backlog_seconds: r.gauge(
                "sawmill_archive_backlog_age_seconds",
                "Age of the oldest acknowledged event not yet archived",
            )?,
        })
    }
}

impl AlertMetrics {
    fn new(r: &Registrar) -> Made<AlertMetrics> {
        Ok(AlertMetrics {
            rules: r.gauge("sawmill_alert_rules", "Alert rules loaded")?,
            firing: r.gauge("sawmill_alerts_firing", "Alert instances firing")?,
            notifications: r.counter(
                "sawmill_alert_notifications_total",
                "Notifications recorded in the outbox (one per notifier)",
            )?,
            deliveries: r.counter(
                "sawmill_alert_deliveries_total",
                "Notifications delivered (a grouped message counts once)",
            )?,
            delivery_failures: r.counter(
                "sawmill_alert_delivery_failures_total",
                "Failed delivery attempts (each is retried)",
            )?,
            outbox_pending: r.gauge(
                "sawmill_alert_outbox_pending",
                "Notifications recorded but not yet delivered",
            )?,
            lag_events: r.gauge(
                "sawmill_alert_lag_events",
                "Acknowledged events not yet counted by the alert rules",
            )?,
        })
    }
}

impl Metrics {
    /// Counts a request refused as a whole in `sawmill_rejected_requests_total{reason}`.
    pub fn refuse(&self, reason: &str) {
        self.ingest
            .rejected_requests
            .with_label_values(&[reason])
            .inc();
    }

    /// Creates and registers every metric.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let r = Registrar(&registry);
        Ok(Metrics {
            ingest: IngestMetrics::new(&r)?,
            wal: WalMetrics::new(&r)?,
            index: IndexMetrics::new(&r)?,
            search: SearchMetrics::new(&r)?,
            archive: ArchiveMetrics::new(&r)?,
            alerts: AlertMetrics::new(&r)?,
            audit_events: r.counters(
                "sawmill_audit_events_total",
                "Entries written to the audit log, by action",
                &["action"],
            )?,
            disk_free_bytes: r.gauge(
                "sawmill_disk_free_bytes",
                "Free bytes on the data directory's file system (as last checked)",
            )?,
            registry,
        })
    }

    /// Copies the archive's counters into the registry.
    pub fn observe_archive(
        &self,
        stats: &sawmill_archive::ArchiveStats,
        durable_seq: u64,
        now: i64,
    ) {
        use std::sync::atomic::Ordering::Relaxed;
        let sync = |c: &IntCounter, v: u64| c.inc_by(v.saturating_sub(c.get()));
        sync(&self.archive.objects, stats.objects.load(Relaxed));
        sync(&self.archive.events, stats.events.load(Relaxed));
        sync(&self.archive.errors, stats.upload_errors.load(Relaxed));
        sync(&self.archive.catch_ups, stats.catch_ups.load(Relaxed));
        sync(
            &self.archive.bytes.with_label_values(&["raw"]),
            stats.raw_bytes.load(Relaxed),
        );
        sync(
            &self.archive.bytes.with_label_values(&["compressed"]),
            stats.compressed_bytes.load(Relaxed),
        );
        let position = stats.position.load(Relaxed);
        self.archive
            .backlog_events
            .set(durable_seq.saturating_sub(position) as i64);
        let oldest = stats.oldest_pending.load(Relaxed);
        let age = if oldest > 0 {
            (now - oldest) / 1_000_000_000
        } else {
            0
        };
        self.archive.backlog_seconds.set(age.max(0));
    }

    /// Copies alerting's counters into the registry.
    pub fn observe_alerts(
        &self,
        alerts: &sawmill_alerts::AlertHandle,
        stats: &sawmill_alerts::notify::NotifyStats,
        durable_seq: u64,
    ) {
        use std::sync::atomic::Ordering::Relaxed;
        let sync = |c: &IntCounter, v: u64| c.inc_by(v.saturating_sub(c.get()));
        sync(
            &self.alerts.notifications,
            alerts.shared.notifications.load(Relaxed),
        );
        sync(&self.alerts.deliveries, stats.sent.load(Relaxed));
        sync(
            &self.alerts.delivery_failures,
            stats.failed_attempts.load(Relaxed),
        );
        let status = alerts.shared.status.read();
        let rules = status["rules"].as_array();
        self.alerts
            .rules
            .set(rules.map(|r| r.len()).unwrap_or(0) as i64);
        let firing = rules
            .into_iter()
            .flatten()
            .flat_map(|r| r["instances"].as_array().into_iter().flatten())
            .filter(|i| i["state"] == "firing")
            .count();
        self.alerts.firing.set(firing as i64);
        self.alerts
            .outbox_pending
            .set(status["outbox_pending"].as_i64().unwrap_or(0));
        self.alerts
            .lag_events
            .set(durable_seq.saturating_sub(alerts.position()) as i64);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}
