# Copyright: contributors to onprem.gpu_server
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Usable space of a new ZFS pool, following the OpenZFS 2.x space accounting.

Every constant below is an OpenZFS default (module parameter or on-disk format
constant); docs/planning-filters.md names where each comes from.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.onprem.gpu_server.plugins.module_utils.host_plan._common import (
    as_int,
    as_list,
    fail,
)
from ansible_collections.onprem.gpu_server.plugins.module_utils.zfs.rules import MIN_DISKS

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30

# zpool labels a whole disk with GPT: data partition from sector 2048, aligned
# down to 1 MiB, an 8 MiB reserved partition 9 and the backup GPT (33 sectors).
SECTOR = 512
PART_START_SECTORS = 2048
PART_RESERVED_SECTORS = 16384
GPT_BACKUP_SECTORS = 33
PART_ALIGN_SECTORS = 2048

# Four 256 KiB labels (two at each end) and 3.5 MiB of boot area after the front pair.
LABEL_SIZE = 256 * KIB
LABEL_START = 2 * LABEL_SIZE + 3584 * KIB
LABEL_END = 2 * LABEL_SIZE

# Metaslab sizing (vdev_metaslab_set_size) and the embedded ZIL metaslab.
MS_DEFAULT_SHIFT, MS_MAX_SHIFT, MS_MIN_SHIFT = 29, 34, 17
MS_DEFAULT_COUNT, MS_MIN_COUNT, MS_COUNT_LIMIT = 200, 16, 1 << 17
EMBEDDED_SLOG_MIN_MS = 64

# Slop space: 1/32 of the pool, at least 128 MiB, at most 128 GiB.
SLOP_SHIFT, SLOP_MIN, SLOP_MAX = 5, 128 * MIB, 128 * GIB

PARITY = {"stripe": 0, "mirror": 0, "raidz": 1, "raidz1": 1, "raidz2": 2, "raidz3": 3}


def _highbit(value: int) -> int:
    return value.bit_length()


def metaslab_shift(asize: int) -> int:
    """Metaslab size exponent for a top-level vdev of ``asize`` bytes."""
    count = asize >> MS_DEFAULT_SHIFT
    if count < MS_MIN_COUNT:
        shift = _highbit(asize // MS_MIN_COUNT)
    elif count > MS_DEFAULT_COUNT:
        shift = _highbit(asize // MS_DEFAULT_COUNT)
    else:
        shift = MS_DEFAULT_SHIFT
    if shift < MS_MIN_SHIFT:
        shift = MS_MIN_SHIFT
    elif shift > MS_MAX_SHIFT:
        shift = MS_MAX_SHIFT
        if (asize >> shift) > MS_COUNT_LIMIT:
            shift = _highbit(asize // MS_COUNT_LIMIT)
    return shift


def raidz_asize(psize: int, width: int, nparity: int, ashift: int) -> int:
    """Bytes a RAIDZ vdev allocates for a ``psize`` block: data, parity, then padding to nparity+1 sectors."""
    sectors = ((psize - 1) >> ashift) + 1
    sectors += nparity * ((sectors + width - nparity - 1) // (width - nparity))
    sectors = -(-sectors // (nparity + 1)) * (nparity + 1)
    return sectors << ashift


def leaf_asize(disk_bytes: int, whole_disk: bool) -> int:
    """Space a single disk offers to its vdev after partitioning and labels."""
    size = disk_bytes
    if whole_disk:
        sectors = disk_bytes // SECTOR
        part = sectors - GPT_BACKUP_SECTORS - PART_RESERVED_SECTORS - PART_START_SECTORS
        size = (part // PART_ALIGN_SECTORS) * PART_ALIGN_SECTORS * SECTOR
    size = (size // LABEL_SIZE) * LABEL_SIZE
    return size - LABEL_START - LABEL_END


def _check_layout(count: int, layout: str, vdevs: int) -> int:
    if layout not in PARITY:
        raise fail("layout", f"must be one of {', '.join(PARITY)}, got {layout!r}")
    if count % vdevs:
        raise fail("vdevs", f"{count} disks cannot be split into {vdevs} equal vdevs")
    width = count // vdevs
    # The same minimum as the zfs_pool module's (the collection's one table, with its reasons).
    minimum = MIN_DISKS[layout]
    if width < minimum:
        what = "a mirror" if layout == "mirror" else layout
        raise fail("disks_bytes", f"{what} needs at least {minimum} disks per vdev, got {width}")
    return width


def zfs_space(
    disks_bytes: Any,
    layout: str = "stripe",
    ashift: Any = 12,
    vdevs: Any = 1,
    whole_disk: bool = True,
    recordsize: Any = 128 * KIB,
) -> dict[str, Any]:
    """Compute raw, allocatable, deflated and usable bytes of a new pool (see module docstring)."""
    sizes = [as_int(d, f"disks_bytes[{i}]", minimum=1) for i, d in enumerate(as_list(disks_bytes, "disks_bytes"))]
    if not sizes:
        raise fail("disks_bytes", "at least one disk is required")
    shift = as_int(ashift, "ashift", minimum=9)
    if shift > 16:
        raise fail("ashift", f"must be between 9 and 16, got {shift}")
    vdev_count = as_int(vdevs, "vdevs", minimum=1)
    record = as_int(recordsize, "recordsize", minimum=512)
    if record & (record - 1):
        raise fail("recordsize", f"must be a power of two, got {record}")
    width = _check_layout(len(sizes), layout, vdev_count)
    nparity = PARITY[layout]

    normal = embedded = allocatable_total = 0
    per_vdev = []
    for index in range(vdev_count):
        members = sizes[index * width : (index + 1) * width]
        leaves = [leaf_asize(size, bool(whole_disk)) for size in members]
        if min(leaves) < 64 * MIB:
            raise fail("disks_bytes", f"vdev {index}: a disk is smaller than the 64 MiB ZFS minimum")
        if layout == "stripe":
            children = leaves  # each disk is its own top-level vdev
        elif layout == "mirror":
            children = [min(leaves)]
        else:
            children = [min(leaves) * width]
        for asize in children:
            ms_shift = metaslab_shift(asize)
            ms_count = asize >> ms_shift
            allocatable = ms_count << ms_shift
            ratio = (1 << 17) // (raidz_asize(1 << 17, width, nparity, shift) >> 9) if nparity else 512
            log_ms = (1 << ms_shift) if ms_count >= EMBEDDED_SLOG_MIN_MS else 0
            normal += ((allocatable - log_ms) >> 9) * ratio
            embedded += (log_ms >> 9) * ratio
            allocatable_total += allocatable
            per_vdev.append({"asize": asize, "metaslab_shift": ms_shift, "metaslabs": ms_count, "deflate_ratio": ratio})

    # spa_get_slop_space(): the embedded log metaslab is not in the normal
    # class, so slop is reduced by it (at most by half) to keep usable space fair.
    slop = min(normal >> SLOP_SHIFT, SLOP_MAX)
    slop -= min(embedded, slop >> 1)
    slop = max(slop, min(normal >> 1, SLOP_MIN))
    usable = normal - slop

    record_asize = raidz_asize(record, width, nparity, shift) if nparity else -(-record >> shift) << shift
    copies = width if layout == "mirror" else 1
    return {
        "usable_bytes": usable,
        "raw_bytes": sum(sizes),
        "allocatable_bytes": allocatable_total,
        "dspace_bytes": normal,
        "embedded_log_bytes": embedded,
        "slop_bytes": slop,
        "layout": layout,
        "width": width,
        "vdevs": per_vdev,
        "recordsize": record,
        # Share of allocated space that holds data for full records of this size.
        "record_efficiency": record / (record_asize * copies),
    }
