# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""LLM serving: engine command lines from the host plan, and model staging (the llm_serving role installs stage.py
as onprem-llm-stage)."""
