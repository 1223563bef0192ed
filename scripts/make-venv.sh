#!/bin/sh
# Make the virtual environment VENV with PYTHON, which must be Python 3.11 or newer
# (kiemke's floor: tomllib); one left by an older Python (Ubuntu 22.04's python3 is
# 3.10) is made again, since pip would refuse kiemke in it at every run.
# Usage: scripts/make-venv.sh VENV PYTHON
set -u
venv=$1
python=$2
new_enough() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; }
if [ -x "$venv/bin/python" ] && new_enough "$venv/bin/python"; then
  exit 0
fi
if ! new_enough "$python"; then
  version=$("$python" --version 2>&1 || true)
  echo "Lỗi: kiemke cần Python 3.11 trở lên, mà '$python' là ${version:-một chương trình không chạy được}." >&2
  echo "  → Cài Python 3.11 (Ubuntu 22.04: sudo apt install python3.11 python3.11-venv) rồi chạy lại," >&2
  echo "    hoặc chỉ rõ Python cần dùng: make inventory PYTHON=/đường/dẫn/tới/python3.11" >&2
  echo "  (kiemke needs Python 3.11 or newer; '$python' is ${version:-not runnable}. Install it, or give PYTHON=...)" >&2
  exit 1
fi
rm -rf "$venv"
exec "$python" -m venv "$venv"
