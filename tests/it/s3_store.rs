//! The S3 object store against a real S3-compatible server (moto) on loopback: create-only
//! uploads that are idempotent on retry, multipart uploads, listings with storage classes,
//! and the lifecycle rule merged into the bucket's configuration.

use crate::common;

use common::moto::Moto;
use sawmill_archive::lifecycle::{self, LifecycleSettings};
use sawmill_archive::{LifecycleChange, ObjectStore, Readability, S3Settings, S3Store, StoreError};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const BUCKET: &str = "sawmill-store";

/// A store on its own runtime (the store blocks on the runtime it was created on, from
/// threads outside it, as the archive worker does).
fn store(moto: &Moto, part_bytes: u64) -> (tokio::runtime::Runtime, Arc<S3Store>) {
    for (k, v) in moto.env() {
        // the credentials chain reads them; every test here uses the same values
        std::env::set_var(k, v);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let settings = S3Settings {
        bucket: BUCKET.into(),
        endpoint: Some(moto.endpoint()),
        region: Some("us-east-1".into()),
        force_path_style: true,
        request_timeout: Duration::from_secs(10),
        part_bytes,
    };
    let store = rt.block_on(S3Store::new(&settings)).expect("s3 store");
    rt.block_on(store.check_bucket()).expect("bucket reachable");
    (rt, Arc::new(store))
}

/// Bytes that do not compress: `n` pseudo-random bytes from `seed`.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = common::Rng::new(seed);
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

#[test]
fn uploads_are_create_only_and_idempotent() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let (_rt, store) = store(&moto, 5 << 20);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("batch");

    std::fs::write(&file, b"first version").unwrap();
    store.put_file("logs/a.ndjson.zst", &file).unwrap();
    // a retry of the same batch (its answer lost): succeeds, object unchanged
    store.put_file("logs/a.ndjson.zst", &file).unwrap();
    assert_eq!(moto.get(BUCKET, "logs/a.ndjson.zst"), b"first version");
    // different bytes under the same key: refused, the object stays as it was
    std::fs::write(&file, b"a different, longer version").unwrap();
    match store.put_file("logs/a.ndjson.zst", &file) {
        Err(StoreError::Conflict { existing, .. }) => assert_eq!(existing, 13),
        other => panic!("overwrite not refused: {other:?}"),
    }
    assert_eq!(store.get("logs/a.ndjson.zst").unwrap(), b"first version");
    assert!(store.exists("logs/a.ndjson.zst").unwrap());
    assert!(!store.exists("logs/b.ndjson.zst").unwrap());
    assert!(matches!(
        store.get("logs/missing"),
        Err(StoreError::NotFound(_))
    ));
    let listed = store.list("logs/").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, 13);
    assert_eq!(listed[0].storage_class.as_deref(), Some("STANDARD"));
    assert_eq!(
        store
            .readability("logs/a.ndjson.zst", listed[0].storage_class.as_deref())
            .unwrap(),
        Readability::Readable
    );
}

#[test]
fn large_objects_go_up_in_parts() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let (_rt, store) = store(&moto, 5 << 20);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big");
    let data = noise((12 << 20) + 12_345, 7);
    std::fs::write(&file, &data).unwrap();
    store.put_file("logs/big.ndjson.zst", &file).unwrap();
    assert_eq!(moto.get(BUCKET, "logs/big.ndjson.zst"), data);
    // multipart: the ETag of a multipart object ends with -<parts>
    let head = moto
        .block_on(
            moto.client()
                .head_object()
                .bucket(BUCKET)
                .key("logs/big.ndjson.zst")
                .send(),
        )
        .unwrap();
    assert!(
        head.e_tag().unwrap_or_default().ends_with("-3\""),
        "not a 3-part upload: {:?}",
        head.e_tag()
    );
    // retried: idempotent; another size: refused
    store.put_file("logs/big.ndjson.zst", &file).unwrap();
    std::fs::write(&file, &data[..data.len() - 1]).unwrap();
    assert!(matches!(
        store.put_file("logs/big.ndjson.zst", &file),
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(moto.get(BUCKET, "logs/big.ndjson.zst").len(), data.len());
    // no upload left behind
    let uploads = moto
        .block_on(moto.client().list_multipart_uploads().bucket(BUCKET).send())
        .unwrap();
    assert!(uploads.uploads().is_empty(), "{:?}", uploads.uploads());
}

#[test]
fn lifecycle_rule_is_merged_idempotently() {
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let other = json!([{"ID": "keep-me", "Status": "Enabled", "Filter": {"Prefix": "other/"},
        "Expiration": {"Days": 3}}]);
    moto.put_lifecycle_rules(BUCKET, other.clone());
    let (rt, store) = store(&moto, 5 << 20);

    let settings = LifecycleSettings::default();
    let rule = lifecycle::rule(&settings, "logs/v1");
    assert_eq!(
        rt.block_on(store.apply_lifecycle(&rule)).unwrap(),
        LifecycleChange::Added
    );
    assert_eq!(
        rt.block_on(store.apply_lifecycle(&rule)).unwrap(),
        LifecycleChange::Unchanged
    );
    let ours = serde_json::to_value(&rule).unwrap();
    let rules = moto.lifecycle_rules(BUCKET);
    assert_eq!(rules.as_array().unwrap().len(), 2, "{rules}");
    assert!(rules.as_array().unwrap().contains(&other[0]), "{rules}");
    assert!(rules.as_array().unwrap().contains(&ours), "{rules}");
    assert_eq!(
        rt.block_on(store.lifecycle_rule(&rule.id)).unwrap(),
        Some(rule.clone())
    );

    // new days replace the rule in place
    let longer = LifecycleSettings {
        expire_after_days: 730,
        ..settings.clone()
    };
    let rule2 = lifecycle::rule(&longer, "logs/v1");
    assert_eq!(
        rt.block_on(store.apply_lifecycle(&rule2)).unwrap(),
        LifecycleChange::Replaced
    );
    let rules = moto.lifecycle_rules(BUCKET);
    assert_eq!(rules.as_array().unwrap().len(), 2, "{rules}");
    assert!(rules
        .as_array()
        .unwrap()
        .contains(&serde_json::to_value(&rule2).unwrap()));

    // no tier and no expiry: the rule goes, the other stays
    let none = LifecycleSettings {
        infrequent_access_after_days: 0,
        glacier_ir_after_days: 0,
        deep_archive_after_days: 0,
        expire_after_days: 0,
        abort_incomplete_multipart_after_days: 0,
        ..settings
    };
    assert_eq!(
        rt.block_on(store.apply_lifecycle(&lifecycle::rule(&none, "logs/v1")))
            .unwrap(),
        LifecycleChange::Removed
    );
    assert_eq!(moto.lifecycle_rules(BUCKET), other);
}

#[test]
fn a_missing_bucket_is_a_clear_error_and_a_down_server_is_not() {
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (k, v) in moto.env() {
        std::env::set_var(k, v);
    }
    let settings = |endpoint: String| S3Settings {
        bucket: "no-such-bucket".into(),
        endpoint: Some(endpoint),
        region: Some("us-east-1".into()),
        force_path_style: true,
        request_timeout: Duration::from_secs(3),
        part_bytes: 5 << 20,
    };
    let store = rt
        .block_on(S3Store::new(&settings(moto.endpoint())))
        .unwrap();
    let missing = rt.block_on(store.check_bucket()).unwrap_err();
    assert!(missing.is_permanent(), "{missing}");
    assert!(missing.to_string().contains("does not exist"), "{missing}");
    // a failed request says what S3 answered and keeps the SDK's error as its cause
    match store.list("logs/") {
        Err(e @ StoreError::Remote { .. }) => {
            let text = e.to_string();
            assert!(text.starts_with("list logs/: NoSuchBucket"), "{text}");
            assert!(std::error::Error::source(&e).is_some(), "{e:?}");
        }
        other => panic!("listing a missing bucket: {other:?}"),
    }
    // nothing listens on this port: worth retrying, not a configuration error
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = rt
        .block_on(S3Store::new(&settings(format!("http://127.0.0.1:{port}"))))
        .unwrap();
    let unreachable = rt.block_on(store.check_bucket()).unwrap_err();
    assert!(!unreachable.is_permanent(), "{unreachable}");
}
