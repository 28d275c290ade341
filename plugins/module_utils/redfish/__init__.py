# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redfish: BIOS attributes checked against the BMC's own attribute registry (the bmc_bios module)."""
