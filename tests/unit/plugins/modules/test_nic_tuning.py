"""nic_tuning module wiring with a fake NIC that answers from recordings of the lab VM's spare e1000e.

The fake switches between real recordings where they exist (rings rx 1024/tx 512, rx-usecs 50); the
GRO-off ``ethtool -k`` text and the MTU in ``ip`` JSON are the recorded ones with that one value edited.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils import _internal, basic
from ansible.module_utils.testing import patch_module_args
from fixtures.recorded import reader

from ansible_collections.onprem.gpu_server.plugins.modules import nic_tuning

read = reader("ethtool")
MAC = "52:54:00:4c:ab:11"
LINK = "/etc/systemd/network/10-onprem-nic-52-54-00-4c-ab-11.link"
LAB = {"mac": MAC, "mtu": 9000, "rings": {"rx": 1024, "tx": 512}, "coalesce": {"rx-usecs": 50},
       "features": {"generic-receive-offload": False}}
DEFAULT_LINK = ("[Match]\nOriginalName=*\n\n[Link]\nNamePolicy=keep kernel database onboard slot path\n"
                "AlternativeNamesPolicy=database onboard slot path\nMACAddressPolicy=persistent\n")


class FakeNic:
    """eth0 of the lab VM; records every command and changes its state on -G/-C/-K/ip link set."""

    def __init__(self) -> None:
        self.name = "eth0"
        self.rings_set = self.usecs_set = False
        self.gro, self.mtu = True, 1500
        self.link_file = "/usr/lib/systemd/network/99-default.link"
        self.calls: list[list[str]] = []

    def links(self) -> str:
        data = json.loads(read("labvm_all_ip-j-d-link.json"))
        data[1]["mtu"] = self.mtu
        data[1]["ifname"] = self.name
        return json.dumps(data)

    def answer(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        # The recordings are of eth0; the same NIC may come up under another kernel name.
        key = tuple("eth0" if arg == self.name else arg.replace(f"/{self.name}", "/eth0") for arg in argv)
        reads: dict[tuple[str, ...], Any] = {
            ("ip", "-j", "-d", "link", "show"): self.links,
            ("ethtool", "-P", "eth0"): lambda: f"Permanent address: {MAC}\n",
            ("ethtool", "-i", "eth0"): lambda: read("labvm_e1000e_ethtool-i.txt"),
            ("ethtool", "-g", "eth0"): lambda: read("labvm_e1000e_ethtool-g_rx1024-tx512.txt" if self.rings_set
                                                    else "labvm_e1000e_ethtool-g.txt"),
            ("ethtool", "-c", "eth0"): lambda: read("labvm_e1000e_ethtool-c_rx-usecs50.txt" if self.usecs_set
                                                    else "labvm_e1000e_ethtool-c.txt"),
            ("ethtool", "-k", "eth0"): lambda: read("labvm_e1000e_ethtool-k.txt").replace(
                "generic-receive-offload: on", f"generic-receive-offload: {'on' if self.gro else 'off'}"),
            ("udevadm", "info", "--query=property", "--path=/sys/class/net/eth0"):
                lambda: f"ID_NET_DRIVER=e1000e\nID_NET_LINK_FILE={self.link_file}\n",
        }
        if key == ("ethtool", "-l", "eth0"):
            return 1, "", "netlink error: Operation not supported\n"
        if key in reads:
            return 0, reads[key](), ""
        if key == ("ethtool", "-G", "eth0", "rx", "1024", "tx", "512"):
            self.rings_set = True
        elif key == ("ethtool", "-C", "eth0", "rx-usecs", "50"):
            self.usecs_set = True
        elif key == ("ethtool", "-K", "eth0", "generic-receive-offload", "off"):
            self.gro = False
        elif key == ("ip", "link", "set", "dev", "eth0", "mtu", "9000"):
            self.mtu = 9000
        else:
            raise AssertionError(f"unexpected command {argv}")
        return 0, "", ""

    def changes(self) -> list[list[str]]:
        return [c for c in self.calls if c[:2] in (["ethtool", "-G"], ["ethtool", "-C"], ["ethtool", "-K"])
                or c[:3] == ["ip", "link", "set"]]


@pytest.fixture
def nic(monkeypatch, tmp_path) -> FakeNic:
    fake = FakeNic()

    def run_command(self, args, **kwargs):
        assert isinstance(args, list), "argv lists only"
        assert kwargs.get("environ_update", {}).get("LC_ALL") == "C"
        return fake.answer([args[0].rsplit("/", 1)[-1], *args[1:]])

    monkeypatch.setattr(_internal, "is_controller", False)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None:
                        f"/usr/sbin/{name}")
    monkeypatch.setattr(nic_tuning, "ROOT", str(tmp_path))
    (tmp_path / "usr/lib/systemd/network").mkdir(parents=True)
    (tmp_path / "usr/lib/systemd/network/99-default.link").write_text(DEFAULT_LINK)
    (tmp_path / "usr/share/initramfs-tools/hooks").mkdir(parents=True)
    (tmp_path / "usr/share/initramfs-tools/hooks/udev").write_text("#!/bin/sh\n")
    return fake


def run(args: dict[str, Any], capsys) -> dict[str, Any]:
    with patch_module_args(args), pytest.raises(SystemExit):
        nic_tuning.main()
    return json.loads(capsys.readouterr().out)


def link_text(tmp_path: Path) -> str | None:
    path = tmp_path / LINK.lstrip("/")
    return path.read_text() if path.exists() else None


def test_check_mode_predicts_and_changes_nothing(nic, tmp_path, capsys):
    result = run({**LAB, "_ansible_check_mode": True, "_ansible_diff": True}, capsys)
    assert result["changed"] is True
    assert nic.changes() == []
    assert link_text(tmp_path) is None
    assert result["commands"] == [["ip", "link", "set", "dev", "eth0", "mtu", "9000"],
                                  ["ethtool", "-G", "eth0", "rx", "1024", "tx", "512"],
                                  ["ethtool", "-C", "eth0", "rx-usecs", "50"],
                                  ["ethtool", "-K", "eth0", "generic-receive-offload", "off"]]
    assert result["current"] == {"mtu": 9000, "rings": {"rx": 1024, "tx": 512}, "coalesce": {"rx-usecs": 50},
                                 "features": {"generic-receive-offload": False}}
    assert result["diff"][0]["before"].splitlines() == [
        "coalesce.rx-usecs: 3", "features.generic-receive-offload: True", "mtu.mtu: 1500", "rings.rx: 256",
        "rings.tx: 256"]
    assert "RxBufferSize=1024" in result["diff"][1]["after"]
    assert result["initramfs_update_required"] is True


def test_apply_then_second_run_changes_nothing(nic, tmp_path, capsys):
    first = run({**LAB, "link_comment": "# Ansible managed"}, capsys)
    assert first["changed"] is True and first["link_file_changed"] is True
    assert len(nic.changes()) == 4
    text = link_text(tmp_path)
    assert text is not None and text.startswith("# Ansible managed\n")
    assert "PermanentMACAddress=52:54:00:4c:ab:11" in text and "NamePolicy=keep kernel database" in text
    nic.calls.clear()
    nic.link_file = LINK
    second = run({**LAB, "link_comment": "# Ansible managed"}, capsys)
    assert second["changed"] is False
    assert nic.changes() == []
    assert second["initramfs_update_required"] is False
    assert second["current"]["rings"] == {"rx": 1024, "tx": 512}


def test_another_name_after_a_reboot_changes_nothing(nic, tmp_path, capsys):
    """The kernel's ethN order is not stable: the .link file must not depend on the name."""
    assert run(LAB, capsys)["changed"] is True
    nic.name, nic.link_file = "eth1", LINK
    nic.calls.clear()
    again = run(LAB, capsys)
    assert (again["changed"], again["interface"], nic.changes()) == (False, "eth1", [])
    assert "the e1000e NIC at 0000:00:08.0" in (link_text(tmp_path) or "")


def test_above_maximum_is_refused_before_any_change(nic, tmp_path, capsys):
    result = run({"mac": MAC, "rings": {"rx": 8192}, "mtu": 9000}, capsys)
    assert result["failed"] is True
    assert result["msg"] == ("eth0 (52:54:00:4c:ab:11): rings rx 8192 is above the NIC's pre-set maximum 4096 "
                             "(ethtool -g)")
    assert nic.changes() == [] and link_text(tmp_path) is None


def test_wrong_driver_is_refused(nic, tmp_path, capsys):
    result = run({**LAB, "driver": "ixgbe"}, capsys)
    assert result["msg"] == "eth0 (52:54:00:4c:ab:11): the driver is e1000e, not ixgbe as requested"
    assert nic.changes() == [] and link_text(tmp_path) is None
    assert run({**LAB, "driver": "e1000e"}, capsys)["changed"] is True


def test_another_link_file_is_not_replaced(nic, tmp_path, capsys):
    nic.link_file = "/etc/systemd/network/10-site.link"
    result = run(LAB, capsys)
    assert result["failed"] is True
    assert result["msg"].startswith("eth0: /etc/systemd/network/10-site.link configures this NIC")
    assert nic.changes() == []
    assert run({**LAB, "persist": False}, capsys)["changed"] is True


def test_not_persisted_keys_warn(nic, capsys):
    result = run({"name": "enp0s8", "features": {"tcp-segmentation-offload": True}}, capsys)
    assert result["changed"] is True  # the .link file is new, although TSO is already on
    assert result["not_persisted"] == ["features tcp-segmentation-offload"]
    assert "tcp-segmentation-offload is applied now but a .link file cannot keep it" in str(result["warnings"])


def test_bad_values_are_named(nic, capsys):
    assert run({"mac": MAC, "rings": {"rx": "many"}}, capsys)["msg"] == "rings.rx: 'many' is not a whole number"
    assert run({"mac": MAC, "features": {"generic-receive-offload": "perhaps"}}, capsys)["msg"] == (
        "features.generic-receive-offload: 'perhaps' is not a boolean")
    assert "no interface with MAC 52:54:00:4c:ab:77" in run({"mac": "52:54:00:4c:ab:77"}, capsys)["msg"]


BEFORE_LOOKUP = [
    ({"mtu": 67}, "mtu: 67 is outside 68-65535"),
    ({"mtu": 65536}, "mtu: 65536 is outside 68-65535"),
    ({"mtu": -1}, "mtu: -1 is outside 68-65535"),
    ({"mtu": 0}, "mtu: 0 is outside 68-65535"),
    ({"rings": {"rx": -1}}, "rings.rx: -1 must not be negative"),
    ({"channels": {"combined": -2}}, "channels.combined: -2 must not be negative"),
    ({"coalesce": {"rx-usecs": -5}}, "coalesce.rx-usecs: -5 must not be negative"),
    ({"rings": {"rx": "-1"}}, "rings.rx: '-1' is not a whole number"),
]


@pytest.mark.parametrize("by", [{"mac": MAC}, {"name": "eth0"}, {"mac": "52:54:00:4c:ab:77"}],
                         ids=["mac", "name", "unknown mac"])
@pytest.mark.parametrize(("args", "message"), BEFORE_LOOKUP, ids=[m for _a, m in BEFORE_LOOKUP])
def test_values_no_nic_takes_are_refused_before_the_nic_is_looked_up(nic, tmp_path, capsys, by, args, message):
    result = run({**by, **args, "_ansible_check_mode": True}, capsys)
    assert result["failed"] is True
    assert result["msg"] == message
    assert nic.calls == []
    assert link_text(tmp_path) is None


@pytest.mark.parametrize("mtu", [68, 1500, 9000, 65535])
def test_mtu_in_range_reaches_the_nic_checks(nic, capsys, mtu):
    result = run({"mac": MAC, "mtu": mtu, "persist": False, "_ansible_check_mode": True}, capsys)
    # The e1000e's own limits (min_mtu 68, max_mtu 9212) apply once it is found.
    if mtu > 9212:
        assert result["msg"] == (f"eth0 (52:54:00:4c:ab:11): mtu {mtu} is above the NIC's maximum 9212 "
                                 "(ip -d link max_mtu)")
    else:
        assert not result.get("failed"), result.get("msg")
    assert nic.calls[0] == ["ip", "-j", "-d", "link", "show"]


def test_examples_run_against_the_recorded_nic(nic, monkeypatch, capsys):
    for task in yaml.safe_load(nic_tuning.EXAMPLES):
        args = task["onprem.gpu_server.nic_tuning"]
        assert set(args) <= set(nic_tuning.ARGUMENT_SPEC)
        monkeypatch.setattr(nic, "usecs_set", False)
        result = run(args, capsys)
        assert not result.get("failed"), result.get("msg")
        assert result["changed"] is True
