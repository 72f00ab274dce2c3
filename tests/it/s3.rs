//! The warehouse on an S3-compatible store: `moto_server` (PyPI `moto[s3]`, which `.ci/run`
//! installs) on loopback, started by this test. Conditional puts are enforced by that server, so
//! the lock is tested for real; the crash protocol uses only put, get, list and delete.
//!
//! - a backfill into `s3://…` gives the same tables as the same backfill on a local disk;
//! - while a run holds the lock, a second run exits 3 naming the holder;
//! - a run killed after writing mart files but before publishing them leaves the previous marts,
//!   and the next run repairs the warehouse.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request's reply; empty if the connection failed or closed without one.
fn http(port: u16, request: &str) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    if s.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

pub fn start_moto() -> Moto {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start moto_server ({e}): install it with `pip install 'moto[s3]'` (.ci/run does)")
        });
    let moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "moto_server did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The port accepts connections a moment before the server answers them (seen in CI: an
    // empty reply to the first request), so the bucket's creation is retried until it answers.
    loop {
        let created = http(
            port,
            "PUT /cchc HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        if created.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60) && created.is_empty(),
            "bucket not created: {created}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    moto
}

pub fn s3_env(c: &mut Command, endpoint: &str) {
    c.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1");
}

#[test]
fn the_warehouse_works_on_an_s3_compatible_store() {
    let moto = start_moto();
    // In-process reads of the S3 warehouse use the same environment.
    for (k, v) in [
        ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ] {
        std::env::set_var(k, v);
    }
    let dir = tempfile::tempdir().unwrap();
    let landing = generate(dir.path(), "2022-01-01", "2022-02-01", "0.03")
        .display()
        .to_string();
    let local = dir.path().join("wh").display().to_string();
    let s3 = "s3://cchc/warehouse";
    let s3_bin = || {
        let mut c = bin(&landing, s3);
        s3_env(&mut c, &moto.endpoint);
        c
    };

    backfill_ok(&landing, &local, "2022-01-01", "2022-01-12", &[]);
    let out = s3_bin()
        .args(["backfill", "--from", "2022-01-01", "--to", "2022-01-12"])
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "backfill to S3: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let on_disk = dump(&config_for(&landing, &local));
    let on_s3 = dump(&config_for(&landing, s3));
    assert!(on_s3
        .iter()
        .any(|(t, rows)| t == "mart_dossiers" && !rows.is_empty()));
    assert_same(&on_s3, &on_disk, "S3 vs local disk");

    // The lock: held by a run of this process, a second run is refused, naming the holder.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let wh = cchc::store::location::Location::open(s3, false).unwrap();
    let lock = rt
        .block_on(cchc::store::lock::Lock::acquire(
            &wh,
            "held-by-test",
            "test",
        ))
        .unwrap();
    let again = rt.block_on(cchc::store::lock::Lock::acquire(&wh, "second", "test"));
    assert!(again.is_err(), "a second lock was granted on S3");
    let out = s3_bin()
        .args(["run", "--date", "2022-01-05"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("locked by run held-by-test"));
    rt.block_on(lock.release()).unwrap();

    // A run killed before publishing its marts; then the repair.
    let before = dump(&config_for(&landing, s3));
    let out = s3_bin()
        .args([
            "backfill",
            "--from",
            "2022-01-01",
            "--to",
            "2022-01-12",
            "--rerun",
            "all",
        ])
        .env("CCHC_FAILPOINT", "marts.written:3")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "{out:?}");
    assert_same(
        &dump(&config_for(&landing, s3)),
        &before,
        "S3 after the kill",
    );
    let out = s3_bin()
        .args(["backfill", "--from", "2022-01-01", "--to", "2022-01-12"])
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    assert_same(
        &dump(&config_for(&landing, s3)),
        &on_disk,
        "S3 after the repair",
    );
    let objects = rt
        .block_on(wh.list("marts/mart_dossiers"))
        .unwrap()
        .into_iter()
        .filter(|o| o.location.as_ref().ends_with(".parquet"))
        .count();
    let periods = rt
        .block_on(wh.get_opt(&wh.path("marts/_periods.json")))
        .unwrap();
    assert!(periods.is_some(), "no _periods.json on S3");
    let on_disk_files = parquet_files(&dir.path().join("wh/marts/mart_dossiers")).len();
    assert_eq!(objects, on_disk_files, "unpublished files left on S3");

    // January ends: the refresh writes January's state snapshot (streamed to the store in
    // parts), and the next run reads it; the same rows as on disk.
    backfill_ok(&landing, &local, "2022-01-13", "2022-02-01", &[]);
    let out = s3_bin()
        .args(["backfill", "--from", "2022-01-13", "--to", "2022-02-01"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    assert!(
        stderr.contains("state snapshot written") && stderr.contains("month=2022-01"),
        "{stderr}"
    );
    let snapshots = rt
        .block_on(wh.list("state/dossiers"))
        .unwrap()
        .into_iter()
        .filter(|o| o.location.as_ref().ends_with(".parquet"))
        .count();
    assert_eq!(snapshots, 1, "January's snapshot of the dossiers on S3");
    for c in [bin(&landing, &local), s3_bin()] {
        let mut c = c;
        let out = c.args(["run", "--date", "2022-02-01"]).output().unwrap();
        assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    }
    assert_same(
        &dump(&config_for(&landing, s3)),
        &dump(&config_for(&landing, &local)),
        "S3 vs local disk, over January's snapshot",
    );
}
