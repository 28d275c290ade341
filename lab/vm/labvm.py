#!/usr/bin/env python3
"""Local test lab: QEMU q35 virtual machines under TCG that look like the servers.

Subcommands: build, start NAME, stop NAME|--all, status, ssh NAME [cmd...].
See lab/vm/README.md for the device map and the image recipe.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
RECIPE = HERE / "recipe"
BUILD_SCRIPT = HERE / "build-image.sh"
FINALIZE_SCRIPT = RECIPE / "finalize-guest.sh"

CACHE = REPO / ".cache" / "lab"
IMAGES = CACHE / "images"
RUN = CACHE / "run"
WORK = CACHE / "build"
SSH_KEY = CACHE / "ssh" / "id_ed25519"

QEMU = "qemu-system-x86_64"
QEMU_IMG = "qemu-img"

# Bumped when the way the image is finished (first boot, checks) changes.
IMAGE_FORMAT = "lab-image-v1"

# proofs: a second trading VM with blank disks for the storage, lifecycle and network proofs, so that they run
# beside the Molecule scenario on the first (inventories/lab/proofs.yml). scratch, scratch2: VMs for
# development work beside the others (not in any inventory).
VMS: dict[str, int] = {"trading": 2222, "workstation": 2223, "scratch": 2224, "scratch2": 2225, "proofs": 2226}

MGMT_MAC = "52:54:00:4c:ab:01"
SPARE_NIC_MACS = ("52:54:00:4c:ab:11", "52:54:00:4c:ab:12")
DATA_DISKS = 8
DATA_DISK_SIZE = "64G"
NVME_DISKS = 3
NVME_DISK_SIZE = "32G"
# Zero writes (an md RAID1 resync of blank members, mkfs, wipefs) become qcow2
# zero clusters instead of allocated space: without this one resync of the
# 32G NVMe mirror filled 32 GiB of the host's disk.
ZERO_AWARE = "discard=unmap,detect-zeroes=unmap"
# Slot of the spare passthrough candidate: function 0 no driver claims,
# function 1 an Intel HDA controller claimed by snd_hda_intel.
SPARE_SLOT = 0x10
# Slot of a PCIe-to-PCI bridge: the devices behind it share the bridge's
# requester ID, so one IOMMU group holds the bridge, a virtio-rng (01:01.0)
# and a pvpanic (01:02.0) - the case where passing one through must be refused.
SHARED_GROUP_BRIDGE_SLOT = 0x11

FIRST_BOOT_APPEND = "root=LABEL=labroot ro console=ttyS0,115200 net.ifnames=0"
SSH_WAIT_S = 420
STOP_WAIT_S = 60


class LabError(Exception):
    """A failure with a message meant for the user."""


def data_disk_serial(index: int) -> str:
    """Serial number of data-lake disk INDEX (0-based)."""
    return f"LABDL{index:03d}"


def data_disk_wwn(index: int) -> str:
    """NAA-5 world wide name of data-lake disk INDEX (0-based)."""
    return f"0x5000c50000ab{index + 1:04x}"


def nvme_serial(index: int) -> str:
    """Serial number of NVMe controller INDEX (0-based)."""
    return f"LABNVME{index:03d}"


def log(msg: str) -> None:
    print(f"labvm: {msg}", flush=True)


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise LabError(f"missing host tools: {', '.join(missing)} (Debian: apt-get install qemu-system-x86 qemu-utils)")


# --------------------------------------------------------------------------- ssh


def ssh_argv(port: int, *command: str, connect_timeout: int = 10) -> list[str]:
    return [
        "ssh",
        "-i", str(SSH_KEY),
        "-p", str(port),
        "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes",
        "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null",
        "-o", "LogLevel=ERROR",
        "-o", f"ConnectTimeout={connect_timeout}",
        "root@127.0.0.1",
        *command,
    ]  # fmt: skip


def ssh_run(
    port: int, *command: str, stdin: bytes | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(ssh_argv(port, *command), input=stdin, timeout=timeout, check=False)


def ensure_ssh_key() -> None:
    if SSH_KEY.exists() and SSH_KEY.with_suffix(".pub").exists():
        return
    SSH_KEY.parent.mkdir(parents=True, exist_ok=True)
    SSH_KEY.unlink(missing_ok=True)
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "onprem-lab", "-f", str(SSH_KEY)],
        check=True,
    )
    log(f"generated SSH key {SSH_KEY}")


def wait_for_ssh(port: int, qemu: Process, console: Path, timeout: float = SSH_WAIT_S) -> float:
    """Wait until `ssh root@127.0.0.1 -p PORT true` works; return the seconds it took."""
    start = time.monotonic()
    while True:
        if not qemu.alive():
            raise LabError(f"QEMU exited before SSH came up; console log: {console}\n{tail(console)}")
        try:
            probe = subprocess.run(
                ssh_argv(port, "true", connect_timeout=5), capture_output=True, timeout=20, check=False
            )
            if probe.returncode == 0:
                return time.monotonic() - start
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() - start > timeout:
            raise LabError(f"no SSH on 127.0.0.1:{port} after {timeout:.0f}s; console log: {console}\n{tail(console)}")
        time.sleep(2)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no console output)"


# ----------------------------------------------------------------------- process


@dataclass
class Process:
    """A QEMU process known by pid (daemonized) or Popen handle (build boots)."""

    pid: int
    popen: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # A zombie or a reused pid is not our VM.
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return False
        return b"qemu-system" in cmdline and stat.split(")")[-1].split()[0] != "Z"

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return True
            time.sleep(0.5)
        return not self.alive()

    def terminate(self) -> None:
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
            if self.wait(grace):
                return
        raise LabError(f"QEMU pid {self.pid} did not exit")


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def ephemeral_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------- image


def recipe_files() -> list[Path]:
    files = [BUILD_SCRIPT, *sorted(p for p in RECIPE.rglob("*") if p.is_file())]
    return files


def recipe_hash() -> str:
    """sha256 over the image recipe: build script, recipe/ tree (packages, files) and the baked-in key."""
    digest = hashlib.sha256(IMAGE_FORMAT.encode())
    for path in recipe_files():
        digest.update(str(path.relative_to(HERE)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    digest.update(SSH_KEY.with_suffix(".pub").read_bytes())
    return digest.hexdigest()


def image_path() -> Path:
    return IMAGES / f"lab-{recipe_hash()[:12]}.qcow2"


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build_boot_argv(raw: Path, port: int, console: Path, boot_dir: Path | None) -> list[str]:
    """QEMU for the build boots: root disk and management NIC only."""
    argv = [
        QEMU, "-name", "lab-build", "-accel", "tcg",
        "-machine", "q35,kernel-irqchip=split", "-device", "intel-iommu,intremap=on",
        "-cpu", "max", "-smp", "2", "-m", "2048",
        "-display", "none", "-serial", f"file:{console}", "-monitor", "none",
        "-drive", f"file={raw},if=none,id=root,format=raw,discard=unmap",
        "-device", "virtio-blk-pci,drive=root,bootindex=1",
        "-netdev", f"user,id=mgmt,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", f"virtio-net-pci,netdev=mgmt,mac={MGMT_MAC}",
    ]  # fmt: skip
    if boot_dir is not None:
        argv += [
            "-kernel", str(boot_dir / "vmlinuz"),
            "-initrd", str(boot_dir / "initrd.img"),
            "-append", FIRST_BOOT_APPEND,
        ]  # fmt: skip
    return argv


def build_boot(raw: Path, work: Path, label: str, boot_dir: Path | None) -> tuple[int, Process, Path]:
    port = ephemeral_port()
    console = work / f"console-{label}.log"
    console.unlink(missing_ok=True)
    popen = subprocess.Popen(build_boot_argv(raw, port, console, boot_dir), stdin=subprocess.DEVNULL)
    qemu = Process(popen.pid, popen)
    took = wait_for_ssh(port, qemu, console)
    log(f"{label} boot: SSH after {took:.1f}s")
    return port, qemu, console


def power_off(port: int, qemu: Process) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        ssh_run(port, "systemctl", "poweroff", "--no-block", timeout=30)
    if not qemu.wait(STOP_WAIT_S):
        log("guest did not power off in time; terminating QEMU")
        qemu.terminate()


# Free space the lab needs on the filesystem holding .cache/lab: the image build
# writes a raw root filesystem (about 3 GiB used) and its qcow2 copy (1.4 GiB);
# a VM's overlays and blank disks stay under a few hundred MiB with ZERO_AWARE.
BUILD_FREE_GIB = 6
START_FREE_GIB = 2


def require_free_space(gib: int, what: str) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    st = os.statvfs(CACHE)
    free = st.f_bavail * st.f_frsize / 2**30
    if free < gib:
        raise LabError(f"{what} needs about {gib} GiB free under {CACHE}, only {free:.1f} GiB are (df -h {CACHE})")


def build(force: bool = False) -> Path:
    """Build the base image unless one for the current recipe exists; return its path."""
    require_tools(QEMU, QEMU_IMG)
    ensure_ssh_key()
    with build_lock():
        target = image_path()
        if target.exists() and not force:
            log(f"recipe unchanged, using cached image {target.relative_to(REPO)}")
            return target
        if os.geteuid() != 0:
            raise LabError("building the image needs root (losetup, mount, debootstrap)")
        require_free_space(BUILD_FREE_GIB, "building the lab image")
        started = time.monotonic()
        work = WORK / target.stem
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        raw = work / "disk.raw"
        boot_dir = work / "boot"
        log(f"building {target.relative_to(REPO)} (recipe changed or no image)")
        result = subprocess.run(["bash", str(BUILD_SCRIPT), str(raw), str(boot_dir), str(SSH_KEY.with_suffix(".pub"))])
        if result.returncode != 0:
            raise LabError(f"root filesystem stage failed (exit {result.returncode})")
        log(f"root filesystem stage: {time.monotonic() - started:.0f}s")

        # First boot: kernel from outside, GRUB installed from inside.
        port, qemu, console = build_boot(raw, work, "first", boot_dir)
        finalize = ssh_run(port, "bash", "-s", stdin=FINALIZE_SCRIPT.read_bytes(), timeout=900)
        if finalize.returncode != 0:
            qemu.terminate()
            raise LabError(f"guest finalize failed (exit {finalize.returncode}); console log: {console}")
        power_off(port, qemu)

        # Second boot proves the disk boots by itself and GRUB passes the lab cmdline.
        port, qemu, console = build_boot(raw, work, "grub", None)
        check = subprocess.run(
            ssh_argv(port, "cat /proc/cmdline && modprobe zfs && zpool version"),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        power_off(port, qemu)
        print(check.stdout, end="")
        if check.returncode != 0 or "intel_iommu=on" not in check.stdout or "BOOT_IMAGE=" not in check.stdout:
            raise LabError(f"image self-check failed: {check.stdout}{check.stderr}")

        IMAGES.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        subprocess.run([QEMU_IMG, "convert", "-O", "qcow2", str(raw), str(partial)], check=True)
        partial.rename(target)
        for old in IMAGES.glob("lab-*.qcow2"):
            if old != target:
                old.unlink()
                log(f"removed old image {old.name}")
        shutil.rmtree(work, ignore_errors=True)
        log(f"image built in {time.monotonic() - started:.0f}s: {target.relative_to(REPO)}")
        return target


# --------------------------------------------------------------------------- vms


def run_dir(name: str) -> Path:
    return RUN / name


def running(name: str) -> Process | None:
    pidfile = run_dir(name) / "qemu.pid"
    try:
        proc = Process(int(pidfile.read_text().strip()))
    except (OSError, ValueError):
        return None
    return proc if proc.alive() else None


def qemu_img_create(path: Path, size: str, backing: Path | None = None) -> None:
    argv = [QEMU_IMG, "create", "-q", "-f", "qcow2"]
    if backing is not None:
        argv += ["-F", "qcow2", "-b", str(backing)]
    argv += [str(path)]
    if backing is None:
        argv.append(size)
    subprocess.run(argv, check=True)


def vm_argv(name: str, port: int, memory: int, smp: int) -> list[str]:
    """The QEMU command line of lab VM NAME; see README.md for the resulting device map."""
    rd = run_dir(name)
    argv = [
        QEMU, "-name", f"lab-{name}", "-accel", "tcg",
        "-machine", "q35,kernel-irqchip=split", "-device", "intel-iommu,intremap=on",
        "-cpu", "max", "-smp", str(smp), "-m", str(memory),
        "-display", "none", "-daemonize", "-pidfile", str(rd / "qemu.pid"),
        "-serial", f"file:{rd / 'console.log'}",
        "-monitor", f"unix:{rd / 'monitor.sock'},server,nowait",
        "-drive", f"file={rd / 'root.qcow2'},if=none,id=root,format=qcow2,discard=unmap",
        "-device", "virtio-blk-pci,drive=root,bootindex=1",
        "-netdev", f"user,id=mgmt,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-device", f"virtio-net-pci,netdev=mgmt,mac={MGMT_MAC}",
        "-device", "virtio-scsi-pci,id=hba0",
    ]  # fmt: skip
    for i in range(DATA_DISKS):
        argv += [
            "-drive", f"file={rd / f'data{i}.qcow2'},if=none,id=data{i},format=qcow2,{ZERO_AWARE}",
            "-device",
            f"scsi-hd,bus=hba0.0,channel=0,scsi-id={i},lun=0,drive=data{i},"
            f"serial={data_disk_serial(i)},wwn={data_disk_wwn(i)},rotation_rate=7200",
        ]  # fmt: skip
    for i in range(NVME_DISKS):
        argv += [
            "-drive", f"file={rd / f'nvme{i}.qcow2'},if=none,id=nvme{i},format=qcow2,{ZERO_AWARE}",
            "-device", f"nvme,drive=nvme{i},serial={nvme_serial(i)}",
        ]  # fmt: skip
    # Two spare NICs cabled to each other through a QEMU hub.
    for i, mac in enumerate(SPARE_NIC_MACS):
        argv += [
            "-netdev", f"hubport,id=spare{i},hubid=1",
            "-device", f"e1000e,netdev=spare{i},mac={mac}",
        ]  # fmt: skip
    argv += [
        "-audiodev", "none,id=snd0",
        "-device", f"pci-testdev,bus=pcie.0,addr={SPARE_SLOT:#x}.0,multifunction=on",
        "-device", f"intel-hda,id=hda0,bus=pcie.0,addr={SPARE_SLOT:#x}.1",
        "-device", "hda-duplex,bus=hda0.0,audiodev=snd0",
        "-device", f"pcie-pci-bridge,id=pcibr1,bus=pcie.0,addr={SHARED_GROUP_BRIDGE_SLOT:#x}.0",
        "-device", "virtio-rng-pci,bus=pcibr1,addr=0x1",
        "-device", "pvpanic-pci,bus=pcibr1,addr=0x2",
    ]  # fmt: skip
    return argv


def start(name: str, memory: int, smp: int) -> None:
    port = VMS[name]
    if running(name):
        log(f"{name} is already running (ssh port {port})")
        return
    require_tools(QEMU, QEMU_IMG, "ssh")
    if not port_free(port):
        raise LabError(f"port 127.0.0.1:{port} for {name} is busy (another process listens there)")
    base = build()
    rd = run_dir(name)
    shutil.rmtree(rd, ignore_errors=True)
    require_free_space(START_FREE_GIB, f"starting {name}")
    rd.mkdir(parents=True)
    qemu_img_create(rd / "root.qcow2", "", backing=base)
    for i in range(DATA_DISKS):
        qemu_img_create(rd / f"data{i}.qcow2", DATA_DISK_SIZE)
    for i in range(NVME_DISKS):
        qemu_img_create(rd / f"nvme{i}.qcow2", NVME_DISK_SIZE)
    argv = vm_argv(name, port, memory, smp)
    (rd / "qemu.argv").write_text("\n".join(argv) + "\n")
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LabError(f"QEMU failed to start {name}: {result.stderr.strip()}")
    qemu = running(name)
    if qemu is None:
        raise LabError(f"QEMU for {name} exited right after start; console log: {rd / 'console.log'}")
    try:
        took = wait_for_ssh(port, qemu, rd / "console.log")
    except LabError:
        qemu.terminate()
        raise
    log(f"{name} up: boot-to-SSH {took:.1f}s (ssh -p {port} root@127.0.0.1)")


def stop(name: str) -> None:
    qemu = running(name)
    if qemu is None:
        log(f"{name} is not running")
        return
    port = VMS[name]
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(
            ssh_argv(port, "systemctl", "poweroff", "--no-block"), capture_output=True, timeout=30, check=False
        )
    if qemu.wait(STOP_WAIT_S):
        log(f"{name} powered off")
    else:
        log(f"{name} did not power off within {STOP_WAIT_S}s; killing QEMU")
        qemu.terminate()
    (run_dir(name) / "qemu.pid").unlink(missing_ok=True)


def status() -> None:
    base = image_path() if SSH_KEY.with_suffix(".pub").exists() else None
    if base is not None:
        state = "built" if base.exists() else "not built (recipe changed or new)"
        print(f"image: {base.relative_to(REPO)} {state}")
    for name, port in VMS.items():
        qemu = running(name)
        if qemu is None:
            print(f"{name}: stopped (ssh port {port})")
            continue
        age = time.time() - (run_dir(name) / "qemu.pid").stat().st_mtime
        print(f"{name}: running pid {qemu.pid}, ssh -p {port} root@127.0.0.1, up ~{age:.0f}s")


def ssh(name: str, command: Sequence[str]) -> None:
    if running(name) is None:
        raise LabError(f"{name} is not running (labvm.py start {name})")
    argv = ssh_argv(VMS[name], *command)
    os.execvp(argv[0], argv)


# --------------------------------------------------------------------------- cli


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="labvm.py", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_build = sub.add_parser("build", help="build the base image if its recipe changed")
    p_build.add_argument("--force", action="store_true", help="rebuild even if a cached image exists")
    p_start = sub.add_parser("start", help="start a fresh VM from the base image")
    p_start.add_argument("name", choices=sorted(VMS))
    p_start.add_argument("--memory", type=int, default=4096, help="MiB of guest memory (default 4096)")
    p_start.add_argument("--smp", type=int, default=2, help="virtual CPUs (default 2)")
    p_stop = sub.add_parser("stop", help="power a VM off (kill it after a timeout)")
    group = p_stop.add_mutually_exclusive_group(required=True)
    group.add_argument("name", nargs="?", choices=sorted(VMS))
    group.add_argument("--all", action="store_true")
    sub.add_parser("status", help="show the image and the VMs")
    p_ssh = sub.add_parser("ssh", help="ssh into a running VM")
    p_ssh.add_argument("name", choices=sorted(VMS))
    p_ssh.add_argument("command", nargs=argparse.REMAINDER)
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        if args.cmd == "build":
            build(force=args.force)
            log(f"build: {time.monotonic() - started:.1f}s")
        elif args.cmd == "start":
            start(args.name, args.memory, args.smp)
        elif args.cmd == "stop":
            for name in sorted(VMS) if args.all else [args.name]:
                stop(name)
        elif args.cmd == "status":
            status()
        elif args.cmd == "ssh":
            ssh(args.name, args.command)
    except LabError as err:
        print(f"labvm: error: {err}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as err:
        print(f"labvm: error: command failed (exit {err.returncode}): {' '.join(map(str, err.cmd))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
