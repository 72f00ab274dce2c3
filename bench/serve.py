"""Query mix over a warehouse's marts through `cchc serve` (psycopg, one persistent connection per
client) against `cchc sql` (one process per query, what an analyst without the server runs).
Usage: python3 bench/serve.py BIN CONFIG [ROUNDS]. Prints median latency (ms) and queries/s."""
import os, statistics, subprocess, sys, threading, time

import psycopg

BIN, CONFIG = sys.argv[1], sys.argv[2]
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 20
MIX = [
    "SELECT target_id, period, value, status FROM target_results WHERE unit_code = '000.00.21.H40' ORDER BY target_id, period",
    "SELECT target_id, value, status FROM target_results WHERE unit_code = 'ALL' AND period = (SELECT max(period) FROM target_results WHERE length(period) = 4) ORDER BY target_id",
    "SELECT unit_code, sum(received) AS received, sum(done_on_time) AS on_time FROM mart_dossiers GROUP BY unit_code ORDER BY unit_code",
]

def measure(clients, rounds, connect, query):
    """Median latency (ms) and queries/s of `clients` threads, each running the mix `rounds`
    times: `connect()` gives a client's state, `query(state, q)` runs one query."""
    lat, lock = [], threading.Lock()
    def work():
        state = connect()
        for _ in range(rounds):
            for q in MIX:
                t = time.perf_counter()
                query(state, q)
                with lock:
                    lat.append((time.perf_counter() - t) * 1000)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(clients)]
    for th in threads: th.start()
    for th in threads: th.join()
    return statistics.median(lat), len(lat) / (time.perf_counter() - t0)

def serve_clients(port, clients):
    connect = lambda: psycopg.connect(host="127.0.0.1", port=port, user="bench", dbname="cchc", sslmode="disable")
    return measure(clients, ROUNDS, connect, lambda conn, q: conn.execute(q).fetchall())

def sql_clients(clients, rounds):
    run = lambda _, q: subprocess.run([BIN, "--config", CONFIG, "sql", q, "--format", "csv"], check=True, capture_output=True)
    return measure(clients, rounds, lambda: None, run)

server = subprocess.Popen([BIN, "--config", CONFIG, "serve", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
try:
    port = int(server.stdout.readline().split(":")[1].split(",")[0].split()[0])
    for clients in (1, 8):
        m, qps = serve_clients(port, clients)
        print(f"serve     {clients} client(s): median {m:8.1f} ms  {qps:7.1f} queries/s")
        m, qps = sql_clients(clients, max(1, ROUNDS // 5))
        print(f"cchc sql  {clients} client(s): median {m:8.1f} ms  {qps:7.1f} queries/s")
finally:
    server.terminate(); server.wait()
