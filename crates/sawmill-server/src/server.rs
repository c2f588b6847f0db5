//! Starting, running and stopping the server: opens the WAL, replays it into the index,
//! serves the API and shuts down cleanly (drain requests, commit the index, close the WAL).

use crate::config::{ArchiveBackend, Config};
use crate::doc_ids::{ids_in_events, DocIds};
use crate::http::{now_nanos, router, AppState};
use crate::idempotency::IdempotencyStore;
use crate::index_worker::IndexWorker;
use crate::metrics::Metrics;
use crate::pipeline::{Pipeline, PipelineLimits};
use crate::restore::Restores;
use anyhow::Context;
use sawmill_alerts::AlertWorker;
use sawmill_archive::{
    lifecycle, ArchiveWorker, BatchLimits, FsStore, ObjectStore, S3Settings, S3Store,
};
use sawmill_core::record::RecordHeader;
use sawmill_index::{IndexerConfig, Partitions};
use sawmill_wal::{Wal, WalConfig};
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How often keys are saved and consumed WAL segments deleted.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(10);

/// Where the server's files live under the data directory.
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    pub fn wal(&self) -> PathBuf {
        self.root.join("wal")
    }
    pub fn index(&self) -> PathBuf {
        self.root.join("index")
    }
    pub fn idempotency(&self) -> PathBuf {
        self.root.join("idempotency.json")
    }
    pub fn doc_ids(&self) -> PathBuf {
        self.root.join("doc-ids.bin")
    }
}

/// Takes the data directory's lock so that two servers never share it.
fn lock_data_dir(root: &Path) -> anyhow::Result<File> {
    let path = root.join("LOCK");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another sawmill server is using {}: stop it or choose another --data-dir",
            root.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Runs the server until SIGINT or SIGTERM. `on_listening` is called with the bound address
/// once the API accepts connections.
pub async fn run(
    config: Config,
    on_listening: impl FnOnce(SocketAddr, &Path),
) -> anyhow::Result<()> {
    config.validate()?;
    let root = data_dir(&config.data_dir)?;
    let _lock = lock_data_dir(&root)?;
    let keys = Arc::new(crate::keys::KeyRing::open(&root)?);
    check_exposure(&config, keys.loaded().is_empty())?;
    let tls = match &config.tls {
        Some(t) => Some(crate::listen::server_config(&t.cert, &t.key)?),
        None => None,
    };
    let dirs = DataDir { root: root.clone() };
    let metrics = Arc::new(Metrics::new().context("cannot register metrics")?);
    let wal = open_wal(&dirs, &config, &metrics).await?;
    let remembered = {
        let wal = wal.clone();
        let (keys_path, ids_path) = (dirs.idempotency(), dirs.doc_ids());
        let capacity = config.ingest.max_document_ids;
        tokio::task::spawn_blocking(move || load_remembered(&keys_path, &ids_path, capacity, &wal))
            .await??
    };
    let stages = Stages::start(&config, &dirs, &wal, &metrics).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let state = app_state(config, &root, wal, remembered, metrics, keys, &stages)?;
    let sighup = tokio::spawn(crate::alerting::reload_on_sighup(state.clone()));
    let maintenance = tokio::spawn(maintenance_loop(state.clone()));
    on_listening(addr, &root);

    let limits = crate::listen::ConnLimits {
        max_connections: crate::listen::fit_connections(state.config.limits.max_connections),
        header_read_timeout: state.config.limits.header_read_timeout,
        shutdown_grace: state.config.limits.shutdown_grace,
    };
    crate::listen::serve(
        listener,
        tls,
        router(state.clone()),
        limits,
        state.metrics.clone(),
        shutdown_signal(),
    )
    .await;

    maintenance.abort();
    sighup.abort();
    stages.stop().await?;
    let last = state.clone();
    tokio::task::spawn_blocking(move || maintenance_step(&last)).await?;
    state.wal.close();
    state.audit.close();
    tracing::info!("stopped");
    Ok(())
}

/// Creates the data directory if needed; its canonical path.
fn data_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    std::fs::canonicalize(dir).with_context(|| format!("cannot resolve {}", dir.display()))
}

/// Opens (and recovers) the WAL.
async fn open_wal(dirs: &DataDir, config: &Config, metrics: &Metrics) -> anyhow::Result<Arc<Wal>> {
    let mut wal_config = WalConfig::new(dirs.wal());
    wal_config.segment_bytes = config.wal.segment_bytes;
    // a normalized batch can be several times its text (short plain-text lines grow most)
    wal_config.max_record_bytes = u32::MAX;
    let fsync_metric = metrics.wal.fsync_seconds.clone();
    wal_config.on_fsync = Some(Arc::new(move |d: Duration| {
        fsync_metric.observe(d.as_secs_f64())
    }));
    let dir = dirs.wal();
    let (wal, report) = tokio::task::spawn_blocking(move || Wal::open(wal_config))
        .await?
        .with_context(|| format!("cannot open the WAL in {}", dir.display()))?;
    for cut in &report.truncated {
        tracing::warn!(tail = ?cut, "wal recovery cut a damaged tail");
    }
    tracing::info!(
        segments = report.segments,
        records = report.records,
        next_seq = report.next_seq,
        "wal opened"
    );
    Ok(Arc::new(wal))
}

/// The WAL's consumers and what they serve: the index, the archive (and its restores) and
/// alerting.
struct Stages {
    archive: ArchiveWorker,
    index: IndexWorker,
    partitions: Arc<Partitions>,
    restores: Arc<Restores>,
    alerts: AlertWorker,
    notifiers: Arc<crate::alerting::Notifiers>,
}

impl Stages {
    async fn start(
        config: &Config,
        dirs: &DataDir,
        wal: &Arc<Wal>,
        metrics: &Arc<Metrics>,
    ) -> anyhow::Result<Stages> {
        let archive = start_archive(config, &dirs.root, wal.clone()).await?;
        let (index, partitions) = start_index(config, dirs, wal, metrics).await?;
        let restores = {
            let dir = dirs.root.join("restores");
            let partitions = partitions.clone();
            let store = archive.handle().store().clone();
            let prefix = config.archive.prefix.clone();
            let ttl = config.archive.restore_ttl;
            Arc::new(
                tokio::task::spawn_blocking(move || {
                    Restores::open(dir, partitions, store, prefix, ttl)
                })
                .await?
                .context("cannot open the archive restores")?,
            )
        };
        let (alerts, notifiers) = start_alerting(config, dirs, wal).await?;
        Ok(Stages {
            archive,
            index,
            partitions,
            restores,
            alerts,
            notifiers,
        })
    }

    /// Commits the index, seals and writes pending archive batches, saves alerting's state.
    async fn stop(self) -> anyhow::Result<()> {
        tracing::info!("stopping: committing the index");
        let Stages {
            archive,
            index,
            alerts,
            notifiers,
            ..
        } = self;
        tokio::task::spawn_blocking(move || index.shutdown()).await?;
        tracing::info!("stopping: sealing and writing pending archive batches");
        tokio::task::spawn_blocking(move || archive.shutdown()).await?;
        tokio::task::spawn_blocking(move || alerts.shutdown()).await?;
        notifiers.stop();
        Ok(())
    }
}

/// Opens the day partitions and starts the index worker (which replays the WAL).
async fn start_index(
    config: &Config,
    dirs: &DataDir,
    wal: &Arc<Wal>,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<(IndexWorker, Arc<Partitions>)> {
    let dir = dirs.index();
    let partitions = Arc::new(
        tokio::task::spawn_blocking(move || Partitions::open(dir))
            .await?
            .context("cannot open the index")?,
    );
    let i = &config.index;
    let indexer_config = IndexerConfig {
        writer_threads: i.writer_threads,
        writer_memory_bytes: (i.writer_memory_mib << 20) / i.max_open_writers,
        max_open_writers: i.max_open_writers,
        retention_nanos: i64::try_from(i.hot_retention.as_nanos()).unwrap_or(i64::MAX),
    };
    let worker = IndexWorker::start(
        wal.clone(),
        partitions.clone(),
        indexer_config,
        i.refresh_interval,
        metrics.clone(),
    )
    .context("cannot start the indexer")?;
    Ok((worker, partitions))
}

/// Loads the alert rules and silences, starts the alert worker and the notifiers.
async fn start_alerting(
    config: &Config,
    dirs: &DataDir,
    wal: &Arc<Wal>,
) -> anyhow::Result<(AlertWorker, Arc<crate::alerting::Notifiers>)> {
    let rules = {
        let path = config.alerts.rules.clone();
        tokio::task::spawn_blocking(move || crate::alerting::load_rules(path.as_deref()))
            .await?
            .context("cannot load the alert rules")?
    };
    let rules = Arc::new(rules);
    let dir = dirs.root.join("alerts");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let silences = crate::alerting::load_silences(&dir)?;
    let worker = {
        let wal = wal.clone();
        let rules = rules.clone();
        tokio::task::spawn_blocking(move || AlertWorker::start(wal, rules, silences, dir))
            .await?
            .context("cannot start alerting")?
    };
    let notifiers = Arc::new(crate::alerting::Notifiers::new(config.alerts.rules.clone()));
    notifiers.restart(&rules, &worker.handle());
    tracing::info!(
        rules = rules.rules.len(),
        notifiers = rules.notifiers.len(),
        "alerting"
    );
    Ok((worker, notifiers))
}

/// What every handler shares: the stages' handles, the ingest pipeline, keys, audit, limits.
fn app_state(
    config: Config,
    root: &Path,
    wal: Arc<Wal>,
    remembered: Remembered,
    metrics: Arc<Metrics>,
    keys: Arc<crate::keys::KeyRing>,
    stages: &Stages,
) -> anyhow::Result<Arc<AppState>> {
    let Remembered {
        idempotency,
        doc_ids,
    } = remembered;
    let tenants = Arc::new(crate::limits::TenantPolicies::new(&config)?);
    let disk = Arc::new(crate::limits::DiskGuard::new(
        root,
        config.limits.min_free_disk_bytes,
    ));
    let pipeline = Arc::new(Pipeline::new(
        PipelineLimits {
            decode: config.ingest.limits(),
            max_inflight_bytes: config.ingest.max_inflight_bytes,
            max_index_lag_events: config.ingest.max_index_lag_events,
            max_wal_bytes: config.wal.max_bytes,
        },
        wal.clone(),
        stages.index.handle(),
        stages.alerts.handle(),
        stages.partitions.clone(),
        tenants,
        idempotency.clone(),
        metrics.clone(),
        disk.clone(),
    ));
    Ok(Arc::new(AppState {
        searches: Arc::new(Semaphore::new(config.search.max_concurrent)),
        config,
        wal,
        partitions: stages.partitions.clone(),
        index: stages.index.handle(),
        idempotency,
        doc_ids,
        metrics,
        pipeline,
        archive: stages.archive.handle(),
        restores: stages.restores.clone(),
        alerts: stages.alerts.handle(),
        notifiers: stages.notifiers.clone(),
        keys,
        audit: Arc::new(crate::audit::AuditLog::open(root)),
        disk,
    }))
}

/// Refuses to serve without keys on an address other hosts can reach, unless the operator
/// said so (`--allow-anonymous`), and warns then.
fn check_exposure(config: &Config, no_keys: bool) -> anyhow::Result<()> {
    if !no_keys || config.listen.ip().is_loopback() {
        return Ok(());
    }
    if config.allow_anonymous {
        tracing::warn!(
            listen = %config.listen,
            "serving WITHOUT API keys on a non-loopback address (--allow-anonymous): anyone who can reach it can read and write every tenant's logs"
        );
        return Ok(());
    }
    anyhow::bail!(
        "refusing to listen on {} without API keys: create one with `sawmill keys create --tenant T --scope ingest --data-dir {}`, listen on 127.0.0.1, or pass --allow-anonymous to serve everyone",
        config.listen,
        config.data_dir.display()
    )
}

/// Opens the archive's store (applying the bucket lifecycle rule when managed) and starts its
/// WAL consumer.
async fn start_archive(
    config: &Config,
    root: &Path,
    wal: Arc<Wal>,
) -> anyhow::Result<ArchiveWorker> {
    let a = &config.archive;
    for warning in a.lifecycle.validate().map_err(anyhow::Error::msg)? {
        if a.backend == ArchiveBackend::S3 && a.lifecycle.manage {
            tracing::warn!("archive lifecycle: {warning}");
        }
    }
    let store: Arc<dyn ObjectStore> = match a.backend {
        ArchiveBackend::Fs => {
            let path = a.path.clone().unwrap_or_else(|| root.join("archive"));
            Arc::new(
                FsStore::new(&path)
                    .with_context(|| format!("cannot use archive folder {}", path.display()))?,
            )
        }
        ArchiveBackend::S3 => {
            let store = Arc::new(s3_client(a).await?);
            match store.check_bucket().await {
                Ok(()) => {
                    if a.lifecycle.manage {
                        apply_lifecycle(&store, a).await?;
                    }
                }
                Err(e) if e.is_permanent() => {
                    return Err(anyhow::Error::new(e).context("cannot use the archive"))
                }
                Err(why) => {
                    // ingest goes on: the archive's backlog waits in the WAL until S3 is back
                    tracing::warn!(
                        "archive store unreachable at startup, retrying in the background: {why}"
                    );
                    if a.lifecycle.manage {
                        tokio::spawn(apply_lifecycle_later(store.clone(), a.clone()));
                    }
                }
            }
            store
        }
    };
    let writer = a.writer.clone().unwrap_or_else(host_name);
    tracing::info!(store = %store.describe(), prefix = %a.prefix, writer = %writer, "archiving");
    let archive_config = sawmill_archive::ArchiveConfig {
        dir: root.join("archive-state"),
        prefix: a.prefix.clone(),
        writer,
        limits: BatchLimits {
            max_bytes: a.batch_max_bytes,
            max_age: a.batch_max_age,
            max_open: a.max_open_batches,
            level: a.zstd_level,
        },
        poll: Duration::from_millis(200),
        catch_up_lag: a.catch_up_events,
    };
    // starting settles batches left pending, which asks the store: not on an async thread
    tokio::task::spawn_blocking(move || ArchiveWorker::start(wal, store, archive_config))
        .await?
        .map_err(anyhow::Error::msg)
        .context("cannot start the archive")
}

/// The S3 client of an `s3` config (without contacting the bucket).
pub async fn s3_client(a: &crate::config::ArchiveSection) -> anyhow::Result<S3Store> {
    let settings = S3Settings {
        bucket: a.bucket.clone().unwrap_or_default(),
        endpoint: a.endpoint.clone(),
        region: a.region.clone(),
        force_path_style: a.force_path_style,
        request_timeout: a.request_timeout,
        part_bytes: a.multipart_part_bytes,
    };
    S3Store::new(&settings)
        .await
        .with_context(|| format!("cannot use archive bucket {}", settings.bucket))
}

/// Puts the configured lifecycle rule into the bucket and logs what is in force.
async fn apply_lifecycle(store: &S3Store, a: &crate::config::ArchiveSection) -> anyhow::Result<()> {
    let rule = lifecycle::rule(&a.lifecycle, &a.prefix);
    let change = store.apply_lifecycle(&rule).await.context(
        "cannot apply the archive lifecycle rule (the server needs s3:GetLifecycleConfiguration \
         and s3:PutLifecycleConfiguration; set archive.lifecycle.manage = false to manage tiers \
         yourself)",
    )?;
    let in_force = serde_json::to_string(&rule).unwrap_or_default();
    tracing::info!(change = ?change, rule = %in_force, "archive lifecycle rule in force");
    Ok(())
}

/// Applies the lifecycle rule once the bucket can be reached.
async fn apply_lifecycle_later(store: Arc<S3Store>, a: crate::config::ArchiveSection) {
    let policy = sawmill_core::RetryPolicy::DEFAULT;
    for failures in 1.. {
        tokio::time::sleep(policy.delay(failures, None)).await;
        match apply_lifecycle(&store, &a).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %sawmill_core::error::report(e.as_ref()), "archive lifecycle rule not applied yet; retrying")
            }
        }
    }
}

/// This machine's name, for archive object keys.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "sawmill".into())
}

/// Loads the saved keys, then the keys of every batch still in the WAL.
/// What the server remembers of earlier requests to keep retried ones once.
struct Remembered {
    idempotency: Arc<IdempotencyStore>,
    doc_ids: Arc<DocIds>,
}

/// Loads the idempotency keys and document ids from their snapshots, then from the WAL that
/// remains (one pass over it).
fn load_remembered(
    keys_path: &Path,
    ids_path: &Path,
    capacity: usize,
    wal: &Wal,
) -> anyhow::Result<Remembered> {
    let now = now_nanos();
    let store = IdempotencyStore::load(keys_path, now)?;
    let doc_ids = DocIds::load(ids_path, capacity, now)
        .with_context(|| format!("cannot read {}", ids_path.display()))?;
    for record in wal.read_from(wal.first_seq())? {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read wal while restoring idempotency keys");
                break;
            }
        };
        if let Ok((header, events)) = RecordHeader::decode(&record.payload) {
            for key in ids_in_events(&header.tenant, &record.payload[events..]) {
                doc_ids.restore(key, header.received_at, now);
            }
            if let Some(key) = header.idempotency_key {
                store.restore(&header.tenant, &key, header.answer, header.received_at, now);
            }
        }
    }
    Ok(Remembered {
        idempotency: Arc::new(store),
        doc_ids: Arc::new(doc_ids),
    })
}

async fn maintenance_loop(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(MAINTENANCE_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        let s = state.clone();
        let _ = tokio::task::spawn_blocking(move || maintenance_step(&s)).await;
    }
}

/// Saves idempotency keys, then deletes WAL segments every consumer is past.
fn maintenance_step(state: &AppState) {
    let now = now_nanos();
    state.restores.expire(now);
    state.alerts.outbox.prune(now);
    state.idempotency.prune(now);
    let consumed = state
        .index
        .committed_seq()
        .min(state.archive.position())
        .min(state.alerts.position());
    if consumed <= state.wal.first_seq() {
        return;
    }
    if let Err(e) = state.idempotency.save(now) {
        tracing::error!(error = %e, "cannot save idempotency keys; keeping wal segments");
        return;
    }
    if let Err(e) = state.doc_ids.save(now) {
        tracing::error!(error = %e, path = %state.doc_ids.path().display(), "cannot save document ids; keeping wal segments");
        return;
    }
    match state.wal.truncate_before(consumed) {
        Ok(0) => {}
        Ok(n) => tracing::debug!(
            segments = n,
            below = consumed,
            "deleted consumed wal segments"
        ),
        Err(e) => tracing::error!(error = %e, "cannot delete consumed wal segments"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested: draining in-flight requests");
}
