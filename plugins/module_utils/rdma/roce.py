#!/bin/sh
# Copyright: onprem.gpu_server maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# onprem-roce: bring RDMA over Converged Ethernet links to the state in a JSON configuration
# (default /etc/onprem/roce.json) and report what it changed, as JSON on stdout.
#
#   onprem-roce apply [--dry-run]   create soft-RoCE links, set the RDMA-CM RoCE mode and ToS,
#                                   PFC / DSCP trust (iproute2 dcb) and ECN (mlx5 sysfs) where the
#                                   NIC supports them; --dry-run only lists what apply would change
#   onprem-roce show                the RDMA links, their net devices and RoCE v2 GID indexes
#   onprem-roce check-config        validate the configuration only
#
# Everything it sets is lost at reboot (soft-RoCE links, configfs, DCB tables of most drivers), so
# the role runs `apply` from a oneshot unit at every boot, and from Ansible on every run.
#
# The roce role copies this file, unchanged, to roce_tool_path (/usr/local/sbin/onprem-roce). The
# host has neither the collection nor any package beyond python3, so the program is one file that
# imports the standard library only.
#
# The shell reads only the next line and hands the file to /usr/bin/python3; to Python that line is
# a string expression and does nothing.
"exec" "/usr/bin/python3" "-I" "$0" "$@"  # fmt: skip

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type alias only: subscripted builtins need Python 3.9+ at run time
    # argv -> (exit status, stdout, stderr); tests give the Host one that answers with recorded output.
    Runner = Callable[[list[str]], tuple[int, str, str]]

DEFAULT_CONFIG = "/etc/onprem/roce.json"
ROCE_MODES = ("IB/RoCE v1", "RoCE v2")
LINK_KEYS = {"mac", "netdev", "rdma_device", "soft_roce", "roce_mode", "tos", "pfc_priority", "dscp_trust", "ecn"}
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2


class ConfigError(Exception):
    """The configuration file is missing, unreadable or invalid."""


class Host:
    """The host's state and tools, rooted at SYSFS so that tests can give it a tree of their own."""

    def __init__(self, sysfs: str = "/sys", run: Runner | None = None) -> None:
        self.sysfs = sysfs
        self.configfs = os.path.join(sysfs, "kernel", "config")
        self._run = run or self._subprocess

    @staticmethod
    def _subprocess(argv: list[str]) -> tuple[int, str, str]:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, env={**os.environ, "LC_ALL": "C"})
        return proc.returncode, proc.stdout, proc.stderr

    def run(self, argv: list[str], check: bool = True) -> tuple[int, str, str]:
        """Run a tool; raise RuntimeError naming it when it fails and ``check`` is set."""
        rc, out, err = self._run(argv)
        if check and rc != 0:
            raise RuntimeError(f"{' '.join(argv)} failed (exit {rc}): {(err or out).strip()}")
        return rc, out, err

    def read(self, *parts: str) -> str | None:
        """The stripped text of a sysfs/configfs file, or None when it cannot be read."""
        try:
            with open(os.path.join(*parts), encoding="ascii") as handle:
                return handle.read().strip()
        except OSError:
            return None

    def write(self, value: object, *parts: str) -> None:
        """Write one value, newline-terminated, as sysfs and configfs expect."""
        with open(os.path.join(*parts), "w", encoding="ascii") as handle:
            handle.write(f"{value}\n")

    def make_group(self, path: str) -> None:
        """mkdir in configfs: the kernel fills the group with the device's ports and settings."""
        os.mkdir(path)

    def netdev_by_mac(self, mac: str) -> str | None:
        """The physical net device with MAC; VLANs and bridges share it, so prefer one with a device link."""
        base = os.path.join(self.sysfs, "class", "net")
        names = sorted(os.listdir(base)) if os.path.isdir(base) else []
        hits = [n for n in names if (self.read(base, n, "address") or "").lower() == mac.lower()]
        physical = [n for n in hits if os.path.exists(os.path.join(base, n, "device"))]
        found = physical or hits
        return found[0] if found else None

    def rdma_links(self) -> dict[str, dict[str, Any]]:
        """{rdma device: {port, netdev, state}} from `rdma -j link show`."""
        rc, out, _err = self.run(["rdma", "-j", "link", "show"], check=False)
        links: dict[str, dict[str, Any]] = {}
        if rc == 0 and out.strip():
            for entry in json.loads(out):
                links[entry["ifname"]] = {
                    "port": entry.get("port", 1),
                    "netdev": entry.get("netdev"),
                    "state": entry.get("state"),
                }
        return links

    def gids(self, device: str, port: int) -> list[dict[str, Any]]:
        """[{index, gid, type, netdev}] of the port's populated GID table entries."""
        base = os.path.join(self.sysfs, "class", "infiniband", device, "ports", str(port))
        names = os.listdir(os.path.join(base, "gids")) if os.path.isdir(os.path.join(base, "gids")) else []
        table: list[dict[str, Any]] = []
        for name in sorted(names, key=int):
            gid = self.read(base, "gids", name)
            kind = self.read(base, "gid_attrs", "types", name)
            # Empty entries read as zeros, and their attributes cannot be read (EINVAL).
            if not gid or kind is None or set(gid.replace(":", "")) == {"0"}:
                continue
            netdev = self.read(base, "gid_attrs", "ndevs", name)
            table.append({"index": int(name), "gid": gid, "type": kind, "netdev": netdev})
        return table


def load_config(path: str) -> list[dict[str, Any]]:
    """Read and validate the JSON configuration at ``path``; return its links."""
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    links = config.get("links")
    if not isinstance(links, list):
        raise ConfigError(f"{path}: 'links' must be a list")
    for index, link in enumerate(links):
        where = f"{path}: links[{index}]"
        if not isinstance(link, dict):
            raise ConfigError(f"{where} must be an object")
        unknown = sorted(set(link) - LINK_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown keys {', '.join(unknown)}")
        if not link.get("mac") and not link.get("netdev"):
            raise ConfigError(f"{where}: give 'mac' or 'netdev'")
        if link.get("roce_mode", "RoCE v2") not in ROCE_MODES:
            raise ConfigError(f"{where}: roce_mode must be one of {', '.join(ROCE_MODES)}")
        tos = link.get("tos")
        if tos is not None and not (isinstance(tos, int) and 0 <= tos <= 255):
            raise ConfigError(f"{where}: tos must be an integer 0-255")
        prio = link.get("pfc_priority")
        if prio is not None and not (isinstance(prio, int) and 0 <= prio <= 7):
            raise ConfigError(f"{where}: pfc_priority must be an integer 0-7")
        if link.get("soft_roce") and not link.get("rdma_device"):
            raise ConfigError(f"{where}: soft_roce needs rdma_device (the name of the rxe device)")
    return links


# iproute2's dcb prints arrays as JSON arrays indexed by priority; mappings as pairs. Both readers
# also take the object forms, since no DCB-capable NIC has been available to record real output from.
def pfc_enabled(value: Any) -> dict[int, bool]:
    """{priority: PFC on} from dcb's ``prio_pfc``."""
    if isinstance(value, dict):
        return {int(k): bool(v) for k, v in value.items()}
    return {index: bool(v) for index, v in enumerate(value or [])}


def dscp_pairs(value: Any) -> set[tuple[int, int]]:
    """{(dscp, priority)} from dcb's ``dscp_prio``."""
    pairs: set[tuple[int, int]] = set()
    for entry in value or []:
        if isinstance(entry, dict):
            pairs.add((int(entry["dscp"]), int(entry["prio"])))
        else:
            pairs.add((int(entry[0]), int(entry[1])))
    return pairs


class Apply:
    """One ``apply`` run: reads each link's state, changes what differs (nothing in a dry run), reports both."""

    def __init__(self, host: Host, dry_run: bool) -> None:
        self.host = host
        self.dry_run = dry_run
        self.changes: list[str] = []
        self.skipped: list[str] = []
        self.links: list[dict[str, Any]] = []

    def change(self, what: str, action: Callable[[], object]) -> None:
        """Record a change and make it, unless this is a dry run."""
        self.changes.append(what)
        if not self.dry_run:
            action()

    def link(self, wanted: Mapping[str, Any]) -> None:
        """Bring one configured link to its wanted state."""
        netdev = wanted.get("netdev") or self.host.netdev_by_mac(wanted["mac"])
        if netdev is None:
            raise RuntimeError(f"no net device has MAC {wanted['mac']}")
        rdma = self.host.rdma_links()
        bound = sorted(name for name, info in rdma.items() if info["netdev"] == netdev)
        if bound:
            device = bound[0]
        elif wanted.get("soft_roce"):
            device = wanted["rdma_device"]
            if device in rdma:
                raise RuntimeError(f"RDMA device {device} exists on {rdma[device]['netdev']}, not on {netdev}")
            self.change(
                f"{device}: soft-RoCE link on {netdev}",
                lambda: (
                    self.host.run(["modprobe", "rdma_rxe"]),
                    self.host.run(["rdma", "link", "add", device, "type", "rxe", "netdev", netdev]),
                ),
            )
        else:
            raise RuntimeError(f"{netdev} has no RDMA device and soft_roce is off (is the NIC's RDMA driver loaded?)")
        port = rdma.get(device, {}).get("port", 1)
        self.rdma_cm(device, port, wanted)
        self.dcb(netdev, wanted)
        self.ecn(netdev, wanted)
        self.links.append({"netdev": netdev, "rdma_device": device, "port": port})

    def rdma_cm(self, device: str, port: int, wanted: Mapping[str, Any]) -> None:
        """RDMA-CM's default RoCE mode and ToS for the device's port (configfs rdma_cm/<device>)."""
        values = [("default_roce_mode", wanted.get("roce_mode", "RoCE v2"), "default RoCE mode")]
        if wanted.get("tos") is not None:
            values.append(("default_roce_tos", str(wanted["tos"]), "default ToS"))
        base = os.path.join(self.host.configfs, "rdma_cm")
        group = os.path.join(base, device)
        if not self.dry_run:
            if not os.path.isdir(base):
                self.host.run(["modprobe", "rdma_cm"])
            if not os.path.isdir(base):
                self.host.run(["mount", "-t", "configfs", "none", self.host.configfs])
            if not os.path.isdir(group):
                # The group only exposes the device's settings; creating it changes none of them.
                self.host.make_group(group)
        ports = os.path.join(group, "ports", str(port))
        for name, value, label in values:
            # Unknown (no group yet, e.g. in a dry run before the first apply) counts as different.
            current = self.host.read(ports, name)
            if current != value:
                self.change(
                    f"{device}: RDMA-CM {label} {current or 'unknown'} -> {value}",
                    functools.partial(self.host.write, value, ports, name),
                )

    def dcb(self, netdev: str, wanted: Mapping[str, Any]) -> None:
        """PFC on the link's priority only and DSCP trust, through iproute2's dcb, where the driver has DCB."""
        prio = wanted.get("pfc_priority")
        if prio is None:
            return
        rc, out, err = self.host.run(["dcb", "-j", "pfc", "show", "dev", netdev, "prio-pfc"], check=False)
        if rc != 0:
            reason = (err or out).strip()
            self.skipped.append(f"{netdev}: PFC and DSCP trust not set, the driver has no DCB support ({reason})")
            return
        enabled = pfc_enabled(json.loads(out).get("prio_pfc"))
        want = {p: p == prio for p in range(8)}
        if enabled != want:
            states = [f"{p}:{'on' if on else 'off'}" for p, on in want.items()]
            argv = ["dcb", "pfc", "set", "dev", netdev, "prio-pfc", *states]
            self.change(f"{netdev}: PFC on priority {prio} only", lambda: self.host.run(argv))
        if wanted.get("dscp_trust") and wanted.get("tos") is not None:
            dscp = wanted["tos"] >> 2
            rc, out, _err = self.host.run(["dcb", "-j", "app", "show", "dev", netdev, "dscp-prio"], check=False)
            pairs = dscp_pairs(json.loads(out).get("dscp_prio")) if rc == 0 and out.strip() else set()
            if (dscp, prio) not in pairs:
                argv = ["dcb", "app", "replace", "dev", netdev, "dscp-prio", f"{dscp}:{prio}"]
                self.change(f"{netdev}: DSCP {dscp} -> priority {prio} (trust DSCP)", lambda: self.host.run(argv))

    def ecn(self, netdev: str, wanted: Mapping[str, Any]) -> None:
        """ECN reaction and notification points on the RoCE priority, where the driver has ecn/ (mlx5)."""
        if not wanted.get("ecn"):
            return
        # ECN marks the RoCE traffic class: the PFC priority where there is one, else priority 0.
        prio = wanted["pfc_priority"] if wanted.get("pfc_priority") is not None else 0
        base = os.path.join(self.host.sysfs, "class", "net", netdev, "ecn")
        if not os.path.isdir(base):
            self.skipped.append(f"{netdev}: ECN for RoCE not set, the driver exposes no ecn/ controls (mlx5 does)")
            return
        for point in ("roce_np", "roce_rp"):
            path = os.path.join(base, point, "enable", str(prio))
            if self.host.read(path) != "1":
                self.change(f"{netdev}: ECN {point} on priority {prio}", functools.partial(self.host.write, 1, path))


def _emit(document: object, sort_keys: bool = False) -> None:
    # One JSON document per run on stdout; the role parses it.
    sys.stdout.write(json.dumps(document, sort_keys=sort_keys) + "\n")


def main(argv: list[str] | None = None, host: Host | None = None) -> int:
    """Command-line entry point; ``host`` is for tests."""
    parser = argparse.ArgumentParser(prog="onprem-roce", description="RoCE links from a JSON configuration.")
    parser.add_argument("--config", default=DEFAULT_CONFIG)
    sub = parser.add_subparsers(dest="command", required=True)
    apply_parser = sub.add_parser("apply")
    apply_parser.add_argument("--dry-run", action="store_true")
    sub.add_parser("show")
    sub.add_parser("check-config")
    args = parser.parse_args(argv)
    host = host or Host()
    if args.command == "show":
        rdma = host.rdma_links()
        for name, info in rdma.items():
            info["gids"] = host.gids(name, info["port"])
        _emit(rdma, sort_keys=True)
        return EXIT_OK
    try:
        links = load_config(args.config)
    except ConfigError as exc:
        _emit({"failed": True, "msg": str(exc)})
        return EXIT_CONFIG
    if args.command == "check-config":
        return EXIT_OK
    run = Apply(host, args.dry_run)
    try:
        for wanted in links:
            run.link(wanted)
    except (RuntimeError, OSError, ValueError) as exc:
        _emit({"failed": True, "msg": str(exc), "changes": run.changes})
        return EXIT_FAILED
    _emit({"changes": run.changes, "skipped": run.skipped, "links": run.links, "dry_run": args.dry_run})
    return EXIT_OK


if __name__ == "__main__":
    # SystemExit rather than sys.exit: ansible-test's pylint bans sys.exit calls below plugins/module_utils.
    raise SystemExit(main())
