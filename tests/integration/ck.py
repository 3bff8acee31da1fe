"""Helpers for the integration tests: the local stack (tests/stack.sh), the
Python messages generated from proto/ at test time, grpcio channels, a raw
HTTP/2 client (python3-h2) for what grpcio will not send, and the status
endpoint.

Everything here runs under Debian's /usr/bin/python3 with Debian's packages
(python3-grpcio, python3-protobuf, python3-h2, python3-prometheus-client).
"""

import importlib
import json
import os
import shlex
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import types
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STACK_SH = os.path.join(ROOT, "tests", "stack.sh")
PROTO = os.path.join(ROOT, "proto")
GRPC_PLUGIN = "/usr/bin/grpc_python_plugin"

# gRPC status codes by number (grpc.StatusCode values are (int, str) pairs).
OK, CANCELLED, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED = 0, 1, 2, 3, 4
NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, RESOURCE_EXHAUSTED = 5, 6, 7, 8
FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE, UNIMPLEMENTED = 9, 10, 11, 12
INTERNAL, UNAVAILABLE, DATA_LOSS, UNAUTHENTICATED = 13, 14, 15, 16

# HTTP/2 error codes (RFC 9113, section 7).
H2_NO_ERROR, H2_PROTOCOL_ERROR, H2_REFUSED_STREAM, H2_CANCEL = 0, 1, 7, 8


def log_tail(path, lines=60):
    try:
        with open(path, "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"(no log: {e})"
    return "\n".join(data.splitlines()[-lines:])


# ---------------------------------------------------------------- messages

def generate_messages(outdir):
    """Compile proto/ with Debian's protoc (+ grpc_python_plugin for stubs)
    into outdir and import the modules. Each file is compiled with its own
    directory as the proto path, so the modules are flat (broker_pb2, ...):
    a `grpc/health/v1` package would collide with grpcio's own `grpc`."""
    files = {
        "broker": "chakong/v1/broker.proto",
        "cache_admin": "chakong/v1/cache_admin.proto",
        "testing": "chakong/test/v1/testing.proto",
        "health": "grpc/health/v1/health.proto",
    }
    for rel in files.values():
        path = os.path.join(PROTO, rel)
        cmd = ["protoc", "-I", os.path.dirname(path),
               "--python_out=" + outdir, "--grpc_out=" + outdir,
               "--plugin=protoc-gen-grpc=" + GRPC_PLUGIN, path]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {r.stderr}")
    if outdir not in sys.path:
        sys.path.insert(0, outdir)
    ns = types.SimpleNamespace()
    for name in files:
        setattr(ns, name, importlib.import_module(name + "_pb2"))
        setattr(ns, name + "_grpc", importlib.import_module(name + "_pb2_grpc"))
    return ns


def grpc_frame(payload, compressed=False):
    """The gRPC length-prefixed message: flag byte, 4-byte length, payload."""
    return struct.pack(">BI", 1 if compressed else 0, len(payload)) + payload


# ------------------------------------------------------------------- stack

class Stack:
    """A running tests/stack.sh stack: its stack.env as attributes."""

    def __init__(self, directory):
        self.dir = directory
        self.env = read_env(os.path.join(directory, "stack.env"))
        e = self.env
        self.grpc = e["CK_GRPC"]
        self.status = e["CK_STATUS"]
        self.ca, self.cert, self.key = e["CK_CA"], e["CK_CERT"], e["CK_KEY"]
        self.partner_cert = e["CK_PARTNER_CERT"]
        self.partner_key = e["CK_PARTNER_KEY"]
        self.pki = e["CK_PKI"]
        self.pid = int(e["CK_PID"])
        self.conf, self.log = e["CK_CONF"], e["CK_LOG"]
        self.build = e["CK_BUILD"]
        self.exit_file = e.get("CK_EXIT_FILE",
                               os.path.join(directory, "chakongd.exit"))
        host, port = self.grpc.rsplit(":", 1)
        self.grpc_addr = (host, int(port))
        host, port = self.status.rsplit(":", 1)
        self.status_addr = (host, int(port))

    @classmethod
    def up(cls, directory, env=None):
        r = subprocess.run([STACK_SH, "up", directory], capture_output=True,
                           text=True, timeout=600,
                           env=dict(os.environ, **(env or {})))
        if r.returncode != 0:
            raise RuntimeError(
                f"tests/stack.sh up {directory} failed ({r.returncode}):\n"
                f"{r.stdout}\n{r.stderr}")
        return cls(directory)

    def down(self):
        return subprocess.run([STACK_SH, "down", self.dir],
                              capture_output=True, text=True, timeout=120)

    def pki_file(self, name):
        return os.path.join(self.pki, name)

    def log_text(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def alive(self):
        try:
            with open(f"/proc/{self.pid}/cmdline", "rb") as f:
                return self.conf.encode() in f.read()
        except OSError:
            return False

    def exit_status(self, timeout=0.0):
        """The daemon's exit status once the supervisor recorded it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with open(self.exit_file) as f:
                    s = f.read().strip()
                if s:
                    return int(s)
            except OSError:
                pass
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    # -- grpcio

    def channel(self, cert=None, key=None, client_cert=True, options=()):
        import grpc
        with open(self.ca, "rb") as f:
            ca = f.read()
        chain = pkey = None
        if client_cert:
            with open(cert or self.cert, "rb") as f:
                chain = f.read()
            with open(key or self.key, "rb") as f:
                pkey = f.read()
        creds = grpc.ssl_channel_credentials(root_certificates=ca,
                                             private_key=pkey,
                                             certificate_chain=chain)
        # A private subchannel pool: channels with other credentials or to
        # another stack never share a connection with this one.
        opts = [("grpc.use_local_subchannel_pool", 1),
                ("grpc.max_receive_message_length", 64 << 20)]
        opts += list(options)
        return grpc.secure_channel(self.grpc, creds, options=opts)

    # -- status endpoint

    def http_get(self, path, timeout=5):
        """(status code, content type, body text) of a status endpoint GET."""
        url = f"http://{self.status}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return (r.status, r.headers.get("Content-Type", ""),
                        r.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read().decode(
                "utf-8", "replace")

    def status_json(self):
        code, _, body = self.http_get("/status")
        assert code == 200, body
        return json.loads(body)

    def metrics(self):
        from prometheus_client.parser import text_string_to_metric_families
        code, _, body = self.http_get("/metrics")
        assert code == 200, body
        return list(text_string_to_metric_families(body))

    def metric_value(self, sample_name, **labels):
        """Sum of the samples named sample_name whose labels include
        labels (0.0 when there is none)."""
        total = 0.0
        for fam in self.metrics():
            for s in fam.samples:
                if s.name == sample_name and all(
                        s.labels.get(k) == v for k, v in labels.items()):
                    total += s.value
        return total

    # -- raw HTTP/2

    def h2(self, cert=None, key=None, alpn=("h2",)):
        return H2Client(self.grpc_addr, self.ca, cert or self.cert,
                        key or self.key, alpn=alpn)

    def tls_probe(self, cert=None, key=None, alpn=("h2",), client_cert=True):
        return tls_probe(self.grpc_addr, self.ca,
                         (cert or self.cert) if client_cert else None,
                         (key or self.key) if client_cert else None, alpn)


def read_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                line = line[len("export "):]
            k, _, v = line.partition("=")
            parts = shlex.split(v)
            env[k] = parts[0] if parts else ""
    return env


def tls_context(ca, cert, key, alpn):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    ctx.check_hostname = True
    if cert:
        ctx.load_cert_chain(cert, key)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def tls_probe(addr, ca, cert, key, alpn=("h2",), timeout=5):
    """Connect, handshake, send the HTTP/2 preface and SETTINGS, and report
    what the server did. A server that refuses the client either fails the
    handshake (TLS 1.2, or an ALPN refusal) or, under TLS 1.3 where the
    client finishes first, sends an alert instead of any HTTP/2 frame.

    Returns a dict: handshake (bool), alpn, error (str or None),
    h2_bytes (bytes received after the handshake)."""
    out = {"handshake": False, "alpn": None, "error": None, "h2_bytes": b""}
    ctx = tls_context(ca, cert, key, alpn)
    raw = socket.create_connection(addr, timeout=timeout)
    try:
        try:
            s = ctx.wrap_socket(raw, server_hostname="localhost")
        except (ssl.SSLError, OSError) as e:
            out["error"] = f"handshake: {e!r}"
            return out
        out["handshake"] = True
        out["alpn"] = s.selected_alpn_protocol()
        try:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" +
                      b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    out["error"] = "closed"
                    break
                out["h2_bytes"] += chunk
                if len(out["h2_bytes"]) >= 9:
                    break
        except (ssl.SSLError, OSError) as e:
            out["error"] = f"after handshake: {e!r}"
        finally:
            s.close()
    finally:
        raw.close()
    return out


class H2Stream:
    def __init__(self, sid):
        self.id = sid
        self.headers = None      # response headers (dict)
        self.trailers = None     # trailers (dict)
        self.data = b""
        self.ended = False       # END_STREAM received
        self.reset = None        # RST_STREAM error code
        self.t_end = None

    @property
    def done(self):
        return self.ended or self.reset is not None

    @property
    def grpc_status(self):
        """grpc-status from the trailers, or from a Trailers-Only reply."""
        for h in (self.trailers, self.headers):
            if h and "grpc-status" in h:
                return int(h["grpc-status"])
        return None

    @property
    def grpc_message(self):
        for h in (self.trailers, self.headers):
            if h and "grpc-status" in h:
                return h.get("grpc-message", "")
        return None

    def messages(self):
        """The length-prefixed messages of the response body."""
        out, buf = [], self.data
        while len(buf) >= 5:
            flag, n = struct.unpack(">BI", buf[:5])
            out.append((flag, buf[5:5 + n]))
            buf = buf[5 + n:]
        return out


def _graceful_goaway_state_machine():
    """python3-h2 closes the whole connection when a GOAWAY arrives and then
    rejects the frames that finish the streams the GOAWAY let through; a
    graceful server shutdown sends exactly those. This state machine stays
    open after a received GOAWAY (the client opens no new stream then)."""
    import h2.connection as hc
    S, I = hc.ConnectionState, hc.ConnectionInputs

    class Graceful(hc.H2ConnectionStateMachine):
        _transitions = dict(hc.H2ConnectionStateMachine._transitions)
        _transitions[(S.CLIENT_OPEN, I.RECV_GOAWAY)] = (None, S.CLIENT_OPEN)

    return Graceful()


class H2Client:
    """A minimal HTTP/2 gRPC client over TLS (python3-h2) that gives the test
    control of every frame: no client-side deadline, custom flags and
    headers, streams opened before the server's SETTINGS are read."""

    def __init__(self, addr, ca, cert, key, alpn=("h2",), timeout=10):
        import h2.config
        import h2.connection
        ctx = tls_context(ca, cert, key, alpn)
        raw = socket.create_connection(addr, timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.alpn = self.sock.selected_alpn_protocol()
        cfg = h2.config.H2Configuration(client_side=True,
                                        header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.state_machine = _graceful_goaway_state_machine()
        self.conn.initiate_connection()
        self.streams = {}
        self.pending = {}      # stream id -> [body not yet sent, end_stream]
        self.goaway = None
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.conn.close_connection()
            self.flush()
        except Exception:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def start(self, path, body, extra_headers=(), send=True, end_stream=True):
        """Open a stream with a gRPC request; `body` is sent as it is
        (already framed). With send=False the frames wait in the
        connection's buffer for the next flush()."""
        sid = self.conn.get_next_available_stream_id()
        headers = [(":method", "POST"), (":scheme", "https"),
                   (":path", path), (":authority", "localhost"),
                   ("content-type", "application/grpc"), ("te", "trailers")]
        headers += list(extra_headers)
        self.conn.send_headers(sid, headers, end_stream=False)
        self.streams[sid] = H2Stream(sid)
        self.pending[sid] = [body, end_stream]
        self._send_pending()
        if send:
            self.flush()
        return self.streams[sid]

    def _send_pending(self):
        """Send what flow control allows of the request bodies not yet
        sent; the rest waits for the server's WINDOW_UPDATEs."""
        import h2.exceptions
        for sid in list(self.pending):
            body, end = self.pending[sid]
            try:
                while body:
                    n = min(len(body), self.conn.local_flow_control_window(sid),
                            self.conn.max_outbound_frame_size)
                    if n <= 0:
                        break
                    last = n == len(body)
                    self.conn.send_data(sid, body[:n],
                                        end_stream=end and last)
                    body = body[n:]
                if not body:
                    if end and not self.pending[sid][0]:
                        self.conn.end_stream(sid)
                    del self.pending[sid]
                else:
                    self.pending[sid][0] = body
            except (h2.exceptions.StreamClosedError,
                    h2.exceptions.ProtocolError):
                # The server answered (or reset) before reading it all.
                del self.pending[sid]

    def pump(self, until, timeout=10):
        """Read and handle frames until until() is true; False on timeout
        or when the connection ended first."""
        import h2.events as ev
        deadline = time.monotonic() + timeout
        while not until():
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return until()
            self.sock.settimeout(min(left, 1.0))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ssl.SSLError, OSError):
                self.closed = True
                continue
            if not data:
                self.closed = True
                continue
            for e in self.conn.receive_data(data):
                st = self.streams.get(getattr(e, "stream_id", None))
                if isinstance(e, ev.ResponseReceived) and st:
                    st.headers = dict(e.headers)
                elif isinstance(e, ev.TrailersReceived) and st:
                    st.trailers = dict(e.headers)
                elif isinstance(e, ev.DataReceived):
                    if st:
                        st.data += e.data
                    self.conn.acknowledge_received_data(
                        e.flow_controlled_length, e.stream_id)
                elif isinstance(e, ev.StreamEnded) and st:
                    st.ended = True
                    st.t_end = time.monotonic()
                elif isinstance(e, ev.StreamReset) and st:
                    st.reset = e.error_code
                    st.t_end = time.monotonic()
                elif isinstance(e, ev.ConnectionTerminated):
                    self.goaway = e
            if self.pending and self.goaway is None:
                self._send_pending()
            self.flush()
        return True

    def wait(self, streams, timeout=10):
        return self.pump(lambda: all(s.done for s in streams), timeout)

    def call(self, path, body, extra_headers=(), timeout=10):
        st = self.start(path, body, extra_headers)
        self.wait([st], timeout)
        return st


# ------------------------------------------------------------------ daemon

def chakongd_check(build, conf):
    """`chakongd -t -c conf`: (exit status, stdout + stderr)."""
    exe = os.path.join(build, "broker", "chakongd")
    r = subprocess.run([exe, "-t", "-c", conf], capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout + r.stderr


def send_signal(stack, sig):
    assert stack.alive(), "chakongd is not running"
    os.kill(stack.pid, sig)


def mkdtemp(prefix):
    return tempfile.mkdtemp(prefix=prefix)

