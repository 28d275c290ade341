# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scheduled health checks (the health_checks role installs check.py with the parsers it imports)."""
