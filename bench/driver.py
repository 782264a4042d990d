#!/usr/bin/python3
"""Benchmark driver: start every variant, drive it with wrk in interleaved
rounds, measure server CPU and peak RSS from /proc, write results.

Called by bench/run.sh, which installs what is needed and builds the module;
run that instead. Standard library only (Debian's /usr/bin/python3).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
APACHE = "/usr/sbin/apache2"
C_MODULE = "/usr/lib/apache2/modules/mod_wsgi.so"
WWW_USER = "www-data"
CLK_TCK = os.sysconf("SC_CLK_TCK")
UNIMPLEMENTED_DAEMON = "daemon mode is not implemented by mod_wsgi-rs yet"
DAEMON_CAVEAT = "(daemon mode not implemented yet: ran embedded)"

# ---------------------------------------------------------------- variants
#
# ref: the variant each one is compared with in the same round ("the C
# mod_wsgi in the same mode"). gunicorn and Granian run the app in 2 separate
# Python processes behind their own front end, which is the shape of C
# mod_wsgi's daemon 2x8; Apache's static floor is compared with C embedded.
VARIANTS = {
    "rs-embedded": dict(kind="apache", module="rs", daemon=None, ref="c-embedded"),
    "rs-daemon-1x15": dict(kind="apache", module="rs", daemon=(1, 15), ref="c-daemon-1x15"),
    "rs-daemon-2x8": dict(kind="apache", module="rs", daemon=(2, 8), ref="c-daemon-2x8"),
    "c-embedded": dict(kind="apache", module="c", daemon=None, ref="c-embedded"),
    "c-daemon-1x15": dict(kind="apache", module="c", daemon=(1, 15), ref="c-daemon-1x15"),
    "c-daemon-2x8": dict(kind="apache", module="c", daemon=(2, 8), ref="c-daemon-2x8"),
    "gunicorn-gthread-2x8": dict(kind="gunicorn", ref="c-daemon-2x8"),
    "granian-wsgi-2w": dict(kind="granian", ref="c-daemon-2x8"),
    "apache-static": dict(kind="apache", module=None, daemon=None, ref="c-embedded"),
}
QUICK_VARIANTS = ["rs-embedded", "c-embedded", "rs-daemon-2x8", "c-daemon-2x8",
                  "gunicorn-gthread-2x8", "granian-wsgi-2w", "apache-static"]

# ---------------------------------------------------------------- workloads
UPLOAD_BYTES = 50 * 1024 * 1024
WORKLOADS = {
    "hello-16": dict(path="/hello", conns=16, check=lambda b: b == b"hello world\n",
                     what="hello world (12 bytes), 16 connections"),
    "hello-64": dict(path="/hello", conns=64, check=lambda b: b == b"hello world\n",
                     what="hello world (12 bytes), 64 connections"),
    "1mib": dict(path="/1mib", conns=16, check=lambda b: len(b) == 1024 * 1024,
                 what="1 MiB response, 16 connections"),
    "upload-50mib": dict(path="/upload", conns=4, post=UPLOAD_BYTES,
                         check=lambda b: b == b"%d\n" % UPLOAD_BYTES,
                         what="50 MiB POST read through wsgi.input, 4 connections"),
    "stream-1000": dict(path="/stream", conns=16, check=lambda b: len(b) == 11000,
                        what="streamed response, 1,000 chunks of 11 bytes, 16 connections",
                        note="PEP 3333: a server must not delay the transmission of a yielded block. The C mod_wsgi "
                             "sends each of the 1,000 blocks as it is yielded (1,000 writes); a server that "
                             "holds the blocks back and sends them together does far less work "
                             "here, so a large ratio in this table can mean a streaming bug, not speed."),
    "flask": dict(path="/flask", conns=16, check=lambda b: b"Flask benchmark" in b,
                  what="Flask view rendering a Jinja2 template, 16 connections"),
    "django": dict(path="/django", conns=16, check=lambda b: b"Django benchmark" in b,
                   what="Django view rendering a template, 16 connections"),
}
STATIC_WORKLOADS = {"hello-16", "hello-64", "1mib"}

# Same Apache settings for every Apache variant.
APACHE_MPM = """\
StartServers 2
ServerLimit 2
ThreadLimit 64
ThreadsPerChild 64
MaxRequestWorkers 128
MinSpareThreads 64
MaxSpareThreads 128
AsyncRequestWorkerFactor 4
MaxConnectionsPerChild 0
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 15
Timeout 60
"""


def log(msg):
    print("[bench %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ---------------------------------------------------------------- /proc

def proc_stat(pid):
    """(ppid, utime+stime ticks) or None if the process is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def process_tree(root):
    """The root PID and all its descendants that exist now."""
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st:
                children.setdefault(st[0], []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if proc_stat(pid) is None:
            continue
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def runs_python(pid):
    try:
        exe = os.path.basename(os.readlink("/proc/%d/exe" % pid))
        if exe.startswith("python"):
            return True
        with open("/proc/%d/maps" % pid) as f:
            return "libpython" in f.read()
    except OSError:
        return False


def vm_hwm_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def reset_hwm(pid):
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")  # reset the peak RSS to the current RSS
    except OSError:
        pass


# ---------------------------------------------------------------- servers

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name, spec, args, rundir):
        self.name, self.spec, self.args = name, spec, args
        self.dir = os.path.join(rundir, name)
        os.makedirs(self.dir, mode=0o755)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.proc = None
        self.known_pids = set()
        self.caveat = ""
        self.python_parent_excluded = spec["kind"] == "apache"

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def command(self):
        kind, a = self.spec["kind"], self.args
        if kind == "apache":
            conf = os.path.join(self.dir, "httpd.conf")
            with open(conf, "w") as f:
                f.write(self.apache_conf())
            return [APACHE, "-f", conf, "-DFOREGROUND"], {}
        venv_bin = os.path.join(a.venv, "bin")
        if kind == "gunicorn":
            return [os.path.join(venv_bin, "gunicorn"), "-k", "gthread", "-w", "2", "--threads", "8",
                    "-b", "127.0.0.1:%d" % self.port, "--chdir", a.apps, "--keep-alive", "15",
                    "--user", WWW_USER, "--group", WWW_USER, "--worker-tmp-dir", self.dir,
                    "--log-level", "warning", "app:application"], {}
        if kind == "granian":
            return [os.path.join(venv_bin, "granian"), "--interface", "wsgi", "--host", "127.0.0.1",
                    "--port", str(self.port), "--workers", "2", "--working-dir", a.apps,
                    "--log-level", "warning", "--no-ws", "app:application"], {}
        raise ValueError(kind)

    def apache_conf(self):
        a, spec, d = self.args, self.spec, self.dir
        moddir = a.apache_moddir
        lines = [
            "ServerRoot %s" % d,
            "ServerName 127.0.0.1",
            "Listen 127.0.0.1:%d" % self.port,
            "PidFile %s/httpd.pid" % d,
            "DefaultRuntimeDir %s/run" % d,
            "ErrorLog %s/error.log" % d,
            "LogLevel warn",
            "User %s" % WWW_USER,
            "Group %s" % WWW_USER,
            "LoadModule mpm_event_module %s/mod_mpm_event.so" % moddir,
            "LoadModule authz_core_module %s/mod_authz_core.so" % moddir,
            APACHE_MPM,
            "DocumentRoot %s" % a.static_root,
            # AllowOverride None as in Debian's apache2.conf: without it,
            # every request looks for four .htaccess files on its path.
            "<Directory />\n    AllowOverride None\n    Require all granted\n</Directory>",
        ]
        os.makedirs(os.path.join(d, "run"), exist_ok=True)
        os.chmod(os.path.join(d, "run"), 0o755)
        if spec["module"]:
            so = a.rs_module if spec["module"] == "rs" else C_MODULE
            lines.append("LoadModule wsgi_module %s" % so)
            lines.append("WSGISocketPrefix %s/run/wsgi" % d)
            if spec["daemon"]:
                p, t = spec["daemon"]
                lines.append("WSGIDaemonProcess bench processes=%d threads=%d display-name=%%{GROUP}" % (p, t))
                lines.append("WSGIScriptAlias / %s process-group=bench application-group=%%{GLOBAL}" % a.wsgi_script)
            else:
                lines.append("WSGIScriptAlias / %s application-group=%%{GLOBAL}" % a.wsgi_script)
        return "\n".join(lines) + "\n"

    def start(self, register):
        cmd, _ = self.command()
        logf = open(os.path.join(self.dir, "stdout.log"), "wb")
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=self.dir, start_new_session=True)
        register(self.proc.pid)
        log("started %s (pid %d) on port %d" % (self.name, self.proc.pid, self.port))
        try:
            self.wait_until_up()
        finally:
            self.read_caveat()
        self.refresh_pids(register)

    def wait_until_up(self):
        probe = "/hello"
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s at start-up; see %s" % (self.name, self.proc.returncode, self.dir))
            try:
                with urllib.request.urlopen(self.base + probe, timeout=5) as r:
                    if r.status == 200:
                        break
            except urllib.error.HTTPError as e:
                # Up, but broken: say why, from the error log, without waiting.
                raise RuntimeError("%s answers %s %d%s" % (self.name, probe, e.code, self.last_error()))
            except (urllib.error.URLError, OSError):
                pass
            if time.time() > deadline:
                raise RuntimeError("%s did not answer %s within 60 s; see %s" % (self.name, probe, self.dir))
            time.sleep(0.2)

    def read_caveat(self):
        """This module's daemon rows are labelled while it logs at start-up
        that daemon mode is not implemented."""
        errlog = os.path.join(self.dir, "error.log")
        if self.spec.get("module") == "rs" and self.spec.get("daemon") and os.path.exists(errlog):
            with open(errlog, errors="replace") as f:
                if UNIMPLEMENTED_DAEMON in f.read():
                    self.caveat = DAEMON_CAVEAT

    def last_error(self):
        """The error log's last [error] line, to explain a failure."""
        try:
            with open(os.path.join(self.dir, "error.log"), errors="replace") as f:
                lines = [l.strip() for l in f if ":error]" in l]
        except OSError:
            return ""
        return (": error log: " + re.sub(r"^\[[^]]*\] ", "", lines[-1])[:300]) if lines else ""

    def refresh_pids(self, register=None):
        pids = process_tree(self.proc.pid)
        for p in pids:
            if p not in self.known_pids and register:
                register(p)
        self.known_pids.update(pids)
        return pids

    def python_pids(self, pids):
        return [p for p in pids if runs_python(p) and not (self.python_parent_excluded and p == self.proc.pid)]

    def stop(self):
        if not self.proc:
            return
        self.refresh_pids()
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # Anything of ours still alive (a daemon whose parent did not stop it).
        time.sleep(0.2)
        for pid in sorted(self.known_pids):
            if pid != self.proc.pid and proc_stat(pid) is not None and owned_by_run(pid, self):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        log("stopped %s" % self.name)


def owned_by_run(pid, server):
    """Guard against PID reuse: only kill a process that looks like ours."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return server.dir in cmd or "apache2" in cmd or "gunicorn" in cmd or "granian" in cmd or "wsgi" in cmd


# ---------------------------------------------------------------- wrk

WRK_LUA = r"""
%(setup)s
done = function(summary, latency, requests)
  io.write(string.format(
    'BENCHJSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"mean_us":%%.1f,"max_us":%%d}\n',
    summary.requests, summary.duration, summary.bytes,
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
"""


def write_lua(rundir):
    plain = os.path.join(rundir, "report.lua")
    with open(plain, "w") as f:
        f.write(WRK_LUA % {"setup": ""})
    upload = os.path.join(rundir, "upload.lua")
    with open(upload, "w") as f:
        f.write(WRK_LUA % {"setup": 'wrk.method = "POST"\n'
                                    'wrk.headers["Content-Type"] = "application/octet-stream"\n'
                                    'wrk.body = string.rep("x", %d)\n' % UPLOAD_BYTES})
    return plain, upload


def check_response(server, wl):
    spec = WORKLOADS[wl]
    data = b"x" * spec["post"] if spec.get("post") else None
    req = urllib.request.Request(server.base + spec["path"], data=data)
    with urllib.request.urlopen(req, timeout=120) as r:
        body = r.read()
        if r.status != 200 or not spec["check"](body):
            raise RuntimeError("%s %s: unexpected response %d %r" % (server.name, wl, r.status, body[:80]))
    if wl == "stream-1000":
        return flushes_blocks(server)
    return None


def flushes_blocks(server):
    """Whether the first yielded block reaches the client before the
    application yields the next one, 0.5 s later (PEP 3333)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /flushcheck HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        t0, data = time.monotonic(), b""
        while b"first\n" not in data:
            block = s.recv(65536)
            if not block:
                break
            data += block
        return "yes" if time.monotonic() - t0 < 0.4 else "no (first block after %.2f s)" % (time.monotonic() - t0)


def run_wrk(server, wl, duration, lua, threads=2):
    spec = WORKLOADS[wl]
    conns = spec["conns"]
    cmd = ["wrk", "-t%d" % min(threads, conns), "-c%d" % conns, "-d%ds" % duration, "--timeout", "30s",
           "--latency", "-s", lua, server.base + spec["path"]]
    pids = server.refresh_pids()
    py = server.python_pids(pids)
    for p in py:
        reset_hwm(p)
    before = {p: proc_stat(p) for p in pids}
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    wall = time.monotonic() - t0
    pids_after = server.refresh_pids()
    cpu_ticks = 0
    for p in pids_after:
        st = proc_stat(p)
        if st:
            b = before.get(p)
            cpu_ticks += st[1] - (b[1] if b else 0)
    py_after = server.python_pids(pids_after)
    rss_kib = sum(vm_hwm_kib(p) for p in py_after)
    m = re.search(r"^BENCHJSON (.*)$", out.stdout, re.M)
    if out.returncode != 0 or not m:
        raise RuntimeError("wrk failed for %s %s: %s %s" % (server.name, wl, out.stdout[-500:], out.stderr[-500:]))
    r = json.loads(m.group(1))
    secs = r["duration_us"] / 1e6
    r["rps"] = r["requests"] / secs if secs else 0.0
    r["errors"] = r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
    r["cpu_s"] = cpu_ticks / CLK_TCK
    r["cpu_us_per_req"] = (cpu_ticks / CLK_TCK * 1e6 / r["requests"]) if r["requests"] else None
    r["peak_rss_mib"] = rss_kib / 1024 if py_after else None
    r["python_procs"] = len(py_after)
    r["procs"] = len(pids_after)
    r["wall_s"] = wall
    r["wrk_stdout"] = out.stdout
    return r


# ---------------------------------------------------------------- reporting

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=0, suffix=""):
    if x is None:
        return "–"
    return ("{:,.%df}" % nd).format(x) + suffix


def fmt_ratio(median, per_round):
    """The median ratio, and the range over rounds when there are several."""
    if median is None:
        return "–"
    if len(per_round) > 1 and max(per_round) - min(per_round) > 0.005:
        return "%.2f (%.2f–%.2f)" % (median, min(per_round), max(per_round))
    return "%.2f" % median


def fmt_lat(us):
    if us is None:
        return "–"
    if us >= 1e6:
        return "%.2f s" % (us / 1e6)
    if us >= 1000:
        return "%.1f ms" % (us / 1000)
    return "%d µs" % us


def summarise(results, variants, workloads, rounds):
    """Medians per variant x workload, and medians of per-round ratios to ref."""
    summary = {}
    for wl in workloads:
        for v in variants:
            runs = results.get(wl, {}).get(v)
            if not runs:
                continue
            ref = VARIANTS[v]["ref"]
            ref_runs = results.get(wl, {}).get(ref) or []
            rps_ratios, cpu_ratios = [], []
            for i, r in enumerate(runs):
                if i < len(ref_runs) and ref_runs[i]["rps"]:
                    rps_ratios.append(r["rps"] / ref_runs[i]["rps"])
                    if r["cpu_us_per_req"] and ref_runs[i]["cpu_us_per_req"]:
                        cpu_ratios.append(r["cpu_us_per_req"] / ref_runs[i]["cpu_us_per_req"])
            summary.setdefault(wl, {})[v] = dict(
                rounds=len(runs),
                rps=med(r["rps"] for r in runs),
                p50_us=med(r["p50_us"] for r in runs),
                p99_us=med(r["p99_us"] for r in runs),
                cpu_us_per_req=med(r["cpu_us_per_req"] for r in runs),
                peak_rss_mib=med(r["peak_rss_mib"] for r in runs),
                python_procs=max(r["python_procs"] for r in runs),
                errors=sum(r["errors"] for r in runs),
                ref=ref if ref_runs else None,
                rps_ratio=med(rps_ratios), cpu_ratio=med(cpu_ratios),
                rps_ratio_rounds=rps_ratios, cpu_ratio_rounds=cpu_ratios,
            )
    return summary


def write_markdown(path, meta, summary, variants, workloads, caveats):
    L = []
    L.append("# mod_wsgi-rs benchmark results\n")
    L.append("Generated by `bench/run.sh %s` on %s." % (" ".join(meta["argv"]), meta["date"]))
    L.append("")
    L.append("- Machine: %s, %d CPUs (`nproc`), %s, %s" % (meta["cpu_model"], meta["nproc"], meta["mem"], meta["kernel"]))
    L.append("- Load average before / after: %s / %s" % (meta["load_before"], meta.get("load_after", "?")))
    L.append("- Rounds: %d, %d s per run (after a %d s warm-up per variant and workload), wrk with %d threads on the same machine; variants interleaved in each round"
             % (meta["rounds"], meta["duration"], meta["warmup"], 2))
    L.append("- Versions: %s" % ", ".join("%s %s" % kv for kv in meta["versions"].items()))
    L.append("- mod_wsgi-rs module: `%s`" % meta.get("rs_module", "?"))
    L.append("- Apache (every Apache variant): MPM event, %s" % "; ".join(
        l for l in APACHE_MPM.strip().splitlines()))
    L.append("- Daemon variants: `WSGIDaemonProcess bench processes=P threads=T`, identical for both modules; "
             "gunicorn: `-k gthread -w 2 --threads 8`; Granian: `--interface wsgi --workers 2` (other settings default)")
    L.append("")
    if caveats:
        L.append("**Caveat:** %s" % " ".join(caveats))
        L.append("")
    L.append("Columns: requests/s is the median over rounds; *× C* is the median of the per-round ratios to the "
             "C mod_wsgi in the same mode (the *vs* column: daemon 2x8 for gunicorn and Granian, embedded for "
             "Apache's static floor); > 1 is better for req/s, < 1 is better for CPU. CPU µs/req is user+sys of "
             "every server process (Apache parent, children, daemons; gunicorn/Granian master and workers) over the "
             "run, divided by completed requests. Peak RSS is the sum of VmHWM over the processes that run Python "
             "(the Apache parent excluded), reset before each run. With several rounds, the range of the per-round "
             "ratios follows the median in brackets.")
    L.append("")
    for wl in workloads:
        if wl not in summary and wl not in meta["not_run"]:
            continue
        summary.setdefault(wl, {})
        L.append("## %s: %s\n" % (wl, WORKLOADS[wl]["what"]))
        if WORKLOADS[wl].get("note"):
            L.append(WORKLOADS[wl]["note"])
            framing = meta.get("framing", {}).get(wl)
            if framing:
                L.append("Each block sent before the next is yielded (`/flushcheck`): " +
                         "; ".join("%s %s" % (v, framing[v]) for v in variants if framing.get(v)) + ".")
            L.append("")
        L.append("| variant | req/s | × C | vs | p50 | p99 | CPU µs/req | CPU × C | peak RSS MiB (procs) | errors |")
        L.append("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for v in variants:
            s = summary[wl].get(v)
            if not s:
                why = meta["not_run"].get(wl, {}).get(v)
                if why:
                    note = " (its start-up log: daemon mode not implemented yet)" if caveats_for(v, meta) else ""
                    L.append("| %s | %s%s (see Failures) |  |  |  |  |  |  |  |  |" % (v, why, note))
                continue
            name = v + ((" " + caveats_for(v, meta)) if caveats_for(v, meta) else "")
            rss = "–" if s["peak_rss_mib"] is None else "%s (%d)" % (fmt(s["peak_rss_mib"], 1), s["python_procs"])
            L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |" % (
                name, fmt(s["rps"], 0), fmt_ratio(s["rps_ratio"], s["rps_ratio_rounds"]), s["ref"] or "–",
                fmt_lat(s["p50_us"]), fmt_lat(s["p99_us"]), fmt(s["cpu_us_per_req"], 0),
                fmt_ratio(s["cpu_ratio"], s["cpu_ratio_rounds"]), rss, s["errors"]))
        L.append("")
    L.append("Chart: [results.svg](results.svg). Raw figures per round: [results.json](results.json).")
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")


def caveats_for(v, meta):
    return meta["caveats"].get(v, "")


def write_svg(path, summary, variants, workloads, meta):
    """Horizontal bar chart of median requests/s, one panel per workload."""
    palette = {"rs": "#d9480f", "c-": "#1c7ed6", "gu": "#2f9e44", "gr": "#9c36b5", "ap": "#868e96"}
    bar_h, gap, label_w, plot_w, left = 16, 4, 260, 430, 10
    y = 40
    parts = []
    starred = False
    for wl in workloads:
        rows = [(v, summary.get(wl, {}).get(v)) for v in variants]
        rows = [(v, s) for v, s in rows if s]
        if not rows:
            continue
        top = max(s["rps"] for _, s in rows) or 1
        parts.append('<text x="%d" y="%d" font-weight="bold">%s: %s</text>' % (left, y, wl, esc(WORKLOADS[wl]["what"])))
        y += 8
        for v, s in rows:
            w = plot_w * s["rps"] / top
            color = palette.get(v[:2], "#495057")
            label = v + (" *" if caveats_for(v, meta) else "")
            held = str(meta.get("framing", {}).get(wl, {}).get(v) or "").startswith("no")
            if held:
                label += " (holds blocks back)"
            starred = starred or bool(caveats_for(v, meta))
            parts.append('<text x="%d" y="%d" font-size="11">%s</text>' % (left, y + bar_h - 4, esc(label)))
            parts.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>' % (left + label_w, y, max(w, 1), bar_h, color))
            ratio = "" if s["rps_ratio"] is None or v == s["ref"] else "  (%.2f× %s)" % (s["rps_ratio"], s["ref"])
            parts.append('<text x="%.1f" y="%d" font-size="11">%s req/s%s</text>' % (
                left + label_w + max(w, 1) + 4, y + bar_h - 4, fmt(s["rps"], 0), esc(ratio)))
            y += bar_h + gap
        y += 24
    foot = "median req/s over %d round(s), %d s each; %s; %s" % (meta["rounds"], meta["duration"], meta["date"], meta["cpu_model"])
    if starred:
        foot += "; * " + DAEMON_CAVEAT
    parts.append('<text x="%d" y="%d" font-size="10" fill="#495057">%s</text>' % (left, y, esc(foot)))
    width = left + label_w + plot_w + 220
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">\n'
           '<rect width="100%%" height="100%%" fill="white"/>\n'
           '<text x="%d" y="22" font-size="15" font-weight="bold">mod_wsgi-rs vs C mod_wsgi, gunicorn, Granian: requests/s</text>\n'
           % (width, y + 20, left)) + "\n".join(parts) + "\n</svg>\n"
    with open(path, "w") as f:
        f.write(svg)


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------- machine

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:
        return ""


def machine_info(args):
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = "%.0f GiB RAM" % (int(f.readline().split()[1]) / 1024 / 1024)
    venv_py = os.path.join(args.venv, "bin", "python")
    versions = {
        "Apache": sh("%s -v | sed -n 's/Server version: //p'" % APACHE),
        "C mod_wsgi (Debian)": sh("dpkg-query -W -f '${Version}' libapache2-mod-wsgi-py3"),
        "mod_wsgi-rs": sh("git -C %s describe --always --dirty" % REPO),
        "Python": platform.python_version(),
        "gunicorn": sh("%s -c 'import gunicorn; print(gunicorn.__version__)'" % venv_py),
        "Granian": sh("%s -c 'import granian; print(granian.__version__)'" % venv_py),
        "Flask": sh("%s -c 'import importlib.metadata as m; print(m.version(\"flask\"))'" % venv_py),
        "Django": sh("%s -c 'import django; print(django.__version__)'" % venv_py),
        "wrk": sh("wrk -v 2>&1 | head -1 | cut -d' ' -f2"),
    }
    return dict(
        date=datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        hostname=platform.node(), kernel="Linux " + platform.release(), nproc=os.cpu_count(),
        cpu_model=cpu, mem=mem, load_before=" ".join(open("/proc/loadavg").read().split()[:3]),
        versions=versions,
    )


def write_reports(out, meta, results):
    """results.json, results.md and results.svg from the runs and meta."""
    variants, workloads, failures = meta["variants"], meta["workloads"], meta["failures"]
    summary = summarise(results, variants, workloads, meta["rounds"])
    caveats = []
    ran_with_caveat = sorted(v for v in meta["caveats"] if any(v in d for d in results.values()))
    failed_with_caveat = sorted(v for v in meta["caveats"] if v not in ran_with_caveat)
    if failed_with_caveat:
        caveats.append("this module's start-up log says daemon mode is not implemented yet and that daemon "
                       "groups run embedded, but %s answered 500 (\"No WSGI daemon process called 'bench' has "
                       "been configured\"), so there are no mod_wsgi-rs daemon figures in this run."
                       % ", ".join(failed_with_caveat))
    if ran_with_caveat:
        caveats.append("the mod_wsgi-rs daemon rows (%s) are %s: the module's start-up log says daemon mode is "
                       "not implemented yet, so those requests ran in Apache's children, not in daemon processes."
                       % (", ".join(ran_with_caveat), DAEMON_CAVEAT))
    if meta["nproc"] <= 2:
        caveats.append("wrk runs on the same %d-CPU machine as the servers, so it competes with them for CPU; "
                       "CPU µs per request is steadier than requests/s here." % meta["nproc"])
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(dict(meta=meta, summary=summary, runs=results), f, indent=1)
    write_markdown(os.path.join(out, "results.md"), meta, summary, variants, workloads, caveats)
    if failures:
        with open(os.path.join(out, "results.md"), "a") as f:
            f.write("\n## Failures\n\n" + "\n".join("- " + x for x in failures) + "\n")
    write_svg(os.path.join(out, "results.svg"), summary, variants, workloads, meta)


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="1 round, 3 s per run, a subset of variants")
    ap.add_argument("--variants", help="comma-separated: " + ",".join(VARIANTS))
    ap.add_argument("--workloads", help="comma-separated: " + ",".join(WORKLOADS))
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--duration", type=int, help="seconds per wrk run")
    ap.add_argument("--warmup", type=int, help="seconds of warm-up per variant and workload")
    ap.add_argument("--keep", action="store_true", help="keep the runtime directory (configs, logs)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--report", metavar="JSON",
                    help="run nothing: rewrite results.md/svg/json in --out from this results.json or raw run")
    ap.add_argument("--venv")
    ap.add_argument("--rs-module")
    ap.add_argument("--pidfile", help="every PID started is appended here (for run.sh's trap)")
    ap.add_argument("--argv", default="")
    args = ap.parse_args()
    if args.report:
        with open(args.report) as f:
            data = json.load(f)
        runs = {wl: {v: [{k: x for k, x in r.items() if k != "wrk_stdout"} for r in rs] for v, rs in d.items()}
                for wl, d in data["runs"].items()}
        write_reports(args.out, data["meta"], runs)
        log("rewrote %s/results.md, results.svg, results.json" % args.out)
        return 0
    if not (args.venv and args.rs_module and args.pidfile):
        ap.error("--venv, --rs-module and --pidfile are required (run bench/run.sh)")

    rounds = args.rounds or (1 if args.quick else 3)
    duration = args.duration or (3 if args.quick else 10)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    variants = args.variants.split(",") if args.variants else (QUICK_VARIANTS if args.quick else list(VARIANTS))
    workloads = args.workloads.split(",") if args.workloads else list(WORKLOADS)
    for v in variants:
        if v not in VARIANTS:
            sys.exit("unknown variant %r (known: %s)" % (v, ", ".join(VARIANTS)))
    for w in workloads:
        if w not in WORKLOADS:
            sys.exit("unknown workload %r (known: %s)" % (w, ", ".join(WORKLOADS)))
    # Ratios need the reference variant in the same round: add it if missing.
    for v in list(variants):
        ref = VARIANTS[v]["ref"]
        if ref not in variants:
            log("adding %s: %s is compared with it" % (ref, v))
            variants.append(ref)
    variants = [v for v in VARIANTS if v in variants]

    rundir = tempfile.mkdtemp(prefix="mod_wsgi-rs-bench.", dir="/var/tmp")
    os.chmod(rundir, 0o755)
    args.apps = os.path.join(rundir, "apps")
    shutil.copytree(os.path.join(HERE, "apps"), args.apps, ignore=shutil.ignore_patterns("__pycache__"))
    site = sh("%s -c 'import sysconfig; print(sysconfig.get_path(\"purelib\"))'" % os.path.join(args.venv, "bin", "python"))
    args.wsgi_script = os.path.join(rundir, "app.wsgi")
    with open(args.wsgi_script, "w") as f:
        f.write("# Generated by bench/driver.py: the venv's packages, then the benchmark app.\n"
                "import site, sys\nsite.addsitedir(%r)\nsys.path.insert(0, %r)\n"
                "from app import application  # noqa: E402,F401\n" % (site, args.apps))
    args.static_root = os.path.join(rundir, "static")
    os.makedirs(args.static_root)
    with open(os.path.join(args.static_root, "hello"), "wb") as f:
        f.write(b"hello world\n")
    with open(os.path.join(args.static_root, "1mib"), "wb") as f:
        f.write(b"x" * (1024 * 1024))
    for dirpath, dirs, files in os.walk(rundir):
        for n in dirs:
            os.chmod(os.path.join(dirpath, n), 0o755)
        for n in files:
            os.chmod(os.path.join(dirpath, n), 0o644)
    args.apache_moddir = sh("apxs -q LIBEXECDIR") or "/usr/lib/apache2/modules"
    plain_lua, upload_lua = write_lua(rundir)

    def register(pid):
        with open(args.pidfile, "a") as f:
            f.write("%d\n" % pid)

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    meta = machine_info(args)
    meta.update(framing={}, rs_module=args.rs_module, rounds=rounds, duration=duration, warmup=warmup, argv=args.argv.split(), caveats={},
                variants=variants, workloads=workloads, runtime_dir=rundir)
    log("runtime directory %s; %d variants x %d workloads x %d rounds, %d s each"
        % (rundir, len(variants), len(workloads), rounds, duration))

    servers = {}
    results = {}
    failures = []
    not_run = meta["not_run"] = {}
    ok = False
    try:
        for v in variants:
            s = Server(v, VARIANTS[v], args, rundir)
            try:
                s.start(register)
            except Exception as e:
                if s.caveat:
                    meta["caveats"][v] = s.caveat
                failures.append("%s: did not start: %s" % (v, e))
                for wl in workloads:
                    not_run.setdefault(wl, {})[v] = "did not start"
                log("FAILED: %s" % failures[-1])
                s.stop()
                continue
            servers[v] = s
            if s.caveat:
                meta["caveats"][v] = s.caveat
        applicable = {}
        for wl in workloads:
            applicable[wl] = []
            for v, s in servers.items():
                if VARIANTS[v]["kind"] == "apache" and VARIANTS[v]["module"] is None and wl not in STATIC_WORKLOADS:
                    continue
                try:
                    meta["framing"].setdefault(wl, {})[v] = check_response(s, wl)
                except Exception as e:
                    failures.append("%s %s: wrong response: %s%s" % (v, wl, e, s.last_error()))
                    not_run.setdefault(wl, {})[v] = "wrong response"
                    log("FAILED: %s" % failures[-1])
                    continue
                applicable[wl].append(v)
        if warmup:
            log("warm-up, %d s per variant and workload" % warmup)
            for wl in workloads:
                for v in applicable[wl]:
                    run_wrk(servers[v], wl, warmup, upload_lua if WORKLOADS[wl].get("post") else plain_lua)
        for rnd in range(rounds):
            for wl in workloads:
                lua = upload_lua if WORKLOADS[wl].get("post") else plain_lua
                for v in applicable[wl]:
                    try:
                        r = run_wrk(servers[v], wl, duration, lua)
                    except Exception as e:
                        failures.append("round %d %s %s: %s" % (rnd + 1, v, wl, e))
                        log("FAILED: %s" % failures[-1])
                        continue
                    r["round"] = rnd + 1
                    results.setdefault(wl, {}).setdefault(v, []).append(r)
                    log("round %d %-13s %-22s %9.0f req/s  p50 %-9s p99 %-9s %6s µs/req CPU  %s MiB  %s"
                        % (rnd + 1, wl, v, r["rps"], fmt_lat(r["p50_us"]), fmt_lat(r["p99_us"]),
                           fmt(r["cpu_us_per_req"]), fmt(r["peak_rss_mib"], 1),
                           ("%d errors" % r["errors"]) if r["errors"] else ""))
        ok = True
    except KeyboardInterrupt as e:
        failures.append("interrupted (%s)" % (e or "Ctrl-C"))
        log("interrupted: stopping everything")
    finally:
        for s in servers.values():
            try:
                s.stop()
            except Exception as e:
                log("could not stop %s: %s" % (s.name, e))
        # Keep each server's logs next to the raw results.
        logdir = os.path.join(args.out, "raw", "logs")
        os.makedirs(logdir, exist_ok=True)
        for v in variants:
            for n in ("error.log", "stdout.log", "httpd.conf"):
                src = os.path.join(rundir, v, n)
                if os.path.exists(src):
                    shutil.copy(src, os.path.join(logdir, "%s.%s" % (v, n)))

    meta["load_after"] = " ".join(open("/proc/loadavg").read().split()[:3])
    meta["failures"] = failures
    os.makedirs(args.out, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(os.path.join(args.out, "raw"), exist_ok=True)
    with open(os.path.join(args.out, "raw", "run-%s.json" % stamp), "w") as f:
        json.dump(dict(meta=meta, runs=results), f, indent=1)
    slim = {wl: {v: [{k: x for k, x in r.items() if k != "wrk_stdout"} for r in runs]
                 for v, runs in d.items()} for wl, d in results.items()}
    write_reports(args.out, meta, slim)
    log("wrote %s/results.md, results.svg, results.json (raw: %s/raw/run-%s.json)" % (args.out, args.out, stamp))
    if args.keep or failures:
        log("runtime directory kept: %s" % rundir)
    else:
        shutil.rmtree(rundir, ignore_errors=True)
    for x in failures:
        log("FAILURE: " + x)
    return 0 if ok and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
