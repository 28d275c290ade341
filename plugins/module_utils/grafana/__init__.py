# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grafana dashboards built from the collection's compact descriptions (the grafana_dashboard filter)."""
