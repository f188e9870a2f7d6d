"""Cold start: milliseconds from exec of `scimd serve` on an empty SQLite file to its first
200 answer on /healthz, best of N runs. Polls with a raw socket every 0.5 ms (no process per
poll), gives up after 10 s per run. Usage: coldstart.py SCIMD_BIN WORKDIR [RUNS]
Prints the best time on stdout and every run on stderr.
"""
import os
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def one(binary, workdir, i):
    db = os.path.join(workdir, f"cold{i}.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    port = free_port()
    env = dict(os.environ, DATABASE_URL=f"sqlite://{db}", SCIMD_LISTEN=f"127.0.0.1:{port}",
               SCIMD_BOOTSTRAP="false", RUST_LOG="error")
    env.pop("SCIMD_JWT_SECRET", None)
    start = time.perf_counter()
    proc = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while not healthy(port):
            if proc.poll() is not None:
                raise SystemExit(f"scimd exited with {proc.returncode} before serving")
            if time.perf_counter() - start > 10:
                raise SystemExit("scimd did not answer /healthz within 10 s")
            time.sleep(0.0005)
        return (time.perf_counter() - start) * 1000
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    binary, workdir = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    times = [one(binary, workdir, i) for i in range(runs)]
    print("cold start runs (ms): " + ", ".join(f"{t:.1f}" for t in times), file=sys.stderr)
    print(f"{min(times):.1f}")


if __name__ == "__main__":
    main()
