//! Prometheus metrics of the server, served at `/metrics`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    pub ingest_requests: IntCounterVec,
    pub ingest_events: IntCounterVec,
    pub ingest_bytes: IntCounterVec,
    pub ingest_seconds: Histogram,
    pub rejected_requests: IntCounterVec,
    pub audit_events: IntCounterVec,
    pub redacted_events: IntCounterVec,
    pub disk_free_bytes: IntGauge,
    pub wal_fsync_seconds: Histogram,
    pub wal_disk_bytes: IntGauge,
    pub wal_segments: IntGauge,
    pub wal_durable_seq: IntGauge,
    pub index_searchable_seq: IntGauge,
    pub index_lag_events: IntGauge,
    pub index_docs: IntGauge,
    pub index_commit_seconds: Histogram,
    pub index_skipped_events: IntCounterVec,
    pub index_errors: IntCounter,
    pub search_seconds: HistogramVec,
    pub search_requests: IntCounterVec,
    pub archive_objects: IntCounter,
    pub archive_events: IntCounter,
    pub archive_bytes: IntCounterVec,
    pub archive_errors: IntCounter,
    pub archive_catch_ups: IntCounter,
    pub archive_backlog_events: IntGauge,
    pub archive_backlog_seconds: IntGauge,
    pub alert_rules: IntGauge,
    pub alerts_firing: IntGauge,
    pub alert_notifications: IntCounter,
    pub alert_deliveries: IntCounter,
    pub alert_delivery_failures: IntCounter,
    pub alert_outbox_pending: IntGauge,
    pub alert_lag_events: IntGauge,
}

fn latency_buckets() -> Vec<f64> {
    vec![
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ]
}

impl Metrics {
    /// Counts a request refused as a whole in `sawmill_rejected_requests_total{reason}`.
    pub fn refuse(&self, reason: &str) {
        self.rejected_requests.with_label_values(&[reason]).inc();
    }

    /// Creates and registers every metric.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let counter_vec =
            |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
                let c = IntCounterVec::new(Opts::new(name, help), labels)?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let histogram = |name: &str, help: &str| -> Result<Histogram, prometheus::Error> {
            let h =
                Histogram::with_opts(HistogramOpts::new(name, help).buckets(latency_buckets()))?;
            registry.register(Box::new(h.clone()))?;
            Ok(h)
        };
        let search_seconds = HistogramVec::new(
            HistogramOpts::new("sawmill_search_seconds", "Search latency by endpoint")
                .buckets(latency_buckets()),
            &["endpoint"],
        )?;
        registry.register(Box::new(search_seconds.clone()))?;
        let index_errors = IntCounter::new(
            "sawmill_index_errors_total",
            "Indexing failures (the indexer retries from the WAL)",
        )?;
        registry.register(Box::new(index_errors.clone()))?;
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        Ok(Metrics {
            archive_objects: counter("sawmill_archive_objects_total", "Archive objects written")?,
            archive_events: counter(
                "sawmill_archive_events_total",
                "Events written to the archive",
            )?,
            archive_bytes: counter_vec(
                "sawmill_archive_bytes_total",
                "Archived bytes, uncompressed (raw) and as stored (compressed)",
                &["kind"],
            )?,
            archive_errors: counter(
                "sawmill_archive_write_errors_total",
                "Failed archive writes (each is retried)",
            )?,
            archive_catch_ups: counter(
                "sawmill_archive_catch_ups_total",
                "Times archiving fell behind by more than the catch-up lag and ran at normal priority",
            )?,
            archive_backlog_events: gauge(
                "sawmill_archive_backlog_events",
                "Acknowledged events not yet archived",
            )?,
            archive_backlog_seconds: gauge(
                "sawmill_archive_backlog_age_seconds",
                "Age of the oldest acknowledged event not yet archived",
            )?,
            alert_rules: gauge("sawmill_alert_rules", "Alert rules loaded")?,
            alerts_firing: gauge("sawmill_alerts_firing", "Alert instances firing")?,
            alert_notifications: counter(
                "sawmill_alert_notifications_total",
                "Notifications recorded in the outbox (one per notifier)",
            )?,
            alert_deliveries: counter(
                "sawmill_alert_deliveries_total",
                "Notifications delivered (a grouped message counts once)",
            )?,
            alert_delivery_failures: counter(
                "sawmill_alert_delivery_failures_total",
                "Failed delivery attempts (each is retried)",
            )?,
            alert_outbox_pending: gauge(
                "sawmill_alert_outbox_pending",
                "Notifications recorded but not yet delivered",
            )?,
            alert_lag_events: gauge(
                "sawmill_alert_lag_events",
                "Acknowledged events not yet counted by the alert rules",
            )?,
            ingest_requests: counter_vec(
                "sawmill_ingest_requests_total",
                "Ingest requests by HTTP status",
                &["status"],
            )?,
            ingest_events: counter_vec(
                "sawmill_ingest_events_total",
                "Ingested events by outcome (accepted, rejected)",
                &["outcome"],
            )?,
            ingest_bytes: counter_vec(
                "sawmill_ingest_bytes_total",
                "Ingest body bytes as received and after decompression",
                &["stage"],
            )?,
            ingest_seconds: histogram(
                "sawmill_ingest_seconds",
                "Ingest request latency, body read to durable acknowledgment",
            )?,
            rejected_requests: counter_vec(
                "sawmill_rejected_requests_total",
                "Requests refused as a whole, by reason",
                &["reason"],
            )?,
            audit_events: counter_vec(
                "sawmill_audit_events_total",
                "Entries written to the audit log, by action",
                &["action"],
            )?,
            redacted_events: counter_vec(
                "sawmill_redacted_events_total",
                "Events in which ingest redaction replaced something, by tenant",
                &["tenant"],
            )?,
            disk_free_bytes: gauge(
                "sawmill_disk_free_bytes",
                "Free bytes on the data directory's file system (as last checked)",
            )?,
            wal_fsync_seconds: histogram(
                "sawmill_wal_fsync_seconds",
                "WAL group-commit fsync latency",
            )?,
            wal_disk_bytes: gauge("sawmill_wal_disk_bytes", "Bytes of WAL segments on disk")?,
            wal_segments: gauge("sawmill_wal_segments", "WAL segments on disk")?,
            wal_durable_seq: gauge(
                "sawmill_wal_durable_seq",
                "Sequence number below which every event is durable",
            )?,
            index_searchable_seq: gauge(
                "sawmill_index_searchable_seq",
                "Sequence number below which every event is searchable",
            )?,
            index_lag_events: gauge(
                "sawmill_index_lag_events",
                "Events acknowledged but not yet searchable",
            )?,
            index_docs: gauge("sawmill_index_docs", "Searchable events in the hot index")?,
            index_commit_seconds: histogram(
                "sawmill_index_commit_seconds",
                "Index commit latency",
            )?,
            index_skipped_events: counter_vec(
                "sawmill_index_skipped_events_total",
                "Events not indexed, by reason (retention: older than hot_retention)",
                &["reason"],
            )?,
            index_errors,
            search_seconds,
            search_requests: counter_vec(
                "sawmill_search_requests_total",
                "Search API requests by endpoint and HTTP status",
                &["endpoint", "status"],
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
        sync(&self.archive_objects, stats.objects.load(Relaxed));
        sync(&self.archive_events, stats.events.load(Relaxed));
        sync(&self.archive_errors, stats.upload_errors.load(Relaxed));
        sync(&self.archive_catch_ups, stats.catch_ups.load(Relaxed));
        sync(
            &self.archive_bytes.with_label_values(&["raw"]),
            stats.raw_bytes.load(Relaxed),
        );
        sync(
            &self.archive_bytes.with_label_values(&["compressed"]),
            stats.compressed_bytes.load(Relaxed),
        );
        let position = stats.position.load(Relaxed);
        self.archive_backlog_events
            .set(durable_seq.saturating_sub(position) as i64);
        let oldest = stats.oldest_pending.load(Relaxed);
        let age = if oldest > 0 {
            (now - oldest) / 1_000_000_000
        } else {
            0
        };
        self.archive_backlog_seconds.set(age.max(0));
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
            &self.alert_notifications,
            alerts.shared.notifications.load(Relaxed),
        );
        sync(&self.alert_deliveries, stats.sent.load(Relaxed));
        sync(
            &self.alert_delivery_failures,
            stats.failed_attempts.load(Relaxed),
        );
        let status = alerts.shared.status.read();
        let rules = status["rules"].as_array();
        self.alert_rules
            .set(rules.map(|r| r.len()).unwrap_or(0) as i64);
        let firing = rules
            .into_iter()
            .flatten()
            .flat_map(|r| r["instances"].as_array().into_iter().flatten())
            .filter(|i| i["state"] == "firing")
            .count();
        self.alerts_firing.set(firing as i64);
        self.alert_outbox_pending
            .set(status["outbox_pending"].as_i64().unwrap_or(0));
        self.alert_lag_events
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
