//! `sawmill-forwarder` as Lambda runs it: the `bootstrap` process talking to a Lambda Runtime
//! API, here the one `cargo lambda watch --only-lambda-apis` serves on loopback (cargo-lambda
//! is installed from PyPI by `scripts/test`), with invocations sent by `cargo lambda invoke`.

use crate::common;

use base64::Engine;
use common::{gzip, Server};
use serde_json::{json, Value};
use std::io::Read;
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A child process killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const CARGO_LAMBDA_HINT: &str = "cargo-lambda is needed by this test: run `scripts/test` (it installs it) or `python3 -m pip install cargo-lambda==1.9.2`";

fn invoke(port: u16, dir: &std::path::Path, name: &str, event: &Value) -> Output {
    let file = dir.join(format!("{name}.json"));
    std::fs::write(&file, event.to_string()).expect("write event");
    Command::new("cargo")
        .args([
            "lambda",
            "invoke",
            "-P",
            &port.to_string(),
            "--output-format",
            "json",
            "--data-file",
        ])
        .arg(&file)
        .arg("_")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect(CARGO_LAMBDA_HINT)
}

#[test]
fn the_function_serves_invocations_from_the_lambda_runtime_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(dir.path());
    let port = common::moto::free_port();
    let mut emulator = Command::new("cargo");
    emulator
        .args([
            "lambda",
            "watch",
            "--only-lambda-apis",
            "-P",
            &port.to_string(),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut emulator = Running(emulator.spawn().expect(CARGO_LAMBDA_HINT));
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = emulator.0.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = emulator.0.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            panic!(
                "cargo lambda watch exited ({status}): {err}\n{}",
                CARGO_LAMBDA_HINT
            );
        }
        assert!(
            Instant::now() < deadline,
            "the Lambda Runtime API did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let forwarder = common::binary().with_file_name("sawmill-forwarder");
    let _function = Running(
        Command::new(&forwarder)
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("SAWMILL_URL", &server.url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", forwarder.display())),
    );

    let now = common::now_nanos() / 1_000_000;
    let data = json!({
        "messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/aws/lambda/orders",
        "logStream": "2026/11/27/[$LATEST]f00d", "subscriptionFilters": ["sawmill"],
        "logEvents": (0..5).map(|i| json!({"id": format!("{:056}", i), "timestamp": now - 1000 + i, "message": format!("order {i} placed")})).collect::<Vec<_>>()
    });
    let event = json!({"awslogs": {"data": base64::engine::general_purpose::STANDARD.encode(gzip(data.to_string().as_bytes()))}});
    // two invocations of the same warm process
    for round in 0..2 {
        let out = invoke(port, dir.path(), "cw", &event);
        assert!(
            out.status.success(),
            "round {round}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let answer: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
        assert_eq!(answer["kind"], "cloudwatch_logs", "{answer}");
        assert_eq!(answer["events"], 5, "{answer}");
    }
    // the retry ingested nothing twice
    assert_eq!(
        server.wait_total("source:\"/aws/lambda/orders\"", 5, Duration::from_secs(20)),
        5
    );
    server.flush();
    assert_eq!(server.total("source:\"/aws/lambda/orders\""), 5);

    // a failed invocation is reported to Lambda as an error, and the process serves on
    let out = invoke(port, dir.path(), "odd", &json!({"hello": "world"}));
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("unrecognized event: an object with keys [hello]"),
        "{printed}"
    );
    let out = invoke(port, dir.path(), "cw-again", &event);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(emulator);
}
