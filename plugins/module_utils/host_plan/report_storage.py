# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Storage part of the plan report: ZFS pools, md arrays, the landing zone and VM disks."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan import adapter
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import PlanInputError, show
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.pcie import GB_S_PER_LANE
from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan.zfs import PARITY, zfs_space

HW = adapter.HW
INTENT = adapter.INTENT
TB, TIB = 10**12, 1 << 40
# The plan's usable figure may be this much above the computed one before it is called optimistic.
USABLE_TOLERANCE = 0.02
MD_MIN_MEMBERS = {0: 2, 1: 2, 5: 3, 6: 4, 10: 4}
DUAL_LUN_ASSUMPTION = (
    "a dual-actuator SAS drive (Seagate MACH.2 / Exos 2X) presents two LUNs of half its capacity, "
    "each with its own WWN (Seagate product manual)"
)


def _md_capacity(level: int, sizes: list[int]) -> int:
    smallest = min(sizes)
    return {
        0: sum(sizes),
        1: smallest,
        5: (len(sizes) - 1) * smallest,
        6: (len(sizes) - 2) * smallest,
        10: len(sizes) // 2 * smallest,
    }[level]


def _read_bound(disks: dict[str, Any], members: list[str]) -> tuple[float | None, str]:
    """Sum of the members' sequential read limits in GB/s: datasheet figure, else the PCIe link."""
    total = 0.0
    basis = []
    for name in members:
        disk = disks[name]
        if disk.get("seq_read_mbs"):
            total += disk["seq_read_mbs"] / 1000
            basis.append(f"{name} {disk['seq_read_mbs'] / 1000:g} GB/s (seq_read_mbs)")
        elif disk.get("pcie_gen") and disk.get("pcie_width"):
            link = GB_S_PER_LANE[disk["pcie_gen"]] * disk["pcie_width"]
            total += link
            basis.append(f"{name} {link:.1f} GB/s (PCIe gen {disk['pcie_gen']} x{disk['pcie_width']} link)")
        else:
            return None, f"{name} has neither seq_read_mbs nor pcie_gen/pcie_width"
    return total, "; ".join(basis)


def _usable(sizes: list[int], pool: Any, vdevs: int) -> int:
    try:
        return int(zfs_space(sizes, pool["layout"], pool["ashift"], vdevs=vdevs)["usable_bytes"])
    except PlanInputError:
        return 0


def _pools(ctx: Any, disks: dict[str, Any], owners: dict[str, list[str]]) -> None:
    f = ctx.findings
    rows = []
    for name, pool in (adapter.section(ctx.plan, "intent", "zfs", "pools") or {}).items():
        path = f"{INTENT}.zfs.pools.{name}"
        members = pool["disks"]
        for disk in members:
            owners[disk].append(f"ZFS pool {name}")
        sizes = [disks[d]["size_bytes"] for d in members]
        kinds = sorted({disks[d]["kind"] for d in members})
        if len(kinds) > 1:
            f.warning(f"{path}.disks", "zfs", f"mixes {', '.join(kinds)}: the pool runs at the slowest kind's pace")
        if len(set(sizes)) > 1:
            f.warning(f"{path}.disks", "zfs", "members differ in size; each counts as the smallest")
        try:
            space = zfs_space(sizes, pool["layout"], pool["ashift"])
        except PlanInputError as exc:
            f.error(f"{path}.layout", "zfs", str(exc).split(": ", 1)[-1])
            continue
        usable = space["usable_bytes"]
        nparity = PARITY[pool["layout"]]
        tolerated = len(members) - 1 if pool["layout"] == "mirror" else nparity
        dual = [d for d in members if disks[d].get("actuators") == 2 and disks[d]["kind"].startswith("sas")]
        figure: dict[str, Any] = {
            "layout": pool["layout"],
            "members": len(members),
            "raw_tb": round(space["raw_bytes"] / TB, 2),
            "usable_bytes": usable,
            "usable_tb": round(usable / TB, 2),
            "usable_tib": round(usable / TIB, 2),
            "drive_failures_tolerated": tolerated,
        }
        if dual:
            lun_sizes = [half for s in sizes for half in (s // 2, s // 2)]
            one_vdev = _usable(lun_sizes, pool, 1)
            two_vdevs = _usable(lun_sizes, pool, 2)
            # Both LUNs of a drive in one vdev: losing the drive loses two members.
            tolerated = nparity // 2 if pool["layout"] != "mirror" else len(members) - 1
            figure["drive_failures_tolerated"] = tolerated
            figure["as_luns"] = {
                "luns": len(lun_sizes),
                "one_vdev_usable_tb": round(one_vdev / TB, 2),
                "two_vdevs_usable_tb": round(two_vdevs / TB, 2) if two_vdevs else None,
            }
            f.warning(
                f"{path}.disks",
                "zfs",
                f"{', '.join(dual)} are dual-actuator SAS drives: the host sees {len(lun_sizes)} LUNs of "
                f"{lun_sizes[0] / TB:g} TB, not {len(members)} disks of {sizes[0] / TB:g} TB, so these ids name no "
                f"device the pool can use. With the LUNs as members of one {pool['layout']} vdev a drive failure "
                f"takes two members: the pool survives {tolerated} drive failure(s), not {nparity}. Two "
                f"{pool['layout']} vdevs of {len(members)} LUNs, one LUN of every drive in each, keep {nparity} "
                + (f"({two_vdevs / TB:.1f} TB usable)" if two_vdevs else "(too few LUNs for two vdevs)"),
                DUAL_LUN_ASSUMPTION,
            )
        claimed = pool.get("claimed_failures_tolerated")
        if claimed is not None and claimed > tolerated:
            f.error(
                f"{path}.claimed_failures_tolerated",
                "zfs",
                f"the design claims the pool survives {claimed} drive failure(s); as planned it survives {tolerated}",
                DUAL_LUN_ASSUMPTION if dual else None,
            )
        expected = pool.get("expected_usable_tb")
        if expected:
            figure["expected_usable_tb"] = expected
            gap = expected * TB / usable - 1
            if gap > USABLE_TOLERANCE:
                f.warning(
                    f"{path}.expected_usable_tb",
                    "zfs",
                    f"{expected:g} TB expected, ZFS will offer {usable / TB:.1f} TB ({usable / TIB:.1f} TiB, what "
                    f"'zfs list' shows): {gap:.1%} less. {pool['layout']} of {len(members)} disks keeps "
                    f"{space['record_efficiency']:.1%} of the space for 128 KiB records, and 1/32 is slop",
                )
        ctx.figures.setdefault("zfs", {})[name] = figure
        ctx.picture["storage"].append(
            {
                "name": name,
                "kind": "zfs",
                "layout": pool["layout"],
                "members": members,
                "usable_tb": figure["usable_tb"],
            }
        )
        rows.append(
            [
                name,
                f"{pool['layout']} x{len(members)}",
                figure["raw_tb"],
                figure["usable_tb"],
                figure["usable_tib"],
                expected,
                figure["drive_failures_tolerated"],
            ]
        )
    if rows:
        ctx.table(
            "ZFS pools",
            ["pool", "layout", "raw TB", "usable TB", "usable TiB", "expected TB", "drive failures survived"],
            rows,
        )


def _md(ctx: Any, disks: dict[str, Any], owners: dict[str, list[str]]) -> dict[str, int]:
    f = ctx.findings
    capacity: dict[str, int] = {}
    rows = []
    for name, array in (adapter.section(ctx.plan, "intent", "md_arrays") or {}).items():
        path = f"{INTENT}.md_arrays.{name}"
        level, members = array["level"], array["members"]
        for disk in members:
            owners[disk].append(f"md array {name}")
        minimum = MD_MIN_MEMBERS[level]
        if len(members) < minimum or (level == 10 and len(members) % 2):
            f.error(
                f"{path}.members",
                "md",
                f"RAID{level} needs at least {minimum}{' (an even number)' if level == 10 else ''} members, "
                f"has {len(members)}",
            )
            continue
        sizes = [disks[d]["size_bytes"] for d in members]
        if len(set(sizes)) > 1 and level != 0:
            f.warning(f"{path}.members", "md", "members differ in size; each counts as the smallest")
        capacity[name] = _md_capacity(level, sizes)
        bound, basis = _read_bound(disks, members)
        claim = array.get("claimed_read_gbs")
        if claim and bound is None:
            f.note(f"{path}.claimed_read_gbs", "md", f"not checked: {basis}")
        elif claim and bound is not None and claim > bound:
            f.error(
                f"{path}.claimed_read_gbs",
                "md",
                f"{claim:g} GB/s is more than the members can deliver together ({bound:.1f} GB/s: {basis})",
            )
        elif claim and bound is not None and claim > 0.9 * bound:
            f.warning(
                f"{path}.claimed_read_gbs",
                "md",
                f"{claim:g} GB/s is {claim / bound:.0%} of the members' combined limit ({bound:.1f} GB/s: {basis}); "
                "only large sequential reads at queue depth reach it",
            )
        ctx.figures.setdefault("md", {})[name] = {
            "level": level,
            "members": len(members),
            "usable_tb": round(capacity[name] / TB, 2),
            "read_bound_gbs": None if bound is None else round(bound, 1),
        }
        ctx.picture["storage"].append(
            {"name": name, "kind": "md", "layout": f"raid{level}", "members": members, "usable_tb": capacity[name] / TB}
        )
        rows.append([name, f"RAID{level}", len(members), round(capacity[name] / TB, 2), claim, bound])
    if rows:
        ctx.table("md arrays", ["array", "level", "members", "usable TB", "claimed read GB/s", "read bound GB/s"], rows)
    return capacity


def check_storage(ctx: Any) -> None:
    """Pools, arrays, landing zone and VM disks; a disk may belong to one of them only."""
    f = ctx.findings
    disks = adapter.section(ctx.plan, "hardware", "disks") or {}
    owners: dict[str, list[str]] = defaultdict(list)
    _pools(ctx, disks, owners)
    capacity = _md(ctx, disks, owners)
    pools = adapter.section(ctx.plan, "intent", "zfs", "pools") or {}
    usable_pool = {n: v["usable_bytes"] for n, v in (ctx.figures.get("zfs") or {}).items()}

    landing = adapter.section(ctx.plan, "intent", "landing_zone")
    if landing.get("disk"):
        owners[landing["disk"]].append("the landing zone")
        ctx.picture["storage"].append(
            {
                "name": "landing zone",
                "kind": "disk",
                "layout": "single",
                "members": [landing["disk"]],
                "usable_tb": disks[landing["disk"]]["size_bytes"] / TB,
            }
        )

    tier_use: dict[str, float] = defaultdict(float)
    passthrough: dict[str, str] = {}
    for vm_name, vm in (adapter.section(ctx.plan, "intent", "vms") or {}).items():
        for index, disk in enumerate(vm.get("disks") or []):
            where = f"{INTENT}.vms.{vm_name}.disks[{index}]"
            if "tier" in disk:
                if disk["tier"] not in capacity and disk["tier"] not in usable_pool:
                    f.note(where, "storage", f"tier {show(disk['tier'])} is no md array or ZFS pool; size not checked")
                tier_use[disk["tier"]] += disk["size_gb"] * 1e9
            elif "passthrough" in disk:
                name = disk["passthrough"]
                passthrough[name] = vm_name
                if name != landing.get("disk"):
                    owners[name].append(f"VM {vm_name}")
                if disk.get("size_gb") and disk["size_gb"] * 1e9 > disks[name]["size_bytes"] * 1.001:
                    f.error(
                        f"{where}.size_gb",
                        "storage",
                        f"{disk['size_gb']:g} GB asked of disk {name} ({disks[name]['size_bytes'] / 1e9:g} GB)",
                    )
    for tier, used in tier_use.items():
        room = capacity.get(tier, usable_pool.get(tier))
        if room is not None and used > room:
            f.error(
                f"{INTENT}.vms",
                "storage",
                f"VM disks on {tier} add up to {used / TB:.2f} TB; {tier} holds {room / TB:.2f} TB",
            )
        elif room is not None:
            ctx.figures.setdefault("tiers", {})[tier] = {"vm_disks_tb": used / TB, "usable_tb": round(room / TB, 2)}

    if landing.get("disk") in passthrough:
        vm_name = passthrough[landing["disk"]]
        vms = adapter.section(ctx.plan, "intent", "vms")
        lake_users = [n for n, vm in vms.items() if any(d.get("dataset") in pools for d in vm.get("disks") or [])]
        f.warning(
            f"{INTENT}.landing_zone.disk",
            "storage",
            f"{landing['disk']} is passed through to VM {vm_name}, so the host cannot run the hot/warm/cold "
            f"lifecycle on it; {vm_name} has to, and "
            + (
                f"only {', '.join(lake_users)} mounts a ZFS pool"
                if lake_users
                else "no VM mounts a ZFS pool to archive into"
            ),
        )

    for disk, users in sorted(owners.items()):
        if len(users) > 1:
            f.error(f"{HW}.disks.{disk}", "storage", f"is used by {' and '.join(users)}")
