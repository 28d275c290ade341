# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""UPS load shedding and shutdown (the ups role installs shed.py as onprem-ups-shed)."""
