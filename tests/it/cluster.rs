//! The Ballista engine with real processes on loopback: a scheduler and two executors started
//! as `cchc cluster …` over a warehouse on `moto_server` (S3). The marts, checks and results of a
//! refresh on the cluster must equal, row for row, the local engine's on the same staging: this
//! comparison is the guard against the engine's known wrong-result bugs (hive-partitioned
//! staging, the state views, `unnest`, window functions and the in-memory tables all take part).

use std::process::Child;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::s3::{s3_env, start_moto};

struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `cchc cluster ARGS` and wait for its first line on stdout.
fn node(
    landing: &str,
    wh: &str,
    endpoint: &str,
    args: &[&str],
    log: &std::path::Path,
) -> (Node, String) {
    let mut c = bin(landing, wh);
    s3_env(&mut c, endpoint);
    let (child, line) = spawn_until_first_line(c.arg("cluster").args(args), log);
    (Node(child), line)
}

/// Every table of [`TABLES`] as `cchc sql` prints it (JSON lines, sorted), with `extra` flags.
fn tables(landing: &str, wh: &str, endpoint: &str, extra: &[&str]) -> Vec<(String, Vec<String>)> {
    TABLES
        .iter()
        .map(|t| {
            let mut c = bin(landing, wh);
            s3_env(&mut c, endpoint);
            let out = c
                .args(extra)
                .args(["sql", &format!("SELECT * FROM {t}"), "--format", "json"])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{t}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let mut rows: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(String::from)
                .collect();
            rows.sort();
            (t.to_string(), rows)
        })
        .collect()
}

#[test]
fn marts_on_a_ballista_cluster_equal_the_local_engine() {
    let moto = start_moto();
    let ep = moto.endpoint.as_str();
    let dir = tempfile::tempdir().unwrap();
    let landing = generate(dir.path(), "2022-01-01", "2022-02-28", "0.02")
        .display()
        .to_string();
    let wh = "s3://cchc/cluster";
    let mut c = bin(&landing, wh);
    s3_env(&mut c, ep);
    let out = c
        .args(["backfill", "--from", "2022-01-01", "--to", "2022-02-28"])
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let local = tables(&landing, wh, ep, &[]);
    assert!(local.iter().all(|(_, rows)| rows.len() > 1), "empty tables");

    let (_scheduler, line) = node(
        &landing,
        wh,
        ep,
        // A dead executor is noticed after 6 s (heartbeats every 2 s), to keep the test short.
        &[
            "scheduler",
            "--listen",
            "127.0.0.1:0",
            "--executor-timeout",
            "6",
        ],
        &dir.path().join("scheduler.log"),
    );
    let addr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    let engine = format!("ballista://{addr}");
    let mut executors: Vec<Node> = (1..=2)
        .map(|i| {
            let work = dir.path().join(format!("executor{i}"));
            node(
                &landing,
                wh,
                ep,
                &[
                    "executor",
                    "--scheduler",
                    &addr,
                    "--slots",
                    "1",
                    "--heartbeat",
                    "2",
                    "--work-dir",
                    &work.display().to_string(),
                ],
                &dir.path().join(format!("executor{i}.log")),
            )
            .0
        })
        .collect();
    // Executors register with their first heartbeat.
    std::thread::sleep(Duration::from_secs(2));

    let refresh = |extra: &[&str]| {
        let mut c = bin(&landing, wh);
        s3_env(&mut c, ep);
        c.args(extra).args(["refresh", "--full"]).output().unwrap()
    };
    let out = refresh(&["--engine", &engine]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stderr}");
    // Published by the client from the cluster's results: equal to the local engine's.
    let on_cluster = tables(&landing, wh, ep, &[]);
    for ((t, a), (_, b)) in local.iter().zip(&on_cluster) {
        assert!(
            a == b,
            "{t} differs between the local engine and the cluster"
        );
    }
    // `cchc sql` on the cluster reads the same rows.
    assert!(tables(&landing, wh, ep, &["--engine", &engine]) == local);

    // One executor killed (SIGKILL) in the middle of a refresh, once its first job has run on
    // the cluster: the refresh completes on the other executor, or fails with exit 3 naming
    // the cause; never a partial publish.
    let mut c = bin(&landing, wh);
    s3_env(&mut c, ep);
    let mut child = c
        .args(["--engine", &engine, "refresh", "--full"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = String::new();
    let mut killed = false;
    for line in std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap())) {
        let line = line.unwrap();
        if !killed && line.contains("finished executing") {
            executors.remove(0);
            killed = true;
        }
        stderr.push_str(&line);
        stderr.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(killed, "no job ran on the cluster: {stderr}");
    match status.code() {
        Some(0 | 1) => {}
        Some(3) => assert!(stderr.contains("error"), "{stderr}"),
        other => panic!("{other:?}: {stderr}"),
    }
    // A difference names the table, its first differing row, how the refresh ended and its log.
    assert_same(
        &local,
        &tables(&landing, wh, ep, &[]),
        &format!(
            "a partial publish after a refresh that ended with {status:?}; its log:\n{stderr}"
        ),
    );

    // No scheduler: exit 3 at once, with the address.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let t0 = Instant::now();
    let out = refresh(&["--engine", &format!("ballista://{closed}")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "ballista://{closed}: the scheduler cannot be reached"
        )),
        "{stderr}"
    );
    assert!(t0.elapsed() < Duration::from_secs(15));
}
