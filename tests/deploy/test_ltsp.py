"""The LTSP kiosk and its softphone, run through the tools that consume them.

The server side is LTSP's own `ltsp initrd` on an /etc/ltsp laid out by the
install commands of ltsp/README.md; the client side is LTSP's own `eval_ini`
and `run_parameters` (what a client's `ltsp init` does) on the ltsp.conf inside
the ltsp.img that made, in a mount namespace whose /etc and /usr are overlays,
so what the hooks install is captured and nothing of this machine changes.
Then baresip runs on the configuration the hooks wrote: it finds the PBX by
the names of ltsp/dnsmasq.d/helpdesk.conf (served by a real dnsmasq), registers
with the desk's extension and password to a small registrar here, rings on an
INVITE without answering, and answers when `helpdesk-phone accept` (F9) says
so.  Alongside: the names, port, extensions and codecs agree with dialplans/
and the default configuration.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import re
import secrets
import shlex
import socket
import struct
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from gateway.config import Config
from gateway.desk.calls import dial_string
from tests.deploy.test_deployment_files import ltsp_assignments, parse_dialplan

ROOT = Path(__file__).resolve().parents[2]
LTSP = ROOT / "ltsp"
DIALPLANS = ROOT / "dialplans"
DNSMASQ_CONF = LTSP / "dnsmasq.d" / "helpdesk.conf"
DESK_MAC = "3c:07:71:a2:02:e1"  # the first example desk of ltsp.conf


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def run(argv, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("timeout", 120)
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, (
        f"{argv[:3]} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def in_namespace(script: str, *args: str, users=True, **kwargs) -> subprocess.CompletedProcess:
    """`sh -c script` in a new mount namespace: mounts made there are seen by
    nothing else.  users: in a new user namespace too, as its root (which is
    not root here)."""
    namespaces = ["--user", "--map-root-user", "--mount"] if users else ["--mount"]
    return run(["unshare", "--propagation", "private", *namespaces, "sh", "-ec", script,
                "sh", *args], stdin=subprocess.DEVNULL, **kwargs)


def readme_install_lines() -> list[str]:
    """The `install` commands of ltsp/README.md that fill /etc/ltsp."""
    text = (LTSP / "README.md").read_text()
    lines = []
    for block in re.findall(r"(?ms)^ *```sh\n(.*?)^ *```", text):
        for line in block.splitlines():
            line = line.strip()
            if line.startswith("install ") and "/etc/ltsp" in line:
                lines.append(line)
    return lines


def desk_sections(text: str) -> str:
    """ltsp.conf with the example desks uncommented, as an admin fills them in."""
    start = text.index("# -- desks --\n")
    end = text.index("# -- end of desks --\n")
    block = re.sub(r"(?m)^#", "", text[start:end].split("\n", 1)[1])
    return text[:start] + block + text[end:]


def cpio_extract(image: Path, dest: Path) -> list[str]:
    """Unpack a newc cpio archive (ltsp.img) into dest; the names in it."""
    data = image.read_bytes()
    names, pos = [], 0
    while True:
        assert data[pos:pos + 6] == b"070701", f"not a newc cpio at byte {pos}"
        fields = [int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13)]
        mode, filesize, namesize = fields[1], fields[6], fields[11]
        name = data[pos + 110:pos + 110 + namesize - 1].decode()
        pos = (pos + 110 + namesize + 3) & ~3
        body = data[pos:pos + filesize]
        pos = (pos + filesize + 3) & ~3
        if name == "TRAILER!!!":
            return names
        names.append(name)
        target = dest / name
        kind = mode & 0o170000
        if kind == 0o040000:
            target.mkdir(parents=True, exist_ok=True)
        elif kind == 0o100000:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
            target.chmod(mode & 0o7777)


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def dns_query(port: int, name: str, qtype: int) -> list[tuple[int, bytes, int, bytes]]:
    """One UDP DNS query to 127.0.0.1:port; the answers as (type, rdata, its
    offset, the whole reply)."""
    ident = secrets.randbits(16)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + struct.pack(
        ">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(packet, ("127.0.0.1", port))
        reply = sock.recv(4096)
    rid, flags, _, count = struct.unpack(">HHHH", reply[:8])
    assert rid == ident and flags & 0x000F == 0, f"{name}: rcode {flags & 0xF}"
    pos = 12 + len(question) + 4
    answers = []
    for _ in range(count):
        pos = skip_name(reply, pos)
        rtype, _, _, length = struct.unpack(">HHIH", reply[pos:pos + 10])
        answers.append((rtype, reply[pos + 10:pos + 10 + length], pos + 10, reply))
        pos += 10 + length
    return answers


def skip_name(packet: bytes, pos: int) -> int:
    while packet[pos]:
        if packet[pos] & 0xC0 == 0xC0:
            return pos + 2
        pos += packet[pos] + 1
    return pos + 1


def read_name(packet: bytes, pos: int) -> str:
    labels = []
    while packet[pos]:
        if packet[pos] & 0xC0 == 0xC0:
            pos = struct.unpack(">H", packet[pos:pos + 2])[0] & 0x3FFF
            continue
        labels.append(packet[pos + 1:pos + 1 + packet[pos]].decode())
        pos += packet[pos] + 1
    return ".".join(labels)


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.05)
    return None


# --------------------------------------------------------------------------
# what the files say, and that it agrees with dialplans/ and the config
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def conf() -> dict[str, str]:
    return ltsp_assignments((LTSP / "ltsp.conf").read_text())


def dnsmasq_records() -> dict[str, str]:
    records = {}
    for line in DNSMASQ_CONF.read_text().splitlines():
        if line.startswith("host-record="):
            *names, address = line.split("=", 1)[1].split(",")
            for name in names:
                records[name] = address
    return records


def operator_extensions() -> set[str]:
    """The desks' extensions dialplans/ knows: made by add-operator.sh in its
    README, queue members in queues.conf."""
    readme = (DIALPLANS / "README.md").read_text()
    made = set(re.findall(r"(?m)^sh dialplans/add-operator\.sh (\S+)$", readme))
    members = set(re.findall(r"(?m)^;?member => PJSIP/(\w+),",
                             (DIALPLANS / "queues.conf").read_text()))
    assert made and made == members, (made, members)
    return made


def test_kiosk_url_names_and_port_agree(conf):
    url = urlsplit(conf["HELPDESK_URL"])
    records = dnsmasq_records()
    # the kiosk opens the UI by a name dnsmasq answers, on the UI's port
    assert url.scheme == "http" and url.hostname in records
    assert url.port == int(Config().web_listen.rsplit(":", 1)[1])
    # the softphones find Asterisk by name too, on the same server
    assert conf["HELPDESK_SIP_DOMAIN"] in records
    assert conf["HELPDESK_SIP_DOMAIN"].endswith("." + url.hostname)
    # ... and the clients ask the server that has those names
    assert set(records.values()) == {conf["DNS_SERVER"]}
    assert f"local=/{url.hostname}/" in DNSMASQ_CONF.read_text()
    srv = re.findall(r"(?m)^srv-host=_sip\._udp\.([^,]+),([^,]+),(\d+)$",
                     DNSMASQ_CONF.read_text())
    assert srv == [(conf["HELPDESK_SIP_DOMAIN"], conf["HELPDESK_SIP_DOMAIN"], "5060")]


def test_desks_use_operator_extensions_of_the_dialplan():
    text = desk_sections((LTSP / "ltsp.conf").read_text())
    users = re.findall(r'(?m)^HELPDESK_SIP_USER="([^"]*)"$', text)
    passwords = re.findall(r'(?m)^HELPDESK_SIP_PASSWORD="([^"]*)"$', text)
    known = operator_extensions()
    assert users and set(users) <= known
    # the queue and click-to-call ring the desk's endpoint, the one it registers as
    queues = (DIALPLANS / "queues.conf").read_text()
    for user in users:
        assert f"member => {dial_string(user)}," in queues
    # what an operator's softphone may dial is another operator: the pattern
    # of helpdesk-operators must cover the desks' extensions
    (pattern,) = parse_dialplan((DIALPLANS / "extensions.conf").read_text())["helpdesk-operators"]
    regex = pattern[1:].replace("X", "[0-9]") if pattern.startswith("_") else re.escape(pattern)
    assert all(re.fullmatch(regex, user) for user in users), (pattern, users)
    # no password in the shipped file: a placeholder naming where it comes from
    assert passwords and all(p == "PASSWORD-FROM-ADD-OPERATOR" for p in passwords)
    assert not re.search(r'(?m)^HELPDESK_SIP_PASSWORD=', (LTSP / "ltsp.conf").read_text())


def test_softphone_codecs_follow_pjsip():
    text = (DIALPLANS / "pjsip.conf").read_text()
    template = re.search(r"(?ms)^\[helpdesk-operator-endpoint\]\(!\)\n(.*?)^\[", text).group(1)
    allow = re.search(r"(?m)^allow = ([\w,]+)", template).group(1).split(",")
    names = {"g722": "G722", "ulaw": "PCMU", "alaw": "PCMA"}
    account = (LTSP / "baresip" / "accounts").read_text()
    codecs = re.search(r";audio_codecs=([^;\s]+)", account).group(1).split(",")
    assert [c.split("/")[0] for c in codecs] == [names[a] for a in allow]
    assert ";answermode=manual" in account, "queue calls must not be answered by themselves"


def test_readme_installs_every_file_the_hooks_read():
    text = (LTSP / "ltsp.conf").read_text()
    read = set(re.findall(r"/etc/ltsp/[\w./-]+", text)) - {"/etc/ltsp/ltsp.conf"}
    installed = set()
    for line in readme_install_lines():
        argv = shlex.split(line)
        dest = argv[-1]
        if "-d" in argv:
            installed.update(a for a in argv[1:] if a.startswith("/etc/ltsp"))
            continue
        sources = [a for a in argv[1:-1] if a.startswith("ltsp/")]
        for source in sources:
            assert (ROOT / source).is_file(), source
            installed.add(dest + Path(source).name if dest.endswith("/") else dest)
    assert read <= installed, read - installed
    assert not [p for p in installed if p.endswith(".sh")], "ltsp initrd would refuse it"


def test_triggers_parse_and_name_real_keys(tmp_path):
    triggers = LTSP / "helpdesk-phone.triggers"
    known = set(run(["thd", "--listevents"]).stdout.split())
    for line in triggers.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            event, value, command = line.split(None, 2)
            assert event in known and value == "1"
            assert shlex.split(command)[1] in ("accept", "hangup")
    # thd itself parses the file (and, with no device to read, ends)
    proc = subprocess.run(["thd", "--triggers", str(triggers)], capture_output=True,
                          text=True, timeout=30)
    assert "Unable to parse" not in proc.stdout + proc.stderr, proc.stderr
    bad = tmp_path / "bad.conf"
    bad.write_text("KEY_NO_SUCH_KEY 1 /bin/true\n")
    proc = subprocess.run(["thd", "--triggers", str(bad)], capture_output=True, text=True,
                          timeout=30)
    assert "Unable to parse" in proc.stdout + proc.stderr


def test_autostart_entry():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(LTSP / "helpdesk-phone.desktop")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application"
    assert shlex.split(desktop["Exec"]) == ["/usr/local/bin/helpdesk-phone", "run"]


def test_dnsmasq_conf_next_to_ltsps(tmp_path):
    """dnsmasq accepts ours together with the file `ltsp dnsmasq --dns=1` writes."""
    template = Path("/usr/share/ltsp/server/dnsmasq/ltsp-dnsmasq.conf").read_text()
    assert re.search(r"(?m)^port=0$", template)
    ltsp_conf = tmp_path / "ltsp-dnsmasq.conf"
    ltsp_conf.write_text(re.sub(r"(?m)^port=0$", "#port=0", template))
    proc = run(["/usr/sbin/dnsmasq", "--test", f"--conf-file={ltsp_conf}",
                f"--conf-file={DNSMASQ_CONF}"])
    assert "syntax check OK" in proc.stdout + proc.stderr


# --------------------------------------------------------------------------
# LTSP's tooling: ltsp initrd on the server, the init hooks on a client
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """/etc/ltsp as README.md installs it (desks filled in), and `ltsp initrd`
    on it, unpacked."""
    tmp = tmp_path_factory.mktemp("ltsp")
    etc_ltsp = tmp / "etc-ltsp"
    etc_ltsp.mkdir()
    for line in readme_install_lines():
        # -g sudo: a group this namespace cannot give; the mode stays
        line = line.replace(" -g sudo", "").replace("/etc/ltsp", str(etc_ltsp))
        run(["sh", "-ec", line], cwd=ROOT)
    conf = etc_ltsp / "ltsp.conf"
    password = secrets.token_hex(16)
    # the desk's password, and ALSA's null device for its headset: this
    # machine may have no sound card
    conf.write_text(desk_sections(conf.read_text()).replace(
        "PASSWORD-FROM-ADD-OPERATOR", password, 1).replace(
        'HELPDESK_SIP_USER="101"\n', 'HELPDESK_SIP_USER="101"\nHELPDESK_PHONE_AUDIO="alsa,null"\n'))

    tftp = tmp / "tftp"
    initrd = in_namespace(
        'mount --bind "$1" /etc/ltsp; mount -t tmpfs tmpfs /run; exec ltsp -t "$2" initrd',
        str(etc_ltsp), str(tftp))
    image = tftp / "ltsp" / "ltsp.img"
    unpacked = tmp / "img"
    names = cpio_extract(image, unpacked)
    return {"tmp": tmp, "initrd": initrd, "names": names, "password": password}


@pytest.fixture(scope="module")
def booted(image):
    """The client's init hooks run from that ltsp.img, for the first desk."""
    tmp = image["tmp"]
    # the client: /etc, /usr and /var as overlays (their upper dirs are what
    # the hooks changed), /etc/ltsp from the image, /run/ltsp/client as on a
    # booted client (eval_ini then reads the [clients] section).  Root: the
    # hooks' useradd gives a new uid its home, which no user namespace of an
    # ordinary user can map.
    if os.geteuid() != 0:
        # Never a skip: a run that cannot check the hooks says so as a failure.
        pytest.fail("a client's init hooks (useradd, chown) need root: run the suite as root "
                    "(as .ci/run does)")
    upper = {}
    for top in ("etc", "usr", "var"):
        (tmp / f"{top}-upper").mkdir()
        (tmp / f"{top}-work").mkdir()
        upper[top] = tmp / f"{top}-upper"
    state = tmp / "state"
    client = in_namespace(
        'T=$1; MAC=$2\n'
        'for top in etc usr var; do\n'
        '  mount -t overlay overlay -o "lowerdir=/$top,upperdir=$T/$top-upper,'
        'workdir=$T/$top-work" "/$top"\n'
        'done\n'
        'mount --bind "$T/img/etc/ltsp" /etc/ltsp\n'
        'mount -t tmpfs tmpfs /run; mkdir -p /run/ltsp/client\n'
        'mount -t tmpfs tmpfs /home\n'
        # DEBUG_SHELL=1: an init error ends the script (on stdin's EOF)
        # instead of looping forever, as it does on a client
        'DEBUG_LOG=0; LTSP_DIR=$T/img/usr/share/ltsp; . "$LTSP_DIR/ltsp"\n'
        '_APPLET=init; DEBUG_SHELL=1; MAC_ADDRESS=$MAC; IP_ADDRESS=192.168.67.21; HOSTNAME=\n'
        'eval_ini /etc/ltsp/ltsp.conf\n'
        'run_parameters PRE\n'
        'run_parameters POST\n'
        'set > "$T/state"\n',
        str(tmp), DESK_MAC, users=False)
    variables = {}
    for line in state.read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)='?(.*?)'?$", line)
        if match:
            variables[match.group(1)] = match.group(2)
    return {"etc": upper["etc"], "usr": upper["usr"], "vars": variables,
            "password": image["password"], "client": client}


def test_ltsp_initrd_packs_the_files(image):
    names = set(image["names"])
    for name in ("ltsp.conf", "helpdesk-kiosk", "helpdesk-phone",
                 "helpdesk-phone.d/config", "helpdesk-phone.d/accounts",
                 "helpdesk-phone.desktop", "helpdesk-phone.triggers"):
        assert f"etc/ltsp/{name}" in names, name
    assert "Generated ltsp.img" in image["initrd"].stdout


def test_ltsp_init_gives_the_desk_its_settings(booted, conf):
    variables = booted["vars"]
    # LTSP evaluated [clients] and the desk's MAC section
    assert variables["HOSTNAME"] == "desk101"
    assert variables["HELPDESK_SIP_USER"] == "101"
    assert variables["HELPDESK_URL"] == conf["HELPDESK_URL"]
    assert variables["DNS_SERVER"] == conf["DNS_SERVER"]

    etc, usr = booted["etc"], booted["usr"]
    kiosk = (etc / "default/helpdesk-kiosk").read_text()
    assert kiosk == f'HELPDESK_URL="{conf["HELPDESK_URL"]}"\n'
    for name in ("helpdesk-kiosk", "helpdesk-phone"):
        installed = usr / "local/bin" / name
        assert installed.stat().st_mode & 0o111
        assert installed.read_bytes() == (LTSP / f"{name}.sh").read_bytes()
    session = configparser.ConfigParser(interpolation=None)
    session.read(usr / "share/xsessions/helpdesk-kiosk.desktop")
    assert session["Desktop Entry"]["Exec"] == "/usr/local/bin/helpdesk-kiosk"
    assert (etc / "xdg/autostart/helpdesk-phone.desktop").read_bytes() == (
        LTSP / "helpdesk-phone.desktop").read_bytes()
    assert (etc / "triggerhappy/triggers.d/helpdesk-phone.conf").read_bytes() == (
        LTSP / "helpdesk-phone.triggers").read_bytes()

    settings = etc / "default/helpdesk-phone"
    assert settings.stat().st_mode & 0o777 == 0o600, "the SIP password is the kiosk user's"
    values = dict(re.findall(r'(?m)^(\w+)="(.*)"$', settings.read_text()))
    assert values["HELPDESK_SIP_USER"] == "101"
    assert values["HELPDESK_SIP_PASSWORD"] == booted["password"]
    assert values["HELPDESK_SIP_DOMAIN"] == conf["HELPDESK_SIP_DOMAIN"]
    assert values["HELPDESK_PHONE_AUDIO"] == "alsa,null"  # the desk's, over [clients]'
    # the kiosk user, made by the PRE_INIT hook, in the audio group for the headset
    passwd = (etc / "passwd").read_text()
    kiosk_user = re.search(r"(?m)^helpdesk-kiosk:x:(\d+):\d+:helpdesk kiosk:"
                           r"/run/home/helpdesk-kiosk:/bin/bash$", passwd)
    assert kiosk_user
    assert settings.stat().st_uid == int(kiosk_user.group(1))
    assert re.search(r"(?m)^audio:x:\d+:.*\bhelpdesk-kiosk\b", (etc / "group").read_text())


# --------------------------------------------------------------------------
# baresip on what the hooks wrote
# --------------------------------------------------------------------------

class Registrar:
    """Just enough of a SIP registrar and caller: digest-challenges REGISTER,
    checks the answer with the desk's password, and sends an INVITE."""

    def __init__(self, realm="asterisk"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.realm = realm
        self.nonce = secrets.token_hex(8)
        self.received: list[tuple[str, dict[str, str], str, tuple]] = []

    def close(self):
        self.sock.close()

    @staticmethod
    def parse(data: bytes):
        head, _, body = data.decode().partition("\r\n\r\n")
        first, *lines = head.split("\r\n")
        headers = {}
        for line in lines:
            key, _, value = line.partition(":")
            headers.setdefault(key.strip().lower(), value.strip())
        return first, headers, body

    def recv(self, timeout=20.0, want=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            first, headers, body = self.parse(data)
            self.received.append((first, headers, body, peer))
            if want is None or first.startswith(want) or want in first:
                return first, headers, body, peer
        return None

    def reply(self, headers, peer, status, extra=""):
        to = headers["to"]
        if status.startswith("200") and ";tag=" not in to:
            to += ";tag=" + secrets.token_hex(4)
        message = (f"SIP/2.0 {status}\r\nVia: {headers['via']}\r\nFrom: {headers['from']}\r\n"
                   f"To: {to}\r\nCall-ID: {headers['call-id']}\r\nCSeq: {headers['cseq']}\r\n"
                   f"{extra}Content-Length: 0\r\n\r\n")
        self.sock.sendto(message.encode(), peer)

    def digest_ok(self, authorization: str, password: str, method="REGISTER") -> bool:
        fields = dict(re.findall(r'(\w+)="?([^",]*)"?', authorization))
        ha1 = hashlib.md5(f"{fields['username']}:{self.realm}:{password}".encode()).hexdigest()
        ha2 = hashlib.md5(f"{method}:{fields['uri']}".encode()).hexdigest()
        if "qop" in fields:
            expected = hashlib.md5(f"{ha1}:{fields['nonce']}:{fields['nc']}:{fields['cnonce']}:"
                                   f"{fields['qop']}:{ha2}".encode()).hexdigest()
        else:
            expected = hashlib.md5(f"{ha1}:{fields['nonce']}:{ha2}".encode()).hexdigest()
        return fields["response"] == expected and fields["nonce"] == self.nonce

    def invite(self, contact_peer, to_uri: str) -> dict[str, str]:
        call_id = secrets.token_hex(8)
        from_ = (f'"Budi Santoso" <sip:+6281234567890@127.0.0.1:{self.port}>'
                 f";tag={secrets.token_hex(4)}")
        sdp = ("v=0\r\no=asterisk 1 1 IN IP4 127.0.0.1\r\ns=call\r\nc=IN IP4 127.0.0.1\r\n"
               f"t=0 0\r\nm=audio {free_port(socket.SOCK_DGRAM)} RTP/AVP 0 8\r\n"
               "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n")
        message = (f"INVITE {to_uri} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(6)}"
                   ";rport\r\n"
                   "Max-Forwards: 70\r\n"
                   f"From: {from_}\r\n"
                   f"To: <{to_uri}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
                   f"Contact: <sip:asterisk@127.0.0.1:{self.port}>\r\n"
                   "Content-Type: application/sdp\r\n"
                   f"Content-Length: {len(sdp)}\r\n\r\n{sdp}")
        self.sock.sendto(message.encode(), contact_peer)
        return {"from": from_, "call-id": call_id, "uri": to_uri}

    def ack(self, call: dict[str, str], response_headers, peer) -> None:
        message = (f"ACK {call['uri']} SIP/2.0\r\n"
                   f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(6)}"
                   "\r\nMax-Forwards: 70\r\n"
                   f"From: {call['from']}\r\nTo: {response_headers['to']}\r\n"
                   f"Call-ID: {call['call-id']}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n")
        self.sock.sendto(message.encode(), peer)


@pytest.fixture
def dns_server(tmp_path):
    """dnsmasq on ltsp/dnsmasq.d/helpdesk.conf, with the server's address made
    this host's and SIP's SRV port the test registrar's (set by the test)."""
    procs = []

    def start(sip_port: int) -> int:
        port = free_port(socket.SOCK_DGRAM)
        conf = tmp_path / "helpdesk-dnsmasq.conf"
        text = DNSMASQ_CONF.read_text().replace("192.168.67.1", "127.0.0.1")
        text = re.sub(r"(?m)^(srv-host=_sip\._udp\.[^,]+,[^,]+,)5060$", rf"\g<1>{sip_port}", text)
        conf.write_text(text)
        argv = ["/usr/sbin/dnsmasq", "--keep-in-foreground", f"--conf-file={conf}",
                f"--port={port}", "--listen-address=127.0.0.1", "--bind-interfaces",
                "--no-resolv", "--no-hosts", "--pid-file=", "--log-facility=-"]
        if os.geteuid() == 0:
            argv.append("--user=root")
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(proc)
        assert wait_for(lambda: proc.poll() is not None or _answers(port)), "dnsmasq did not start"
        assert proc.poll() is None, proc.stderr.read().decode()
        return port

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        dns_query(port, "helpdesk.lan", 1)
        return True
    except OSError:
        return False


def test_dnsmasq_answers_the_names(dns_server, conf):
    port = dns_server(5070)
    url_host = urlsplit(conf["HELPDESK_URL"]).hostname
    for name in (url_host, conf["HELPDESK_SIP_DOMAIN"]):
        ((rtype, rdata, _, _),) = dns_query(port, name, 1)
        assert rtype == 1 and socket.inet_ntoa(rdata) == "127.0.0.1", name
    ((rtype, rdata, offset, reply),) = dns_query(
        port, "_sip._udp." + conf["HELPDESK_SIP_DOMAIN"], 33)
    _, _, srv_port = struct.unpack(">HHH", rdata[:6])
    assert rtype == 33 and srv_port == 5070
    assert read_name(reply, offset + 6) == conf["HELPDESK_SIP_DOMAIN"]


def test_baresip_registers_rings_and_answers_on_f9(booted, dns_server, tmp_path):
    etc, usr = booted["etc"], booted["usr"]
    registrar = Registrar()
    dns_port = dns_server(registrar.port)
    # the templates the hooks installed, told to ask our dnsmasq
    templates = tmp_path / "templates"
    templates.mkdir()
    for name in ("config", "accounts"):
        (templates / name).write_text((etc / "helpdesk-phone" / name).read_text())
    with open(templates / "config", "a") as f:
        f.write(f"dns_server\t\t127.0.0.1:{dns_port}\n")
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), XDG_RUNTIME_DIR=str(tmp_path),
               HELPDESK_PHONE_CONF=str(etc / "default/helpdesk-phone"),
               HELPDESK_PHONE_TEMPLATES=str(templates),
               HELPDESK_PHONE_CONTROL=f"127.0.0.1:{free_port()}")
    phone = str(usr / "local/bin/helpdesk-phone")
    log = tmp_path / "phone.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([phone, "run"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        # REGISTER for the desk's extension, found through pbx.helpdesk.lan's SRV record
        got = registrar.recv(want="REGISTER")
        assert got, "no REGISTER from baresip"
        first, headers, _, peer = got
        assert first.startswith("REGISTER sip:pbx.helpdesk.lan")
        assert re.search(r"<sip:101@pbx\.helpdesk\.lan", headers["to"])
        registrar.reply(headers, peer, "401 Unauthorized",
                        f'WWW-Authenticate: Digest realm="{registrar.realm}", '
                        f'nonce="{registrar.nonce}", algorithm=MD5\r\n')
        got = registrar.recv(want="REGISTER")
        assert got, "baresip did not answer the challenge"
        first, headers, _, peer = got
        assert registrar.digest_ok(headers["authorization"], booted["password"]), (
            "the digest is not made of the desk's extension and password")
        contact = re.search(r"<(sip:[^>]+)>", headers["contact"]).group(1)
        registrar.reply(headers, peer, "200 OK",
                        f"Contact: {headers['contact']};expires=300\r\nExpires: 300\r\n")

        # a queue call: it rings, and is not answered by itself
        call = registrar.invite(peer, contact.split(";")[0])
        assert registrar.recv(want="SIP/2.0 180"), "the phone did not ring"
        assert not registrar.recv(timeout=2.0, want="SIP/2.0 200"), "answered without F9"
        # F9 (triggerhappy runs this): answered
        run([phone, "accept"], env=env)
        got = registrar.recv(want="SIP/2.0 200")
        assert got, "not answered after accept:\n" + log.read_text()[-3000:]
        assert "INVITE" in got[1]["cseq"]
        registrar.ack(call, got[1], got[3])
        # F10: the phone ends the call
        run([phone, "hangup"], env=env)
        got = registrar.recv(want="BYE ")
        assert got, "no BYE after hangup"
        assert got[1]["call-id"] == call["call-id"]
        registrar.reply(got[1], got[3], "200 OK")
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # baresip waits for its BYE to be answered
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)
        registrar.close()
