//! The pipeline on its own, with real stages (a WAL, day partitions, the index worker, the
//! alert worker) in a temporary directory and decoders written for each test.

use super::*;
use crate::config::Config;
use sawmill_core::{Event, LineError};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

struct Fixture {
    pipeline: Arc<Pipeline>,
    wal: Arc<Wal>,
    index: crate::index_worker::IndexWorker,
    alerts: sawmill_alerts::AlertWorker,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// A pipeline over fresh stages; `toml` configures tenants and limits.
    fn new(toml: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::from_toml(toml).unwrap();
        let metrics = Arc::new(Metrics::new().unwrap());
        let (wal, _) = Wal::open(sawmill_wal::WalConfig::new(dir.path().join("wal"))).unwrap();
        let wal = Arc::new(wal);
        let partitions = Arc::new(Partitions::open(dir.path().join("index")).unwrap());
        let index = crate::index_worker::IndexWorker::start(
            wal.clone(),
            partitions.clone(),
            sawmill_index::IndexerConfig {
                writer_threads: 1,
                writer_memory_bytes: 15 << 20,
                max_open_writers: 1,
                retention_nanos: i64::MAX,
            },
            Duration::from_millis(50),
            metrics.clone(),
        )
        .unwrap();
        let alerts_dir = dir.path().join("alerts");
        std::fs::create_dir_all(&alerts_dir).unwrap();
        let alerts = sawmill_alerts::AlertWorker::start(
            wal.clone(),
            Arc::new(sawmill_alerts::Rules::default()),
            sawmill_alerts::Silences::default(),
            alerts_dir,
        )
        .unwrap();
        let idempotency =
            Arc::new(IdempotencyStore::load(dir.path().join("idempotency.json"), 0).unwrap());
        let pipeline = Arc::new(Pipeline::new(
            PipelineLimits {
                decode: config.ingest.limits(),
                max_inflight_bytes: config.ingest.max_inflight_bytes,
                max_index_lag_events: config.ingest.max_index_lag_events,
                max_wal_bytes: config.wal.max_bytes,
            },
            wal.clone(),
            index.handle(),
            alerts.handle(),
            partitions,
            Arc::new(TenantPolicies::new(&config).unwrap()),
            idempotency,
            metrics,
            Arc::new(DiskGuard::new(
                dir.path(),
                config.limits.min_free_disk_bytes,
            )),
        ));
        Fixture {
            pipeline,
            wal,
            index,
            alerts,
            _dir: dir,
        }
    }

    async fn body(&self, bytes: &[u8]) -> Body {
        Body {
            bytes: Bytes::copy_from_slice(bytes),
            encoding: ContentEncoding::Identity,
            permit: self.pipeline.reserve(bytes.len()).await.unwrap(),
        }
    }

    /// The events in the WAL, by record.
    fn records(&self) -> Vec<(sawmill_core::record::RecordHeader, Vec<Event>)> {
        self.wal
            .read_from(0)
            .unwrap()
            .map(|r| sawmill_core::record::decode_events(&r.unwrap().payload).unwrap())
            .collect()
    }

    fn stop(self) {
        self.index.shutdown();
        self.alerts.shutdown();
        self.wal.close();
    }
}

fn origin(tenant: &str, key: Option<&str>) -> Origin {
    Origin {
        tenant: tenant.into(),
        idempotency_key: key.map(str::to_string),
        default_source: Some("unit".into()),
        wait_for: false,
    }
}

/// A decoder that makes one event per line and rejects lines starting with `!`.
fn lines(raw: &[u8], ctx: &mut DecodeContext<'_>) -> Result<Parsed, Refusal> {
    let mut parsed = Parsed::default();
    for (i, line) in String::from_utf8_lossy(raw).lines().enumerate() {
        if line.starts_with('!') {
            parsed.rejected += 1;
            parsed.errors.push(LineError {
                line: i + 1,
                error: format!("refused {line}"),
            });
        } else {
            let mut event = Event::new(ctx.parse.received_at, line);
            event.source.clone_from(&ctx.parse.default_source);
            parsed.events.push(event);
        }
    }
    Ok(parsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decoded_events_are_durable_when_answered_and_reach_the_index() {
    let f = Fixture::new("");
    let body = f.body(b"one\n!two\nthree\n").await;
    let Ingested::Done(answer) = f
        .pipeline
        .ingest(origin("acme", None), body, lines)
        .await
        .unwrap()
    else {
        panic!("a first request is not a replay");
    };
    assert_eq!((answer.accepted, answer.rejected), (2, 1));
    assert_eq!(answer.errors[0].line, 2);
    // durable: the WAL holds the events, the tenant and the stored answer
    assert!(f.wal.durable_seq() >= 2);
    let records = f.records();
    assert_eq!(records.len(), 1);
    let (header, events) = &records[0];
    assert_eq!(header.tenant, "acme");
    assert_eq!(header.answer, answer.to_json());
    let messages: Vec<_> = events.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(messages, ["one", "three"]);
    assert_eq!(events[0].source.as_deref(), Some("unit"));
    // handed to the indexer after the fsync
    let index = f.index.handle();
    tokio::time::timeout(Duration::from_secs(10), index.wait_searchable(2))
        .await
        .expect("the events become searchable");
    f.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_key_is_answered_as_the_first_time_and_ingests_nothing() {
    let f = Fixture::new("");
    let first = f
        .pipeline
        .ingest(origin("acme", Some("k-1")), f.body(b"a\n!b\n").await, lines)
        .await
        .unwrap();
    let Ingested::Done(answer) = first else {
        panic!("first request replayed")
    };
    let decoded = Arc::new(AtomicBool::new(false));
    let seen = decoded.clone();
    let again = f
        .pipeline
        .ingest(
            origin("acme", Some("k-1")),
            f.body(b"a\n!b\n").await,
            move |raw: &[u8], ctx: &mut DecodeContext<'_>| {
                seen.store(true, Ordering::SeqCst);
                lines(raw, ctx)
            },
        )
        .await
        .unwrap();
    match again {
        Ingested::Replayed(stored) => assert_eq!(stored, answer.to_json()),
        Ingested::Done(_) => panic!("the retry was ingested again"),
    }
    assert!(!decoded.load(Ordering::SeqCst), "a replay decodes nothing");
    // the same key of another tenant is another request
    let other = f
        .pipeline
        .ingest(origin("other", Some("k-1")), f.body(b"c\n").await, lines)
        .await
        .unwrap();
    assert!(matches!(other, Ingested::Done(_)));
    assert_eq!(f.records().len(), 2);
    f.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_body_ingests_nothing_and_releases_its_key() {
    let f = Fixture::new("");
    let refuse = |_: &[u8], _: &mut DecodeContext<'_>| -> Result<Parsed, Refusal> {
        Err(Refusal::BadBody("not this protocol".into()))
    };
    let err = f
        .pipeline
        .ingest(origin("acme", Some("k-2")), f.body(b"x\n").await, refuse)
        .await
        .unwrap_err();
    assert!(matches!(err, Refusal::BadBody(_)), "{err}");
    assert!(f.records().is_empty());
    // the key was released: the corrected retry is ingested
    let retry = f
        .pipeline
        .ingest(origin("acme", Some("k-2")), f.body(b"x\n").await, lines)
        .await
        .unwrap();
    assert!(matches!(retry, Ingested::Done(ref a) if a.accepted == 1));
    f.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_is_charged_before_decoding_and_for_what_a_decoder_expands() {
    let f =
        Fixture::new("[tenants.slow]\ningest_bytes_per_sec = 4096\ningest_burst_bytes = 8192\n");
    let calls = Arc::new(AtomicUsize::new(0));
    let counting = |calls: Arc<AtomicUsize>| {
        move |raw: &[u8], ctx: &mut DecodeContext<'_>| {
            calls.fetch_add(1, Ordering::SeqCst);
            lines(raw, ctx)
        }
    };
    // 6 KiB passes within the 8 KiB burst; the next 6 KiB is over the rate: refused with the
    // wait, and never decoded
    let body = vec![b'a'; 6 << 10];
    f.pipeline
        .ingest(
            origin("slow", None),
            f.body(&body).await,
            counting(calls.clone()),
        )
        .await
        .unwrap();
    let err = f
        .pipeline
        .ingest(
            origin("slow", None),
            f.body(&body).await,
            counting(calls.clone()),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Refusal::RateLimited { retry_after, .. } if retry_after >= 1),
        "{err}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // a decoder that expands its body charges the difference: beyond the burst, refused
    let expanding = |_: &[u8], ctx: &mut DecodeContext<'_>| -> Result<Parsed, Refusal> {
        ctx.charge(64 << 10)?;
        Ok(Parsed::default())
    };
    let err = f
        .pipeline
        .ingest(origin("slow", None), f.body(b"x").await, expanding)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Refusal::OverBurst {
                burst_bytes: 8192,
                ..
            }
        ),
        "{err}"
    );
    // other tenants are not limited
    let other = f
        .pipeline
        .ingest(origin("acme", None), f.body(&body).await, lines)
        .await;
    assert!(other.is_ok());
    f.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenants_redaction_applies_to_every_decoder_before_the_wal() {
    let f = Fixture::new("[tenants.acme]\nredact = [\"email\"]\n");
    f.pipeline
        .ingest(
            origin("acme", None),
            f.body(b"mail ada@example.com\n!bad ada@example.com\n")
                .await,
            lines,
        )
        .await
        .unwrap();
    let records = f.records();
    let (header, events) = &records[0];
    assert_eq!(events[0].message, "mail [REDACTED:email]");
    let stored = String::from_utf8_lossy(&header.answer);
    assert!(!stored.contains("ada@example.com"), "{stored}");
    f.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_refuses_when_the_disk_is_below_its_threshold() {
    let f = Fixture::new("[limits]\nmin_free_disk_bytes = 9223372036854775807\n");
    let err = f.pipeline.admit().unwrap_err();
    assert!(matches!(err, Refusal::DiskLow { .. }), "{err}");
    assert_eq!(err.retry_after(), Some(30));
    assert!(err.disk_full());
    f.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_bodies_are_decompressed_within_the_limit() {
    let f = Fixture::new("[ingest]\nmax_decompressed_bytes = 65536\n");
    let small = zstd::bulk::compress(b"z1\nz2\n", 3).unwrap();
    let body = Body {
        encoding: ContentEncoding::Zstd,
        ..f.body(&small).await
    };
    let answer = f
        .pipeline
        .ingest(origin("acme", None), body, lines)
        .await
        .unwrap();
    assert!(matches!(answer, Ingested::Done(ref a) if a.accepted == 2));
    let bomb = zstd::bulk::compress(&vec![b'a'; 1 << 20], 3).unwrap();
    let body = Body {
        encoding: ContentEncoding::Zstd,
        ..f.body(&bomb).await
    };
    let err = f
        .pipeline
        .ingest(origin("acme", None), body, lines)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Refusal::Decompress(ref e) if e.too_large()),
        "{err}"
    );
    f.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decoder_is_told_once_how_its_request_ended() {
    let f = Fixture::new("");
    let settling = |told: Arc<std::sync::Mutex<Vec<bool>>>, refuse: bool| {
        move |raw: &[u8], ctx: &mut DecodeContext<'_>| {
            ctx.on_settled(move |durable| told.lock().unwrap().push(durable));
            if refuse {
                return Err(Refusal::BadBody("not this time".into()));
            }
            lines(raw, ctx)
        }
    };
    // durable events: told true, after the WAL holds them
    let told = Arc::new(std::sync::Mutex::new(Vec::new()));
    let answer = f
        .pipeline
        .ingest(
            origin("acme", None),
            f.body(b"one\ntwo\n").await,
            settling(told.clone(), false),
        )
        .await
        .unwrap();
    let Ingested::Done(answer) = answer else {
        panic!("a new request is not a replay")
    };
    assert_eq!(*told.lock().unwrap(), vec![true]);
    assert_eq!(answer.first_seq, Some(0));
    assert_eq!(f.records().len(), 1);
    // a refusal by the decoder itself: told false
    let told = Arc::new(std::sync::Mutex::new(Vec::new()));
    f.pipeline
        .ingest(
            origin("acme", None),
            f.body(b"three\n").await,
            settling(told.clone(), true),
        )
        .await
        .unwrap_err();
    assert_eq!(*told.lock().unwrap(), vec![false]);
    // nothing to append (every line rejected): told true, as nothing is left to keep
    let told = Arc::new(std::sync::Mutex::new(Vec::new()));
    f.pipeline
        .ingest(
            origin("acme", None),
            f.body(b"!bad\n").await,
            settling(told.clone(), false),
        )
        .await
        .unwrap();
    assert_eq!(*told.lock().unwrap(), vec![true]);
    assert_eq!(f.records().len(), 1);
    f.stop();
}
