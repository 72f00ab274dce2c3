//! `cchc serve` with real clients: the server is the binary on a loopback port, `psql` (Debian's
//! postgresql-client, installed by .ci/setup) is the client.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common::*;

const PASSWORD: &str = "correct horse battery";

/// A config of the shipped pipelines on `landing` and `warehouse`, with a users file.
fn config_with_users(dir: &Path, landing: &str, warehouse: &str) -> PathBuf {
    let repo = repo();
    let users = dir.join("users.txt");
    let cfg = dir.join("serve.yaml");
    std::fs::write(
        &cfg,
        format!(
            "pipelines: {}\nplans: {}\nlanding: {landing}\nwarehouse: {warehouse}\npii_key_env: CCHC_PII_KEY\nserve:\n  users_file: {}\n",
            repo.join("pipelines").display(),
            repo.join("configs/plans").display(),
            users.display()
        ),
    )
    .unwrap();
    let mut add = Command::new(env!("CARGO_BIN_EXE_cchc"))
        .args(["--config"])
        .arg(&cfg)
        .args(["serve", "add-user", "analyst"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(add.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    assert!(add.wait().unwrap().success());
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(text.starts_with("analyst:scram-sha-256:4096:"), "{text}");
    assert!(!text.contains(PASSWORD));
    cfg
}

/// A served warehouse: extracts generated for `from..=last`, a backfill of `from..=to`, a config
/// with the user `analyst`, and the server started on it.
struct Served {
    dir: tempfile::TempDir,
    landing: String,
    whs: String,
    cfg: PathBuf,
    server: Server,
}

fn served(from: &str, to: &str, last: &str, scale: &str, extra_config: &str) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let landing = generate(dir.path(), from, last, scale)
        .display()
        .to_string();
    let whs = dir.path().join("wh").display().to_string();
    backfill_ok(&landing, &whs, from, to, &[]);
    let cfg = config_with_users(dir.path(), &landing, &whs);
    if !extra_config.is_empty() {
        let mut text = std::fs::read_to_string(&cfg).unwrap();
        text.push_str(extra_config);
        std::fs::write(&cfg, text).unwrap();
    }
    let server = start(&cfg);
    Served {
        dir,
        landing,
        whs,
        cfg,
        server,
    }
}

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(cfg: &Path) -> Server {
    // The server's log, next to its config.
    let (child, line) = spawn_until_first_line(
        Command::new(env!("CARGO_BIN_EXE_cchc"))
            .args(["--config"])
            .arg(cfg)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("CCHC_LOG", "info"),
        &cfg.with_file_name("serve.log"),
    );
    let port = line
        .strip_prefix("listening on 127.0.0.1:")
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    Server { child, port }
}

/// psql's exit code, stdout and stderr for one command (unaligned, tuples only, comma-separated).
fn psql(port: u16, user: &str, password: &str, sql: &str) -> (i32, String, String) {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            user,
            "-d",
            "cchc",
        ])
        .args([
            "-X",
            "-A",
            "-t",
            "-F",
            ",",
            "-v",
            "ON_ERROR_STOP=1",
            "-v",
            "VERBOSITY=verbose",
        ])
        .args(["-c", sql])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGSSLMODE", "disable")
        .output()
        .expect("psql is installed (.ci/setup installs postgresql-client)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn psql_reads_the_marts_and_cannot_write() {
    let s = served("2022-01-01", "2022-01-03", "2022-01-03", "0.01", "");
    let landing = s.landing.clone();
    let whs = s.whs.clone();
    let cfg = s.cfg.clone();
    let wh = s.dir.path().join("wh");
    let before = tree(&wh);

    // A query returns exactly what `cchc sql --format csv` returns.
    let sql = "SELECT target_id, unit_code, period, numerator, denominator, status FROM target_results WHERE period = '2022-01' ORDER BY target_id, unit_code";
    let (code, stdout, stderr) = psql(s.server.port, "analyst", PASSWORD, sql);
    assert_eq!(code, 0, "{stderr}");
    let expected = bin(&landing, &whs)
        .args(["sql", sql, "--format", "csv"])
        .output()
        .unwrap();
    let expected = String::from_utf8_lossy(&expected.stdout);
    let expected: Vec<&str> = expected.lines().skip(1).collect();
    let got: Vec<&str> = stdout.lines().collect();
    assert!(!got.is_empty());
    assert_eq!(got, expected);

    // \dt lists the tables.
    let (code, stdout, stderr) = psql(s.server.port, "analyst", PASSWORD, "\\dt");
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("target_results"), "{stdout}");

    // Wrong password, unknown user: refused.
    let (code, _, stderr) = psql(s.server.port, "analyst", "wrong password", "SELECT 1");
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.to_lowercase().contains("password"), "{stderr}");
    let (code, _, stderr) = psql(s.server.port, "nobody", PASSWORD, "SELECT 1");
    assert_eq!(code, 2, "{stderr}");

    // Writes: refused with 25006, nothing changes.
    for sql in [
        format!("COPY (SELECT 1) TO '{whs}/ledger/x.json'"),
        "CREATE TABLE t AS SELECT 1".to_string(),
        "INSERT INTO target_results SELECT * FROM target_results".to_string(),
        "DROP TABLE target_results".to_string(),
        "CREATE VIEW v AS SELECT 1".to_string(),
    ] {
        let (code, _, stderr) = psql(s.server.port, "analyst", PASSWORD, &sql);
        assert_ne!(code, 0, "{sql} was accepted");
        assert!(stderr.contains("25006"), "{sql}: {stderr}");
    }
    // A syntax error is an error, and the server goes on serving.
    let (code, _, _) = psql(s.server.port, "analyst", PASSWORD, "SELEC 1");
    assert_ne!(code, 0);
    let (code, stdout, stderr) = psql(
        s.server.port,
        "analyst",
        PASSWORD,
        "SELECT count(*) FROM dossiers",
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.trim().parse::<u64>().unwrap() > 0);
    assert!(before == tree(&wh), "the warehouse changed");
    // One log line per statement: user, duration, rows or error.
    let log = std::fs::read_to_string(cfg.with_file_name("serve.log")).unwrap();
    assert!(
        log.lines().any(|l| l.contains("statement done")
            && l.contains("user=\"analyst\"")
            && l.contains("rows=1")
            && l.contains("count(*) FROM dossiers")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("statement failed") && l.contains("25006")),
        "{log}"
    );
}

#[test]
fn a_new_run_is_served_at_the_next_query() {
    let s = served("2022-01-01", "2022-01-02", "2022-01-04", "0.01", "");
    let landing = s.landing.clone();
    let whs = s.whs.clone();
    let sql = "SELECT max(as_of) FROM target_results WHERE period = '2022'";
    let (code, before, stderr) = psql(s.server.port, "analyst", PASSWORD, sql);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(before.trim(), "2022-01-02");
    backfill_ok(&landing, &whs, "2022-01-03", "2022-01-04", &[]);
    let (code, after, stderr) = psql(s.server.port, "analyst", PASSWORD, sql);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(after.trim(), "2022-01-04");
}

#[test]
fn unsafe_settings_are_refused_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    let landing = dir.path().join("landing");
    std::fs::create_dir_all(&landing).unwrap();
    let ls = landing.display().to_string();
    let whs = dir.path().join("wh").display().to_string();
    // Beyond loopback without TLS and users.
    let out = bin(&ls, &whs)
        .args(["serve", "--listen", "0.0.0.0:5433", "--check"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without TLS and users"));
    // A certificate that does not load: an error, never plain text.
    let cfg = dir.path().join("tls.yaml");
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    std::fs::write(
        &cfg,
        format!(
            "pipelines: {}\nplans: {}\nlanding: {ls}\nwarehouse: {whs}\nserve:\n  tls_cert: cert.pem\n  tls_key: key.pem\n",
            repo().join("pipelines").display(),
            repo().join("configs/plans").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cchc"))
        .args(["--config"])
        .arg(&cfg)
        .args(["serve", "--check"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not fall back to plain text"));
    // Loopback without users: fine.
    let out = bin(&ls, &whs)
        .args(["serve", "--listen", "127.0.0.1:5999", "--check"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Eight clients query while a backfill republishes the warehouse: every answer is one complete
/// published version (the one before or the one after), and after the run they see the new one.
#[test]
fn eight_clients_during_a_backfill_see_whole_versions_only() {
    let s = served("2022-01-01", "2022-01-04", "2022-01-08", "0.02", "");
    let landing = s.landing.clone();
    let whs = s.whs.clone();
    let sql = "SELECT target_id, unit_code, numerator, denominator FROM target_results WHERE period = '2022' ORDER BY target_id, unit_code";
    let (code, version_a, stderr) = psql(s.server.port, "analyst", PASSWORD, sql);
    assert_eq!(code, 0, "{stderr}");
    let mut run = bin(&landing, &whs)
        .args([
            "backfill",
            "--from",
            "2022-01-01",
            "--to",
            "2022-01-08",
            "--rerun",
            "all",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let port = s.server.port;
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                let t0 = std::time::Instant::now();
                while !done.load(std::sync::atomic::Ordering::SeqCst)
                    && t0.elapsed() < std::time::Duration::from_secs(120)
                {
                    answers.push(psql(port, "analyst", PASSWORD, sql));
                }
                answers
            })
        })
        .collect();
    let status = run.wait().unwrap();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(matches!(status.code(), Some(0 | 1)), "{status:?}");
    let (_, version_b, _) = psql(s.server.port, "analyst", PASSWORD, sql);
    assert_ne!(
        version_a, version_b,
        "the backfill must change the figures, or this proves nothing"
    );
    let mut n = 0;
    for c in clients {
        for (code, answer, stderr) in c.join().unwrap() {
            assert_eq!(code, 0, "{stderr}");
            assert!(
                answer == version_a || answer == version_b,
                "a mixed answer:\n{answer}"
            );
            n += 1;
        }
    }
    assert!(n >= 8, "only {n} answers");
    let expected = bin(&landing, &whs)
        .args(["sql", sql, "--format", "csv"])
        .output()
        .unwrap();
    let expected: Vec<String> = String::from_utf8_lossy(&expected.stdout)
        .lines()
        .skip(1)
        .map(String::from)
        .collect();
    assert_eq!(
        version_b.lines().map(String::from).collect::<Vec<_>>(),
        expected
    );
}

/// psycopg (the extended protocol, with parameters), then bad clients: a malformed startup
/// packet, a client that vanishes in the middle of a result. The server keeps serving, and
/// SIGTERM stops it cleanly.
#[test]
fn psycopg_reads_and_bad_clients_do_not_stop_the_server() {
    let mut s = served("2022-01-01", "2022-01-03", "2022-01-03", "0.01", "");
    let landing = s.landing.clone();
    let whs = s.whs.clone();
    let python = |script: &str| {
        let out = Command::new("python3")
            .args(["-c", script])
            .env("PORT", s.server.port.to_string())
            .env("PASSWORD", PASSWORD)
            .output()
            .expect("python3 with psycopg (.ci/setup installs it)");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let connect = "import os, psycopg\nconn = psycopg.connect(host='127.0.0.1', port=int(os.environ['PORT']), user='analyst', password=os.environ['PASSWORD'], dbname='cchc', sslmode='disable')\n";
    let (code, stdout, stderr) = python(&format!(
        "{connect}rows = conn.execute(\"SELECT target_id, numerator, denominator FROM target_results WHERE period = %s AND unit_code = %s ORDER BY target_id\", ('2022', 'ALL')).fetchall()\nfor r in rows: print(','.join(str(x) for x in r))\ntry:\n    conn.execute('DROP TABLE target_results')\nexcept psycopg.Error as e:\n    print('refused', e.sqlstate)\n"
    ));
    assert_eq!(code, Some(0), "{stderr}");
    let expected = bin(&landing, &whs)
        .args([
            "sql",
            "SELECT target_id, numerator, denominator FROM target_results WHERE period = '2022' AND unit_code = 'ALL' ORDER BY target_id",
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    let mut expected: Vec<String> = String::from_utf8_lossy(&expected.stdout)
        .lines()
        .skip(1)
        .map(String::from)
        .collect();
    expected.push("refused 25006".into());
    assert_eq!(stdout.lines().collect::<Vec<_>>(), expected);

    // A malformed startup packet: the connection is dropped.
    use std::io::{Read, Write};
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", s.server.port)).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let _ = sock.write_all(b"\x00\x00\x00\x10\xde\xad\xbe\xefgarbage!");
    let mut buf = [0u8; 256];
    let _ = sock.read(&mut buf);
    drop(sock);
    // A client that vanishes in the middle of a large result.
    let (code, _, stderr) = python(&format!(
        "{connect}conn.pgconn.send_query(b'SELECT d1.dossier_id FROM dossiers d1 CROSS JOIN dossiers d2')\nos._exit(0)\n"
    ));
    assert_eq!(code, Some(0), "{stderr}");
    // Still serving.
    let (code, stdout, stderr) = psql(s.server.port, "analyst", PASSWORD, "SELECT 41 + 1");
    assert_eq!((code, stdout.trim()), (0, "42"), "{stderr}");
    // SIGTERM: stops accepting and exits cleanly.
    Command::new("kill")
        .args(["-TERM", &s.server.child.id().to_string()])
        .status()
        .unwrap();
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(st) = s.server.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(40),
            "serve did not stop"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(0));
}

/// A statement longer than `serve.query_timeout_s` fails with 57014; one over
/// `serve.query_memory_limit` spills, and when even that cannot fit (or its result is larger)
/// fails with 53200; the server goes on.
#[test]
fn statements_over_the_time_or_memory_limit_fail_and_the_server_goes_on() {
    let s = served(
        "2022-01-01",
        "2022-01-01",
        "2022-01-01",
        "0.01",
        "  query_timeout_s: 5\n  query_memory_limit: 16MiB\n",
    );
    let port = s.server.port;
    let t0 = std::time::Instant::now();
    let (code, _, stderr) = psql(
        port,
        "analyst",
        PASSWORD,
        "SELECT count(*) FROM range(100000000000)",
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("57014"), "{stderr}");
    assert!(t0.elapsed() < std::time::Duration::from_secs(40));
    // 1.5 M groups do not fit in 16 MiB: the aggregation spills and still answers exactly.
    let (code, stdout, stderr) = psql(
        port,
        "analyst",
        PASSWORD,
        "SELECT count(*), min(c), max(c) FROM (SELECT value % 1500000 AS v, count(*) AS c FROM range(3000000) GROUP BY 1)",
    );
    assert_eq!((code, stdout.trim()), (0, "1500000,2,2"), "{stderr}");
    // An aggregate state that cannot spill, and a result larger than the limit.
    for sql in [
        "SELECT array_agg(value) FROM range(5000000)",
        "SELECT * FROM range(10000000)",
    ] {
        let (code, _, stderr) = psql(port, "analyst", PASSWORD, sql);
        assert_ne!(code, 0, "{sql}");
        assert!(
            stderr.contains("53200") && stderr.contains("serve.query_memory_limit (16 MiB)"),
            "{sql}: {stderr}"
        );
    }
    let (code, stdout, stderr) = psql(port, "analyst", PASSWORD, "SELECT 1");
    assert_eq!((code, stdout.trim()), (0, "1"), "{stderr}");
}

/// What the statements of DBeaver, Metabase and pgjdbc answer, replayed by
/// `tests/it/clients/replay.py` through the extended protocol with bound parameters.
#[test]
fn bi_clients_startup_and_schema_browsing() {
    let s = served("2022-01-01", "2022-01-01", "2022-01-01", "0.01", "");
    let out = Command::new("python3")
        .arg(repo().join("tests/it/clients/replay.py"))
        .args([&s.server.port.to_string(), "analyst", PASSWORD])
        .output()
        .expect("python3 with psycopg (.ci/setup installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Named in README "Connecting a BI tool" as known not to work.
    const KNOWN: [&str; 2] = ["full.jdbc.array_type", "full.metabase.indexes"];
    let mut failed = Vec::new();
    for line in stdout.lines() {
        let mut words = line.split(' ');
        match (words.next(), words.next()) {
            (Some("fail"), Some(name)) => failed.push(name.to_string()),
            (Some("ok"), Some(_)) | (Some("table"), _) | (Some("fields"), _) => {}
            _ => panic!("unexpected line {line:?}"),
        }
    }
    assert_eq!(failed, KNOWN, "{stdout}");
    let ok = |name: &str| -> usize {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("ok {name} ")))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {stdout}"))
    };
    // The database the client names exists; every table and view is listed.
    assert_eq!(ok("dbeaver.database"), 1);
    let tables = ok("dbeaver.tables");
    assert!(tables >= TABLES.len(), "{stdout}");
    assert_eq!(ok("metabase.tables"), tables);
    assert_eq!(ok("full.dbeaver.tables"), tables);
    // target_results's columns, in the contract's order, by DBeaver's query and pgjdbc's.
    let columns = "target_id unit_code period as_of final numerator denominator value threshold status sample_keys";
    let table = stdout.lines().find(|l| l.starts_with("table ")).unwrap();
    assert!(table.ends_with(&format!("columns {columns}")), "{table}");
    // Metabase's field sync: PostgreSQL's type names (those the wire carries), positions from 0
    // after its `- 1`, no key, NOT NULL columns required, no comment.
    let fields = stdout.lines().find(|l| l.starts_with("fields ")).unwrap();
    assert_eq!(
        fields,
        "fields target_id:text:0:False:True:None unit_code:text:1:False:True:None \
         period:text:2:False:True:None as_of:date:3:False:True:None \
         final:bool:4:False:True:None numerator:int8:5:False:True:None \
         denominator:int8:6:False:True:None value:float8:7:False:False:None \
         threshold:float8:8:False:False:None status:text:9:False:True:None \
         sample_keys:_text:10:False:True:None"
    );
    assert_eq!(ok("full.jdbc.get_columns"), 11);
    assert_eq!(ok("metabase.fields"), 11);
}
