"""onprem-roce (plugins/module_utils/rdma/roce.py, installed unchanged by the roce role): the tool
against a sysfs/configfs tree and tools answering with output recorded on the lab VM
(tests/unit/fixtures/rdma/README.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.onprem.gpu_server.plugins.module_utils.rdma import roce

REPO = Path(__file__).resolve().parents[4]
TOOL = REPO / "plugins" / "module_utils" / "rdma" / "roce.py"
REC = REPO / "tests" / "unit" / "fixtures" / "rdma"
MAC = "52:54:00:4c:ab:12"


class LabHost(roce.Host):
    """The lab VM as recorded: e1000e eth1 (+ a VLAN on it sharing its MAC), no DCB, no ecn/."""

    def __init__(self, root: Path, rdma_cm_loaded: bool = True, modprobe_loads_rdma_cm: bool = True) -> None:
        super().__init__(sysfs=str(root), run=self.answer)
        self.root = root
        self.calls: list[list[str]] = []
        self.modprobe_loads_rdma_cm = modprobe_loads_rdma_cm
        self.link_json = (REC / "rdma-link-show-empty.json").read_text()
        for name, mac, physical in [("eth1", MAC, True), ("eth1.10", MAC, False), ("eth2", "52:54:00:4c:ab:01", True)]:
            net = root / "class" / "net" / name
            net.mkdir(parents=True)
            (net / "address").write_text(mac + "\n")
            if physical:
                (net / "device").mkdir()
        (root / "kernel" / "config").mkdir(parents=True)
        if rdma_cm_loaded:
            (root / "kernel" / "config" / "rdma_cm").mkdir()

    def make_group(self, path: str) -> None:
        # What the kernel shows in a new rdma_cm group for rxe0 (recorded defaults).
        port = Path(path) / "ports" / "1"
        port.mkdir(parents=True)
        (port / "default_roce_mode").write_text("RoCE v2\n")
        (port / "default_roce_tos").write_text("0\n")

    def add_rxe(self, device: str) -> None:
        self.link_json = (REC / "rdma-link-show-rxe0.json").read_text().replace("rxe0", device)
        port = self.root / "class" / "infiniband" / device / "ports" / "1"
        for line in (REC / "gid-table-rxe0.txt").read_text().splitlines():
            index, rest = line.split(" ", 1)
            gid, kind, ndev = (field.strip() for field in rest.split("|"))
            (port / "gids").mkdir(parents=True, exist_ok=True)
            (port / "gids" / index).write_text(gid + "\n")
            for attr, value in (("types", kind), ("ndevs", ndev)):
                (port / "gid_attrs" / attr).mkdir(parents=True, exist_ok=True)
                target = port / "gid_attrs" / attr / index
                if value == "EINVAL":
                    target.mkdir()  # reading a directory fails like the kernel's EINVAL does
                else:
                    target.write_text(value + "\n")

    def answer(self, argv: list[str]) -> tuple[int, str, str]:
        self.calls.append(argv)
        if argv[:4] == ["rdma", "-j", "link", "show"]:
            return 0, self.link_json, ""
        if argv[:3] == ["rdma", "link", "add"]:
            self.add_rxe(argv[3])
            return 0, "", ""
        if argv[0] == "dcb":
            return 1, "", (REC / "dcb-pfc-show-e1000e.stderr").read_text()
        if argv == ["modprobe", "rdma_cm"]:
            if self.modprobe_loads_rdma_cm:
                (self.root / "kernel" / "config" / "rdma_cm").mkdir(exist_ok=True)
            return 0, "", ""
        if argv[:3] == ["mount", "-t", "configfs"]:
            (self.root / "kernel" / "config" / "rdma_cm").mkdir(exist_ok=True)
            return 0, "", ""
        if argv[0] == "modprobe":
            return 0, "", ""
        raise AssertionError(f"unexpected command {argv}")

    def writes(self) -> list[list[str]]:
        return [c for c in self.calls if c[:2] != ["rdma", "-j"] and not (c[0] == "dcb" and "show" in c)]


def config(tmp_path: Path, **link: Any) -> str:
    entry = {
        "mac": MAC,
        "soft_roce": True,
        "rdma_device": "rxe0",
        "roce_mode": "RoCE v2",
        "tos": 106,
        "pfc_priority": 3,
        "dscp_trust": True,
        "ecn": True,
    }
    entry.update(link)
    path = tmp_path / "roce.json"
    path.write_text(json.dumps({"links": [entry]}))
    return str(path)


def run(host: LabHost, cfg: str, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    rc = roce.main(["--config", cfg, *args], host=host)
    return rc, json.loads(capsys.readouterr().out)


def test_first_apply_creates_the_link_and_sets_the_tos(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host = LabHost(tmp_path / "sys")
    rc, out = run(host, config(tmp_path), "apply", capsys=capsys)
    assert rc == 0
    # The VLAN eth1.10 shares the MAC; the physical NIC is chosen.
    assert out["changes"] == ["rxe0: soft-RoCE link on eth1", "rxe0: RDMA-CM default ToS 0 -> 106"]
    assert out["links"] == [{"netdev": "eth1", "rdma_device": "rxe0", "port": 1}]
    assert ["rdma", "link", "add", "rxe0", "type", "rxe", "netdev", "eth1"] in host.calls
    tos = tmp_path / "sys" / "kernel" / "config" / "rdma_cm" / "rxe0" / "ports" / "1" / "default_roce_tos"
    assert tos.read_text() == "106\n"
    assert out["skipped"] == [
        "eth1: PFC and DSCP trust not set, the driver has no DCB support (Attribute read: Operation not supported)",
        "eth1: ECN for RoCE not set, the driver exposes no ecn/ controls (mlx5 does)",
    ]


def test_dry_run_lists_the_changes_and_runs_nothing_that_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = LabHost(tmp_path / "sys")
    rc, out = run(host, config(tmp_path), "apply", "--dry-run", capsys=capsys)
    assert rc == 0 and out["dry_run"]
    assert out["changes"] == [
        "rxe0: soft-RoCE link on eth1",
        "rxe0: RDMA-CM default RoCE mode unknown -> RoCE v2",
        "rxe0: RDMA-CM default ToS unknown -> 106",
    ]
    assert host.writes() == []
    assert not (tmp_path / "sys" / "kernel" / "config" / "rdma_cm" / "rxe0").exists()


def test_second_apply_and_its_dry_run_change_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host = LabHost(tmp_path / "sys")
    cfg = config(tmp_path)
    run(host, cfg, "apply", capsys=capsys)
    host.calls.clear()
    rc, out = run(host, cfg, "apply", "--dry-run", capsys=capsys)
    assert rc == 0 and out["changes"] == []
    rc, out = run(host, cfg, "apply", capsys=capsys)
    assert rc == 0 and out["changes"] == []
    assert host.writes() == []


def test_rdma_cm_is_loaded_and_configfs_mounted_when_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = LabHost(tmp_path / "sys", rdma_cm_loaded=False, modprobe_loads_rdma_cm=False)
    rc, _ = run(host, config(tmp_path), "apply", capsys=capsys)
    assert rc == 0
    assert ["modprobe", "rdma_cm"] in host.calls
    assert ["mount", "-t", "configfs", "none", str(tmp_path / "sys" / "kernel" / "config")] in host.calls


def test_no_mount_when_modprobe_brings_rdma_cm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host = LabHost(tmp_path / "sys", rdma_cm_loaded=False)
    run(host, config(tmp_path), "apply", capsys=capsys)
    assert not [c for c in host.calls if c[0] == "mount"]


def test_a_name_taken_on_another_nic_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host = LabHost(tmp_path / "sys")
    host.add_rxe("rxe0")
    host.link_json = host.link_json.replace('"netdev":"eth1"', '"netdev":"eth2"')
    rc, out = run(host, config(tmp_path), "apply", capsys=capsys)
    assert rc == roce.EXIT_FAILED
    assert out["msg"] == "RDMA device rxe0 exists on eth2, not on eth1"
    assert host.writes() == []


def test_a_nic_without_rdma_and_without_soft_roce_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    host = LabHost(tmp_path / "sys")
    rc, out = run(host, config(tmp_path, soft_roce=False), "apply", capsys=capsys)
    assert rc == roce.EXIT_FAILED
    assert out["msg"].startswith("eth1 has no RDMA device and soft_roce is off")


def test_unknown_mac_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host = LabHost(tmp_path / "sys")
    rc, out = run(host, config(tmp_path, mac="52:54:00:00:00:99"), "apply", capsys=capsys)
    assert rc == roce.EXIT_FAILED and out["msg"] == "no net device has MAC 52:54:00:00:00:99"


@pytest.mark.parametrize(
    ("link", "message"),
    [
        ({"colour": "red"}, "links[0]: unknown keys colour"),
        ({"mac": None}, "links[0]: give 'mac' or 'netdev'"),
        ({"roce_mode": "RoCE v3"}, "links[0]: roce_mode must be one of IB/RoCE v1, RoCE v2"),
        ({"tos": 256}, "links[0]: tos must be an integer 0-255"),
        ({"tos": "106"}, "links[0]: tos must be an integer 0-255"),
        ({"pfc_priority": 8}, "links[0]: pfc_priority must be an integer 0-7"),
        ({"rdma_device": None}, "links[0]: soft_roce needs rdma_device (the name of the rxe device)"),
    ],
)
def test_bad_configuration_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], link: dict[str, Any], message: str
) -> None:
    host = LabHost(tmp_path / "sys")
    cfg = config(tmp_path, **link)
    rc, out = run(host, cfg, "check-config", capsys=capsys)
    assert rc == roce.EXIT_CONFIG
    assert out["msg"] == f"{cfg}: {message}"
    assert host.calls == []


def test_show_lists_the_populated_roce_v2_gids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    host = LabHost(tmp_path / "sys")
    host.add_rxe("rxe0")
    rc = roce.main(["show"], host=host)
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["rxe0"]["netdev"] == "eth1" and out["rxe0"]["state"] == "ACTIVE"
    assert out["rxe0"]["gids"] == [
        {"index": 0, "gid": "fe80:0000:0000:0000:5054:00ff:fe4c:ab12", "type": "RoCE v2", "netdev": "eth1"},
        {"index": 1, "gid": "0000:0000:0000:0000:0000:ffff:0a63:0002", "type": "RoCE v2", "netdev": "eth1"},
    ]


def test_dcb_readers_take_array_and_object_forms() -> None:
    assert roce.pfc_enabled([False, False, False, True, False, False, False, False])[3] is True
    assert roce.pfc_enabled({"3": True, "0": False}) == {3: True, 0: False}
    assert roce.dscp_pairs([[26, 3]]) == {(26, 3)}
    assert roce.dscp_pairs([{"dscp": 26, "prio": 3}]) == {(26, 3)}
    assert roce.pfc_enabled(None) == {} and roce.dscp_pairs(None) == set()


def test_the_roles_bandwidth_pattern_reads_the_recorded_ib_write_bw_output() -> None:
    tasks = yaml.safe_load((REPO / "roles" / "roce" / "tasks" / "verify.yml").read_text())
    check = next(t for t in tasks if t["name"] == "Verify | bandwidth measured")
    expression = check["vars"]["__roce_row"]
    pattern = re.search(r"regex_findall\('(.*)'\)", expression)
    assert pattern is not None
    # YAML's double-quoted string has turned each doubled backslash into one: this is what Jinja gets.
    regex = pattern.group(1)
    rows = re.findall(regex, (REC / "ib_write_bw-rxe0-client.txt").read_text())
    assert rows == [("65536", "200", "0.090570", "0.072088", "0.000137")]
