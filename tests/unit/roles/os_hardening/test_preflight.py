"""os_hardening: the preflight's refusal of modules the host's stacks load, and the sysctl table, evaluated with
Ansible's templar from the role's own vars and defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("ansible")
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar
from fixtures.templating import trusted

ROLE = Path(__file__).resolve().parents[4] / "roles" / "os_hardening"


def _variables(**overrides: Any) -> dict[str, Any]:
    variables: dict[str, Any] = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    variables.update({k: trusted(v) if isinstance(v, str) else v
                      for k, v in yaml.safe_load((ROLE / "vars" / "main.yml").read_text()).items()})
    variables.update(overrides)
    return variables


def _refused(blocked: list[str]) -> list[str]:
    tasks = {t["name"]: t for t in yaml.safe_load((ROLE / "tasks" / "main.yml").read_text())}
    expression = tasks["Preflight | check the role's input"]["vars"]["__os_hardening_refused"]
    variables = _variables(os_hardening_blocked_modules=blocked, os_hardening_block_usb_storage=False)
    return list(Templar(loader=DataLoader(), variables=variables).template(trusted(expression)))


@pytest.mark.parametrize("module", ["vfio-pci", "vfio_iommu_type1", "nvidia", "nvidia_uvm", "nvidia-drm", "zfs",
                                    "spl", "ib_core", "rdma_rxe", "rdma_cm", "mlx5_ib", "bnxt_re", "irdma",
                                    "8021q", "bridge", "bonding", "tcp_bbr", "kvm_intel", "nft_ct",
                                    "br_netfilter", "overlay"])
def test_modules_the_stacks_load_are_refused(module: str) -> None:
    assert _refused(["cramfs", module]) == [module.replace("-", "_")]


def test_the_default_list_and_usb_storage_pass() -> None:
    assert _refused(_variables()["os_hardening_blocked_modules"] + ["usb-storage"]) == []


@pytest.mark.parametrize("rp_filter", [1, 2])
def test_sysctl_table_leaves_forwarding_alone_and_takes_rp_filter(rp_filter: int) -> None:
    variables = _variables(os_hardening_rp_filter=rp_filter, os_hardening_sysctls={"vm.swappiness": 10})
    table = Templar(loader=DataLoader(), variables=variables).template(trusted("{{ __os_hardening_sysctl }}"))
    assert table["net.ipv4.conf.all.rp_filter"] == rp_filter and table["net.ipv4.conf.default.rp_filter"] == rp_filter
    assert not [key for key in table if "forwarding" in key or key.endswith("ip_forward")]
    assert table["vm.swappiness"] == 10 and table["kernel.kptr_restrict"] == 2
