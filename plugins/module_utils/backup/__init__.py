# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups: the restore drill (drill.py, installed as onprem-backup-drill)."""
